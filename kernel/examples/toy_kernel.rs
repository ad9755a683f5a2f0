//! A kernel with the toy backend of the protocol tests instead of the Tessera session,
//! for trying the protocol layer with real Jupyter clients:
//!
//! ```text
//! cargo run -p tessera-kernel --example toy_kernel -- install --prefix /tmp/toy
//! JUPYTER_PATH=/tmp/toy/share/jupyter jupyter console --kernel tessera
//! ```
//!
//! It understands `println!("…")`, integer arithmetic and a few test commands; see
//! `tests/support/toy_backend.rs`.

#[path = "../tests/support/toy_backend.rs"]
mod toy_backend;

use anyhow::Context;
use clap::Parser;
use tessera_kernel::cli::{Action, Args};

fn main() -> anyhow::Result<()> {
    tessera_kernel::cli::init_tracing();
    match Args::parse().action().unwrap_or_else(|err| err.exit()) {
        Action::Install { user, prefix } => {
            let dir = tessera_kernel::install_kernelspec(user, prefix.as_deref())
                .context("installing the toy kernelspec")?;
            println!(
                "Installed kernelspec {} in {}",
                tessera_kernel::KERNEL_NAME,
                dir.display()
            );
        }
        Action::Run { connection_file } => {
            let history = tessera_kernel::History::in_memory();
            tessera_kernel::run_kernel(&connection_file, toy_backend::ToyBackend::new(), history)
                .with_context(|| format!("serving {}", connection_file.display()))?;
        }
    }
    Ok(())
}
