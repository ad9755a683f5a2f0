//! Fake executors for the scheduler's unit tests: they keep the state a real executor keeps
//! where the scheduler can see it — cached blocks, map outputs, being alive — and answer tasks
//! from it without running code: a task without its source whose block is gone misses the
//! cache, a shuffle read from an executor that is dead or lost its outputs fails the fetch. A
//! script makes chosen tasks fail, hang or find their executor dead.

use crate::executors::ExecutorHandle;
use crate::remote_executor::{
    AdoptedBlock, Adoption, BoxFuture, Notice, RemoteExecutor, Unreachable,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tessera_plan::{
    PartitionOrigin, RddId, ReplicaPeer, ShuffleId, StoredBlock, TaskAction, TaskMetrics,
    TaskOutcome, TaskSpec,
};

/// What a script makes of a task.
pub enum Scripted {
    /// The task's code fails with this message.
    Fail(String),
    /// The task never ends (until cancelled).
    Hang,
    /// The executor dies as the task arrives: it never answers again.
    Die,
    /// The task cannot fetch the map outputs it reads from their first holder.
    FailFetch,
    /// A result task succeeds with this result.
    Answer(Vec<u8>),
    /// The task succeeds as usual, but answers only after this long.
    Slow(std::time::Duration),
}

/// One task an executor received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub executor: String,
    pub job_id: u64,
    /// The RDD whose partition the task computes.
    pub rdd: RddId,
    pub partition: u32,
    /// The shuffle a map task writes; `None` for a result task.
    pub writes: Option<ShuffleId>,
    /// Whether the task came with its source.
    pub with_source: bool,
}

type Script = Box<dyn Fn(&Received) -> Option<Scripted> + Send + Sync>;

#[derive(Default)]
struct FakeState {
    dead: bool,
    blocks: HashSet<(RddId, u32)>,
    outputs: HashSet<(ShuffleId, u32)>,
    /// Its directory of host memory, whose blocks outlive it.
    host_memory: Option<String>,
    /// Parts of partitions it adopted, which a task computing one carries on from.
    partials: HashSet<(RddId, u32)>,
}

#[derive(Default)]
struct Cluster {
    executors: BTreeMap<String, FakeState>,
    received: Vec<Received>,
    notices: Vec<(String, Notice)>,
    script: Option<Script>,
    /// The blocks dead executors left in their directories of host memory.
    left_in_host_memory: BTreeMap<String, HashSet<(RddId, u32)>>,
    /// The partitions dead executors were caching when they died, left there in part.
    partials_left: BTreeMap<String, HashSet<(RddId, u32)>>,
    /// Tasks that carried on from part of their partition: (executor, rdd, partition).
    carried_on: Vec<(String, RddId, u32)>,
    /// The accumulator every successful task adds its partition's number to.
    accumulator: Option<u64>,
}

/// Fake executors that see each other (a shuffle read fetches from the others).
#[derive(Clone, Default)]
pub struct FakeCluster(Arc<Mutex<Cluster>>);

impl FakeCluster {
    /// A new executor `id` with `cores` task slots, as the driver registers it.
    pub fn executor(&self, id: &str, cores: u32) -> ExecutorHandle {
        self.0
            .lock()
            .executors
            .insert(id.to_string(), FakeState::default());
        ExecutorHandle {
            host_memory: None,
            id: id.to_string(),
            address: format!("fake://{id}"),
            host: "fake-host".into(),
            pid: 0,
            cores,
            memory_bytes: 0,
            sandbox_files: None,
            client: Arc::new(FakeExecutor {
                id: id.to_string(),
                cluster: self.clone(),
            }),
            slots: ExecutorHandle::slots_for(cores),
        }
    }

    /// A new executor `id` on host `host`, whose cached blocks are kept in host memory and
    /// outlive it.
    pub fn executor_with_host_memory(&self, id: &str, cores: u32, host: &str) -> ExecutorHandle {
        let handle = self.executor(id, cores);
        let dir = format!("fake-memory/{id}");
        if let Some(state) = self.0.lock().executors.get_mut(id) {
            state.host_memory = Some(dir.clone());
        }
        ExecutorHandle {
            host: host.into(),
            host_memory: Some(dir),
            ..handle
        }
    }

