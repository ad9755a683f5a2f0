//! The kernel's backend: a Tessera session. It starts in the background when the kernel starts
//! (the first session on a machine compiles the cells' dependencies), so the kernel answers
//! `kernel_info` at once and the first cell waits for it.

use crate::backend::{
    Completion, ExecuteError, ExecuteOutput, IsComplete, KernelBackend, LanguageInfo, MimeBundle,
    OutputSink, StdinError,
};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_session::{
    CellDisplay, CellErrorKind, CellProgress, InputError, InputRequest, Interrupter, Progress,
    Session, SessionConfig, StartingSession, Stream,
};

/// How often a cell's progress display is updated at most (a job of a thousand tasks would
/// otherwise send a thousand updates).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What reaches the kernel's thread while a cell runs.
enum Event {
    Output(Stream, String),
    Progress(Progress),
    /// A cell's `input()`: ask the front end, answer on the channel.
    Input(
        InputRequest,
        std::sync::mpsc::Sender<Result<String, InputError>>,
    ),
}

/// The [`KernelBackend`] that runs cells in a Tessera session, which starts in the
/// background.
pub struct SessionBackend {
    starting: StartingSession,
    /// Progress is forwarded once the session has started.
    forwarding_progress: bool,
    events: Receiver<Event>,
    sender: Sender<Event>,
    /// What cells ask to show; read as the cell runs and right after it, so that everything a
    /// cell displayed is published before its result.
    displays: Arc<Mutex<Option<tokio::sync::broadcast::Receiver<CellDisplay>>>>,
    /// Interrupts the running cell, once the session has started.
    interrupter: Arc<Mutex<Option<Interrupter>>>,
}

