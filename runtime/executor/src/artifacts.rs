//! Compiled cell libraries on an executor: fetched from the driver by content hash, verified,
//! kept on local disk, loaded once and never unloaded (code of a loaded library may still be
//! referenced by cached partitions' drop functions). Side files (`sc.add_file`) come the same
//! way, into the directory `tessera::files::get` looks in.

use crate::error::ExecutorError;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_plan::builtin::Builtin;
use tessera_plan::{CodeRef, SideFile};
pub use tessera_wire::DriverChannel;
use tessera_wire::driver::FetchArtifactRequest;

/// A loaded library: its handle and its load base (as `dladdr` reports it to the cell).
#[derive(Clone, Copy)]
struct Loaded {
    base: usize,
}

pub struct Artifacts {
    dir: PathBuf,
    driver: DriverChannel,
    loaded: Mutex<HashMap<String, Loaded>>,
    /// Where side files go, and the hash of each one there, by name.
    files_dir: PathBuf,
    files: Mutex<HashMap<String, String>>,
    /// Serializes fetches so that two tasks do not download the same library twice.
    fetching: tokio::sync::Mutex<()>,
}

impl Artifacts {
    pub fn new(dir: PathBuf, files_dir: PathBuf, driver: DriverChannel) -> Arc<Artifacts> {
        Arc::new(Artifacts {
            dir,
            driver,
            loaded: Mutex::new(HashMap::new()),
            files_dir,
            files: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Fetches and loads library `hash` unless it is loaded already. `global` makes its symbols
    /// visible to libraries loaded later (for the toolchain's libstd).
    pub async fn ensure_loaded(&self, hash: &str, global: bool) -> Result<(), ExecutorError> {
        if self.loaded.lock().contains_key(hash) {
            return Ok(());
        }
        let _guard = self.fetching.lock().await;
        if self.loaded.lock().contains_key(hash) {
            return Ok(());
        }
        let path = self.dir.join(format!("{hash}.so"));
        if !path.exists() {
            self.fetch_into(hash, "library", &path).await?;
        }
        let loaded = load(hash, &path, global)?;
        tracing::debug!(hash, path = %path.display(), "loaded library");
        self.loaded.lock().insert(hash.to_string(), loaded);
        Ok(())
    }

    /// Fetches side file `file` into the side-file directory unless the copy there is current.
    pub async fn ensure_side_file(&self, file: &SideFile) -> Result<(), ExecutorError> {
        if self.files.lock().get(&file.name) == Some(&file.hash) {
            return Ok(());
        }
        let _guard = self.fetching.lock().await;
        if self.files.lock().get(&file.name) == Some(&file.hash) {
            return Ok(());
        }
        let what = format!("file {}", file.name);
        let path = self.files_dir.join(&file.name);
        self.fetch_into(&file.hash, &what, &path).await?;
        tracing::debug!(name = %file.name, path = %path.display(), "fetched a side file");
        self.files
            .lock()
            .insert(file.name.clone(), file.hash.clone());
        Ok(())
    }

    /// Fetches artifact `hash` and writes it to `path`, whole or not at all.
    async fn fetch_into(&self, hash: &str, what: &str, path: &Path) -> Result<(), ExecutorError> {
        let bytes = self.fetch(hash, what).await?;
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| ExecutorError::ArtifactStore {
                what: what.to_string(),
                hash: hash.to_string(),
                path: path.to_path_buf(),
                source,
            })
    }

    async fn fetch(&self, hash: &str, what: &str) -> Result<Vec<u8>, ExecutorError> {
        let fetch_error = |source| ExecutorError::ArtifactFetch {
            what: what.to_string(),
            hash: hash.to_string(),
            source,
        };
        let mut stream = self
            .driver
            .clone()
            .fetch_artifact(FetchArtifactRequest {
                hash: hash.to_string(),
            })
            .await
            .map_err(fetch_error)?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(fetch_error)? {
            bytes.extend_from_slice(&chunk.data);
        }
        let actual = hex(&Sha256::digest(&bytes));
        if actual != hash {
            return Err(ExecutorError::ArtifactCorrupt {
                what: what.to_string(),
                hash: hash.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The address `code` refers to, in a library loaded earlier.
    /// Built-in code ([`tessera_plan::builtin`]) is the executor's own: its DataFrame operators.
    pub fn resolve(&self, code: &CodeRef) -> Result<*const c_void, ExecutorError> {
        if let Some(builtin) = Builtin::of(code) {
            return Ok(tessera_frame::tables::entry(builtin) as *const c_void);
        }
        self.loaded
            .lock()
            .get(&code.library)
            .map(|l| (l.base + code.offset as usize) as *const c_void)
            .ok_or_else(|| ExecutorError::LibraryNotLoaded {
                library: code.library.clone(),
            })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const libc::c_char,
    l_ld: *mut c_void,
}

const RTLD_DI_LINKMAP: libc::c_int = 2;

unsafe extern "C" {
    fn dlinfo(handle: *mut c_void, request: libc::c_int, info: *mut c_void) -> libc::c_int;
}

fn dl_error() -> String {
    // SAFETY: dlerror returns a thread-local message or null.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown loader error".into()
    } else {
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Loads library `hash` from `path` for good and finds its base address the way the cell did,
/// with `dladdr`.
fn load(hash: &str, path: &std::path::Path, global: bool) -> Result<Loaded, ExecutorError> {
    let failed = |reason: String| ExecutorError::LibraryLoad {
        hash: hash.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let c_path =
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| failed(e.to_string()))?;
    let mode = libc::RTLD_NOW
        | if global {
            libc::RTLD_GLOBAL
        } else {
            libc::RTLD_LOCAL
        };
    // SAFETY: loading a library whose hash the driver vouched for; it is never closed.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), mode) };
    if handle.is_null() {
        return Err(failed(dl_error()));
    }
    let mut map: *mut LinkMap = std::ptr::null_mut();
    // SAFETY: RTLD_DI_LINKMAP writes a pointer to the library's link map.
    if unsafe { dlinfo(handle, RTLD_DI_LINKMAP, &mut map as *mut _ as *mut c_void) } != 0
        || map.is_null()
    {
        return Err(failed(dl_error()));
    }
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: l_ld points into the library's own mapping.
    if unsafe { libc::dladdr((*map).l_ld, &mut info) } == 0 {
        return Err(failed("cannot find the library's base address".into()));
    }
    Ok(Loaded {
        base: info.dli_fbase as usize,
    })
}
