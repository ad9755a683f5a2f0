//! Compiles and runs the cells of a session, fast.
//!
//! A cell is compiled by one rustc run into a library of its own, against dependencies cargo
//! built once per user ([`deps`]), and run by a child process that keeps the session's
//! variables between cells ([`runner`]). The types of new variables come from a second,
//! type-check-only rustc run beside the first (rustc names them; no rust-analyzer on the
//! critical path), and compiled cells are kept per user by a hash of their source, so a
//! session that runs the same cells again (a script, a notebook, the session's own prelude)
//! does not compile them again.
//!
//! The engine knows nothing of Tessera: the session gives it the dependencies cells use, a
//! trait to show results with, and the binary to run as the child.

#![deny(missing_docs)]

mod cell_cache;
mod cell_parts;
mod child;
mod crate_source;
mod deps;
mod diagnostics;
mod engine;
mod error;
mod optimisation;
mod protocol;
mod runner;
mod rustc;
mod toolchain;

pub use cell_parts::format_arguments;
pub use child::ChildCommand;
pub use diagnostics::{Diagnostic, Label, render};
pub use engine::{CellOutcome, Engine, EngineConfig};
pub use error::CellsError;
pub use optimisation::Optimisation;
pub use protocol::{CHANNEL_FD, CHILD_ENV};
pub use runner::run_child_if_requested;
pub use toolchain::Toolchain;

use std::sync::Arc;

/// Which stream a line of a cell's output was printed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives each line a cell prints, as it prints it (without the newline).
pub type OutputSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// The SHA-256 of `bytes`, in hex.
fn hash_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