impl SessionBackend {
    /// Starts the session on a thread of its own and returns at once. Fails only if that
    /// thread cannot be spawned; a session that fails to start fails cells with `SessionError`.
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
            displays: Arc::new(Mutex::new(None)),
            interrupter: Arc::new(Mutex::new(None)),
        })
    }

    fn session(&mut self) -> Result<&mut Session, ExecuteError> {
        let session = self
            .starting
            .get()
            .map_err(|why| ExecuteError::new("SessionError", why))?;
        if !self.forwarding_progress {
            self.forwarding_progress = true;
            *self.displays.lock() = Some(session.driver().displays());
            *self.interrupter.lock() = Some(session.interrupter());
            // A cell's `input()` is asked from the thread that publishes the cell's output.
            let sender = self.sender.clone();
            session
                .driver()
                .set_input_reader(Some(Arc::new(move |request: &InputRequest| {
                    let (answer, answered) = std::sync::mpsc::channel();
                    sender
                        .send(Event::Input(request.clone(), answer))
                        .map_err(|_| InputError::Unavailable("the kernel is stopping".into()))?;
                    answered.recv().unwrap_or_else(|_| {
                        Err(InputError::Unavailable("no cell is running".into()))
                    })
                })));
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

/// The cell's one progress display: every job it runs, shown under one `display_id` that is
/// published once and then updated in place, ending with the cell's final state.
struct ProgressDisplay {
    cell: CellProgress,
    /// Unique across kernels, so that a restarted kernel's cells never update an older output.
    id: String,
    started: Instant,
    /// When it was last published; `None` until it is shown.
    published: Option<Instant>,
    /// Events taken in since then.
    changed: bool,
}

impl ProgressDisplay {
    fn new() -> ProgressDisplay {
        ProgressDisplay {
            cell: CellProgress::new(),
            id: format!("tessera-progress-{}", uuid::Uuid::new_v4().simple()),
            started: Instant::now(),
            published: None,
            changed: false,
        }
    }

    fn observe(&mut self, event: Progress, sink: &mut dyn OutputSink) {
        self.cell.observe(event);
        self.changed = true;
        if update_due(self.published.map(|at| at.elapsed())) {
            self.publish(false, false, sink);
        }
    }

    /// Publishes the display as it stands (`ended`: the cell's final state).
    fn publish(&mut self, ended: bool, interrupted: bool, sink: &mut dyn OutputSink) {
        if self.cell.is_empty() {
            return;
        }
        let state = self.cell.state(ended, interrupted);
        let elapsed = self.started.elapsed();
        let bundle = MimeBundle::plain(self.cell.text(&state, elapsed))
            .with("text/html", self.cell.html(&state, elapsed));
        sink.display(bundle, Some(&self.id), self.published.is_some());
        self.published = Some(Instant::now());
        self.changed = false;
    }

    /// Publishes what changed since the last update, now that it is due.
    fn refresh(&mut self, sink: &mut dyn OutputSink) {
        if self.changed && update_due(self.published.map(|at| at.elapsed())) {
            self.publish(false, false, sink);
        }
    }
}

/// Whether a progress display last published `since` ago (`None`: never) is due an update.
fn update_due(since: Option<Duration>) -> bool {
    since.is_none_or(|since| since >= PROGRESS_EVERY)
}

/// The `ename` a client sees for each kind of failed cell.
fn ename(kind: CellErrorKind) -> &'static str {
    match kind {
        CellErrorKind::Compile => "CompileError",
        CellErrorKind::Panic => "Panic",
        CellErrorKind::Returned => "Error",
        CellErrorKind::JobFailed => "JobFailed",
        CellErrorKind::JobCancelled => "JobCancelled",
        CellErrorKind::Interrupted => "Interrupted",
        CellErrorKind::Session => "SessionError",
    }
}

/// The report a cell asks for when it is one `:` command line such as `:storage`, as in the
/// REPL and `tessera run`.
fn report_cell(code: &str) -> Option<tessera_display::Report> {
    tessera_display::Report::from_command(tessera_session::command_line(code)?)
}

/// The version of the rustc that compiles cells (`$RUSTC`, else `rustc` on the path, as
/// the driver finds the toolchain), e.g. `"1.88.0"`; the toolchain this kernel was built
/// for when that rustc cannot be run or says something unexpected.
fn cell_compiler_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let reported = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| rustc_release(&String::from_utf8_lossy(&output.stdout)));
    reported.unwrap_or_else(|| {
        tracing::warn!(
            rustc = %rustc.to_string_lossy(),
            "could not read the version of rustc; kernel_info reports the minimum supported one"
        );
        env!("CARGO_PKG_RUST_VERSION").to_string()
    })
}

/// The release number in what `rustc --version` prints: `"1.88.0"` from
/// `"rustc 1.88.0 (6b00bc388 2025-06-23)"`, `"1.90.0"` from `"rustc 1.90.0-nightly (…)"`.
fn rustc_release(version_output: &str) -> Option<String> {
    let word = version_output
        .split_whitespace()
        .skip_while(|word| *word != "rustc")
        .nth(1)?;
    let release: String = word
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<&str> = release.split('.').collect();
    let well_formed = parts.len() == 3 && parts.iter().all(|part| !part.is_empty());
    well_formed.then_some(release)
}

fn forward(event: Event, sink: &mut dyn OutputSink, progress: &mut ProgressDisplay) {
    match event {
        Event::Output(Stream::Stdout, line) => sink.stdout(&format!("{line}\n")),
        Event::Output(Stream::Stderr | Stream::Notice, line) => sink.stderr(&format!("{line}\n")),
        Event::Progress(event) => progress.observe(event, sink),
        Event::Input(request, answer) => {
            let line = sink
                .read_input(&request.prompt, request.password)
                .map_err(|e| match e {
                    StdinError::Interrupted => InputError::Interrupted,
                    other => InputError::Unavailable(other.to_string()),
                });
            let _ = answer.send(line);
        }
    }
}

