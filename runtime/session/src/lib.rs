//! A Tessera session, shared by every front end (the REPL, `tessera run`, the Jupyter kernel):
//! an evcxr context that compiles and runs cells in a child process, with `sc` bound in it, and
//! the driver those cells talk to.

pub mod auto_capture;
mod cell_progress;
mod cell_syntax;
mod cells;
mod evcxr_dir;
mod interrupt;
mod rebuild;
mod run_cell;
mod start_notice;

pub use cell_progress::{CellProgress, CellProgressState};
pub use cell_syntax::{Completeness, completeness, terminate_trailing_let};
pub use cells::{Cell, command_line, expand_request, is_incomplete, join_cells, split_cells};
pub use interrupt::{COOPERATIVE_GRACE, Interrupter, Interruption};
pub use rebuild::RestartReport;
pub use tessera_driver::{
    CellDisplay, ClusterOptions, Credential, DEFAULT_LOCALITY_WAIT, Driver, ExecutorRow, FailedJob,
    InputError, InputReader, InputRequest, JobCanceller, JobInfo, JobState, MasterEndpoint,
    MasterUrl, Progress, StorageRow, parse_master_url,
};

use anyhow::Context as _;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Call first thing in `main` of any binary that hosts a session: evcxr re-runs the binary as its
/// child process (and as a rustc wrapper), and control must go there instead.
pub fn child_process_hook() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() {
        // A terminal Ctrl-C reaches the whole foreground process group. The session host turns
        // it into a job cancellation; the child that holds the session's variables must live.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    }
    evcxr::runtime_hook();
}

/// Where a cell's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// What the session says about itself while it starts (not a cell's output).
    Notice,
}

pub type OutputSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

pub struct SessionConfig {
    pub master: MasterUrl,
    pub executor_memory_mb: u64,
    /// How long a task waits at each locality level for a slot near its data.
    pub locality_wait: std::time::Duration,
    pub task_metrics_log: Option<PathBuf>,
    /// Colour compile errors (for a terminal).
    pub color: bool,
    /// How to reach a cluster and what to ask of it.
    pub cluster: ClusterOptions,
}

impl SessionConfig {
    /// A session on `master` with the defaults: 1 GiB of cache per executor, Spark's 3 s
    /// locality wait, no task metrics log, no colour.
    pub fn new(master: MasterUrl) -> SessionConfig {
        SessionConfig {
            master,
            executor_memory_mb: 1024,
            locality_wait: tessera_driver::DEFAULT_LOCALITY_WAIT,
            task_metrics_log: None,
            color: false,
            cluster: ClusterOptions::default(),
        }
    }
}

/// What a successful cell produced, by MIME type (empty if it had no final expression).
#[derive(Debug, Default)]
pub struct CellOutput {
    pub data: Vec<(String, String)>,
}

impl CellOutput {
    pub fn text(&self) -> Option<&str> {
        self.data
            .iter()
            .find(|(mime, _)| mime == "text/plain")
            .map(|(_, v)| v.as_str())
    }
}

/// Why a cell failed: compile errors (rendered), or a panic whose message went to stderr.
#[derive(Debug)]
pub struct CellError {
    pub message: String,
    /// What kind of failure it was, for front ends that name it (the kernel's `ename`).
    pub kind: CellErrorKind,
}

/// The kinds of [`CellError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellErrorKind {
    /// The cell did not compile.
    Compile,
    /// The cell panicked (outside any job).
    Panic,
    /// A job the cell ran failed: its tasks failed after their retries.
    JobFailed,
    /// A job the cell ran was cancelled (an interrupt).
    JobCancelled,
    /// The cell was interrupted and did not stop by itself, so the process that ran it was
    /// restarted ([`Session::run_cell`]): the message says which variables were rebuilt and
    /// which were lost.
    Interrupted,
    /// Anything else: the session itself failed to run the cell.
    Session,
}

impl CellErrorKind {
    /// The kind of a cell that panicked with `message`: a failed or cancelled job's error
    /// reaches the cell as a raised `tessera::Error`, and so as a panic with the message the
    /// driver recorded for that job.
    pub fn of_panic(message: &str, failed_job: Option<&FailedJob>) -> CellErrorKind {
        match failed_job {
            Some(job) if job.message == message && job.cancelled => CellErrorKind::JobCancelled,
            Some(job) if job.message == message => CellErrorKind::JobFailed,
            _ => CellErrorKind::Panic,
        }
    }

