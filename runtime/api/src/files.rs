//! Files sent to every executor with [`Context::add_file`](crate::Context::add_file), as
//! Spark's `SparkFiles`: each process that runs the session's code (the session itself and
//! every executor) keeps its own copy in a directory of its own.

use std::fmt;
use std::path::PathBuf;
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

/// Raises `error` in the calling cell (or task).
fn raise(error: SideFileError) -> ! {
    crate::Error::SideFile(error).raise()
}

/// The directory that holds this process's copies of added files.
pub fn root_directory() -> PathBuf {
    match std::env::var_os(FILES_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => raise(SideFileError::NoFilesDirectory),
    }
}

/// The path of this process's copy of the file added as `name` (the added path's file name),
/// as Spark's `SparkFiles.get`. A name that was never added is an error naming it.
pub fn get(name: &str) -> PathBuf {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        raise(SideFileError::NotAFileName {
            name: name.to_string(),
        })
    }
    let path = root_directory().join(name);
    if !path.is_file() {
        raise(SideFileError::NotAdded {
            name: name.to_string(),
        })
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_how_to_name_and_add_a_file() {
        let not_added = SideFileError::NotAdded {
            name: "other.txt".into(),
        }
        .to_string();
        assert!(
            not_added.contains("no file \"other.txt\" was added to this session")
                && not_added.contains("sc.add_file(\"path/to/other.txt\") first"),
            "{not_added}"
        );
        let path = SideFileError::NotAFileName {
            name: "data/x.csv".into(),
        }
        .to_string();
        assert!(path.contains("pass the name of the added file"), "{path}");
        let outside = crate::Error::SideFile(SideFileError::NoFilesDirectory).to_string();
        assert!(outside.contains("only in a Tessera session"), "{outside}");
    }
}