    /// From now on, `script` decides the fate of each task as it arrives.
    pub fn script(&self, script: impl Fn(&Received) -> Option<Scripted> + Send + Sync + 'static) {
        self.0.lock().script = Some(Box::new(script));
    }

    /// From now on, every successful task adds its partition's number to accumulator `id`.
    pub fn add_partitions_to(&self, id: u64) {
        self.0.lock().accumulator = Some(id);
    }

    /// Every task received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.0.lock().received.clone()
    }

    /// The tasks of job `job_id` received so far, in order.
    pub fn received_in(&self, job_id: u64) -> Vec<Received> {
        let cluster = self.0.lock();
        let of_job = cluster.received.iter().filter(|r| r.job_id == job_id);
        of_job.cloned().collect()
    }

    /// The tasks that carried on from part of a partition a lost executor left, as
    /// (executor, rdd, partition), in order.
    pub fn carried_on(&self) -> Vec<(String, RddId, u32)> {
        self.0.lock().carried_on.clone()
    }

    /// Every notice delivered so far, with its executor.
    pub fn notices(&self) -> Vec<(String, Notice)> {
        self.0.lock().notices.clone()
    }

    /// `executor` loses its map outputs (its shuffle files) but keeps running.
    pub fn lose_outputs(&self, executor: &str) {
        if let Some(e) = self.0.lock().executors.get_mut(executor) {
            e.outputs.clear();
        }
    }

    /// `executor` drops its cached blocks without telling the driver.
    pub fn evict_all(&self, executor: &str) {
        if let Some(e) = self.0.lock().executors.get_mut(executor) {
            e.blocks.clear();
        }
    }

    /// `executor` dies: it answers nothing from now on, and what it held is gone.
    pub fn kill(&self, executor: &str) {
        let mut cluster = self.0.lock();
        let Some(e) = cluster.executors.get_mut(executor) else {
            return;
        };
        let dead = std::mem::replace(
            e,
            FakeState {
                dead: true,
                ..FakeState::default()
            },
        );
        if let Some(dir) = dead.host_memory {
            cluster.left_in_host_memory.insert(dir, dead.blocks);
        }
    }

    /// Answers `task` on `executor` from the cluster's state.
    fn answer(&self, executor: &str, task: &TaskSpec) -> Answer {
        let mut cluster = self.0.lock();
        if cluster.executors.get(executor).is_none_or(|e| e.dead) {
            return Answer::Now(Err(Unreachable("connection refused".into())));
        }
        let received = Received {
            executor: executor.to_string(),
            job_id: task.job_id,
            rdd: task.chain.steps.last().map_or(0, |s| s.rdd),
            partition: task.partition,
            writes: match &task.action {
                TaskAction::ShuffleWrite { shuffle, .. } => Some(*shuffle),
                TaskAction::Count | TaskAction::Run(_) => None,
            },
            with_source: task.chain.source.is_some(),
        };
        cluster.received.push(received.clone());
        let mut answer = None;
        let mut delay = None;
        match cluster.script.as_ref().and_then(|s| s(&received)) {
            Some(Scripted::Slow(after)) => delay = Some(after),
            Some(Scripted::Fail(message)) => {
                return Answer::Now(Ok(TaskOutcome::Failed { message }));
            }
            Some(Scripted::Hang) => return Answer::Never,
            Some(Scripted::Die) => {
                // It dies partway: what it computed of the first partition the task caches
                // stays in its host memory.
                let first_cached = crate::task_plan::first_cached(&task.chain.steps);
                let dir = cluster.executors[executor].host_memory.clone();
                if let (Some(step), Some(dir), true) =
                    (first_cached, dir, task.chain.source.is_some())
                {
                    let left = cluster.partials_left.entry(dir).or_default();
                    left.insert((step.rdd, step.partition));
                }
                drop(cluster);
                self.kill(executor);
                return Answer::Now(Err(Unreachable("connection reset by peer".into())));
            }
            Some(Scripted::FailFetch) => {
                let reads = task.chain.source.as_ref().map(|s| s.shuffle_reads());
                if let Some((shuffle, _, [first, ..])) = reads.unwrap_or_default().first() {
                    return Answer::Now(Ok(TaskOutcome::FetchFailed {
                        shuffle: *shuffle,
                        executor_id: first.executor_id.clone(),
                        through_agent: first.from_agent,
                        message: "connection refused".into(),
                    }));
                }
            }
            Some(Scripted::Answer(result)) => answer = Some(result),
            None => {}
        }
        let steps = &task.chain.steps;
        let origin = match &task.chain.source {
            None => {
                let here = &cluster.executors[executor].blocks;
                let Some(step) = steps
                    .iter()
                    .rev()
                    .find(|s| here.contains(&(s.rdd, s.partition)))
                else {
                    return Answer::Now(Ok(TaskOutcome::CacheMiss));
                };
                PartitionOrigin::Cached { rdd: step.rdd }
            }
            Some(source) => {
                for (shuffle, _, locations) in source.shuffle_reads() {
                    for location in locations {
                        let holder = cluster.executors.get(&location.executor_id);
                        let holds = |m: &u32| {
                            holder.is_some_and(|h| !h.dead && h.outputs.contains(&(shuffle, *m)))
                        };
                        if !location.map_partitions.iter().all(holds) {
                            return Answer::Now(Ok(TaskOutcome::FetchFailed {
                                shuffle,
                                executor_id: location.executor_id.clone(),
                                through_agent: location.from_agent,
                                message: "no such map output".into(),
                            }));
                        }
                    }
                }
                let first_cached = crate::task_plan::first_cached(steps);
                let here = cluster.executors.get_mut(executor).expect("checked above");
                match first_cached {
                    Some(step) if here.partials.remove(&(step.rdd, step.partition)) => {
                        let carried = (executor.to_string(), step.rdd, step.partition);
                        cluster.carried_on.push(carried);
                        PartitionOrigin::Resumed {
                            rdd: step.rdd,
                            records: 1,
                        }
                    }
                    _ => PartitionOrigin::Computed,
                }
            }
        };
        let mut stored = Vec::new();
        for step in steps.iter().filter(|s| s.persist.is_some()) {
            let here = cluster.executors.get_mut(executor).expect("checked above");
            if here.blocks.insert((step.rdd, step.partition)) {
                let level = step.persist.expect("filtered");
                // Copied to the peers the driver named, those alive.
                let peers = task.replicate_to.iter().take(level.replication() - 1);
                let replicas = peers
                    .filter_map(|peer| {
                        let copy = cluster.executors.get_mut(&peer.executor_id)?;
                        (!copy.dead).then(|| {
                            copy.blocks.insert((step.rdd, step.partition));
                            peer.executor_id.clone()
                        })
                    })
                    .collect();
                stored.push(StoredBlock {
                    rdd: step.rdd,
                    partition: step.partition,
                    bytes: 1,
                    level,
                    replicas,
                });
            }
        }
        let here = cluster.executors.get_mut(executor).expect("checked above");
        let result = match &task.action {
            TaskAction::ShuffleWrite { shuffle, .. } => {
                here.outputs.insert((*shuffle, task.partition));
                Vec::new()
            }
            TaskAction::Count | TaskAction::Run(_) => answer.unwrap_or_else(|| {
                let rdd = steps.last().map_or(0, |s| s.rdd);
                format!("{rdd}/{}", task.partition).into_bytes()
            }),
        };
        let accumulator_updates = cluster
            .accumulator
            .map(|id| (id, task.partition.to_le_bytes().to_vec()))
            .into_iter()
            .collect();
        let outcome = Ok(TaskOutcome::Success {
            result,
            metrics: TaskMetrics {
                executor_id: executor.to_string(),
                executor_pid: 0,
                origin,
                records: 1,
                run_micros: 1,
                slot_wait_micros: 0,
                stored,
                accumulator_updates,
                evicted: Vec::new(),
                not_cached: Vec::new(),
                shuffle_read_bytes: 0,
                shuffle_write_bytes: 0,
                spilled_bytes: 0,
                threads: 1,
            },
        });
        match delay {
            Some(after) => Answer::Later(after, outcome),
            None => Answer::Now(outcome),
        }
    }
}

