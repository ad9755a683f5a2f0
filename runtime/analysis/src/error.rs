//! What can go wrong loading a project into rust-analyzer or asking it about a position.

use std::path::PathBuf;

/// An error from [`Analysis`](crate::Analysis).
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The cargo project could not be loaded (a bad manifest, a missing directory, `cargo
    /// metadata` failing).
    #[error(
        "cannot load the cargo project in {}: {cause}. Check that {}/Cargo.toml describes a \
         library crate with src/lib.rs and that `cargo metadata` succeeds in that directory",
        dir.display(),
        dir.display()
    )]
    Load {
        /// The project directory given to `load`.
        dir: PathBuf,
        /// What rust-analyzer or cargo reported.
        cause: String,
    },
    /// The project loaded, but its crate root is not among the files rust-analyzer read.
    #[error(
        "rust-analyzer loaded the cargo project in {} but not {}: check that the file exists \
         and that Cargo.toml does not point the library elsewhere",
        dir.display(),
        source_file.display()
    )]
    MissingSource {
        /// The project directory given to `load`.
        dir: PathBuf,
        /// The crate root that was expected.
        source_file: PathBuf,
    },
    /// An offset that is not a character boundary inside the source.
    #[error(
        "offset {offset} is not a character boundary of the {len}-byte source: pass a byte \
         offset into the text last given to set_source"
    )]
    Offset {
        /// The offset asked about.
        offset: usize,
        /// The length of the source in bytes.
        len: usize,
    },
    /// rust-analyzer abandoned the request (the database changed under it).
    #[error("rust-analyzer cancelled the request: ask again")]
    Cancelled,
    /// rust-analyzer failed on this input: a bug in it, not in the cell.
    #[error(
        "rust-analyzer failed internally ({message}); the request can be retried after the next \
         edit, and loading the project again clears any damage"
    )]
    Internal {
        /// The panic message.
        message: String,
    },
}
