//! A Tessera session, shared by every front end (the REPL, `tessera run`, the Jupyter kernel):
//! the cell engine ([`tessera_cells`]) that compiles cells and runs them in a child process,
//! with `sc` bound in it, and the driver those cells talk to.

#![deny(missing_docs)]

mod allocator;
mod analysis;
pub mod auto_capture;
mod background;
mod cache_dir;
mod cell_progress;
mod cell_syntax;
mod cells;
mod fused_map_reduce;
mod interrupt;
mod live_rdds;
mod rebuild;
mod run_cell;
mod start_notice;

pub use cell_progress::{CellProgress, CellProgressState};
pub use cell_syntax::{Completeness, completeness, terminate_trailing_let};
pub use cells::{Cell, command_line, expand_request, is_incomplete, join_cells, split_cells};
pub use interrupt::{COOPERATIVE_GRACE, Interrupter, Interruption};
pub use rebuild::RestartReport;
pub use tessera_cells::Optimisation;
pub use tessera_driver::{
    CellDisplay, ClusterOptions, Constraints, Credential, DEFAULT_LOCALITY_WAIT, Driver,
    DynamicAllocation, ExecutorRow, FailedJob, InputError, InputReader, InputRequest, JobCanceller,
    JobInfo, JobState, MasterEndpoint, MasterUrl, Progress, ShuffleService, StorageRow,
    parse_master_url,
};

use anyhow::Context as _;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Call first thing in `main` of any binary that hosts a session: the session runs the binary
/// again as the child process that runs cells, and control must go there instead. Both
/// processes take no transparent huge pages (`tessera_memory`), as executors take none.
pub fn child_process_hook() {
    tessera_memory::disable_transparent_huge_pages();
    if std::env::var_os(tessera_cells::CHILD_ENV).is_some() {
        // A terminal Ctrl-C reaches the whole foreground process group. The session host turns
        // it into a job cancellation; the child that holds the session's variables must live.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    }
    tessera_cells::run_child_if_requested();
}

/// Where a cell's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// What the cell printed to standard output.
    Stdout,
    /// What the cell printed to standard error, and the session's notes about a cell.
    Stderr,
    /// What the session says about itself while it starts (not a cell's output).
    Notice,
}

/// Where a session sends output as it is produced: each piece of text with its stream.
pub type OutputSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// How to start a session ([`Session::start`]); [`SessionConfig::new`] gives the defaults.
pub struct SessionConfig {
    /// Where executors come from: `local[N]` on this machine, `local-cluster[...]`, or a
    /// running master (`tessera://`, `zk://`).
    pub master: MasterUrl,
    /// Memory per executor for cached partitions, in MiB.
    pub executor_memory_mb: u64,
    /// How long a task waits at each locality level for a slot near its data.
    pub locality_wait: std::time::Duration,
    /// Append every finished task's metrics here, one JSON object a line.
    pub task_metrics_log: Option<PathBuf>,
    /// Colour compile errors (for a terminal).
    pub color: bool,
    /// How cells that may run on executors are compiled: fast to compile for a REPL or a
    /// notebook, fast to run for a script (`TESSERA_CELL_OPT_LEVEL` and
    /// `TESSERA_CELL_CODEGEN_UNITS` override either).
    pub cell_optimisation: Optimisation,
    /// How to reach a cluster and what to ask of it.
    pub cluster: ClusterOptions,
}

impl SessionConfig {
    /// A session on `master` with the defaults: 1 GiB of cache per executor, Spark's 3 s
    /// locality wait, no task metrics log, no colour, cells compiled for a person waiting on
    /// each.
    pub fn new(master: MasterUrl) -> SessionConfig {
        SessionConfig {
            master,
            executor_memory_mb: 1024,
            locality_wait: tessera_driver::DEFAULT_LOCALITY_WAIT,
            task_metrics_log: None,
            color: false,
            cell_optimisation: Optimisation::INTERACTIVE,
            cluster: ClusterOptions::default(),
        }
    }
}

/// What a successful cell produced, by MIME type (empty if it had no final expression).
#[derive(Debug, Default)]
pub struct CellOutput {
    /// The cell's result (its final expression's value, or a command's answer) in each form it
    /// has, as (MIME type, content) pairs sorted by MIME type.
    pub data: Vec<(String, String)>,
}

