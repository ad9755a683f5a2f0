//! What can go wrong while compiling or running a cell, each with what to do about it.

use crate::diagnostics::Diagnostic;
use std::path::PathBuf;

/// Why a cell, or the engine itself, failed.
#[derive(Debug, thiserror::Error)]
pub enum CellsError {
    /// The Rust toolchain cannot be found or run.
    #[error(
        "cannot run `{program}` ({reason}): install Rust with rustup (https://rustup.rs), or set \
         RUSTC and CARGO to the compiler and cargo to use"
    )]
    Toolchain {
        /// The program that did not run.
        program: String,
        /// What went wrong.
        reason: String,
    },
    /// cargo could not build the crates cells depend on.
    #[error(
        "cannot build the crates cells depend on (in {dir}):\n{output}\nFix the dependency that \
         failed (a `:dep` line, or the network if a crate had to be downloaded) and try again"
    )]
    Dependencies {
        /// The dependency project.
        dir: PathBuf,
        /// What cargo said.
        output: String,
    },
    /// A `:dep` line that is not a dependency.
    #[error(
        "`{line}` is not a dependency: write `:dep NAME = \"VERSION\"` or `:dep NAME = {{ path = \
         \"DIR\" }}`, as in Cargo.toml (or `:dep tessera = {{ features = [\"polars\"] }}` for \
         the session's own crate)"
    )]
    BadDependency {
        /// The line as typed.
        line: String,
    },
    /// The cell does not compile; the diagnostics point into it.
    #[error("{}", crate::diagnostics::render(.code, .diagnostics, false))]
    Compile {
        /// The cell as typed.
        code: String,
        /// What rustc said, mapped onto the cell.
        diagnostics: Vec<Diagnostic>,
    },
    /// The process that runs cells died while running one (a crash, an abort, a kill): its
    /// variables are gone, a new process takes its place.
    #[error(
        "the process running cells stopped ({status}); variables from earlier cells are gone \
         (functions and types are kept): run the cells that made them again"
    )]
    ChildDied {
        /// How it ended.
        status: String,
    },
    /// The child could not load a cell's library (it is still running; variables are kept).
    #[error(
        "cannot load the compiled cell {library}: {message}; check that the toolchain's libstd \
         is where rustc says (`rustc --print sysroot`) and run the cell again"
    )]
    LoadFailed {
        /// The library.
        library: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A file of the engine could not be read or written.
    #[error("cannot {action} {path}: {source}; check the disk space and permissions there")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl CellsError {
    /// An [`Io`](CellsError::Io) error for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> CellsError {
        let path = path.into();
        move |source| CellsError::Io {
            action,
            path,
            source,
        }
    }
}
