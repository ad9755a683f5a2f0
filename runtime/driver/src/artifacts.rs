//! The artifact store: compiled cell libraries (and the toolchain's libstd) by content hash,
//! served to executors. A cell names its code by library path; the driver hashes the file the
//! first time it sees the path and from then on knows it by hash. What it cannot take is an
//! [`ArtifactError`] of its own, which the driver's error wraps.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_plan::{CodeRef, LocalCodeRef};

/// Why the store cannot take a closure's compiled code.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The compiled code a closure lives in cannot be read.
    #[error("cannot read compiled code at {path}: {source}")]
    UnreadableCode {
        /// The shared library (or executable) the closure's code is in.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// Closures compiled into an executable rather than a library.
    #[error(
        "{0} is not a shared library: closures that run on executors must be compiled into one \
         (a REPL or notebook cell, or a `cdylib` crate), not into an executable"
    )]
    NotASharedLibrary(PathBuf),
}

#[derive(Default)]
pub struct ArtifactStore {
    by_path: Mutex<HashMap<String, String>>,
    by_hash: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ArtifactStore {
    /// Adds the library at `path` and returns its hash.
    pub fn add_file(&self, path: &Path) -> Result<String, ArtifactError> {
        let key = path.to_string_lossy().into_owned();
        if let Some(hash) = self.by_path.lock().get(&key) {
            return Ok(hash.clone());
        }
        let bytes = std::fs::read(path).map_err(|source| ArtifactError::UnreadableCode {
            path: path.to_path_buf(),
            source,
        })?;
        if !bytes.starts_with(b"\x7fELF") {
            return Err(ArtifactError::NotASharedLibrary(path.to_path_buf()));
        }
        let hash = self.insert(bytes);
        self.by_path.lock().insert(key, hash.clone());
        Ok(hash)
    }

    /// Keeps `bytes` (a side file's contents) and returns their hash.
    pub fn insert(&self, bytes: Vec<u8>) -> String {
        let hash = sha256_hex(&bytes);
        self.by_hash.lock().insert(hash.clone(), Arc::new(bytes));
        hash
    }

    pub fn resolve(&self, code: LocalCodeRef) -> Result<CodeRef, ArtifactError> {
        let library = self.add_file(Path::new(&code.library_path))?;
        Ok(CodeRef {
            library,
            offset: code.offset,
        })
    }

    pub fn get(&self, hash: &str) -> Option<Arc<Vec<u8>>> {
        self.by_hash.lock().get(hash).cloned()
    }
}
