//! The artifact store: compiled cell libraries (and the toolchain's libstd) by content hash,
//! served to executors. A cell names its code by library path; the driver hashes the file the
//! first time it sees the path and from then on knows it by hash.

use crate::error::DriverError;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tessera_plan::{CodeRef, LocalCodeRef};

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
    pub fn add_file(&self, path: &Path) -> Result<String, DriverError> {
        let key = path.to_string_lossy().into_owned();
        if let Some(hash) = self.by_path.lock().get(&key) {
            return Ok(hash.clone());
        }
        let bytes = std::fs::read(path).map_err(|source| DriverError::UnreadableCode {
            path: path.to_path_buf(),
            source,
        })?;
        if !bytes.starts_with(b"\x7fELF") {
            return Err(DriverError::NotASharedLibrary(path.to_path_buf()));
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

    pub fn resolve(&self, code: LocalCodeRef) -> Result<CodeRef, DriverError> {
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
