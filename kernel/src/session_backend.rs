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
use tessera_session::{
    CellDisplay, CellErrorKind, JobCanceller, Progress, Session, SessionConfig, StartingSession,
    Stream,
};

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
    /// What cells ask to show; read as the cell runs and right after it, so that everything a
    /// cell displayed is published before its result.
    displays: Arc<Mutex<Option<tokio::sync::broadcast::Receiver<CellDisplay>>>>,
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
            displays: Arc::new(Mutex::new(None)),
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
            *self.displays.lock() = Some(session.driver().displays());
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
        tessera_display::escape_html(&p.description),
        p.stages,
        p.tasks_done,
        p.tasks_total.max(1),
        p.tasks_done,
        p.tasks_total
    );
    MimeBundle::plain(text).with("text/html", html)
}

/// The `ename` a client sees for each kind of failed cell.
fn ename(kind: CellErrorKind) -> &'static str {
    match kind {
        CellErrorKind::Compile => "CompileError",
        CellErrorKind::Panic => "Panic",
        CellErrorKind::JobFailed => "JobFailed",
        CellErrorKind::JobCancelled => "JobCancelled",
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
        let mut shown = Vec::new();
        // Run the cell on another thread and stream its output from this one as it comes.
        let result = std::thread::scope(|scope| {
            let running = scope.spawn(|| session.execute(code));
            while !running.is_finished() {
                if let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(20)) {
                    forward(event, sink, &mut shown);
                }
                show_displays(&displays, sink);
            }
            running.join()
        });
        while let Ok(event) = events.try_recv() {
            forward(event, sink, &mut shown);
        }
        // The driver passed them on before answering the cell: all are here by now.
        show_displays(&displays, sink);
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

    fn interrupter(&self) -> Interrupter {
        let canceller = self.canceller.clone();
        Box::new(move || {
            if let Some(canceller) = canceller.lock().as_ref() {
                canceller.cancel_all();
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

    #[test]
    fn every_kind_of_failure_has_its_own_ename() {
        let kinds = [
            CellErrorKind::Compile,
            CellErrorKind::Panic,
            CellErrorKind::JobFailed,
            CellErrorKind::JobCancelled,
            CellErrorKind::Session,
        ];
        let names: Vec<_> = kinds.into_iter().map(ename).collect();
        assert_eq!(
            names,
            [
                "CompileError",
                "Panic",
                "JobFailed",
                "JobCancelled",
                "SessionError"
            ]
        );
    }
}
