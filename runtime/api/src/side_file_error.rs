//! Why a file added to the session cannot be had: apart from [`crate::files`] so that the crate's
//! [`Error`](crate::Error), which carries it, and the functions that raise it do not import
//! each other.

use std::fmt;
use tessera_plan::FILES_DIR_ENV;

/// Why an added file cannot be had here. Raised as a [`crate::Error::SideFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SideFileError {
    /// This process runs outside a session and its executors, which alone keep added files.
    NoFilesDirectory,
    /// The name asked for is a path, or empty, rather than the name of a file.
    NotAFileName {
        /// The name asked for.
        name: String,
    },
    /// No file of this name was added to the session.
    NotAdded {
        /// The name asked for.
        name: String,
    },
}

impl fmt::Display for SideFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideFileError::NoFilesDirectory => write!(
                f,
                "{FILES_DIR_ENV} is not set: files added with sc.add_file are there only in a \
                 Tessera session and its executors"
            ),
            SideFileError::NotAFileName { name } => write!(
                f,
                "{name:?} is not a file name: pass the name of the added file, such as \
                 \"lookup.csv\""
            ),
            SideFileError::NotAdded { name } => write!(
                f,
                "no file {name:?} was added to this session: call \
                 sc.add_file(\"path/to/{name}\") first"
            ),
        }
    }
}

impl std::error::Error for SideFileError {}
