//! What a session says while it starts for the first time on a machine.
//!
//! The first start compiles the crates cells link (a minute or two; later starts reuse the
//! per-user build directory). evcxr passes cargo's `Compiling serde v1.0` lines to this
//! process's standard error, where they would land over the REPL's prompt and the line being
//! typed. While a session starts, standard error goes through a pipe: those lines become two
//! notices for the front end ("preparing the Rust environment, once: …" and "… ready"), and
//! every other line passes through unchanged. Standard error is restored when the session is
//! ready; a child process started meanwhile keeps writing to the pipe, which stays forwarded.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Receives the notices.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// The crate a cargo progress line compiles, if it is one (`   Compiling serde v1.0.2`).
pub fn compiled_crate(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("Compiling ")?;
    rest.split_whitespace().next()
}

/// The notice for the first crate compiled.
pub fn preparing_notice(first_crate: &str) -> String {
    format!(
        "preparing the Rust environment, once: compiling the crates cells use ({first_crate}, …); \
         later sessions start in seconds"
    )
}

/// The notice once the session is ready, after `crates` were compiled in `seconds`.
pub fn ready_notice(crates: usize, seconds: f64) -> String {
    let plural = if crates == 1 { "" } else { "s" };
    format!("Rust environment ready: {crates} crate{plural} compiled in {seconds:.0} s")
}

/// Standard error filtered until dropped.
pub struct StartNotices {
    saved: Option<OwnedFd>,
    compiled: Arc<AtomicUsize>,
    started: Instant,
    notify: Notify,
}

impl StartNotices {
    /// Filters standard error from now on; `None` (and nothing changed) if the pipe cannot be
    /// made.
    pub fn start(notify: Notify) -> Option<StartNotices> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: pipe2 returned two open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: duplicating fd 2, which is open for the life of the process.
        let saved = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        if saved < 0 {
            return None;
        }
        // SAFETY: `saved` is a new descriptor this owns.
        let saved = unsafe { OwnedFd::from_raw_fd(saved) };
        // SAFETY: replaces fd 2 with the pipe's write end; `write` stays owned (and is closed
        // below), fd 2 keeps its own reference.
        if unsafe { libc::dup2(write.as_raw_fd(), 2) } < 0 {
            return None;
        }
        drop(write);
        let compiled = Arc::new(AtomicUsize::new(0));
        let forward_to = saved.try_clone().ok()?;
        let (counter, tell) = (compiled.clone(), notify.clone());
        std::thread::Builder::new()
            .name("stderr-filter".into())
            .spawn(move || filter(read, forward_to, counter, tell))
            .ok()?;
        Some(StartNotices {
            saved: Some(saved),
            compiled,
            started: Instant::now(),
            notify,
        })
    }
}

fn filter(read: OwnedFd, forward_to: OwnedFd, compiled: Arc<AtomicUsize>, notify: Notify) {
    let mut out = std::fs::File::from(forward_to);
    let mut lines = BufReader::new(std::fs::File::from(read));
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match compiled_crate(&line) {
            Some(name) => {
                if compiled.fetch_add(1, Ordering::SeqCst) == 0 {
                    notify(&preparing_notice(name));
                }
            }
            None => {
                let _ = out.write_all(line.as_bytes());
            }
        }
    }
}

impl Drop for StartNotices {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // SAFETY: puts the original standard error back on fd 2.
            unsafe { libc::dup2(saved.as_raw_fd(), 2) };
        }
        let crates = self.compiled.load(Ordering::SeqCst);
        if crates > 0 {
            (self.notify)(&ready_notice(crates, self.started.elapsed().as_secs_f64()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_progress_lines_name_their_crate_and_other_lines_do_not() {
        assert_eq!(compiled_crate("   Compiling serde v1.0.229"), Some("serde"));
        assert_eq!(
            compiled_crate("Compiling tessera v0.1.0 (/src/api)"),
            Some("tessera")
        );
        assert_eq!(compiled_crate("error: Compiling failed"), None);
        assert_eq!(compiled_crate("WARN something"), None);
    }

    #[test]
    fn notices_say_what_happens_once_and_that_it_is_done() {
        let preparing = preparing_notice("serde");
        assert!(preparing.starts_with("preparing the Rust environment, once: "));
        assert!(preparing.contains("serde"));
        assert_eq!(
            ready_notice(12, 61.4),
            "Rust environment ready: 12 crates compiled in 61 s"
        );
        assert_eq!(
            ready_notice(1, 4.0),
            "Rust environment ready: 1 crate compiled in 4 s"
        );
    }
}
