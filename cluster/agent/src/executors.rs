//! Executor processes on this agent: launching them in their sandbox, watching
//! them exit, killing them, and reporting how they ended (`ending` says it as a state).
//!
//! Each executor runs in its own process group (so a Ctrl-C in the agent's
//! terminal does not reach it, and a kill reaches everything it started), in the sandbox
//! directory `WORK_DIR/frameworks/<framework>/executors/<executor>/`, with stdout and
//! stderr in files `stdout` and `stderr` there.
//!
//! Executors outlive the agent (no parent-death signal): what runs is checkpointed
//! ([`crate::checkpoint`]) at every launch, exit and message, and an agent restarted on the
//! same work directory adopts the executors still running ([`Executors::adopt`],
//! [`crate::recovery`]). An adopted executor is not the agent's child: its end is seen by
//! polling `/proc` every [`WATCH_INTERVAL`] (its pid gone, a zombie, or another process's),
//! and its exit status is not known — unless the agent killed it, it ends FAILED saying so.
//! An agent stopped gracefully (SIGTERM) still kills its executors, as Mesos' does.
//!
//! A framework's executors on this agent share `WORK_DIR/frameworks/<framework>/libraries/`
//! (`TESSERA_LIBRARY_CACHE`) for the code their driver sends them, as Spark's executors of one
//! application share fetched files: an executor launched to replace a lost one loads what its
//! predecessor fetched. The directory is removed [`LIBRARY_CACHE_GRACE`] after the framework's
//! last executor here ended, if none was launched again meanwhile.
//!
//! Each runs in a [`Container`] of the agent's [`Isolator`]: the child enters it before exec,
//! a watcher reads what it uses every [`WATCH_INTERVAL`] (for the heartbeats) and kills it
//! when it goes past its memory; its end is then FAILED with "memory limit N MiB exceeded".

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster_proto::master::{
    CommandInfo, ExecutorReason, ExecutorState, ExecutorUsage, FrameworkInfo, RecoveredExecutor,
    Resources, StatusUpdate,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::checkpoint::{self, Checkpoint, CheckpointedExecutor};
use crate::ending::{Ending, Kill, classify};
use crate::isolation::{
    Container, IsolationMode, Isolator, Limitation, Limits, Usage, WATCH_INTERVAL,
};
use crate::sandbox::{env, sandbox_in};
use crate::status_updates::{PendingUpdates, StreamKey};

/// Between SIGTERM and SIGKILL when an executor is killed.
pub const KILL_GRACE: Duration = Duration::from_secs(3);
/// How long a framework's library cache outlives its last executor on this agent: long enough
/// for the replacement of a lost executor, which its framework launches within seconds.
pub const LIBRARY_CACHE_GRACE: Duration = Duration::from_secs(60);
/// The variable that names a framework's library cache to its executors.
const LIBRARY_CACHE_ENV: &str = "TESSERA_LIBRARY_CACHE";

/// Why a launch was refused before any process started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "{what} {value:?} cannot be used as a directory name (empty, `.`, `..`, or contains `/`)"
    )]
    BadId { what: &'static str, value: String },
    #[error("executor {executor_id} of framework {framework_id} is already running on this agent")]
    AlreadyRunning {
        framework_id: String,
        executor_id: String,
    },
    #[error("the launch has no command")]
    NoCommand,
    #[error("cannot create the sandbox {path}: {source}")]
    Sandbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Running {
    pid: i32,
    /// The process's start time (`/proc/PID/stat`), checkpointed against pid reuse.
    start_ticks: u64,
    /// What it was launched with, to tell a master it re-registers with.
    resources: Resources,
    /// The agent's ports it was given, as ranges.
    ports: String,
    /// Its cgroup, in cgroups mode.
    cgroup: Option<PathBuf>,
    /// Messages put in its sandbox so far.
    messages: u64,
    /// Set when the agent asked it to stop; its exit is then KILLED (LOST with `report_lost`).
    kill_reason: Option<String>,
    /// Its end is LOST: a restarted agent killed it past its recovery timeout.
    report_lost: bool,
    /// What it used when last looked at.
    usage: Usage,
}

/// The process of a running executor: a child of this agent, or one adopted from the agent
/// that ran before it (not a child: its exit status cannot be waited for).
enum Process {
    Child(tokio::process::Child),
    Adopted { start_ticks: u64 },
}

impl Process {
    /// Waits until the process has ended: its exit status for a child, `None` (not known)
    /// for an adopted one.
    async fn ended(&mut self, pid: i32) -> Option<std::io::Result<ExitStatus>> {
        match self {
            Process::Child(child) => Some(child.wait().await),
            Process::Adopted { start_ticks } => {
                while crate::processes::is_running(pid, *start_ticks) {
                    tokio::time::sleep(WATCH_INTERVAL).await;
                }
                None
            }
        }
    }
}

#[derive(Default)]
struct EarlyKills {
    /// Executors killed before they were launched here.
    executors: HashSet<(String, String)>,
    /// Frameworks shut down here; their late launches are refused.
    frameworks: HashSet<String>,
}

/// Running executors by (framework id, executor id).
type Table = HashMap<(String, String), Running>;

/// Why a message could not be put in an executor's sandbox.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(
        "executor {executor_id} of framework {framework_id} does not run on this agent; send \
         messages to running executors"
    )]
    NotRunning {
        framework_id: String,
        executor_id: String,
    },
    #[error("cannot write the message to {path} (is the sandbox's disk full?): {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The executors running on this agent.
