//! rust-analyzer for completion and inspection, kept off the path of cells: it loads the
//! crates cells can see on a thread of its own, at low priority, once the session is ready;
//! the first request waits for it. Loading takes seconds of CPU that a cell's compile would
//! otherwise compete with.

use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_analysis::{Analysis, Completions, Hover};

/// rust-analyzer over one dependency project, loading or loaded.
pub(crate) struct Analyzer {
    project: PathBuf,
    state: Arc<(Mutex<State>, Condvar)>,
}

enum State {
    Loading,
    Ready(Box<Analysis>),
    /// It could not load: completion and inspection find nothing (the reason is logged).
    Failed,
}

impl Analyzer {
    /// Starts loading `project` in the background.
    pub(crate) fn start(project: &Path) -> Analyzer {
        let state = Arc::new((Mutex::new(State::Loading), Condvar::new()));
        let loading = state.clone();
        let dir = project.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("rust-analyzer".into())
            .spawn(move || {
                // Below the session's other threads: a cell's compile comes first.
                // SAFETY: setpriority on this thread (a thread id is a process id to Linux).
                unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as u32, 10) };
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
        }
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
        let (lock, ready) = &*self.state;
        let mut state = lock.lock();
        while matches!(*state, State::Loading) {
            ready.wait(&mut state);
        }
        match &mut *state {
            State::Ready(analysis) => {
                analysis.set_source(source);
                ask(analysis)
            }
            State::Loading | State::Failed => None,
        }
    }
}