    /// The kind of a cell that evcxr could not run for a reason other than compile errors.
    pub fn of_session_failure(failed_job: Option<&FailedJob>) -> CellErrorKind {
        if failed_job.is_some_and(|job| job.cancelled) {
            CellErrorKind::JobCancelled
        } else {
            CellErrorKind::Session
        }
    }
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub struct Session {
    driver: Driver,
    evcxr: evcxr::CommandContext,
    sink: Arc<Mutex<OutputSink>>,
    /// Cells that ran successfully, for `:save`.
    history: Vec<String>,
    color: bool,
    /// What cells asked to show, for front ends that show it after the cell
    /// ([`Session::take_displays`]).
    displays: tokio::sync::broadcast::Receiver<CellDisplay>,
    /// The running cell, for interrupts ([`Session::interrupter`]).
    watch: Arc<interrupt::CellWatch>,
    /// The ids the session's RDD and accumulator variables hold, to declare them again after
    /// a restart.
    known_ids: rebuild::KnownIds,
    _evcxr_dir: evcxr_dir::EvcxrDir,
}

/// The evcxr commands that make the `tessera` API crate at `api_dir`, and serde, dependencies
/// of every cell: serde too, so that cells can derive `Serialize` and `Deserialize` for their
/// own record types (the derives name the `serde` crate); tessera depends on it already, so it
/// is compiled once for both.
fn dep_commands(api_dir: &std::path::Path) -> String {
    format!(
        ":dep tessera = {{ path = {:?} }}\n:dep serde = {{ version = \"1\", features = [\"derive\"] }}",
        api_dir.display().to_string()
    )
}

/// The `tessera` crate's source, which cells depend on.
fn api_crate_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../api"));
    dir.canonicalize().unwrap_or(dir)
}