pub struct Executors {
    work_dir: PathBuf,
    /// The host executors should listen on and advertise (the agent's own advertised host),
    /// as `TESSERA_AGENT_HOST`.
    host: String,
    running: Mutex<Table>,
    /// What the master said of each framework that launched here, to tell a master this
    /// agent registers with again.
    frameworks: Mutex<HashMap<String, FrameworkInfo>>,
    /// Kills and shutdowns that arrived before the launch they concern (the
    /// master sends them on separate connections). Locked after `running`.
    early: Mutex<EarlyKills>,
    updates: UnboundedSender<StatusUpdate>,
    isolator: Isolator,
    /// The status updates waiting for acknowledgements (checkpointed with the executors).
    pending: Arc<PendingUpdates>,
    /// Writes the checkpoint.
    checkpoint: checkpoint::Writer,
    /// The id the master gave this agent ("" before it registered), for the checkpoint.
    agent_id: Mutex<String>,
    /// This boot's id, for the checkpoint.
    boot_id: String,
}

/// What the launch request carries.
pub struct LaunchSpec {
    pub agent_id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub command: Option<CommandInfo>,
    pub cpus: f64,
    pub mem_mb: u64,
    /// The ports of the agent it was given, as ranges (`31000-31001,31005`; empty: none).
    pub ports: String,
    /// Its framework, as the master described it.
    pub framework: Option<FrameworkInfo>,
    /// Where its framework's sandbox files are served, if they are: the executor learns it as
    /// `TESSERA_SANDBOX_FILES`.
    pub files_address: Option<String>,
}

fn check_id(what: &'static str, value: &str) -> Result<(), LaunchError> {
    if value.is_empty()
        || value == "."
        || value == ".."
        || value.contains('/')
        || value.contains('\0')
    {
        return Err(LaunchError::BadId {
            what,
            value: value.to_string(),
        });
    }
    Ok(())
}

impl Executors {
    pub(crate) fn new(
        work_dir: PathBuf,
        host: String,
        updates: UnboundedSender<StatusUpdate>,
        isolator: Isolator,
        pending: Arc<PendingUpdates>,
    ) -> Arc<Self> {
        Arc::new(Executors {
            checkpoint: checkpoint::Writer::new(&work_dir),
            work_dir,
            host,
            running: Mutex::new(HashMap::new()),
            frameworks: Mutex::new(HashMap::new()),
            early: Mutex::new(EarlyKills::default()),
            updates,
            isolator,
            pending,
            agent_id: Mutex::new(String::new()),
            boot_id: crate::processes::boot_id(),
        })
    }

    /// Writes the checkpoint: the agent id, the running executors, their frameworks and the
    /// status updates not acknowledged yet. A failure is logged (the agent goes on; what
    /// runs would not be recovered).
    pub fn save_checkpoint(&self) {
        let _ = self.checkpoint.save(|| {
            let executors = self
                .lock()
                .iter()
                .map(|((framework_id, executor_id), r)| CheckpointedExecutor {
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    pid: r.pid,
                    start_ticks: r.start_ticks,
                    cpus: r.resources.cpus,
                    mem_mb: r.resources.mem_mb,
                    ports: r.ports.clone(),
                    sandbox: self
                        .sandbox(framework_id, executor_id)
                        .display()
                        .to_string(),
                    cgroup: (r.cgroup.as_ref())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    messages: r.messages,
                })
                .collect();
            let frameworks = self
                .frameworks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            Checkpoint {
                agent_id: self.agent_id(),
                saved_at_ms: checkpoint::now_ms(),
                boot_id: self.boot_id.clone(),
                executors,
                frameworks,
                status_updates: self.pending.lock().all(),
            }
        });
    }

    /// The id the master gave this agent, "" before it registered.
    pub fn agent_id(&self) -> String {
        self.agent_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the id the master gave this agent (and checkpoints it).
    pub fn set_agent_id(&self, id: &str) {
        *self.agent_id.lock().unwrap_or_else(|e| e.into_inner()) = id.to_string();
        self.save_checkpoint();
    }

    /// Takes back what a checkpoint says of frameworks (what the launches said of them).
    pub fn restore_frameworks(&self, frameworks: Vec<FrameworkInfo>) {
        let mut known = self.frameworks.lock().unwrap_or_else(|e| e.into_inner());
        for info in frameworks {
            known.insert(info.id.clone(), info);
        }
    }

    /// How this agent isolates its executors.
    pub fn isolation(&self) -> IsolationMode {
        self.isolator.mode()
    }

    /// Removes the agent's own cgroup, if any (when it stops).
    pub fn close_isolation(&self) {
        self.isolator.close();
    }

    /// What each running executor used when last looked at.
    pub fn usage(&self) -> Vec<ExecutorUsage> {
        self.lock()
            .iter()
            .map(|((framework_id, executor_id), r)| ExecutorUsage {
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
                memory_bytes: r.usage.memory_bytes,
                cpu_seconds: r.usage.cpu_seconds,
            })
            .collect()
    }

    /// The executors a master this agent registers with again must know: those running, and
    /// those ended whose last updates (`waiting`, with the newest state of each) their
    /// framework has not acknowledged yet.
    pub fn recovered(&self, waiting: &[(StreamKey, ExecutorState)]) -> Vec<RecoveredExecutor> {
        let running = self.lock();
        let frameworks = self.frameworks.lock().unwrap_or_else(|e| e.into_inner());
        let framework = |id: &String| {
            Some(
                frameworks
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| FrameworkInfo {
                        id: id.clone(),
                        ..FrameworkInfo::default()
                    }),
            )
        };
        let ended = waiting
            .iter()
            .filter(|(key, _)| !running.contains_key(key))
            .map(|((framework_id, executor_id), state)| RecoveredExecutor {
                executor_id: executor_id.clone(),
                resources: None,
                framework: framework(framework_id),
                state: *state as i32,
            });
        running
            .iter()
            .map(|((framework_id, executor_id), r)| RecoveredExecutor {
                executor_id: executor_id.clone(),
                resources: Some(r.resources.clone()),
                framework: framework(framework_id),
                state: ExecutorState::Running as i32,
            })
            .chain(ended)
            .collect()
    }

