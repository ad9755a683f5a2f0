//! evcxr's build directory, kept per user so that a cell's dependencies (the `tessera` crate,
//! serde) build once and every later session starts in seconds. Concurrent sessions each take
//! a slot of their own, held by a lock file.

use anyhow::Context as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME/tessera`, or `~/.cache/tessera`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tessera")
}

pub struct EvcxrDir {
    path: PathBuf,
    _lock: std::fs::File,
}

impl EvcxrDir {
    pub fn acquire() -> anyhow::Result<EvcxrDir> {
        let root = cache_root().join("evcxr");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        for slot in 0.. {
            let path = root.join(format!("slot-{slot}"));
            let lock = std::fs::File::create(root.join(format!("slot-{slot}.lock")))?;
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                std::fs::create_dir_all(&path)?;
                return Ok(EvcxrDir { path, _lock: lock });
            }
        }
        unreachable!("slots are unbounded")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
