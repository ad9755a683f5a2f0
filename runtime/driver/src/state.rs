//! The driver's state, shared by the cell server, the DAG and task schedulers and the
//! executor service: one value that every part of the driver reads, and the few operations
//! that change several of its books at once (an executor lost, a task's metrics recorded,
//! what no RDD reaches dropped).

use crate::jobs::FailedJob;
use crate::map_outputs::FetchFailure;
use crate::{
    adoption, agent_files, artifacts, blocks, cell_input, cleaner, displays, executors, frame_plan,
    frame_schemas, jobs, lineage, locality, map_outputs, remote_executor, shared_values,
    side_files, speculation, task_times, text_splits,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_plan::{RddId, TaskMetrics};

/// State shared by the cell server, the scheduler and the executor service.
pub(crate) struct DriverState {
    pub lineage: lineage::Lineage,
    /// The schema of every DataFrame.
    pub frames: frame_schemas::FrameSchemas,
    pub artifacts: Arc<artifacts::ArtifactStore>,
    pub side_files: side_files::SideFiles,
    pub displays: displays::Displays,
    pub input: cell_input::CellInput,
    pub executors: Arc<executors::Executors>,
    pub blocks: blocks::BlockMap,
    /// Copies of cached partitions being made again after an executor was lost.
    pub copies_under_way: blocks::CopiesUnderWay,
    /// The RDDs the user was told a partition of could not be cached.
    pub not_cached_told: blocks::NotCachedTold,
    pub map_outputs: map_outputs::MapOutputTracker,
    /// The agents that serve copies of lost executors' map outputs.
    pub agent_files: agent_files::AgentFiles,
    pub shared_values: Arc<shared_values::SharedValues>,
    pub jobs: jobs::JobTracker,
    pub token: u64,
    /// Where the executors' logs are, for messages about executors that did not come.
    pub executor_logs: String,
    /// This host, where the session found the files it reads.
    pub host: String,
    pub locality_wait: std::time::Duration,
    /// Whether and when slow tasks get a second attempt (`TESSERA_SPECULATION`, off).
    pub speculation: Option<speculation::Speculation>,
    /// Largest join side broadcast rather than shuffled (`TESSERA_BROADCAST_JOIN_BYTES`).
    pub broadcast_join_bytes: u64,
    /// Largest split of a DataFrame's text file (`TESSERA_FRAME_SPLIT_BYTES`, Spark SQL's
    /// `spark.sql.files.maxPartitionBytes`).
    pub frame_split_bytes: u64,
    /// Whether copies of cached partitions lost with an executor are made again
    /// (`TESSERA_PROACTIVE_REPLICATION=1`, Spark's `spark.storage.replication.proactive`).
    pub proactive_replication: bool,
    /// Executors found lost, each once: whoever finds a loss first deals with it (its blocks
    /// adopted, its books forgotten) while the others who found it wait for that to end.
    losses: Mutex<std::collections::HashMap<String, Arc<tokio::sync::OnceCell<()>>>>,
    /// What lost executors left in host memory with nobody on their host to adopt it.
    orphans: adoption::Orphans,
    task_ids: AtomicU64,
    /// Why the running cell panicked, if it did, and the last job of it that did not
    /// succeed; taken by the session after each cell.
    pub cell_panic: Mutex<Option<String>>,
    pub failed_job: Mutex<Option<FailedJob>>,
    /// Where every finished task's metrics are appended (`--task-metrics`), if anywhere.
    pub task_metrics_log: Option<Mutex<std::fs::File>>,
    /// Set while tasks wait for an executor: a session short of executors asks the master for
    /// offers again.
    pub executors_wanted: std::sync::atomic::AtomicBool,
    /// Set once the session has waited for its first executors: executors count as idle
    /// only from then on (the session's start is not idleness).
    pub started: std::sync::atomic::AtomicBool,
}

/// The bytes environment variable `name` gives, or `default` if it is unset or not a number.
fn bytes_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(default)
}