impl CellOutput {
    /// The `text/plain` form of the result, if it has one.
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
    /// What to show: the rendered compile errors, the panic's message, `Error: ...` for an
    /// error the cell's `?` returned, or why the session could not run the cell.
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
    /// The cell's `?` returned an error (not a job's failure).
    Returned,
    /// The cell was interrupted and did not stop by itself, so the process that ran it was
    /// restarted ([`Session::run_cell`]): the message says which variables were rebuilt and
    /// which were lost.
    Interrupted,
    /// Anything else: the session itself failed to run the cell.
    Session,
}

impl CellErrorKind {
    /// Whether the cell ended because it was interrupted: its job cancelled, or its process
    /// restarted. Its progress display ends "cancelled" even if the job's own cancelled
    /// event was not seen before the cell's answer.
    pub fn is_interruption(&self) -> bool {
        matches!(
            self,
            CellErrorKind::Interrupted | CellErrorKind::JobCancelled
        )
    }

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

    /// The kind of a cell whose `?` returned an error with `message`: a job's failure if it is
    /// that job's message, else an error of the cell's own.
    pub fn of_returned(message: &str, failed_job: Option<&FailedJob>) -> CellErrorKind {
        match CellErrorKind::of_panic(message, failed_job) {
            CellErrorKind::Panic => CellErrorKind::Returned,
            kind => kind,
        }
    }

    /// The kind of a cell that could not run for a reason other than compile errors.
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

/// What the API crate's error says of a closure passed to an RDD whose captures cannot travel
/// (`tessera::Error::UnlistedCaptures`); `tests/tests/captures.rs` checks the two agree.
const UNSENDABLE_CAPTURES: &str = "that Tessera cannot send to executors";

/// What came of compiling and running a cell, and the captures its rewrites could not copy
/// ([`auto_capture::Uncopied`]).
type CompiledRun = (
    Result<tessera_cells::CellOutcome, tessera_cells::CellsError>,
    Vec<auto_capture::Uncopied>,
);

/// A running session: the driver, its executors and the cell engine, with the cells run so
/// far and the variables they left.
pub struct Session {
    driver: Driver,
    engine: tessera_cells::Engine,
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
    /// rust-analyzer, for completion and inspection, loading in the background.
    analysis: analysis::Analyzer,
    /// Dropped last: the driver and the cell engine clear their files from it first.
    _dir: cache_dir::SessionDir,
}

/// The dependency lines that make the `tessera` API crate at `api_dir`, and serde, crates every
/// cell can use: serde too, so that cells can derive `Serialize` and `Deserialize` for their
/// own record types (the derives name the `serde` crate); tessera depends on it already, so it
/// is compiled once for both.
fn dependency_lines(api_dir: &std::path::Path) -> Vec<String> {
    vec![
        format!("tessera = {{ path = {:?} }}", api_dir.display().to_string()),
        "serde = { version = \"1\", features = [\"derive\"] }".to_string(),
    ]
}

/// The first cell of every session: `sc`, and the prelude, which has the functions Jupyter
/// users call (`display`, `display_html`, `clear_output`, `input`, `show`). The same text in
/// every session, so it is compiled once per user and found compiled afterwards.
const PRELUDE: &str = "use tessera::prelude::*;\n\
    let sc: tessera::Context = tessera::Context::from_session(); tessera::install_panic_hook(sc);";

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
    /// Starts the driver and its executors, then the cell engine with `sc` bound, and returns
    /// when all of it is ready. `sink` receives the output of cells as it is produced.
    pub fn start(config: SessionConfig, sink: OutputSink) -> anyhow::Result<Session> {
        Self::start_in_background(config, sink)?.wait()
    }

    /// As `start`, but returns at once: the session starts on a thread of its own.
    pub fn start_in_background(
        config: SessionConfig,
        sink: OutputSink,
    ) -> anyhow::Result<StartingSession> {
        let handle = std::thread::Builder::new()
            .name("session-start".into())
            .spawn(move || Self::start_prepared(config, sink))?;
        Ok(StartingSession {
            state: StartState::Starting(handle),
        })
    }