enum Answer {
    Now(Result<TaskOutcome, Unreachable>),
    Later(std::time::Duration, Result<TaskOutcome, Unreachable>),
    Never,
}

/// One fake executor of a [`FakeCluster`].
struct FakeExecutor {
    id: String,
    cluster: FakeCluster,
}

impl RemoteExecutor for FakeExecutor {
    fn run_task(&self, task: &TaskSpec) -> BoxFuture<'_, Result<TaskOutcome, Unreachable>> {
        let answer = self.cluster.answer(&self.id, task);
        Box::pin(async move {
            // Answers come after a turn of the runtime, as over a network.
            tokio::task::yield_now().await;
            match answer {
                Answer::Now(outcome) => outcome,
                Answer::Later(after, outcome) => {
                    tokio::time::sleep(after).await;
                    outcome
                }
                Answer::Never => std::future::pending().await,
            }
        })
    }

    fn notify(&self, notice: Notice) -> BoxFuture<'_, ()> {
        let mut cluster = self.cluster.0.lock();
        cluster.notices.push((self.id.clone(), notice));
        if let Some(here) = cluster.executors.get_mut(&self.id) {
            match notice {
                Notice::CancelJob(_) | Notice::DropBroadcast(_) => {}
                Notice::DropRdd(rdd) => here.blocks.retain(|(r, _)| *r != rdd),
                Notice::DropShuffle(shuffle) => here.outputs.retain(|(s, _)| *s != shuffle),
            }
        }
        Box::pin(async {})
    }

    fn copy_block(
        &self,
        rdd: RddId,
        partition: u32,
        to: &ReplicaPeer,
    ) -> BoxFuture<'_, Result<(), String>> {
        let mut cluster = self.cluster.0.lock();
        let alive_with = |state: Option<&FakeState>| {
            state.is_some_and(|s| !s.dead && s.blocks.contains(&(rdd, partition)))
        };
        let copied = if !alive_with(cluster.executors.get(&self.id)) {
            Err(format!("{} holds no copy", self.id))
        } else {
            match cluster.executors.get_mut(&to.executor_id) {
                Some(peer) if !peer.dead => {
                    peer.blocks.insert((rdd, partition));
                    Ok(())
                }
                _ => Err(format!("{} is gone", to.executor_id)),
            }
        };
        Box::pin(async move { copied })
    }

    fn adopt_blocks<'a>(
        &'a self,
        from: &'a str,
        blocks: &'a [(RddId, u32)],
    ) -> BoxFuture<'a, Result<Adoption, Unreachable>> {
        let mut cluster = self.cluster.0.lock();
        let left = cluster.left_in_host_memory.remove(from).unwrap_or_default();
        let partial = cluster.partials_left.remove(from).unwrap_or_default();
        let adopted = match cluster.executors.get_mut(&self.id) {
            Some(here) if !here.dead && here.host_memory.is_some() => {
                let adopted: Vec<AdoptedBlock> = blocks
                    .iter()
                    .filter(|block| left.contains(block))
                    .map(|&(rdd, partition)| AdoptedBlock {
                        rdd,
                        partition,
                        bytes: 100,
                    })
                    .collect();
                here.blocks
                    .extend(adopted.iter().map(|a| (a.rdd, a.partition)));
                here.partials.extend(partial.iter().copied());
                Ok(Adoption {
                    adopted,
                    partial: partial.into_iter().collect(),
                })
            }
            _ => Err(Unreachable(format!("{} cannot adopt", self.id))),
        };
        Box::pin(async move { adopted })
    }
}