impl DriverState {
    /// Notes that a task waits for a core (or for any executor): a session short of the
    /// executors it wants asks the master for offers again.
    pub(crate) fn want_executors(&self) {
        self.executors_wanted
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A driver's state with nothing defined and no executor, its side files under `work_dir`.
    pub(crate) fn new(
        work_dir: &std::path::Path,
        executor_logs: String,
    ) -> anyhow::Result<DriverState> {
        Ok(DriverState {
            lineage: Default::default(),
            frames: Default::default(),
            artifacts: Default::default(),
            side_files: side_files::SideFiles::new(side_files::side_files_dir(work_dir)),
            displays: Default::default(),
            executors: Default::default(),
            blocks: Default::default(),
            losses: Default::default(),
            orphans: Default::default(),
            copies_under_way: Default::default(),
            not_cached_told: Default::default(),
            map_outputs: Default::default(),
            agent_files: Default::default(),
            shared_values: Default::default(),
            jobs: Default::default(),
            token: tessera_credentials::random_u64()?,
            executor_logs,
            host: tessera_wire::hostname(),
            locality_wait: locality::DEFAULT_LOCALITY_WAIT,
            speculation: speculation::Speculation::from_env(),
            broadcast_join_bytes: bytes_from_env(
                "TESSERA_BROADCAST_JOIN_BYTES",
                frame_plan::BROADCAST_JOIN_BYTES,
            ),
            frame_split_bytes: bytes_from_env(
                "TESSERA_FRAME_SPLIT_BYTES",
                text_splits::FRAME_SPLIT_BYTES,
            ),
            proactive_replication: std::env::var("TESSERA_PROACTIVE_REPLICATION")
                .is_ok_and(|v| v == "1" || v == "true"),
            task_ids: AtomicU64::new(0),
            cell_panic: Mutex::new(None),
            input: cell_input::CellInput::default(),
            failed_job: Mutex::new(None),
            executors_wanted: Default::default(),
            started: Default::default(),
            task_metrics_log: None,
        })
    }

    pub fn next_task_id(&self) -> u64 {
        self.task_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a finished task (which returned `result_bytes` to the driver) in its job, and
    /// logs its metrics if asked to. `stage` is `result`, or `map:<shuffle>` for a shuffle's
    /// map task; `sent` is when its attempt was sent, on this process's clocks.
    pub fn record_metrics(
        &self,
        job_id: u64,
        stage: &str,
        partition: u32,
        locality: locality::Locality,
        (metrics, result_bytes): (TaskMetrics, u64),
        sent: task_times::Sent,
    ) {
        if let Some(log) = &self.task_metrics_log {
            use std::io::Write;
            let origin = match &metrics.origin {
                tessera_plan::PartitionOrigin::Computed => "computed".to_string(),
                tessera_plan::PartitionOrigin::Cached { rdd } => format!("cached:{rdd}"),
                tessera_plan::PartitionOrigin::Resumed { rdd, records } => {
                    format!("resumed:{rdd}:{records}")
                }
            };
            let _ = writeln!(
                log.lock(),
                r#"{{"job":{job_id},"stage":"{stage}","partition":{partition},"locality":"{locality}","executor":"{}","pid":{},"origin":"{origin}","records":{},"micros":{},"slot_wait_micros":{},"scheduler_delay_micros":{},"shuffle_read":{},"shuffle_written":{},"spilled":{},"threads":{},"sent_unix_micros":{},"finished_unix_micros":{}}}"#,
                metrics.executor_id,
                metrics.executor_pid,
                metrics.records,
                metrics.run_micros,
                metrics.slot_wait_micros,
                sent.scheduler_delay(&metrics).as_micros(),
                metrics.shuffle_read_bytes,
                metrics.shuffle_write_bytes,
                metrics.spilled_bytes,
                metrics.threads,
                task_times::unix_micros(sent.at),
                // When the driver had the result: with `micros`, where the task sat in time.
                task_times::unix_micros(std::time::SystemTime::now()),
            );
        }
        self.jobs.task_done(
            job_id,
            jobs::TaskCounts {
                from_cache: matches!(metrics.origin, tessera_plan::PartitionOrigin::Cached { .. }),
                records: metrics.records,
                shuffle_written: metrics.shuffle_write_bytes,
                shuffle_read: metrics.shuffle_read_bytes,
                result_bytes,
            },
        );
    }

    /// An executor died or became unreachable: its cached partitions are gone with it, but
    /// those another executor on its host adopts from host memory ([`adoption`]) and those
    /// kept at a replicated level (read from their other copy); so are its shuffle outputs,
    /// unless its agent serves their copies. Returns once that is done, whoever found the loss
    /// first, so that a task tried again after the loss finds the blocks where they are now.
    pub async fn lose_executor(&self, id: &str) {
        let loss = {
            let mut losses = self.losses.lock();
            match losses.get(id) {
                Some(loss) => loss.clone(),
                None if self.executors.get(id).is_some() => {
                    losses.entry(id.to_string()).or_default().clone()
                }
                // Not live (yet): an executor lost while it adopts, before it joins, is lost
                // once it has joined and a task finds it gone.
                None => return,
            }
        };
        loss.get_or_init(|| self.lose_executor_once(id)).await;
    }

    async fn lose_executor_once(&self, id: &str) {
        let Some(lost) = self.executors.remove(id) else {
            return;
        };
        self.adopt_host_memory(&lost).await;
        self.blocks.forget_executor(id);
        match &lost.sandbox_files {
            Some(agent_files) => {
                tracing::warn!(
                    executor = id,
                    "executor lost; its cached partitions neither adopted nor copied on \
                     another executor will be recomputed, its shuffle outputs are read through \
                     its agent at {agent_files}"
                );
                self.map_outputs.keep_served(id, agent_files);
            }
            None => {
                tracing::warn!(
                    executor = id,
                    "executor lost; its shuffle outputs, and its cached partitions neither \
                     adopted nor copied on another executor, will be recomputed"
                );
                self.map_outputs.forget_executor(id);
            }
        }
    }

    /// Has another executor on `lost`'s host adopt the blocks it kept in host memory, and the
    /// parts of the partitions it was computing (asked for even when it held no block: it may
    /// have died in the job that caches them).
    async fn adopt_host_memory(&self, lost: &executors::ExecutorHandle) {
        let Some(from) = &lost.host_memory else {
            return;
        };
        let held = self.blocks.held_by(&lost.id);
        let live = self.executors.list();
        let survivors: Vec<adoption::Survivor> = live
            .iter()
            .map(|e| adoption::Survivor {
                id: &e.id,
                host: adoption::host_of(&e.host, &e.address),
                keeps_host_memory: e.host_memory.is_some(),
                memory_bytes: e.memory_bytes,
                cached_bytes: self.blocks.bytes_held_by(&e.id),
            })
            .collect();
        let lost_host = adoption::host_of(&lost.host, &lost.address);
        match adoption::adopter(&lost_host, &survivors)
            .and_then(|id| live.iter().find(|e| e.id == id))
        {
            Some(adopter) => self.adopt_into(adopter, &lost.id, from, &held).await,
            None => self.orphans.leave(adoption::Orphan {
                lost: lost.id.clone(),
                host: lost_host,
                from: from.clone(),
                blocks: held,
                since: std::time::Instant::now(),
            }),
        }
    }

    /// Has `adopter` adopt `blocks`, which the lost executor `lost` kept in host memory at
    /// `from`, and notes where they are now.
    async fn adopt_into(
        &self,
        adopter: &executors::ExecutorHandle,
        lost: &str,
        from: &str,
        blocks: &[(RddId, u32)],
    ) {
        let adopted = tokio::time::timeout(
            adoption::ADOPTION_TIMEOUT,
            adopter.client.adopt_blocks(from, blocks),
        )
        .await
        .unwrap_or_else(|_| Err(remote_executor::Unreachable("no answer in time".into())));
        match adopted {
            Ok(adoption) => {
                for block in &adoption.adopted {
                    self.blocks
                        .add(&adopter.id, (block.rdd, block.partition), block.bytes);
                }
                for &partial in &adoption.partial {
                    self.blocks.add_partial(&adopter.id, partial);
                }
                tracing::info!(
                    executor = %lost,
                    adopter = %adopter.id,
                    "{} of the {} cached partitions of the lost executor adopted from host \
                     memory, and part of {} it was computing",
                    adoption.adopted.len(),
                    blocks.len(),
                    adoption.partial.len()
                );
            }
            Err(e) => tracing::warn!(
                executor = %lost,
                adopter = %adopter.id,
                "the lost executor's cached partitions could not be adopted, and will be \
                 computed again: {}",
                e.0
            ),
        }
    }

    /// Takes a newly registered executor in. It first adopts what lost executors on its host
    /// left in host memory with nobody there to adopt it (it is their replacement, typically),
    /// those partitions nobody computed again meanwhile; then it joins the live executors and
    /// takes tasks, which find the partitions there.
    pub async fn welcome_executor(&self, executor: executors::ExecutorHandle) {
        if executor.host_memory.is_some() {
            let host = adoption::host_of(&executor.host, &executor.address);
            let orphans = self.orphans.take_for(&host, std::time::Instant::now());
            let persisted: std::collections::BTreeSet<RddId> =
                self.lineage.persisted().iter().map(|p| p.0).collect();
            for orphan in orphans {
                let missing: Vec<(RddId, u32)> = orphan
                    .blocks
                    .into_iter()
                    .filter(|&(rdd, partition)| {
                        persisted.contains(&rdd) && self.blocks.locations(rdd, partition).is_empty()
                    })
                    .collect();
                // Asked even with no block missing: the lost executor may have left parts of
                // partitions it was computing.
                self.adopt_into(&executor, &orphan.lost, &orphan.from, &missing)
                    .await;
            }
        }
        self.executors.add(executor);
    }

    /// A reducer could not fetch `shuffle`'s outputs (see
    /// [`map_outputs::MapOutputTracker::fetch_failed`]).
    pub fn fetch_failed(&self, failure: &FetchFailure, shuffle: tessera_plan::ShuffleId) {
        let executor = &failure.executor;
        let read_from = if failure.through_agent {
            map_outputs::ReadFrom::Agent
        } else {
            let agent_files = self.executors.get(executor).and_then(|e| e.sandbox_files);
            map_outputs::ReadFrom::Executor { agent_files }
        };
        self.map_outputs.fetch_failed(executor, shuffle, read_from);
    }

    /// What an executor the session released (or lost) held is no longer there.
    pub fn forget_executor(&self, id: &str) {
        self.executors.remove(id);
        self.blocks.forget_executor(id);
        self.map_outputs.forget_executor(id);
    }

    /// Drops from the executors the map outputs, cached partitions and broadcast join sides
    /// that no RDD of `roots` reaches (see [`cleaner`]); returns what went.
    pub async fn drop_unreachable(&self, roots: &[RddId]) -> cleaner::Unreachable {
        let mut roots = roots.to_vec();
        roots.extend(self.frames.tables().into_values());
        let mut gone = cleaner::unreachable(&self.lineage.nodes(), &roots);
        gone.shuffles.retain(|s| self.map_outputs.holds_shuffle(*s));
        for &shuffle in &gone.shuffles {
            let served = self.map_outputs.forget_shuffle(shuffle);
            self.executors
                .notify_all(remote_executor::Notice::DropShuffle(shuffle))
                .await;
            for copies in served {
                self.agent_files.remove(shuffle, &copies).await;
            }
        }
        gone.broadcasts
            .retain(|&broadcast| self.shared_values.release(broadcast));
        for &broadcast in &gone.broadcasts {
            self.executors
                .notify_all(remote_executor::Notice::DropBroadcast(broadcast))
                .await;
        }
        for &rdd in &gone.persisted {
            // Unpersisted, as Spark's cleaner does: `:storage` no longer lists it.
            let _ = self.lineage.set_persist(rdd, None);
            if !self.blocks.cached_partitions(rdd).is_empty() {
                self.drop_cached(rdd).await;
            }
        }
        if gone != cleaner::Unreachable::default() {
            tracing::info!(
                shuffles = ?gone.shuffles,
                cached = ?gone.persisted,
                broadcasts = ?gone.broadcasts,
                "dropped what no RDD handle reaches"
            );
        }
        gone
    }

    pub async fn drop_cached(&self, rdd: RddId) {
        self.blocks.forget_rdd(rdd);
        self.executors
            .notify_all(remote_executor::Notice::DropRdd(rdd))
            .await;
    }
}