/// Publishes what the cell asked to show since the last call.
fn show_displays(
    displays: &Mutex<Option<tokio::sync::broadcast::Receiver<CellDisplay>>>,
    sink: &mut dyn OutputSink,
) {
    let mut displays = displays.lock();
    let Some(receiver) = displays.as_mut() else {
        return;
    };
    loop {
        match receiver.try_recv() {
            Ok(CellDisplay::Show {
                data,
                display_id,
                update,
            }) => sink.display(
                data.into_iter()
                    .map(|(mime, content)| (mime, content.into()))
                    .collect(),
                display_id.as_deref(),
                update,
            ),
            Ok(CellDisplay::Clear { wait }) => sink.clear_output(wait),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a cell displayed faster than the kernel published");
            }
            Err(_) => return,
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
        let displays = self.displays.clone();
        let session = self.session()?;
        if let Some(request) = tessera_session::expand_request(code) {
            let expanded = session.expand(request);
            return Ok(ExecuteOutput {
                data: [("text/plain".to_string(), expanded.into())]
                    .into_iter()
                    .collect(),
            });
        }
        if let Some(report) = report_cell(code) {
            return report
                .tables(session.driver())
                .map(|tables| ExecuteOutput {
                    data: [
                        (
                            "text/plain".to_string(),
                            tables
                                .iter()
                                .map(|t| t.text())
                                .collect::<Vec<_>>()
                                .join("\n")
                                .into(),
                        ),
                        (
                            "text/html".to_string(),
                            tables.iter().map(|t| t.html()).collect::<String>().into(),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                })
                .map_err(|e| ExecuteError::new("CommandError", e.to_string()));
        }
        // Progress from before the cell belongs to no cell; output is passed on as it came.
        let mut progress = ProgressDisplay::new();
        while let Ok(event) = events.try_recv() {
            if let Event::Output(..) = event {
                forward(event, sink, &mut progress);
            }
        }
        // Run the cell on another thread and stream its output from this one as it comes.
        let result = std::thread::scope(|scope| {
            let running = scope.spawn(|| session.run_cell(code));
            while !running.is_finished() {
                if let Ok(event) = events.recv_timeout(Duration::from_millis(20)) {
                    forward(event, sink, &mut progress);
                }
                progress.refresh(sink);
                show_displays(&displays, sink);
            }
            running.join()
        });
        while let Ok(event) = events.try_recv() {
            forward(event, sink, &mut progress);
        }
        // The driver passed them on before answering the cell: all are here by now.
        show_displays(&displays, sink);
        let interrupted = matches!(&result, Ok(Err(e)) if e.kind.is_interruption());
        progress.publish(true, interrupted, sink);
        match result {
            Ok(Ok(output)) => Ok(ExecuteOutput {
                data: output
                    .data
                    .into_iter()
                    .map(|(m, v)| (m, v.into()))
                    .collect(),
            }),
            Ok(Err(e)) => {
                let mut error = ExecuteError::new(ename(e.kind), e.message.trim_end());
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
                let found = session.complete(code, cursor_pos);
                let (matches, types) = found.items.into_iter().unzip();
                Completion {
                    matches,
                    cursor_start: found.start,
                    cursor_end: found.end,
                    types,
                }
            }
            Err(_) => Completion::nothing_at(cursor_pos),
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Option<MimeBundle> {
        let found = self.session().ok()?.inspect(code, cursor_pos)?;
        let bundle = MimeBundle::plain(found.text);
        Some(match found.html {
            Some(html) => bundle.with("text/html", html),
            None => bundle,
        })
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

    fn interrupter(&self) -> crate::backend::Interrupter {
        let interrupter = self.interrupter.clone();
        Box::new(move || {
            if let Some(interrupter) = interrupter.lock().as_ref() {
                interrupter.interrupt();
            }
        })
    }

    fn language_info(&self) -> LanguageInfo {
        LanguageInfo::rust(cell_compiler_version())
    }

    fn banner(&self) -> String {
        "Tessera: Rust cells on a cluster. `sc` is your Context.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_release_is_the_number_rustc_reports() {
        assert_eq!(
            rustc_release("rustc 1.88.0 (6b00bc388 2025-06-23)\n").as_deref(),
            Some("1.88.0")
        );
        assert_eq!(
            rustc_release("rustc 1.90.0-nightly (abcdef012 2025-07-01)").as_deref(),
            Some("1.90.0")
        );
        assert_eq!(
            rustc_release("rustc 1.91.0-beta.3 (x)").as_deref(),
            Some("1.91.0")
        );
        assert_eq!(rustc_release(""), None);
        assert_eq!(rustc_release("error: no such command"), None);
        assert_eq!(rustc_release("rustc 1.88"), None);
        assert_eq!(rustc_release("rustc version unknown"), None);
    }

    /// What a cell published, as (text, display id, update).
    #[derive(Default)]
    struct Published(Vec<(String, Option<String>, bool)>);

    impl OutputSink for Published {
        fn stdout(&mut self, _: &str) {}
        fn stderr(&mut self, _: &str) {}
        fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool) {
            let text = data
                .get("text/plain")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            self.0
                .push((text.to_string(), display_id.map(String::from), update));
        }
        fn clear_output(&mut self, _: bool) {}
    }

    fn event(job_id: u64, tasks_done: u32, state: tessera_session::JobState) -> Progress {
        Progress {
            job_id,
            description: "count".into(),
            stages_done: 0,
            stages_total: 1,
            tasks_done,
            tasks_total: 2,
            records: 0,
            bytes: 0,
            state,
        }
    }

    #[test]
    fn a_cells_jobs_share_one_display_updated_in_place_until_its_final_state() {
        use tessera_session::JobState;
        let mut sink = Published::default();
        let mut progress = ProgressDisplay::new();
        progress.publish(true, false, &mut sink);
        assert!(sink.0.is_empty(), "a cell without jobs shows no progress");
        for job in 0..3 {
            progress.observe(event(job, 0, JobState::Running), &mut sink);
            progress.observe(event(job, 2, JobState::Succeeded), &mut sink);
            progress.refresh(&mut sink);
        }
        progress.publish(true, false, &mut sink);
        let ids: std::collections::HashSet<_> =
            sink.0.iter().map(|(_, id, _)| id.clone()).collect();
        assert_eq!(ids.len(), 1, "{:?}", sink.0);
        assert!(
            ids.iter()
                .all(|id| id.as_deref().unwrap().starts_with("tessera-progress-"))
        );
        let updates: Vec<bool> = sink.0.iter().map(|(_, _, update)| *update).collect();
        assert!(
            !updates[0] && updates[1..].iter().all(|u| *u),
            "{updates:?}"
        );
        let (last, _, _) = sink.0.last().unwrap();
        assert!(last.starts_with("done: 3 jobs"), "{last}");
        // Events closer together than PROGRESS_EVERY wait for the next refresh.
        assert!(sink.0.len() < 8, "{:?}", sink.0);
    }

    #[test]
    fn updates_wait_for_their_turn() {
        assert!(update_due(None));
        assert!(!update_due(Some(PROGRESS_EVERY / 2)));
        assert!(update_due(Some(PROGRESS_EVERY)));
    }

    #[test]
    fn every_kind_of_failure_has_its_own_ename() {
        let kinds = [
            CellErrorKind::Compile,
            CellErrorKind::Panic,
            CellErrorKind::Returned,
            CellErrorKind::JobFailed,
            CellErrorKind::JobCancelled,
            CellErrorKind::Interrupted,
            CellErrorKind::Session,
        ];
        let names: Vec<_> = kinds.into_iter().map(ename).collect();
        assert_eq!(
            names,
            [
                "CompileError",
                "Panic",
                "Error",
                "JobFailed",
                "JobCancelled",
                "Interrupted",
                "SessionError"
            ]
        );
    }
}
