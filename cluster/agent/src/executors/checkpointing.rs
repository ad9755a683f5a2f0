//! What the agent keeps of its executors across its own restarts: the checkpoint it writes,
//! and what it tells a master it registers with again.

use tessera_cluster_proto::master::{ExecutorState, FrameworkInfo, RecoveredExecutor};

use super::Executors;
use crate::checkpoint::{self, Checkpoint, CheckpointedExecutor};
use crate::status_updates::StreamKey;

impl Executors {
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
                // The writer numbers it.
                sequence: 0,
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
}
