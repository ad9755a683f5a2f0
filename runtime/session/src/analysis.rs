//! rust-analyzer for completion and inspection, kept off the path of cells: it loads the
//! crates cells can see on a thread of its own, at low priority, once no cell has run for a
//! moment (a person reading a result, typing the next cell), or at the first request, which
//! waits for it. Loading takes seconds of CPU that a cell's compile would otherwise compete
//! with on a small machine.

use crate::background::{self, Below};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tessera_analysis::{Analysis, Completions, Hover};

/// How long the session must be idle before rust-analyzer loads by itself.
const IDLE_BEFORE_LOADING: Duration = Duration::from_secs(2);

/// rust-analyzer over one dependency project, loading or loaded.
pub(crate) struct Analyzer {
    project: PathBuf,
    state: Arc<(Mutex<State>, Condvar)>,
    activity: Arc<Activity>,
}

/// When cells ran, for loading while the session is idle.
struct Activity {
    last: Mutex<Instant>,
    running: AtomicBool,
    /// A request came: load now.
    wanted: AtomicBool,
}

impl Activity {
    fn idle_long_enough(&self) -> bool {
        self.wanted.load(Ordering::SeqCst)
            || (!self.running.load(Ordering::SeqCst)
                && self.last.lock().elapsed() >= IDLE_BEFORE_LOADING)
    }
}

enum State {
    Waiting,
    Loading,
    Ready(Box<Analysis>),
    /// It could not load: completion and inspection find nothing (the reason is logged).
    Failed,
}

impl Analyzer {
    /// Loads `project` in the background once the session is idle.
    pub(crate) fn start(project: &Path) -> Analyzer {
        let state = Arc::new((Mutex::new(State::Waiting), Condvar::new()));
        let activity = Arc::new(Activity {
            last: Mutex::new(Instant::now()),
            running: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
        });
        let loading = state.clone();
        let waiting = activity.clone();
        let dir = project.to_path_buf();
        // Below the session's other threads: a cell's compile comes first.
        let spawned = background::spawn("rust-analyzer", Below::Somewhat, move || {
            while !waiting.idle_long_enough() {
                // Replaced (a `:dep` changed the project) before it loaded: nothing to do.
                if Arc::strong_count(&waiting) == 1 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            *loading.0.lock() = State::Loading;
            let loaded = match Analysis::load(&dir) {
                Ok(analysis) => State::Ready(Box::new(analysis)),
                Err(e) => {
                    tracing::warn!("completion and inspection are off: {e}");
                    State::Failed
                }
            };
            let (lock, ready) = &*loading;
            *lock.lock() = loaded;
            ready.notify_all();
        });
        if spawned.is_err() {
            *state.0.lock() = State::Failed;
        }
        Analyzer {
            project: project.to_path_buf(),
            state,
            activity,
        }
    }

    /// A cell starts (`true`) or ends (`false`): loading waits for the session to be idle.
    pub(crate) fn cell_running(&self, running: bool) {
        self.activity.running.store(running, Ordering::SeqCst);
        *self.activity.last.lock() = Instant::now();
    }

    /// Completions at `offset` of `source`, once loaded; a new project (after `:dep`) is
    /// loaded first.
    pub(crate) fn completions(
        &mut self,
        project: &Path,
        source: String,
        offset: usize,
    ) -> Option<Completions> {
        self.with_source(project, source, |analysis| {
            analysis.completions(offset).ok()
        })
    }

    /// What rust-analyzer shows on hover at `offset` of `source`.
    pub(crate) fn hover(&mut self, project: &Path, source: String, offset: usize) -> Option<Hover> {
        self.with_source(project, source, |analysis| {
            analysis.hover(offset).ok().flatten()
        })
    }

    fn with_source<T>(
        &mut self,
        project: &Path,
        source: String,
        ask: impl FnOnce(&Analysis) -> Option<T>,
    ) -> Option<T> {
        if project != self.project {
            *self = Analyzer::start(project);
        }
        self.activity.wanted.store(true, Ordering::SeqCst);
        let (lock, ready) = &*self.state;
        let mut state = lock.lock();
        while matches!(*state, State::Waiting | State::Loading) {
            ready.wait(&mut state);
        }
        match &mut *state {
            State::Ready(analysis) => {
                analysis.set_source(source);
                ask(analysis)
            }
            State::Waiting | State::Loading | State::Failed => None,
        }
    }
}
