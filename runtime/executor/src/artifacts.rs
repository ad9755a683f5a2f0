//! Compiled cell libraries on an executor: fetched from the driver by content hash, verified,
//! kept on local disk, loaded once and never unloaded (code of a loaded library may still be
//! referenced by cached partitions' drop functions). Side files (`sc.add_file`) come the same
//! way, into the directory `tessera::files::get` looks in.
//!
//! Under an agent, libraries are kept in a directory the agent gives all of a session's
//! executors on its host (`TESSERA_LIBRARY_CACHE`), as Spark's executors share fetched files
//! (`spark.files.useFetchCache`): an executor that replaces a lost one loads what its
//! predecessor fetched instead of fetching the toolchain's libstd (5 MB) and every cell library
//! again while the session's other executors run its tasks. A library is there only once it
//! arrived whole and matched its hash, so one that is there is loaded as it is.

use crate::error::ExecutorError;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_void};
use std::io::Write;
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

/// The variable by which an agent names the directory its host's executors of one session
/// share for libraries.
pub const LIBRARY_CACHE_ENV: &str = "TESSERA_LIBRARY_CACHE";

pub struct Artifacts {
    /// Where libraries are kept, by hash (shared with the session's other executors on this
    /// host, under an agent).
    dir: PathBuf,
    driver: DriverChannel,
    loaded: Mutex<HashMap<String, Loaded>>,
    /// Where side files go, and the hash of each one there, by name.
    files_dir: PathBuf,
    files: Mutex<HashMap<String, String>>,
    /// Serializes fetches so that two tasks of this executor do not download the same library
    /// twice (executors sharing a directory may: each writes a file of its own and renames it
    /// into place, so either copy is whole).
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

    /// Loads library `hash` unless it is loaded already, fetching it first unless it is on
    /// this host already. `global` makes its symbols visible to libraries loaded later (for
    /// the toolchain's libstd).
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

    /// Fetches artifact `hash` and writes it to `path`, whole and verified or not at all: the
    /// chunks go to a file of this process's own as they arrive and are hashed on the way,
    /// and the file is renamed to `path` only if the hash matches.
    async fn fetch_into(&self, hash: &str, what: &str, path: &Path) -> Result<(), ExecutorError> {
        let partial = partial_path(path);
        let fetched = self.fetch_to(hash, what, path, &partial).await;
        if fetched.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        fetched
    }

    async fn fetch_to(
        &self,
        hash: &str,
        what: &str,
        path: &Path,
        partial: &Path,
    ) -> Result<(), ExecutorError> {
        let store_error = |source| ExecutorError::ArtifactStore {
            what: what.to_string(),
            hash: hash.to_string(),
            path: path.to_path_buf(),
            source,
        };
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
        let mut file = std::fs::File::create(partial).map_err(store_error)?;
        let mut digest = Sha256::new();
        while let Some(chunk) = stream.message().await.map_err(fetch_error)? {
            digest.update(&chunk.data);
            file.write_all(&chunk.data).map_err(store_error)?;
        }
        let actual = hex(&digest.finalize());
        if actual != hash {
            return Err(ExecutorError::ArtifactCorrupt {
                what: what.to_string(),
                hash: hash.to_string(),
                actual,
            });
        }
        drop(file);
        std::fs::rename(partial, path).map_err(store_error)
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

/// Where this process writes `path` until it is whole: a hidden name of its own beside it
/// (another executor may be writing the same library, and side files are the user's names).
fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.part", std::process::id()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Artifacts kept in `dir`, with a driver that cannot be reached: any fetch fails.
    fn unreachable_driver(dir: &Path) -> Arc<Artifacts> {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        Artifacts::new(
            dir.to_path_buf(),
            dir.join("files"),
            DriverChannel::new(channel),
        )
    }

    #[tokio::test]
    async fn a_library_another_executor_left_on_this_host_is_loaded_without_fetching() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let hash = "ab".repeat(32);
        let path = dir.join(format!("{hash}.so"));
        std::fs::write(&path, b"not a shared object").unwrap();
        let error = unreachable_driver(dir)
            .ensure_loaded(&hash, false)
            .await
            .unwrap_err();
        // It went to the loader with the copy that was there, not to the driver.
        assert!(
            matches!(&error, ExecutorError::LibraryLoad { path: p, .. } if *p == path),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_fetch_that_fails_leaves_no_file_behind() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let hash = "cd".repeat(32);
        let error = unreachable_driver(dir)
            .ensure_loaded(&hash, false)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ExecutorError::ArtifactFetch { .. }),
            "{error}"
        );
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "files")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn a_partial_file_is_hidden_beside_its_destination_and_names_this_process() {
        let partial = partial_path(Path::new("/w/files/lookup.csv"));
        assert_eq!(
            partial,
            PathBuf::from(format!("/w/files/.lookup.csv.{}.part", std::process::id()))
        );
    }
}
