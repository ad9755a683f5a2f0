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
//! predecessor fetched. Each executor also gets a directory of host memory,
//! `MEMORY_DIR/tessera-<agent>/<framework>/<executor>` (`TESSERA_MEMORY_DIR`, on tmpfs), where
//! it keeps cached partitions that outlive it, for another executor of its framework on this
//! host to adopt if it is lost. What an executor left there goes
//! [`framework_dirs::FRAMEWORK_DIRS_GRACE`] after it ended; the framework's directories go as
//! long after its last executor here ended, if none was launched again meanwhile.
//!
//! Each runs in a [`Container`] of the agent's [`Isolator`]: the child enters it before exec,
//! a watcher reads what it uses every [`WATCH_INTERVAL`] (for the heartbeats) and kills it
//! when it goes past its memory; its end is then FAILED with "memory limit N MiB exceeded".
//!
//! The table of running executors and their kills are here; launching and adopting them
//! ([`launch`], [`supervision`]), what the checkpoint and a master registering again are told
//! ([`checkpointing`]), the framework's shared directories ([`framework_dirs`]) and messages
//! ([`messages`]) have files of their own.

mod checkpointing;
mod framework_dirs;
mod launch;
mod messages;
mod supervision;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster_proto::master::{
    ExecutorReason, ExecutorState, ExecutorUsage, FrameworkInfo, Resources, StatusUpdate,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::checkpoint;
use crate::ending::Ending;
use crate::isolation::{IsolationMode, Isolator, Usage};
use crate::sandbox::sandbox_in;
use crate::status_updates::PendingUpdates;

pub use launch::{LaunchError, LaunchSpec};
pub use messages::MessageError;

/// Between SIGTERM and SIGKILL when an executor is killed.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// A running executor, as the table keeps it.
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

#[derive(Default)]
struct EarlyKills {
    /// Executors killed before they were launched here.
    executors: HashSet<(String, String)>,
    /// Frameworks shut down here; their late launches are refused.
    frameworks: HashSet<String>,
}

/// Running executors by (framework id, executor id).
type Table = HashMap<(String, String), Running>;

/// The executors running on this agent.
pub struct Executors {
    work_dir: PathBuf,
    /// Where the frameworks' directories of host memory go, if anywhere.
    memory_root: Option<PathBuf>,
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

impl Executors {
    pub(crate) fn new(
        work_dir: PathBuf,
        memory_root: Option<PathBuf>,
        host: String,
        updates: UnboundedSender<StatusUpdate>,
        isolator: Isolator,
        pending: Arc<PendingUpdates>,
    ) -> Arc<Self> {
        Arc::new(Executors {
            checkpoint: checkpoint::Writer::new(&work_dir),
            memory_root,
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
            Some(work_dir.join("memory")),
            "127.0.0.1".into(),
            tx,
            crate::isolation::Isolator::Posix,
            pending.clone(),
        );
        (executors, pending, rx)
    }
}