/// The directory of this binary, where the other Tessera binaries are.
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A session starting on a thread of its own, so that a front end can show its prompt (or answer
/// `kernel_info`) at once and only the first cell waits, as evcxr's own REPL does.
pub struct StartingSession {
    state: StartState,
}

enum StartState {
    Starting(std::thread::JoinHandle<anyhow::Result<Session>>),
    Ready(Box<Session>),
    Failed(String),
    /// Only while `get` moves from one state to the next.
    Taken,
}

impl StartingSession {
    /// Whether `get` would return without waiting.
    pub fn is_ready(&self) -> bool {
        match &self.state {
            StartState::Starting(handle) => handle.is_finished(),
            _ => true,
        }
    }

    /// The session, once it has started (waiting for it if need be), or why it did not start.
    pub fn get(&mut self) -> Result<&mut Session, String> {
        if let StartState::Starting(_) = self.state {
            let StartState::Starting(handle) =
                std::mem::replace(&mut self.state, StartState::Taken)
            else {
                unreachable!("matched above")
            };
            self.state = match handle.join() {
                Ok(Ok(session)) => StartState::Ready(Box::new(session)),
                Ok(Err(e)) => {
                    StartState::Failed(format!("the Tessera session did not start: {e:#}"))
                }
                Err(_) => StartState::Failed("starting the Tessera session panicked".into()),
            };
        }
        match &mut self.state {
            StartState::Ready(session) => Ok(session),
            StartState::Failed(why) => Err(why.clone()),
            StartState::Starting(_) | StartState::Taken => unreachable!("resolved above"),
        }
    }

    /// The session if it has started, without waiting.
    pub fn try_get(&mut self) -> Option<&mut Session> {
        if self.is_ready() {
            self.get().ok()
        } else {
            None
        }
    }

    /// Waits for the session and hands it over.
    pub fn wait(mut self) -> anyhow::Result<Session> {
        self.get().map_err(anyhow::Error::msg)?;
        match self.state {
            StartState::Ready(session) => Ok(*session),
            _ => unreachable!("get returned a session"),
        }
    }
}

impl Session {
    /// Starts the driver and its executors, then evcxr with `sc` bound, and returns when all of
    /// it is ready. `sink` receives the output of cells as it is produced.
    pub fn start(config: SessionConfig, sink: OutputSink) -> anyhow::Result<Session> {
        Self::start_in_background(config, sink)?.wait()
    }

    /// As `start`, but returns at once: the session starts on a thread of its own.
    pub fn start_in_background(
        config: SessionConfig,
        sink: OutputSink,
    ) -> anyhow::Result<StartingSession> {
        let evcxr_dir = prepare_environment()?;
        let handle = std::thread::Builder::new()
            .name("session-start".into())
            .spawn(move || Self::start_prepared(config, sink, evcxr_dir))?;
        Ok(StartingSession {
            state: StartState::Starting(handle),
        })
    }

    fn start_prepared(
        config: SessionConfig,
        sink: OutputSink,
        evcxr_dir: evcxr_dir::EvcxrDir,
    ) -> anyhow::Result<Session> {
        // cargo's `Compiling ...` lines of a first start become two notices.
        let notices = {
            let sink = sink.clone();
            start_notice::StartNotices::start(Arc::new(move |text: &str| {
                sink(Stream::Notice, text)
            }))
        };
        let work_dir = evcxr_dir::cache_root()
            .join("sessions")
            .join(std::process::id().to_string());
        // evcxr (its child process, rust-analyzer, a first compile) and the driver (its
        // executors, perhaps a loopback cluster) start side by side. The cell that sets the
        // session up (`:dep` lines and the prelude binding `sc`) runs as one evcxr execute, so
        // one compile, not two: it needs the driver's endpoint, which comes over a channel as
        // soon as the driver listens (long before evcxr's own first compile is done).
        let files_dir = tessera_driver::side_files_dir(&work_dir);
        let (endpoint_sender, endpoint) = std::sync::mpsc::channel::<(String, u64)>();
        let (driver, evcxr) = std::thread::scope(|scope| {
            let evcxr = scope.spawn(move || {
                let started = std::time::Instant::now();
                // Cells find the files added with `sc.add_file` where the driver copies them.
                let mut child = std::process::Command::new(std::env::current_exe()?);
                child.env(tessera_plan::FILES_DIR_ENV, &files_dir);
                let (mut evcxr, outputs) = evcxr::EvalContext::with_subprocess_command(child)
                    .map(|(context, outputs)| {
                        (evcxr::CommandContext::with_eval_context(context), outputs)
                    })
                    .map_err(|e| anyhow::anyhow!("cannot start evcxr: {e}"))?;
                tracing::debug!(elapsed = ?started.elapsed(), "evcxr started");
                // Without an endpoint the driver failed to start; its own error is reported.
                let (socket, token) = endpoint
                    .recv()
                    .map_err(|_| anyhow::anyhow!("the driver did not start"))?;
                tracing::debug!(elapsed = ?started.elapsed(), "driver endpoint known");
                // `display`, `display_html`, `clear_output` and `show` (a table, plot or
                // lineage) as Jupyter users call them: functions, which cannot capture `sc`, so
                // they connect as it did.
                // The same binding of `sc` that a restart of the child runs again.
                let connect = rebuild::connect_code(&socket, token);
                let bind = rebuild::bind_context_code(&connect);
                let prelude = format!(
                    "use tessera::prelude::*; {bind}\n\
                     fn display<T: std::fmt::Debug + ?Sized>(value: &T) {{ {connect}.display(value) }}\n\
                     fn display_html(html: &str) {{ {connect}.display_html(html) }}\n\
                     fn clear_output() {{ {connect}.clear_output() }}\n\
                     fn input(prompt: &str) -> String {{ {connect}.input(prompt) }}\n\
                     fn show<T: tessera::RichDisplay + ?Sized>(value: &T) {{ {connect}.show(value) }}"
                );
                let setup = format!("{}\n{prelude}", dep_commands(&api_crate_dir()));
                evcxr.execute(&setup).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot set up the session (adding the tessera crate, binding `sc`): {e}"
                    )
                })?;
                tracing::debug!(elapsed = ?started.elapsed(), "tessera crate added, prelude ran");
                anyhow::Ok((evcxr, outputs))
            });
            let driver = Driver::start(tessera_driver::DriverConfig {
                master: config.master,
                bin_dir: bin_dir(),
                work_dir,
                executor_memory_mb: config.executor_memory_mb,
                locality_wait: config.locality_wait,
                task_metrics_log: config.task_metrics_log,
                cluster: config.cluster,
            });
            if let Ok(driver) = &driver {
                let (socket, token) = driver.cell_endpoint();
                // The evcxr thread is gone only if starting evcxr failed: its error is reported.
                let _ = endpoint_sender.send((socket.to_string(), token));
            }
            drop(endpoint_sender);
            let evcxr = evcxr
                .join()
                .map_err(|_| anyhow::anyhow!("starting evcxr panicked"))?;
            anyhow::Ok((driver?, evcxr?))
        })?;
        let (evcxr, outputs) = evcxr;
        let sink = Arc::new(Mutex::new(sink));
        forward(outputs.stdout, Stream::Stdout, sink.clone());
        forward(outputs.stderr, Stream::Stderr, sink.clone());
        drop(notices);
        driver
            .wait_for_executors(driver.expected_executors(), Duration::from_secs(60))
            .context("the session's executors did not start")?;
        Ok(Session {
            displays: driver.displays(),
            driver,
            evcxr,
            sink,
            history: Vec::new(),
            color: config.color,
            watch: Default::default(),
            known_ids: Default::default(),
            _evcxr_dir: evcxr_dir,
        })
    }

    /// Sends cell output to `sink` from now on.
    pub fn set_sink(&self, sink: OutputSink) {
        *self.sink.lock() = sink;
    }

    /// What cells asked to show (`display`, `clear_output`) since the last call, in order.
    pub fn take_displays(&mut self) -> Vec<CellDisplay> {
        let mut taken = Vec::new();
        loop {
            match self.displays.try_recv() {
                Ok(display) => taken.push(display),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return taken,
            }
        }
    }

    /// Compiles and runs one cell (or evcxr command such as `:dep`).
    pub fn execute(&mut self, code: &str) -> Result<CellOutput, CellError> {
        self.driver.take_cell_failure();
        let result = self.compile_and_run(code)?;
        let failure = self.driver.take_cell_failure();
        let failed_job = failure.failed_job.as_ref();
        match (result, failure.panic) {
            (Ok(outputs), None) => {
                if !code.trim().is_empty() {
                    self.history.push(code.to_string());
                }
                // A cell that ends in a statement-like expression (a `for` loop) has the
                // value `()`, which says nothing: it is not shown.
                let mut data: Vec<(String, String)> = outputs
                    .content_by_mime_type
                    .into_iter()
                    .filter(|(mime, value)| !(mime == "text/plain" && value == "()"))
                    .collect();
                data.sort();
                Ok(CellOutput { data })
            }
            (Ok(_), Some(message)) => Err(CellError {
                kind: CellErrorKind::of_panic(&message, failed_job),
                message,
            }),
            (Err(evcxr::Error::CompilationErrors(errors)), _) => Err(CellError {
                message: render_errors(code, &errors, self.color),
                kind: CellErrorKind::Compile,
            }),
            (Err(e), _) => Err(CellError {
                kind: CellErrorKind::of_session_failure(failed_job),
                message: e.to_string(),
            }),
        }
    }

    /// Runs `code` with its `move` closures rewritten to capture as in Spark
    /// ([`auto_capture`]). When the rewritten cell does not compile, either a closure that
    /// runs on executors captures something that cannot be sent there (that error is the
    /// cell's result), or the rewrite does not fit the cell (a body mutating a capture): then
    /// the cell runs as written, and any errors are its own.
    fn compile_and_run(
        &mut self,
        code: &str,
    ) -> Result<Result<evcxr::EvalOutputs, evcxr::Error>, CellError> {
        let code = terminate_trailing_let(code);
        let Some(rewritten) = auto_capture::rewrite(&code, &self.variable_names()) else {
            return Ok(self.evcxr.execute(&code));
        };
        match self.evcxr.execute(&rewritten.code) {
            Err(evcxr::Error::CompilationErrors(errors)) => {
                let errors: Vec<auto_capture::CompileError> = errors
                    .iter()
                    .map(|e| auto_capture::CompileError {
                        text: format!("{}\n{}", e.message(), e.rendered()),
                        line: e
                            .primary_spanned_message()
                            .and_then(|m| m.span.as_ref())
                            .map(|span| span.start_line),
                    })
                    .collect();
                if let Some(message) = auto_capture::explain_capture_errors(&errors) {
                    return Err(CellError {
                        message,
                        kind: CellErrorKind::Compile,
                    });
                }
                tracing::debug!(
                    errors = ?errors.iter().map(|e| &e.text).collect::<Vec<_>>(),
                    "the rewritten cell does not compile; running it as written"
                );
                Ok(self.evcxr.execute(&code))
            }
            other => Ok(other),
        }
    }

    /// The cell as the session compiles it (`:expand`): its `move` closures rewritten to
    /// capture as in Spark.
    pub fn expand(&self, code: &str) -> String {
        let code = terminate_trailing_let(code);
        match auto_capture::rewrite(&code, &self.variable_names()) {
            Some(rewritten) => rewritten.code,
            None => code.into_owned(),
        }
    }

    fn variable_names(&self) -> Vec<String> {
        self.evcxr
            .variables_and_types()
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// evcxr's child process, for a last-resort interrupt of a cell that runs no job.
    pub fn evcxr_child(&self) -> Arc<std::sync::Mutex<std::process::Child>> {
        self.evcxr.process_handle()
    }

    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Cells that ran successfully, in order.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Completions at byte `position` of `code`: the byte range they replace, and each name
    /// with its kind.
    pub fn complete(&mut self, code: &str, position: usize) -> Completions {
        let mut found = Completions {
            start: position,
            end: position,
            items: Vec::new(),
        };
        if let Ok(c) = self.evcxr.completions(code, position) {
            (found.start, found.end) = (c.start_offset, c.end_offset);
            for completion in c.completions {
                let name = completion_name(&completion.code);
                if !name.is_empty() && !found.items.iter().any(|(n, _)| *n == name) {
                    found.items.push((name, completion.kind.to_string()));
                }
            }
        }
        found
    }

    /// The type and documentation of what is at `position`, as text and as HTML; `None` when
    /// rust-analyzer knows nothing there.
    pub fn inspect(&mut self, code: &str, position: usize) -> Option<Inspection> {
        let (text, html) = self.evcxr.hover_at(code, position).ok()?;
        let text = text.trim();
        // rust-analyzer's words for a name it does not know.
        if text.is_empty() || text == "No documentation found" {
            return None;
        }
        Some(Inspection {
            text: text.to_string(),
            html: (!html.trim().is_empty()).then_some(html),
        })
    }

    /// Variables the session holds and their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.evcxr
            .variables_and_types()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }
}