    fn early(&self) -> std::sync::MutexGuard<'_, EarlyKills> {
        self.early.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The (framework, executor) ids of the executors running here.
    pub fn running(&self) -> Vec<(String, String)> {
        self.lock().keys().cloned().collect()
    }

    /// The sandbox directory of an executor.
    pub fn sandbox(&self, framework_id: &str, executor_id: &str) -> PathBuf {
        sandbox_in(&self.work_dir, framework_id, executor_id)
    }

    /// The directory a framework's executors here share for the libraries their driver sends.
    pub fn library_cache(&self, framework_id: &str) -> PathBuf {
        self.work_dir
            .join("frameworks")
            .join(framework_id)
            .join("libraries")
    }

    /// Removes the framework's library cache if none of its executors runs here; returns
    /// whether it did. The table stays locked meanwhile, so that no launch of the framework
    /// starts while its cache goes (a launch holds it until its executor is recorded).
    pub(crate) fn remove_library_cache_if_unused(&self, framework_id: &str) -> bool {
        let running = self.lock();
        if running.keys().any(|(f, _)| f == framework_id) {
            return false;
        }
        let dir = self.library_cache(framework_id);
        let removed = std::fs::remove_dir_all(&dir).is_ok();
        if removed {
            tracing::debug!(framework_id, dir = %dir.display(), "removed an unused library cache");
        }
        drop(running);
        removed
    }

