//! Watching an executor's process until it ends — one this agent launched, or one adopted from
//! the agent that ran before it — then reporting how it ended.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;

use tessera_cluster_proto::master::Resources;

use super::{Executors, Running};
use crate::checkpoint::CheckpointedExecutor;
use crate::ending::{Kill, classify};
use crate::isolation::{Container, Limitation, Limits, Usage, WATCH_INTERVAL};

/// The process of a running executor: a child of this agent, or one adopted from the agent
/// that ran before it (not a child: its exit status cannot be waited for).
pub(super) enum Process {
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

impl Executors {
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
    pub(super) fn supervise(
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
            this.remove_host_memory_later(&key.0, &key.1);
            this.remove_framework_dirs_later(key.0);
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
}
