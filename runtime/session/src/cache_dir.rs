//! Where a user's sessions keep what outlives them: the crates cells depend on, compiled
//! cells (so a new session or `tessera run` starts in well under a second), and each session's
//! own files.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `$XDG_CACHE_HOME/tessera`, or `~/.cache/tessera`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tessera")
}

/// How often a session clears what old sessions and cells left behind: once a day, as cargo
/// cleans its own cache (`gc.auto.frequency`). Clearing looks at every file in the cache, and a
/// cache that a week of test runs had filled (27,000 compiled cells) took a core for a tenth of
/// a second, during the session's first jobs: LR's second and third iterations took half as long
/// again. What it spares, anything used within the day, could not be removed sooner anyway.
pub const CLEAR_EVERY: Duration = Duration::from_secs(24 * 3600);

/// The file whose time says when the cache was last cleared.
const CLEARED_STAMP: &str = "cleared";

/// Whether clearing is due at `now`, last done at `last` (never: `None`). A stamp in the future
/// (the clock was set back) does not put clearing off.
fn clearing_due(last: Option<SystemTime>, now: SystemTime, every: Duration) -> bool {
    last.is_none_or(|at| !now.duration_since(at).is_ok_and(|since| since < every))
}

/// Whether the cache under `root` is due for clearing.
pub fn clearing_is_due(root: &Path) -> bool {
    let last = std::fs::metadata(root.join(CLEARED_STAMP))
        .and_then(|m| m.modified())
        .ok();
    clearing_due(last, SystemTime::now(), CLEAR_EVERY)
}

/// Notes that the cache under `root` was cleared now. Set once clearing has finished, so that
/// a session that ends before (a short `tessera run` on busy cores) leaves it to the next one;
/// two sessions starting together may both clear, which only repeats the look. A stamp that
/// cannot be written leaves clearing due: each session tries, as before stamps.
pub fn mark_cleared(root: &Path) {
    let _ =
        std::fs::create_dir_all(root).and_then(|()| std::fs::write(root.join(CLEARED_STAMP), b""));
}

/// A session's own directory (`sessions/PID`): its driver's and its cell engine's files, and a
/// local executor's. It is removed as the session ends if nothing in it outlives the session,
/// as on a cluster, where executors keep their files and logs in their agents' sandboxes (each
/// such session had left an empty directory for a day). A local executor's log stays, for a
/// look after the fact, until [`remove_stale_sessions`].
pub struct SessionDir(PathBuf);

impl SessionDir {
    /// The directory of the session of this process, under `sessions`. One there already was
    /// left by an ended process that had this process's id (ids are reused, and a session's
    /// directory stays up to two days with its executor's log): what it holds is not this
    /// session's, and would keep this one's from going with it, so it is removed first.
    pub fn of_this_process(sessions: &std::path::Path) -> SessionDir {
        let dir = sessions.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        SessionDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        // Only an empty directory is removed.
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Removes the directories of sessions that ended long ago (`sessions/PID` whose process is
/// gone and that nothing has touched for a day): their executors' logs are kept that long for
/// a look after the fact (and the files of an executor killed with its session, which it could
/// not remove), then they would only pile up. Sessions look once a day ([`clearing_is_due`]).
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
    fn a_sessions_directory_goes_with_it_unless_something_in_it_outlives_it() {
        let sessions = tempfile::tempdir().unwrap();
        let left_empty = SessionDir(sessions.path().join("1"));
        std::fs::create_dir_all(left_empty.path().join("cells")).unwrap();
        std::fs::remove_dir(left_empty.path().join("cells")).unwrap();
        let with_a_log = SessionDir(sessions.path().join("2"));
        std::fs::create_dir_all(with_a_log.path()).unwrap();
        std::fs::write(with_a_log.path().join("executor-local-0.log"), "started").unwrap();
        let (empty, logged) = (
            left_empty.path().to_path_buf(),
            with_a_log.path().to_path_buf(),
        );
        drop((left_empty, with_a_log));
        assert!(!empty.exists());
        assert!(logged.join("executor-local-0.log").is_file());
    }

    #[test]
    fn a_session_does_not_take_over_what_an_ended_process_of_its_id_left() {
        let sessions = tempfile::tempdir().unwrap();
        let left = sessions.path().join(std::process::id().to_string());
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("executor-local-0.log"), "an old session's").unwrap();
        let ours = SessionDir::of_this_process(sessions.path());
        assert!(!ours.path().join("executor-local-0.log").exists());
        std::fs::create_dir_all(ours.path()).unwrap();
        let path = ours.path().to_path_buf();
        drop(ours);
        assert!(
            !path.exists(),
            "an empty session directory goes with the session"
        );
    }

    #[test]
    fn clearing_is_due_once_a_day_and_when_the_clock_went_back() {
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        assert!(clearing_due(None, now, day), "never cleared");
        assert!(!clearing_due(Some(now - day / 2), now, day));
        assert!(clearing_due(Some(now - day), now, day));
        assert!(
            clearing_due(Some(now + day), now, day),
            "stamp in the future"
        );
    }

    #[test]
    fn clearing_is_due_until_marked_and_again_a_day_later() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("tessera");
        assert!(clearing_is_due(&cache), "no stamp yet");
        assert!(clearing_is_due(&cache), "still due: not cleared yet");
        mark_cleared(&cache);
        assert!(!clearing_is_due(&cache), "cleared just now");
        let stamp = std::fs::File::options()
            .append(true)
            .open(cache.join(CLEARED_STAMP))
            .unwrap();
        stamp.set_modified(SystemTime::now() - CLEAR_EVERY).unwrap();
        assert!(clearing_is_due(&cache), "a day later");
    }

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