/// What completing a name found.
pub struct Completions {
    /// The byte range of `code` the completions replace.
    pub start: usize,
    /// End of that range.
    pub end: usize,
    /// Each name and its kind (`function`, `variable`, `module`, ...).
    pub items: Vec<(String, String)>,
}

/// What inspecting a name found: its type and documentation.
pub struct Inspection {
    /// As plain text.
    pub text: String,
    /// As HTML (code in `<pre>`), when rust-analyzer formatted it.
    pub html: Option<String>,
}

/// What a completion inserts: the name alone, without the argument placeholders rust-analyzer
/// fills in (`parallelize(data, num_partitions)` → `parallelize`, `vec![]` → `vec!`), as
/// Jupyter front ends and the REPL expect.
fn completion_name(code: &str) -> String {
    code.split(['(', '[', '{', '<'])
        .next()
        .unwrap_or(code)
        .trim_end()
        .to_string()
}

/// Points evcxr at this user's build directory and the loader at the toolchain's libstd. Both
/// are read from the environment, which is changed here, before the session's threads start.
fn prepare_environment() -> anyhow::Result<evcxr_dir::EvcxrDir> {
    // evcxr reads its build directory from the environment when the context is created;
    // keeping it per user makes dependencies build once, not once per session.
    let evcxr_dir = evcxr_dir::EvcxrDir::acquire()?;
    // SAFETY: front ends call this before they start threads that read the environment.
    unsafe { std::env::set_var("EVCXR_TMPDIR", evcxr_dir.path()) };
    // Cell libraries link the toolchain's libstd dynamically, and the relative run path
    // rustc gives them does not survive evcxr moving them: tell the loader where it is.
    if let Some(dir) = tessera_driver::toolchain_libstd()
        .as_deref()
        .and_then(std::path::Path::parent)
    {
        let mut path = std::ffi::OsString::from(dir);
        if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
            path.push(":");
            path.push(existing);
        }
        // SAFETY: as above.
        unsafe { std::env::set_var("LD_LIBRARY_PATH", path) };
    }

    Ok(evcxr_dir)
}

