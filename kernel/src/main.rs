//! `tessera-kernel`: installs the Tessera kernelspec, and serves the Jupyter kernel for
//! a connection file.

use anyhow::Context;
use clap::Parser;
use tessera_kernel::cli::{Action, Args};

fn main() -> anyhow::Result<()> {
    tessera_kernel::cli::init_tracing();
    let action = Args::parse().action().unwrap_or_else(|err| err.exit());
    match action {
        Action::Install { user, prefix } => {
            let dir = tessera_kernel::install_kernelspec(user, prefix.as_deref())
                .context("installing the Tessera kernelspec")?;
            println!("Installed kernelspec {} in {}", tessera_kernel::KERNEL_NAME, dir.display());
            Ok(())
        }
        Action::Run { connection_file } => {
            // The Tessera session backend is wired in here:
            // `tessera_kernel::run_kernel(&connection_file, backend)?`.
            anyhow::bail!(
                "cannot serve {}: the Tessera session backend is not wired into tessera-kernel yet",
                connection_file.display()
            )
        }
    }
}
