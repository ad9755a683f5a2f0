//! What a session says while it starts for the first time on a machine.
//!
//! The first start builds the crates cells link (a minute or two; later starts reuse the
//! per-user build). cargo's `Compiling serde v1.0` lines, which the cell engine passes on as
//! progress, become two notices for the front end ("preparing the Rust environment, once: …"
//! and "… ready") instead of lines over the REPL's prompt.

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

/// Counts the crates a start compiles and tells the front end, once at the first and once
/// at the end.
pub struct StartNotices {
    compiled: AtomicUsize,
    started: Instant,
    notify: Notify,
}

impl StartNotices {
    /// Notices for a start beginning now.
    pub fn new(notify: Notify) -> StartNotices {
        StartNotices {
            compiled: AtomicUsize::new(0),
            started: Instant::now(),
            notify,
        }
    }

    /// A line of cargo's progress.
    pub fn progress(&self, line: &str) {
        if let Some(name) = compiled_crate(line)
            && self.compiled.fetch_add(1, Ordering::SeqCst) == 0
        {
            (self.notify)(&preparing_notice(name));
        }
    }

    /// The start is done: says so if anything was compiled.
    pub fn finish(&self) {
        let crates = self.compiled.swap(0, Ordering::SeqCst);
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
