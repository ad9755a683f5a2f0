//! The kernel's backend: a Tessera session. It starts in the background when the kernel starts
//! (the first session on a machine compiles the cells' dependencies), so the kernel answers
//! `kernel_info` at once and the first cell waits for it.

use crate::backend::{
    Completion, ExecuteError, ExecuteOutput, Interrupter, IsComplete, KernelBackend, LanguageInfo,
    MimeBundle, OutputSink,
};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use tessera_session::{JobCanceller, Progress, Session, SessionConfig, StartingSession, Stream};

/// What reaches the kernel's thread while a cell runs.
enum Event {
    Output(Stream, String),
    Progress(Progress),
}

pub struct SessionBackend {
    starting: StartingSession,
    /// Progress is forwarded once the session has started.
    forwarding_progress: bool,
    events: Receiver<Event>,
    sender: Sender<Event>,
    canceller: Arc<Mutex<Option<JobCanceller>>>,
}

impl SessionBackend {
    pub fn start(config: SessionConfig) -> anyhow::Result<SessionBackend> {
        let (sender, events) = crossbeam_channel::unbounded();
        let output = sender.clone();
        let sink: tessera_session::OutputSink = Arc::new(move |stream, line: &str| {
            drop(output.send(Event::Output(stream, line.to_string())))
        });
        Ok(SessionBackend {
            starting: Session::start_in_background(config, sink)?,
            forwarding_progress: false,
            events,
            sender,
            canceller: Arc::new(Mutex::new(None)),
        })
    }

    fn session(&mut self) -> Result<&mut Session, ExecuteError> {
        let session = self
            .starting
            .get()
            .map_err(|why| ExecuteError::new("SessionError", why))?;
        if !self.forwarding_progress {
            self.forwarding_progress = true;
            *self.canceller.lock() = Some(session.driver().canceller());
            let mut progress = session.driver().progress();
            let sender = self.sender.clone();
            std::thread::spawn(move || {
                while let Ok(event) = progress.blocking_recv() {
                    if sender.send(Event::Progress(event)).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(session)
    }
}

/// A job's progress as a bar, in HTML and plain text.
fn progress_bundle(p: &Progress) -> MimeBundle {
    let state = if p.finished { "done" } else { "running" };
    let shuffled = if p.shuffle_bytes > 0 {
        format!(", {} bytes shuffled", p.shuffle_bytes)
    } else {
        String::new()
    };
    let text = format!(
        "Job {}: {} (stage {}) [{}/{} tasks{shuffled}] {state}",
        p.job_id, p.description, p.stages, p.tasks_done, p.tasks_total
    );
    let html = format!(
        "<div><code>Job {}: {}</code> stage {} <progress value=\"{}\" max=\"{}\"></progress> {}/{} tasks{shuffled} {state}</div>",
        p.job_id,
        html_escape(&p.description),
        p.stages,
        p.tasks_done,
        p.tasks_total.max(1),
        p.tasks_done,
        p.tasks_total
    );
    MimeBundle::plain(text).with("text/html", html)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn forward(event: Event, sink: &mut dyn OutputSink, shown: &mut Vec<u64>) {
    match event {
        Event::Output(Stream::Stdout, line) => sink.stdout(&format!("{line}\n")),
        Event::Output(Stream::Stderr, line) => sink.stderr(&format!("{line}\n")),
        Event::Progress(progress) => {
            let id = format!("tessera-job-{}", progress.job_id);
            let update = shown.contains(&progress.job_id);
            if !update {
                shown.push(progress.job_id);
            }
            sink.display(progress_bundle(&progress), Some(&id), update);
        }
    }
}

impl KernelBackend for SessionBackend {
    fn execute(
        &mut self,
        code: &str,
        sink: &mut dyn OutputSink,
    ) -> Result<ExecuteOutput, ExecuteError> {
        let events = self.events.clone();
        let session = self.session()?;
        let mut shown = Vec::new();
        // Run the cell on another thread and stream its output from this one as it comes.
        let result = std::thread::scope(|scope| {
            let running = scope.spawn(|| session.execute(code));
            while !running.is_finished() {
                if let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(20)) {
                    forward(event, sink, &mut shown);
                }
            }
            running.join()
        });
        while let Ok(event) = events.try_recv() {
            forward(event, sink, &mut shown);
        }
        match result {
            Ok(Ok(output)) => Ok(ExecuteOutput {
                data: output
                    .data
                    .into_iter()
                    .map(|(m, v)| (m, v.into()))
                    .collect(),
            }),
            Ok(Err(e)) => {
                let ename = if e.message.contains("was cancelled") {
                    "JobCancelled"
                } else {
                    "CellError"
                };
                let mut error = ExecuteError::new(ename, e.message.trim_end());
                error.traceback = e.message.lines().map(String::from).collect();
                Err(error)
            }
            Err(_) => Err(ExecuteError::new(
                "SessionError",
                "the cell's thread panicked",
            )),
        }
    }

    fn complete(&mut self, code: &str, cursor_pos: usize) -> Completion {
        match self.session() {
            Ok(session) => {
                let (cursor_start, cursor_end, matches) = session.complete(code, cursor_pos);
                Completion {
                    matches,
                    cursor_start,
                    cursor_end,
                }
            }
            Err(_) => Completion {
                matches: Vec::new(),
                cursor_start: cursor_pos,
                cursor_end: cursor_pos,
            },
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Option<String> {
        self.session().ok()?.inspect(code, cursor_pos)
    }

    fn is_complete(&mut self, code: &str) -> IsComplete {
        match tessera_session::completeness(code) {
            tessera_session::Completeness::Complete => IsComplete::Complete,
            tessera_session::Completeness::Incomplete => IsComplete::Incomplete {
                indent: "    ".into(),
            },
            tessera_session::Completeness::Invalid(_) => IsComplete::Invalid,
        }
    }

    fn interrupter(&self) -> Interrupter {
        let canceller = self.canceller.clone();
        Box::new(move || {
            if let Some(canceller) = canceller.lock().as_ref() {
                canceller.cancel_all();
            }
        })
    }

    fn language_info(&self) -> LanguageInfo {
        LanguageInfo::rust(env!("CARGO_PKG_RUST_VERSION").to_string())
    }

    fn banner(&self) -> String {
        "Tessera: Rust cells on a cluster. `sc` is your Context.".into()
    }
}