fn forward(
    lines: crossbeam_channel::Receiver<String>,
    stream: Stream,
    sink: Arc<Mutex<OutputSink>>,
) {
    std::thread::spawn(move || {
        while let Ok(line) = lines.recv() {
            let sink = sink.lock().clone();
            sink(stream, &line);
        }
    });
}

/// Compile errors as rustc shows them, pointing into the cell's own code where they can.
fn render_errors(code: &str, errors: &[evcxr::CompilationError], color: bool) -> String {
    let mut out = String::new();
    for error in errors {
        let report = if error.is_from_user_code() {
            error
                .build_report("cell".to_string(), code.to_string(), evcxr::Theme::Dark)
                .and_then(|report| {
                    let mut buf = Vec::new();
                    report
                        .write(
                            ariadne::sources([("cell".to_string(), code.to_string())]),
                            &mut buf,
                        )
                        .ok()?;
                    let text = String::from_utf8(buf).ok()?;
                    Some(if color { text } else { strip_ansi(&text) })
                })
        } else {
            None
        };
        match report {
            Some(text) => out.push_str(&text),
            None => {
                let rendered = error.rendered();
                out.push_str(
                    if rendered.is_empty() {
                        error.message()
                    } else {
                        rendered
                    }
                    .trim_end(),
                );
                out.push('\n');
            }
        }
        for help in error.help() {
            out.push_str(&format!("help: {help}\n"));
        }
    }
    out
}

