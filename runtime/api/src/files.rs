//! Files sent to every executor with [`Context::add_file`](crate::Context::add_file), as
//! Spark's `SparkFiles`: each process that runs the session's code (the session itself and
//! every executor) keeps its own copy in a directory of its own.

pub use crate::side_file_error::SideFileError;
use std::path::PathBuf;
use tessera_plan::FILES_DIR_ENV;

/// Raises `error` in the calling cell (or task).
fn raise(error: SideFileError) -> ! {
    crate::error::Error::SideFile(error).raise()
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
        let outside = crate::error::Error::SideFile(SideFileError::NoFilesDirectory).to_string();
        assert!(outside.contains("only in a Tessera session"), "{outside}");
    }
}
