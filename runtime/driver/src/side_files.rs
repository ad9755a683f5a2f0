//! Files the session sends to every executor (`sc.add_file`, Spark's `SparkContext.addFile`):
//! small side inputs such as a lookup table or a model, so that code written against local data
//! runs on a cluster. The driver keeps each file's bytes in the artifact store, by content hash,
//! and a copy in its own side-file directory for the session's cells; every task lists the
//! files added so far, and executors fetch what they lack before running it.
//!
//! Adding a file again under the same name replaces it (the new contents reach executors with
//! their next task), where Spark refuses unless `spark.files.overwrite` is set: in a REPL the
//! usual reason to add a file twice is that it was edited.

use crate::artifacts::ArtifactStore;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tessera_plan::SideFile;

/// The side-file directory of the session whose scratch directory is `work_dir`.
pub fn side_files_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("files")
}

/// Why a file could not be added.
#[derive(Debug, thiserror::Error)]
pub enum SideFileError {
    #[error("cannot add {path}: {source}; pass the path of a readable file on the session's host")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot add {0}: it is not a file (add the files of a directory one by one)")]
    NotAFile(PathBuf),
    #[error("cannot keep a copy of {name} in {dir}: {source}")]
    Copy {
        name: String,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The files added in this session, by name.
pub struct SideFiles {
    dir: PathBuf,
    files: Mutex<BTreeMap<String, SideFile>>,
}

impl SideFiles {
    pub fn new(dir: PathBuf) -> SideFiles {
        SideFiles {
            dir,
            files: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds the file at `path` under its file name; its bytes go into `store`.
    pub fn add(&self, path: &Path, store: &ArtifactStore) -> Result<SideFile, SideFileError> {
        let read = |source| SideFileError::Read {
            path: path.to_path_buf(),
            source,
        };
        if std::fs::metadata(path).map_err(read)?.is_dir() {
            return Err(SideFileError::NotAFile(path.to_path_buf()));
        }
        let name = path
            .file_name()
            .ok_or_else(|| SideFileError::NotAFile(path.to_path_buf()))?
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(path).map_err(read)?;
        let copy = |source| SideFileError::Copy {
            name: name.clone(),
            dir: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(copy)?;
        write_atomically(&self.dir.join(&name), &bytes).map_err(copy)?;
        let file = SideFile {
            name: name.clone(),
            hash: store.insert(bytes),
        };
        self.files.lock().insert(name, file.clone());
        Ok(file)
    }

    /// Every file added so far.
    pub fn list(&self) -> Vec<SideFile> {
        self.files.lock().values().cloned().collect()
    }
}

/// Writes `bytes` to `path` through a temporary file, so that a reader never sees half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_by_name_and_replaced_when_added_again() {
        let dir = std::env::temp_dir().join(format!("tessera-side-files-{}", std::process::id()));
        let source = dir.join("source");
        std::fs::create_dir_all(&source).unwrap();
        let store = ArtifactStore::default();
        let files = SideFiles::new(dir.join("files"));
        let path = source.join("lookup.csv");
        std::fs::write(&path, "a,1\n").unwrap();
        let first = files.add(&path, &store).unwrap();
        assert_eq!(first.name, "lookup.csv");
        assert_eq!(store.get(&first.hash).unwrap().as_slice(), b"a,1\n");
        std::fs::write(&path, "a,2\n").unwrap();
        let second = files.add(&path, &store).unwrap();
        assert_ne!(first.hash, second.hash);
        assert_eq!(files.list(), vec![second]);
        assert_eq!(
            std::fs::read_to_string(dir.join("files/lookup.csv")).unwrap(),
            "a,2\n"
        );
        let missing = files.add(&source.join("nope"), &store).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        let directory = files.add(&source, &store).unwrap_err();
        assert!(directory.to_string().contains("not a file"), "{directory}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