    /// Removes the framework's library cache [`LIBRARY_CACHE_GRACE`] from now if none of its
    /// executors runs here by then.
    fn remove_library_cache_later(self: &Arc<Self>, framework_id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LIBRARY_CACHE_GRACE).await;
            this.remove_library_cache_if_unused(&framework_id);
        });
    }

    /// Schedules the removal of every framework's library cache, as
    /// [`Self::remove_library_cache_later`] does: at start, for frameworks whose executors
    /// ended while the agent was down.
    pub fn remove_library_caches_later(self: &Arc<Self>) {
        let Ok(frameworks) = std::fs::read_dir(self.work_dir.join("frameworks")) else {
            return;
        };
        for framework in frameworks.flatten() {
            if let Some(id) = framework.file_name().to_str() {
                self.remove_library_cache_later(id.to_string());
            }
        }
    }

    fn report(
        &self,
        agent_id: &str,
        framework_id: &str,
        executor_id: &str,
        state: ExecutorState,
        message: String,
    ) {
        self.report_ending(
            agent_id,
            framework_id,
            executor_id,
            Ending {
                state,
                message,
                exit_code: None,
                reason: ExecutorReason::Unspecified,
            },
        );
    }

    fn report_ending(&self, agent_id: &str, framework_id: &str, executor_id: &str, e: Ending) {
        let _ = self.updates.send(StatusUpdate {
            agent_id: agent_id.to_string(),
            framework_id: framework_id.to_string(),
            executor_id: executor_id.to_string(),
            state: e.state as i32,
            message: e.message,
            exit_code: e.exit_code,
            reason: e.reason as i32,
            uuid: tessera_credentials::random_uuid(),
            latest_state: e.state as i32,
        });
    }

    /// Starts an executor. Refusals (bad ids, already running) are errors; a
    /// program that cannot be started is reported FAILED through a status
    /// update instead.
    pub fn launch(self: &Arc<Self>, spec: LaunchSpec) -> Result<(), LaunchError> {
        check_id("framework id", &spec.framework_id)?;
        check_id("executor id", &spec.executor_id)?;
        let command = spec.command.ok_or(LaunchError::NoCommand)?;
        let key = (spec.framework_id.clone(), spec.executor_id.clone());
        // Hold the table lock until the child is recorded, so a concurrent
        // launch of the same id or a kill cannot slip in between.
        let mut running = self.lock();
        if running.contains_key(&key) {
            return Err(LaunchError::AlreadyRunning {
                framework_id: spec.framework_id,
                executor_id: spec.executor_id,
            });
        }
        {
            let mut early = self.early();
            let reason = if early.frameworks.contains(&spec.framework_id) {
                Some("its framework was shut down before it could start")
            } else if early.executors.remove(&key) {
                Some("killed at the framework's request before it started")
            } else {
                None
            };
            if let Some(reason) = reason {
                let (agent, fid, eid) = (&spec.agent_id, &spec.framework_id, &spec.executor_id);
                tracing::info!(framework_id = %fid, executor_id = %eid, reason, "launch skipped");
                self.report(agent, fid, eid, ExecutorState::Killed, reason.to_string());
                return Ok(());
            }
        }
        if let Some(info) = &spec.framework {
            self.frameworks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(spec.framework_id.clone(), info.clone());
        }
        let sandbox = self.sandbox(&spec.framework_id, &spec.executor_id);
        std::fs::create_dir_all(&sandbox).map_err(|source| LaunchError::Sandbox {
            path: sandbox.clone(),
            source,
        })?;
        let (agent, fid, eid) = (&spec.agent_id, &spec.framework_id, &spec.executor_id);
        self.report(agent, fid, eid, ExecutorState::Starting, String::new());
        let files = std::fs::File::create(sandbox.join("stdout"))
            .and_then(|out| Ok((out, std::fs::File::create(sandbox.join("stderr"))?)));
        let (stdout, stderr) = match files {
            Ok(f) => f,
            Err(e) => {
                let msg = format!(
                    "cannot create stdout/stderr files in {}: {e}",
                    sandbox.display()
                );
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                return Ok(());
            }
        };
        let limits = Limits {
            cpus: spec.cpus,
            mem_mb: spec.mem_mb,
        };
        let prepared = self
            .isolator
            .prepare(fid, eid, limits)
            .and_then(|container| {
                let setup = container.child_setup().map_err(|source| {
                    crate::isolation::IsolationError::Cgroup {
                        path: sandbox.clone(),
                        source,
                    }
                })?;
                Ok((container, setup))
            });
        let (container, setup) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let msg = format!("cannot isolate the executor: {e}");
                tracing::warn!(framework_id = %fid, executor_id = %eid, error = %msg, "executor failed to start");
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                return Ok(());
            }
        };

        let mut cmd = tokio::process::Command::new(&command.program);
        cmd.args(&command.args)
            .envs(&command.env)
            .env("TESSERA_AGENT_ID", agent)
            .env(env::FRAMEWORK_ID, fid)
            .env(env::EXECUTOR_ID, eid)
            .env(env::SANDBOX, &sandbox)
            .env(LIBRARY_CACHE_ENV, self.library_cache(fid))
            .env("TESSERA_AGENT_HOST", &self.host)
            .env(env::CPUS, spec.cpus.to_string())
            .env(env::MEM_MB, spec.mem_mb.to_string())
            .env(env::PORTS, &spec.ports)
            .envs(
                spec.files_address
                    .iter()
                    .map(|a| ("TESSERA_SANDBOX_FILES", a)),
            )
            .current_dir(&sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (write, setrlimit). No parent-death signal: executors
        // outlive the agent, which finds them again when it restarts.
        unsafe {
            cmd.pre_exec(move || setup.apply());
        }
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let msg = format!(
                    "cannot start `{}` in {}: {e}",
                    command.program,
                    sandbox.display()
                );
                tracing::warn!(framework_id = %fid, executor_id = %eid, error = %msg, "executor failed to start");
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                drop(running);
                tokio::spawn(async move { container.destroy().await });
                return Ok(());
            }
        };
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        // Its start time is fixed at fork, so it is there before exec.
        let start_ticks = crate::processes::start_ticks(pid).unwrap_or(0);
        running.insert(
            key.clone(),
            Running {
                pid,
                start_ticks,
                // CPUs and memory: what a re-registration reports (ports are given anew).
                resources: Resources {
                    cpus: spec.cpus,
                    mem_mb: spec.mem_mb,
                    ..Default::default()
                },
                ports: spec.ports.clone(),
                cgroup: container.cgroup_path(),
                kill_reason: None,
                report_lost: false,
                messages: 0,
                usage: Usage::default(),
            },
        );
        drop(running);
        self.save_checkpoint();
        let mode = self.isolator.mode();
        tracing::info!(framework_id = %fid, executor_id = %eid, pid, program = %command.program, sandbox = %sandbox.display(), isolation = %mode, "executor running");
        self.report(
            agent,
            fid,
            eid,
            ExecutorState::Running,
            format!("pid {pid}, sandbox {} ({mode})", sandbox.display()),
        );
        self.supervise(agent.clone(), key, pid, Process::Child(child), container);
        Ok(())
    }

    /// Takes over an executor a checkpoint names whose process still runs (see
    /// [`crate::recovery`]): it is watched, limited and reported as if this agent had
    /// launched it. With `lost`, it is killed at once and its end is LOST with that message.
    pub fn adopt(
        self: &Arc<Self>,
        agent_id: &str,
        executor: &CheckpointedExecutor,
        lost: Option<String>,
    ) {
        let key = (executor.framework_id.clone(), executor.executor_id.clone());
        let limits = Limits {
            cpus: executor.cpus,
            mem_mb: executor.mem_mb,
        };
        let cgroup = (!executor.cgroup.is_empty()).then(|| PathBuf::from(&executor.cgroup));
        let container = self.isolator.recover(cgroup.as_deref(), limits);
        let pid = executor.pid;
        self.lock().insert(
            key.clone(),
            Running {
                pid,
                start_ticks: executor.start_ticks,
                resources: Resources {
                    cpus: executor.cpus,
                    mem_mb: executor.mem_mb,
                    ..Default::default()
                },
                ports: executor.ports.clone(),
                cgroup: container.cgroup_path(),
                messages: executor.messages,
                report_lost: lost.is_some(),
                kill_reason: lost.clone(),
                usage: Usage::default(),
            },
        );
        match &lost {
            Some(reason) => {
                tracing::warn!(framework_id = %key.0, executor_id = %key.1, pid, %reason, "killing a checkpointed executor");
                // SAFETY: a plain syscall on the executor's process group (pid > 1: the
                // checkpoint's decoder refuses others).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            None => {
                tracing::info!(framework_id = %key.0, executor_id = %key.1, pid, isolation = %container.mode(), "executor recovered")
            }
        }
        let process = Process::Adopted {
            start_ticks: executor.start_ticks,
        };
        self.supervise(agent_id.to_string(), key, pid, process, container);
    }

    /// Watches a running executor until it ends, then reports how.
    fn supervise(
        self: &Arc<Self>,
        agent: String,
        key: (String, String),
        pid: i32,
        mut process: Process,
        container: Container,
    ) {
        let this = self.clone();
        let sandbox = self.sandbox(&key.0, &key.1);
        tokio::spawn(async move {
            let (status, limitation) = this.watch(&mut process, &container, &key, pid).await;
            let entry = this.lock().remove(&key);
            let kill = entry.and_then(|e| {
                Some(Kill {
                    reason: e.kill_reason?,
                    lost: e.report_lost,
                })
            });
            // Whatever the executor left behind in its process group goes too.
            if pid > 1 {
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            // The kernel may have killed it for its memory between two looks.
            let limitation = limitation.or_else(|| container.limitation_at_exit());
            container.destroy().await;
            let ending = classify(status, limitation, kill, &sandbox);
            tracing::info!(framework_id = %key.0, executor_id = %key.1, state = ?ending.state, message = %ending.message, exit_code = ?ending.exit_code, "executor ended");
            this.report_ending(&agent, &key.0, &key.1, ending);
            this.save_checkpoint();
            this.remove_library_cache_later(key.0);
        });
    }

    /// Waits for the executor to exit, reading what it uses every [`WATCH_INTERVAL`] and
    /// killing its process group when it goes past its limits; returns how it exited and the
    /// limitation it was killed for.
    async fn watch(
        &self,
        process: &mut Process,
        container: &Container,
        key: &(String, String),
        pid: i32,
    ) -> (Option<std::io::Result<ExitStatus>>, Option<Limitation>) {
        let mut limitation = None;
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                status = process.ended(pid) => return (status, limitation),
                _ = ticks.tick(), if limitation.is_none() => {
                    let usage = container.usage(pid);
                    if let Some(entry) = self.lock().get_mut(key) {
                        entry.usage = usage;
                    }
                    if let Some(found) = container.limitation(&usage) {
                        tracing::warn!(framework_id = %key.0, executor_id = %key.1, pid,
                            memory_bytes = usage.memory_bytes, "{found}; killing the executor");
                        limitation = Some(found);
                        if pid > 0 {
                            // SAFETY: a plain syscall on the executor's own process group.
                            unsafe { libc::kill(-pid, libc::SIGKILL) };
                        }
                    }
                }
            }
        }
    }

    /// Records that the executor is to end KILLED with `reason` and returns its process
    /// (group) id; `None` if it does not run here — a kill that overtook its launch is kept
    /// for the launch.
    fn mark_killed(&self, framework_id: &str, executor_id: &str, reason: &str) -> Option<i32> {
        let key = (framework_id.to_string(), executor_id.to_string());
        let mut running = self.lock();
        let Some(entry) = running.get_mut(&key) else {
            // Its launch may still be on the way (it never ran here if it has no sandbox yet).
            if !self.sandbox(framework_id, executor_id).exists() {
                self.early().executors.insert(key);
            }
            return None;
        };
        entry.kill_reason.get_or_insert_with(|| reason.to_string());
        Some(entry.pid)
    }

    /// Sends SIGTERM to the executor's process group, then SIGKILL after
    /// [`KILL_GRACE`]. Its exit is reported KILLED with `reason`. Returns
    /// false if it is not running here.
    pub fn kill(self: &Arc<Self>, framework_id: &str, executor_id: &str, reason: &str) -> bool {
        let Some(pid) = self.mark_killed(framework_id, executor_id, reason) else {
            return false;
        };
        if pid <= 0 {
            return true;
        }
        tracing::info!(%framework_id, %executor_id, pid, %reason, "killing executor");
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        let this = self.clone();
        let key = (framework_id.to_string(), executor_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(KILL_GRACE).await;
            let still_running = this.lock().get(&key).is_some_and(|e| e.pid == pid);
            if still_running {
                tracing::warn!(framework_id = %key.0, executor_id = %key.1, pid, "executor ignored SIGTERM; sending SIGKILL");
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        });
        true
    }

    /// Kills the executor's process group at once with SIGKILL (a framework's Kill); its exit is
    /// reported KILLED with `reason`. Returns false if it is not running here.
    pub fn kill_now(&self, framework_id: &str, executor_id: &str, reason: &str) -> bool {
        let Some(pid) = self.mark_killed(framework_id, executor_id, reason) else {
            return false;
        };
        if pid > 0 {
            tracing::info!(%framework_id, %executor_id, pid, %reason, "killing executor now");
            // SAFETY: a plain syscall on the executor's own process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        true
    }

    /// Puts a framework's message for a running executor in its sandbox, as the file
    /// `messages/NNNNNNNNNN` (numbered from 1 in the order they came; written under another
    /// name and renamed, so that it appears whole). The executor reads them in name order and
    /// may delete what it has read.
    pub fn deliver_message(
        &self,
        framework_id: &str,
        executor_id: &str,
        data: &[u8],
    ) -> Result<PathBuf, MessageError> {
        // Numbered and written under the table's lock: two messages never take one number.
        let mut running = self.lock();
        let key = (framework_id.to_string(), executor_id.to_string());
        let Some(entry) = running.get_mut(&key) else {
            return Err(MessageError::NotRunning {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
            });
        };
        let dir = self.sandbox(framework_id, executor_id).join("messages");
        let n = entry.messages + 1;
        let path = dir.join(format!("{n:010}"));
        let tmp = dir.join(format!(".{n:010}.part"));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&tmp, data))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| MessageError::Write {
                path: path.clone(),
                source,
            })?;
        entry.messages = n;
        drop(running);
        // Its numbering goes on after a restart of the agent.
        self.save_checkpoint();
        Ok(path)
    }

    /// Kills every executor of the framework; returns how many.
    pub fn kill_framework(self: &Arc<Self>, framework_id: &str, reason: &str) -> usize {
        let ids: Vec<String> = {
            let running = self.lock();
            self.early().frameworks.insert(framework_id.to_string());
            running
                .keys()
                .filter(|(f, _)| f == framework_id)
                .map(|(_, e)| e.clone())
                .collect()
        };
        ids.iter()
            .filter(|e| self.kill(framework_id, e, reason))
            .count()
    }

    /// Kills every executor at once with SIGKILL (the agent is going away or
    /// re-registering); their exits are reported KILLED with `reason`.
    pub fn kill_all_now(&self, reason: &str) -> usize {
        let mut running = self.lock();
        for entry in running.values_mut() {
            entry.kill_reason.get_or_insert_with(|| reason.to_string());
            if entry.pid > 0 {
                unsafe { libc::kill(-entry.pid, libc::SIGKILL) };
            }
        }
        running.len()
    }

    /// How many executors are running.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// For tests: the executors of an agent on `work_dir` in posix mode, what waits to be
    /// acknowledged, and the status updates they send.
    #[cfg(test)]
    pub(crate) fn for_tests(
        work_dir: &std::path::Path,
    ) -> (
        Arc<Executors>,
        Arc<PendingUpdates>,
        tokio::sync::mpsc::UnboundedReceiver<StatusUpdate>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(PendingUpdates::default());
        let executors = Executors::new(
            work_dir.to_path_buf(),
            "127.0.0.1".into(),
            tx,
            crate::isolation::Isolator::Posix,
            pending.clone(),
        );
        (executors, pending, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;
    use tokio::sync::mpsc::UnboundedReceiver;

    fn setup() -> (
        tempfile::TempDir,
        Arc<Executors>,
        UnboundedReceiver<StatusUpdate>,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (executors, _, rx) = Executors::for_tests(dir.path());
        (dir, executors, rx)
    }

    /// A process of its own group, not a child of the agent's tokio runtime: what an agent
    /// restarted finds. Returns it (to reap) and its checkpoint entry.
    fn orphan(
        dir: &Path,
        executor_id: &str,
        script: &str,
    ) -> (std::process::Child, CheckpointedExecutor) {
        use std::os::unix::process::CommandExt;
        let sandbox = dir.join("frameworks/F0/executors").join(executor_id);
        std::fs::create_dir_all(&sandbox).unwrap();
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .current_dir(&sandbox)
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let entry = CheckpointedExecutor {
            framework_id: "F0".into(),
            executor_id: executor_id.into(),
            pid,
            start_ticks: crate::processes::start_ticks(pid).unwrap(),
            cpus: 1.0,
            mem_mb: 64,
            ports: String::new(),
            sandbox: sandbox.display().to_string(),
            cgroup: String::new(),
            messages: 2,
        };
        (child, entry)
    }

    #[tokio::test]
    async fn launches_are_checkpointed_with_their_process_and_ends_leave_the_checkpoint() {
        let (dir, ex, mut rx) = setup();
        ex.set_agent_id("S0");
        ex.launch(spec("cp", "while [ ! -e go ]; do sleep 0.02; done"))
            .unwrap();
        let saved = crate::checkpoint::load(dir.path())
            .unwrap()
            .expect("a checkpoint");
        assert_eq!(saved.agent_id, "S0");
        let [e] = &saved.executors[..] else {
            panic!("one executor: {saved:?}");
        };
        assert_eq!(
            (e.framework_id.as_str(), e.executor_id.as_str()),
            ("F0", "cp")
        );
        assert_eq!(e.sandbox, ex.sandbox("F0", "cp").display().to_string());
        assert_eq!(
            crate::recovery::liveness(
                &saved.boot_id,
                &crate::processes::boot_id(),
                e.pid,
                e.start_ticks
            ),
            crate::recovery::Liveness::Running
        );
        assert_eq!(saved.frameworks[0].principal, "alice");
        std::fs::write(ex.sandbox("F0", "cp").join("go"), "").unwrap();
        assert_eq!(
            run_to_end(&mut rx, "cp").await.last().unwrap().0,
            ExecutorState::Finished
        );
        let saved = crate::checkpoint::load(dir.path()).unwrap().unwrap();
        assert!(saved.executors.is_empty(), "{saved:?}");
    }

    #[tokio::test]
    async fn adopted_executors_are_watched_killed_and_their_ends_reported() {
        let (dir, ex, mut rx) = setup();
        // One that ends by itself: its exit status cannot be known.
        let (mut quits, quits_entry) = orphan(
            dir.path(),
            "quits",
            "echo last words > stderr; while [ ! -e go ]; do sleep 0.02; done; exit 3",
        );
        ex.adopt("S0", &quits_entry, None);
        assert_eq!(ex.count(), 1);
        // Messages go on from the checkpointed number.
        let path = ex.deliver_message("F0", "quits", b"m").unwrap();
        assert!(path.ends_with("messages/0000000003"), "{}", path.display());
        std::fs::write(ex.sandbox("F0", "quits").join("go"), "").unwrap();
        let reaper = std::thread::spawn(move || quits.wait());
        let (state, message) = run_to_end(&mut rx, "quits").await.pop().unwrap();
        assert_eq!(state, ExecutorState::Failed);
        assert!(
            message.contains("its exit status is not known"),
            "{message}"
        );
        assert!(message.contains("last words"), "{message}");
        reaper.join().unwrap().unwrap();

        // One the framework kills, and one killed at adoption (past the recovery timeout).
        let (mut kept, kept_entry) = orphan(dir.path(), "kept", "exec sleep 30");
        let (mut late, late_entry) = orphan(dir.path(), "late", "exec sleep 30");
        ex.adopt("S0", &kept_entry, None);
        ex.adopt("S0", &late_entry, Some("away too long".into()));
        assert!(ex.kill_now("F0", "kept", "killed on request"));
        let reapers = [
            std::thread::spawn(move || kept.wait()),
            std::thread::spawn(move || late.wait()),
        ];
        // Their ends come in either order.
        let ends = ends_of(&mut rx, &["kept", "late"]).await;
        assert_eq!(
            ends["kept"],
            (ExecutorState::Killed, "killed on request".to_string())
        );
        assert_eq!(
            ends["late"],
            (ExecutorState::Lost, "away too long".to_string())
        );
        for r in reapers {
            r.join().unwrap().unwrap();
        }
        assert_eq!(ex.count(), 0);
    }

    fn spec(executor_id: &str, script: &str) -> LaunchSpec {
        LaunchSpec {
            agent_id: "S0".into(),
            framework_id: "F0".into(),
            executor_id: executor_id.into(),
            command: Some(CommandInfo {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script.into()],
                env: [("GREETING".to_string(), "hi".to_string())].into(),
            }),
            cpus: 1.0,
            mem_mb: 64,
            ports: String::new(),
            files_address: None,
            framework: Some(FrameworkInfo {
                id: "F0".into(),
                principal: "alice".into(),
                ..FrameworkInfo::default()
            }),
        }
    }

    /// Collects updates until `executor` reaches a terminal state.
    async fn run_to_end(
        rx: &mut UnboundedReceiver<StatusUpdate>,
        executor: &str,
    ) -> Vec<(ExecutorState, String)> {
        let mut out = Vec::new();
        loop {
            let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("status update in time")
                .expect("channel open");
            if u.executor_id != executor {
                continue;
            }
            let state = ExecutorState::try_from(u.state).unwrap();
            let end = state.is_terminal();
            out.push((state, u.message));
            if end {
                return out;
            }
        }
    }

    /// The terminal update of each of `executors`, whatever order they come in.
    async fn ends_of(
        rx: &mut UnboundedReceiver<StatusUpdate>,
        executors: &[&str],
    ) -> std::collections::HashMap<String, (ExecutorState, String)> {
        let mut ends = std::collections::HashMap::new();
        while ends.len() < executors.len() {
            let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("status update in time")
                .expect("channel open");
            let state = ExecutorState::try_from(u.state).unwrap();
            if executors.contains(&u.executor_id.as_str()) && state.is_terminal() {
                ends.insert(u.executor_id, (state, u.message));
            }
        }
        ends
    }

    fn states(updates: &[(ExecutorState, String)]) -> Vec<ExecutorState> {
        updates.iter().map(|(s, _)| *s).collect()
    }

    #[tokio::test]
    async fn a_frameworks_executors_share_a_library_cache_that_goes_once_none_runs() {
        let (_dir, ex, mut rx) = setup();
        let cached = ex.library_cache("F0").join("lib.so");
        ex.launch(spec(
            "e1",
            r#"mkdir -p "$TESSERA_LIBRARY_CACHE" && echo code > "$TESSERA_LIBRARY_CACHE/lib.so" && sleep 1"#,
        ))
        .unwrap();
        for _ in 0..200 {
            if cached.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            cached.exists(),
            "the executor wrote to {}",
            cached.display()
        );
        assert!(
            !ex.remove_library_cache_if_unused("F0"),
            "kept while an executor of its framework runs"
        );
        ex.launch(spec("e2", r#"test -f "$TESSERA_LIBRARY_CACHE/lib.so""#))
            .unwrap();
        let ends = ends_of(&mut rx, &["e1", "e2"]).await;
        assert_eq!(
            ends["e2"].0,
            ExecutorState::Finished,
            "the second executor finds what the first left: {}",
            ends["e2"].1
        );
        assert!(ex.remove_library_cache_if_unused("F0"));
        assert!(!ex.library_cache("F0").exists());
        assert!(
            ex.sandbox("F0", "e1").exists(),
            "the sandboxes stay, with their logs"
        );
    }

    #[tokio::test]
    async fn runs_in_its_sandbox_and_finishes() {
        let (_dir, ex, mut rx) = setup();
        ex.launch(spec("ok", "echo $GREETING $TESSERA_EXECUTOR_ID > out; pwd"))
            .unwrap();
        let updates = run_to_end(&mut rx, "ok").await;
        use ExecutorState::*;
        assert_eq!(states(&updates), [Starting, Running, Finished]);
        let sandbox = ex.sandbox("F0", "ok");
        assert_eq!(
            std::fs::read_to_string(sandbox.join("out")).unwrap(),
            "hi ok\n"
        );
        let pwd = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
        assert_eq!(pwd.trim(), sandbox.display().to_string());
    }

    #[tokio::test]
    async fn non_zero_exit_fails_with_status_and_stderr() {
        let (_dir, ex, mut rx) = setup();
        ex.launch(spec("bad", "echo first >&2; echo oops >&2; exit 3"))
            .unwrap();
        let updates = run_to_end(&mut rx, "bad").await;
        let (state, message) = updates.last().unwrap();
        assert_eq!(*state, ExecutorState::Failed);
        assert!(message.contains("exited with status 3"), "{message}");
        assert!(message.contains("first\noops"), "{message}");
    }

    #[tokio::test]
    async fn an_executor_past_its_memory_is_killed_and_fails_saying_so() {
        let (_dir, ex, mut rx) = setup();
        // 64 MiB given; the shell holds about 100 MB, then sleeps.
        ex.launch(spec(
            "hog",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 30",
        ))
        .unwrap();
        let updates = run_to_end(&mut rx, "hog").await;
        assert_eq!(
            updates.last().unwrap(),
            &(
                ExecutorState::Failed,
                "memory limit 64 MiB exceeded".to_string()
            )
        );
        assert_eq!(ex.count(), 0);
    }

    #[tokio::test]
    async fn messages_appear_whole_and_in_order_in_the_sandbox() {
        let (_dir, ex, mut rx) = setup();
        assert!(matches!(
            ex.deliver_message("F0", "m", b"early"),
            Err(MessageError::NotRunning { .. })
        ));
        ex.launch(spec(
            "m",
            "while [ ! -e messages/0000000002 ]; do sleep 0.02; done; cat messages/* > got",
        ))
        .unwrap();
        // Wait until it runs.
        while ex.count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ex.deliver_message("F0", "m", b"one ").unwrap();
        let second = ex.deliver_message("F0", "m", b"two").unwrap();
        assert!(
            second.ends_with("messages/0000000002"),
            "{}",
            second.display()
        );
        let updates = run_to_end(&mut rx, "m").await;
        assert_eq!(updates.last().unwrap().0, ExecutorState::Finished);
        let got = std::fs::read_to_string(ex.sandbox("F0", "m").join("got")).unwrap();
        assert_eq!(got, "one two");
    }

    #[tokio::test]
    async fn messages_sent_at_once_each_get_a_file_of_their_own() {
        let (_dir, ex, _rx) = setup();
        ex.launch(spec("many", "exec sleep 30")).unwrap();
        while ex.count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let senders: Vec<_> = (0..16)
            .map(|i| {
                let ex = ex.clone();
                std::thread::spawn(move || ex.deliver_message("F0", "many", &[i]).unwrap())
            })
            .collect();
        let paths: BTreeSet<PathBuf> = senders.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(paths.len(), 16);
        let mut bytes: Vec<u8> = paths.iter().map(|p| std::fs::read(p).unwrap()[0]).collect();
        bytes.sort();
        assert_eq!(bytes, (0..16).collect::<Vec<u8>>());
        assert!(ex.kill_now("F0", "many", "done"));
    }

    #[tokio::test]
    async fn kill_now_does_not_wait_for_an_executor_that_ignores_sigterm() {
        let (_dir, ex, mut rx) = setup();
        ex.launch(spec(
            "stubborn",
            "trap '' TERM; while :; do sleep 0.05; done",
        ))
        .unwrap();
        while ex.count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        assert!(ex.kill_now("F0", "stubborn", "killed now"));
        let updates = run_to_end(&mut rx, "stubborn").await;
        assert_eq!(
            updates.last().unwrap(),
            &(ExecutorState::Killed, "killed now".to_string())
        );
        assert!(started.elapsed() < KILL_GRACE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn killed_executor_and_its_children_are_gone() {
        let (_dir, ex, mut rx) = setup();
        ex.launch(spec("k", "sleep 30 & echo $! > child; wait"))
            .unwrap();
        let child_file = ex.sandbox("F0", "k").join("child");
        let mut child = None;
        for _ in 0..200 {
            if let Ok(t) = std::fs::read_to_string(&child_file)
                && let Ok(pid) = t.trim().parse::<i32>()
            {
                child = Some(pid);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let child = child.expect("the script wrote its child's pid");
        assert!(ex.kill("F0", "k", "test kill"));
        let updates = run_to_end(&mut rx, "k").await;
        assert_eq!(
            updates.last().unwrap(),
            &(ExecutorState::Killed, "test kill".to_string())
        );
        // The background child was in the same process group.
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Gone, or a zombie: `start_ticks` answers neither.
        let alive = crate::processes::start_ticks(child).is_some();
        assert!(!alive, "the executor's child survived the kill");
        assert_eq!(ex.count(), 0);
    }

    #[tokio::test]
    async fn kills_and_shutdowns_that_overtake_the_launch_win() {
        let (_dir, ex, mut rx) = setup();
        assert!(!ex.kill("F0", "early", "test kill"));
        ex.launch(spec("early", "sleep 30")).unwrap();
        let updates = run_to_end(&mut rx, "early").await;
        assert_eq!(states(&updates), [ExecutorState::Killed]);
        // The early kill is used up: launching the id again works.
        ex.launch(spec("early", "exit 0")).unwrap();
        assert_eq!(
            run_to_end(&mut rx, "early").await.last().unwrap().0,
            ExecutorState::Finished
        );

        assert_eq!(ex.kill_framework("F0", "shutdown"), 0);
        ex.launch(spec("late", "sleep 30")).unwrap();
        assert_eq!(
            states(&run_to_end(&mut rx, "late").await),
            [ExecutorState::Killed]
        );
        assert_eq!(ex.count(), 0);
    }

    #[tokio::test]
    async fn a_missing_program_fails_and_bad_ids_are_refused() {
        let (_dir, ex, mut rx) = setup();
        let mut s = spec("missing", "");
        s.command.as_mut().unwrap().program = "/nonexistent/program".into();
        ex.launch(s).unwrap();
        let updates = run_to_end(&mut rx, "missing").await;
        assert_eq!(updates.last().unwrap().0, ExecutorState::Failed);
        assert!(
            updates
                .last()
                .unwrap()
                .1
                .contains("cannot start `/nonexistent/program`")
        );
        for bad in ["", ".", "..", "a/b"] {
            let err = ex.launch(spec(bad, "true")).unwrap_err();
            assert!(matches!(err, LaunchError::BadId { .. }), "{err}");
        }
    }
}