    fn start_prepared(config: SessionConfig, sink: OutputSink) -> anyhow::Result<Session> {
        let started = std::time::Instant::now();
        // A first start builds the crates cells use: two notices say so, once.
        let notices = {
            let sink = sink.clone();
            Arc::new(start_notice::StartNotices::new(Arc::new(
                move |text: &str| sink(Stream::Notice, text),
            )))
        };
        let cache = cache_dir::cache_root();
        let sessions = cache.join("sessions");
        let dir = cache_dir::SessionDir::of_this_process(&sessions);
        let work_dir = dir.path().to_path_buf();
        let files_dir = tessera_driver::side_files_dir(&work_dir);
        // One look at the toolchain, for the cell engine and for the libstd executors load.
        let toolchain = tessera_cells::Toolchain::find()?;
        let driver = Driver::start(tessera_driver::DriverConfig {
            master: config.master,
            bin_dir: bin_dir(),
            work_dir: work_dir.clone(),
            executor_memory_mb: config.executor_memory_mb,
            locality_wait: config.locality_wait,
            task_metrics_log: config.task_metrics_log,
            cluster: config.cluster,
            libstd: toolchain.libstd(),
        })?;
        tracing::debug!(elapsed = ?started.elapsed(), "driver listening");
        let (socket, token) = driver.cell_endpoint();
        let sink = Arc::new(Mutex::new(sink));
        let cell_sink: tessera_cells::OutputSink = {
            let sink = sink.clone();
            Arc::new(move |stream, line: &str| {
                let sink = sink.lock().clone();
                sink(
                    match stream {
                        tessera_cells::Stream::Stdout => Stream::Stdout,
                        tessera_cells::Stream::Stderr => Stream::Stderr,
                    },
                    line,
                )
            })
        };
        use tessera_plan::cell_protocol::{CELL_SOCKET_ENV, CELL_TOKEN_ENV};
        let mut engine = tessera_cells::Engine::start(tessera_cells::EngineConfig {
            toolchain,
            cache_dir: cache.join("cells"),
            work_dir: work_dir.join("cells"),
            dependencies: dependency_lines(&api_crate_dir()),
            rich_display_trait: Some("tessera::RichDisplay".into()),
            // Code that can start a job: it names the session's context, the crate, or a
            // handle (in a variable's type, too).
            remote_markers: [
                "sc",
                "tessera",
                "Context",
                "Rdd",
                "Broadcast",
                "Accumulator",
            ]
            .map(String::from)
            .to_vec(),
            optimisation: config.cell_optimisation.from_env(),
            child: tessera_cells::ChildCommand {
                program: std::env::current_exe()?,
                env: vec![
                    // Cells find the files added with `sc.add_file` where the driver copies them.
                    (
                        tessera_plan::FILES_DIR_ENV.into(),
                        files_dir.display().to_string(),
                    ),
                    (CELL_SOCKET_ENV.into(), socket.to_string()),
                    (CELL_TOKEN_ENV.into(), token.to_string()),
                ],
            },
            sink: cell_sink,
            progress: {
                let notices = notices.clone();
                Arc::new(move |line: &str| notices.progress(line))
            },
        })
        .context("cannot start the cell engine")?;
        tracing::debug!(elapsed = ?started.elapsed(), "cell engine started");
        {
            let clear_cells = engine.housekeeping();
            let _ = background::spawn("housekeeping", background::Below::Far, move || {
                if cache_dir::clearing_is_due(&cache) {
                    cache_dir::remove_stale_sessions(&sessions);
                    clear_cells();
                    cache_dir::mark_cleared(&cache);
                }
            });
        }
        let prelude = engine
            .execute(PRELUDE)
            .map_err(|e| anyhow::anyhow!("cannot set up the session (binding `sc`): {e}"))?;
        if let Some(panic) = prelude.panic {
            anyhow::bail!("cannot set up the session (binding `sc`): {panic}");
        }
        tracing::debug!(elapsed = ?started.elapsed(), "prelude ran");
        notices.finish();
        driver
            .wait_for_executors(driver.expected_executors(), Duration::from_secs(60))
            .context("the session's executors did not start")?;
        tracing::debug!(elapsed = ?started.elapsed(), "executors ready");
        let analysis = analysis::Analyzer::start(engine.dependency_project());
        Ok(Session {
            displays: driver.displays(),
            driver,
            engine,
            sink,
            history: Vec::new(),
            color: config.color,
            watch: Default::default(),
            known_ids: Default::default(),
            analysis,
            _dir: dir,
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

    /// Compiles and runs one cell (or a `:dep` line, or `:vars`).
    pub fn execute(&mut self, code: &str) -> Result<CellOutput, CellError> {
        if let Some(reply) = self.session_command(code) {
            return reply;
        }
        let rest;
        let code = match cells::tessera_dependency(code) {
            Some((dependencies, cell)) => {
                self.rebuild_tessera(&dependencies)?;
                rest = cell;
                &rest
            }
            None => code,
        };
        self.driver.take_cell_failure();
        self.analysis.cell_running(true);
        let result = self.compile_and_run(code);
        self.analysis.cell_running(false);
        let (result, uncopied) = result?;
        let failure = self.driver.take_cell_failure();
        let failed_job = failure.failed_job.as_ref();
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(tessera_cells::CellsError::Compile { code, diagnostics }) => {
                return Err(CellError {
                    message: tessera_cells::render(&code, &diagnostics, self.color),
                    kind: CellErrorKind::Compile,
                });
            }
            Err(e) => {
                return Err(CellError {
                    kind: CellErrorKind::of_session_failure(failed_job),
                    message: e.to_string(),
                });
            }
        };
        for note in &outcome.notes {
            let sink = self.sink.lock().clone();
            sink(Stream::Stderr, note);
        }
        // The panic hook tells the driver the message of a panic (a job's error is raised as
        // a `tessera::Error`, which only the hook can read); the engine knows only that and
        // plain-text panics.
        if let Some(mut message) = failure.panic.or(outcome.panic) {
            if message.contains(UNSENDABLE_CAPTURES) {
                message.push_str(&auto_capture::explain_uncopied(&uncopied));
            }
            return Err(CellError {
                kind: CellErrorKind::of_panic(&message, failed_job),
                message,
            });
        }
        if let Some(message) = outcome.error {
            return Err(CellError {
                kind: CellErrorKind::of_returned(&message, failed_job),
                message: format!("Error: {message}"),
            });
        }
        if !code.trim().is_empty() {
            self.history.push(code.to_string());
        }
        // A cell that ends in a statement-like expression (a `for` loop) has the value `()`,
        // which says nothing: it is not shown.
        let mut data: Vec<(String, String)> = outcome
            .bundle
            .into_iter()
            .filter(|(mime, value)| !(mime == "text/plain" && value == "()"))
            .collect();
        data.sort();
        Ok(CellOutput { data })
    }

    /// Builds the crates cells use with `dependencies` (`:dep` lines that turn on features of
    /// the `tessera` crate). That is the crate built anew, whose types are new ones: `sc` is
    /// bound again; the engine forgets variables of the old types (RDD and DataFrame handles)
    /// and says so.
    fn rebuild_tessera(&mut self, dependencies: &str) -> Result<(), CellError> {
        let failed = |e: tessera_cells::CellsError| CellError {
            kind: CellErrorKind::Session,
            message: e.to_string(),
        };
        let built = self.engine.execute(dependencies).map_err(failed)?;
        let prelude = self.engine.execute(PRELUDE).map_err(failed)?;
        if let Some(panic) = prelude.panic {
            return Err(CellError {
                kind: CellErrorKind::Session,
                message: format!("cannot bind `sc` again after the dependencies changed: {panic}"),
            });
        }
        let sink = self.sink.lock().clone();
        for note in built.notes.iter().filter(|n| !n.starts_with("`sc`")) {
            sink(Stream::Stderr, note);
        }
        Ok(())
    }

    /// The session's own `:` commands that reach it as cells (`:vars`, and any it does not
    /// know); `:dep` lines are the engine's.
    fn session_command(&mut self, code: &str) -> Option<Result<CellOutput, CellError>> {
        let command = command_line(code)?;
        let name = command.split_whitespace().next().unwrap_or("");
        match name {
            ":dep" => None,
            ":vars" => {
                let variables = self.variables();
                let text = if variables.is_empty() {
                    "no variables".to_string()
                } else {
                    variables
                        .iter()
                        .map(|(name, ty)| format!("{name}: {ty}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                Some(Ok(CellOutput {
                    data: vec![("text/plain".into(), text)],
                }))
            }
            _ => Some(Err(CellError {
                kind: CellErrorKind::Session,
                message: format!("unknown command `{name}`: `:help` lists the commands"),
            })),
        }
    }

    /// Runs `code` as [`Session::expand`] rewrites it: `move` closures capturing as in Spark
    /// ([`auto_capture`]), a map and the reduce after it in one pass ([`fused_map_reduce`]).
    /// When the rewritten cell does not compile, either a closure that runs on executors
    /// captures something that cannot be sent there (that error is the cell's result), or a
    /// rewrite does not fit the cell (a body mutating a capture): then the cell runs with fewer
    /// rewrites (captures without fusion), and at last as written, any errors its own; with
    /// what came of it go the captures the rewrites could not copy, for its errors to name.
    fn compile_and_run(&mut self, code: &str) -> Result<CompiledRun, CellError> {
        let code = terminate_trailing_let(code);
        let mut uncopied: Vec<auto_capture::Uncopied> = Vec::new();
        for rewritten in self.rewrites(&code) {
            match self.engine.execute(&rewritten) {
                Err(tessera_cells::CellsError::Compile {
                    code: compiled,
                    diagnostics,
                }) => {
                    let errors: Vec<auto_capture::CompileError> = diagnostics
                        .iter()
                        .map(|d| auto_capture::CompileError {
                            text: format!("{}\n{}\n{}", d.message, d.notes.join("\n"), d.rendered),
                            line: d.line(&compiled),
                        })
                        .collect();
                    if let Some(message) = auto_capture::explain_capture_errors(&errors) {
                        return Err(CellError {
                            message,
                            kind: CellErrorKind::Compile,
                        });
                    }
                    for capture in auto_capture::uncopied_captures(&errors) {
                        if !uncopied.iter().any(|seen| seen.name == capture.name) {
                            uncopied.push(capture);
                        }
                    }
                    tracing::debug!(
                        errors = ?errors.iter().map(|e| &e.text).collect::<Vec<_>>(),
                        "the rewritten cell does not compile; trying it with fewer rewrites"
                    );
                }
                other => return Ok((other, uncopied)),
            }
        }
        Ok((self.engine.execute(&code), uncopied))
    }

    /// The cell as the session compiles it (`:expand`): its `move` closures rewritten to
    /// capture as in Spark, and each `map` followed by `reduce` on an RDD variable fused.
    pub fn expand(&self, code: &str) -> String {
        let code = terminate_trailing_let(code);
        self.rewrites(&code)
            .into_iter()
            .next()
            .unwrap_or_else(|| code.into_owned())
    }

    /// `code` rewritten by the session, the most rewritten first: fused and with its closures'
    /// captures rewritten, then with its captures only. Empty when nothing changes.
    fn rewrites(&self, code: &str) -> Vec<String> {
        let variables = self.variables();
        let names: Vec<&str> = variables.iter().map(|(name, _)| name.as_str()).collect();
        let of_kind = |kind: rebuild::Handle| -> Vec<&str> {
            variables
                .iter()
                .filter(|(_, type_name)| rebuild::handle_kind(type_name) == Some(kind))
                .map(|(name, _)| name.as_str())
                .collect()
        };
        let captured = |code: &str| auto_capture::rewrite(code, &names).map(|r| r.code);
        let mut rewrites = Vec::new();
        let fused = fused_map_reduce::fuse(
            code,
            &of_kind(rebuild::Handle::Rdd),
            &of_kind(rebuild::Handle::Context),
        );
        if let Some(fused) = fused {
            rewrites.push(captured(&fused).unwrap_or(fused));
        }
        rewrites.extend(captured(code));
        rewrites
    }

    /// The session's driver: its jobs, executors and cached RDDs (`:jobs`, `:executors`,
    /// `:storage`).
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
        let (source, offset) = self.engine.analysis_source(code);
        let project = self.engine.dependency_project().to_path_buf();
        if let Some(c) = self
            .analysis
            .completions(&project, source, offset + position)
        {
            let start = c.start.saturating_sub(offset).min(code.len());
            let end = c.end.saturating_sub(offset).min(code.len());
            (found.start, found.end) = (start, end.max(start));
            for completion in c.items {
                if !completion.name.is_empty()
                    && !found.items.iter().any(|(n, _)| *n == completion.name)
                {
                    found
                        .items
                        .push((completion.name, completion.kind.to_string()));
                }
            }
        }
        found
    }

    /// The type and documentation of what is at `position`, as text and as HTML; `None` when
    /// rust-analyzer knows nothing there.
    pub fn inspect(&mut self, code: &str, position: usize) -> Option<Inspection> {
        let (source, offset) = self.engine.analysis_source(code);
        let project = self.engine.dependency_project().to_path_buf();
        let hover = self.analysis.hover(&project, source, offset + position)?;
        let text = hover.text.trim();
        if text.is_empty() {
            return None;
        }
        Some(Inspection {
            text: text.to_string(),
            html: (!hover.html.trim().is_empty()).then_some(hover.html),
        })
    }

    /// Variables the session holds and their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.engine
            .variables()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_depend_on_tessera_by_path_and_on_serde_with_derives() {
        let lines = dependency_lines(std::path::Path::new("/opt/my \"api\""));
        assert_eq!(
            lines,
            [
                r#"tessera = { path = "/opt/my \"api\"" }"#,
                r#"serde = { version = "1", features = ["derive"] }"#
            ]
        );
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
