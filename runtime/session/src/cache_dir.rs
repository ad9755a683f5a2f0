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

/// Removes the directories of sessions that ended long ago (`sessions/PID` whose process is
/// gone and that nothing has touched for a day): their executors' logs are kept that long for
/// a look after the fact (and the files of an executor killed with its session, which it could
/// not remove), then they would only pile up.
pub fn remove_stale_sessions(sessions: &std::path::Path) {
    remove_stale_sessions_older_than(sessions, std::time::Duration::from_secs(24 * 3600));
}

fn remove_stale_sessions_older_than(sessions: &std::path::Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(sessions) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let running = std::path::Path::new(&format!("/proc/{pid}")).exists();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|a| a >= age));
        if !running && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_directories_of_ended_sessions_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = std::process::id().to_string();
        // A process id far above Linux's limit (2^22) is never running.
        for name in [ours.as_str(), "4999999", "notes"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        remove_stale_sessions_older_than(dir.path(), std::time::Duration::from_secs(3600));
        assert!(dir.path().join("4999999").exists(), "recent: kept");
        remove_stale_sessions_older_than(dir.path(), std::time::Duration::ZERO);
        assert!(
            !dir.path().join("4999999").exists(),
            "ended and old: removed"
        );
        assert!(dir.path().join(&ours).exists(), "running: kept");
        assert!(dir.path().join("notes").exists(), "not a session: kept");
    }
}
