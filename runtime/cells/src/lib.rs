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
mod content_hash;
mod crate_source;
mod deps;
mod diagnostics;
mod engine;
mod error;
mod optimisation;
mod output;
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
pub use output::{OutputSink, Stream};
pub use protocol::{CHANNEL_FD, CHILD_ENV};
pub use runner::run_child_if_requested;
pub use toolchain::Toolchain;