/// Removes terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_cell_adds_tessera_by_path_and_serde_with_derives() {
        let deps = dep_commands(std::path::Path::new("/opt/my \"api\""));
        let lines: Vec<&str> = deps.lines().collect();
        // One `:dep` a line, so that evcxr takes both as commands ahead of the prelude's code.
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], r#":dep tessera = { path = "/opt/my \"api\"" }"#);
        assert_eq!(
            lines[1],
            r#":dep serde = { version = "1", features = ["derive"] }"#
        );
    }

    #[test]
    fn completions_are_names_without_placeholders() {
        assert_eq!(
            completion_name("parallelize(data, num_partitions)"),
            "parallelize"
        );
        assert_eq!(completion_name("vec![]"), "vec!");
        assert_eq!(completion_name("Vec<>"), "Vec");
        assert_eq!(completion_name("count"), "count");
    }

    #[test]
    fn a_panic_is_classified_by_what_the_driver_said() {
        let failed = FailedJob {
            message: "Job 3 failed: task for partition 1 failed 4 times".into(),
            cancelled: false,
        };
        let cancelled = FailedJob {
            message: "Job 12 was cancelled".into(),
            cancelled: true,
        };
        assert_eq!(CellErrorKind::of_panic("boom", None), CellErrorKind::Panic);
        assert_eq!(
            CellErrorKind::of_panic(&failed.message, Some(&failed)),
            CellErrorKind::JobFailed
        );
        assert_eq!(
            CellErrorKind::of_panic(&cancelled.message, Some(&cancelled)),
            CellErrorKind::JobCancelled
        );
        assert_eq!(
            CellErrorKind::of_panic("Job 3 failed: my own words", Some(&failed)),
            CellErrorKind::Panic,
            "a panic of the cell's own after a failed job"
        );
        assert_eq!(
            CellErrorKind::of_session_failure(None),
            CellErrorKind::Session
        );
        assert_eq!(
            CellErrorKind::of_session_failure(Some(&cancelled)),
            CellErrorKind::JobCancelled
        );
    }
}
