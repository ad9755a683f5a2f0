//! Where a user's sessions keep what outlives them: the crates cells depend on, compiled
//! cells (so a new session or `tessera run` starts in well under a second), and each session's
//! own files.

use std::path::PathBuf;

/// `$XDG_CACHE_HOME/tessera`, or `~/.cache/tessera`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tessera")
}
