//! Runs jobs: the shuffles a job reads first (see [`dag`]), then one task per partition, each
//! placed as close to its data as a free slot allows (see [`locality`]: the executor caching
//! the partition, then one on the host holding its input file, then any), and retried on
//! another attempt when it fails.

use crate::DriverState;
use crate::dag;
use crate::executors::ExecutorHandle;
use crate::jobs::JobState;
use crate::locality::{Locality, Preferences};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_plan::{PipelineStep, RddId, TaskAction, TaskOutcome, TaskSource, TaskSpec};
use tessera_wire::executor::{CancelJobRequest, RunTaskRequest};
use tokio::sync::OwnedSemaphorePermit;

/// Attempts per task before the job fails, as in Spark (`spark.task.maxFailures`).
pub const MAX_TASK_ATTEMPTS: u32 = 4;
/// How long a task waits at each locality level by default, as Spark's `spark.locality.wait`.
pub const DEFAULT_LOCALITY_WAIT: Duration = Duration::from_secs(3);
/// How long a job waits for its first executor.
pub const EXECUTOR_WAIT: Duration = Duration::from_secs(120);

pub async fn run_job(
    state: Arc<DriverState>,
    rdd: RddId,
    action: TaskAction,
    partitions: Option<Vec<u32>>,
    description: String,
) -> Result<Vec<Vec<u8>>, String> {
    let all = state.lineage.num_partitions(rdd)?;
    let partitions = partitions.unwrap_or_else(|| (0..all).collect());
    // A lineage the plan cannot read fails the job below, where the job is on record.
    let planned = dag::planned_stages(&state, rdd).unwrap_or(1);
    let (job_id, mut cancelled) = state
        .jobs
        .start(description, partitions.len() as u32, planned);
    // Dropping `stages` (on cancellation) aborts every task it spawned.
    let stages = async {
        dag::compute_parent_shuffles(state.clone(), job_id, rdd).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, partition) in partitions.iter().copied().enumerate() {
            let (state, action) = (state.clone(), action.clone());
            tasks.spawn(async move {
                (
                    index,
                    run_task(&state, job_id, rdd, partition, action).await,
                )
            });
        }
        let mut results = vec![Vec::new(); partitions.len()];
        while let Some(next) = tasks.join_next().await {
            match next {
                Ok((index, Ok(done))) => results[index] = done.result,
                Ok((_, Err(message))) => return Err(message),
                Err(e) => return Err(format!("a task's scheduler failed: {e}")),
            }
        }
        Ok(results)
    };
    let outcome = tokio::select! {
        outcome = stages => outcome.map_err(|message| format!("Job {job_id} failed: {message}")),
        _ = cancelled.wait_for(|c| *c) => Err(format!("Job {job_id} was cancelled")),
    };
    if outcome.is_err() {
        for executor in state.executors.list() {
            let _ = executor
                .client
                .clone()
                .cancel_job(CancelJobRequest { job_id })
                .await;
        }
    }
    match outcome {
        Ok(results) => {
            state.jobs.finish(job_id, JobState::Succeeded);
            Ok(results)
        }
        Err(message) => {
            let cancelled = *cancelled.borrow();
            state.jobs.finish(
                job_id,
                if cancelled {
                    JobState::Cancelled
                } else {
                    JobState::Failed(message.clone())
                },
            );
            // The cell receives `message` as an error; the session tells a failed job from a
            // panic of its own by it.
            *state.failed_job.lock() = Some(crate::FailedJob {
                message: message.clone(),
                cancelled,
            });
            Err(message)
        }
    }
}

/// A task that succeeded: where it ran and what it returned.
pub struct TaskDone {
    pub executor_id: String,
    pub result: Vec<u8>,
}

/// Runs the task that computes `partition` of `rdd` and applies `action` to it, retrying it on
/// failure; a task that reads a shuffle first has the shuffle's missing map outputs computed.
pub async fn run_task(
    state: &Arc<DriverState>,
    job_id: u64,
    rdd: RddId,
    partition: u32,
    action: TaskAction,
) -> Result<TaskDone, String> {
    let pipeline = state.lineage.pipeline(rdd, partition)?;
    // Executors caching a step of the task's own chain get no source; those caching a step of
    // a concatenated chain get the sources of the other chains.
    let holding_chain = preferred_executors(state, &pipeline.steps, None);
    let preferences = Preferences {
        executors: preferred_executors(state, &pipeline.steps, Some(&pipeline.source)),
        hosts: if reads_files(&pipeline.source) {
            vec![state.host.clone()]
        } else {
            Vec::new()
        },
    };
    let mut failures = Vec::new();
    let mut attempt = 0;
    let mut fetch_failures = 0;
    let mut ship_source = false;
    while attempt < MAX_TASK_ATTEMPTS {
        let (executor, slot, locality) = acquire_executor(state, &preferences, partition).await?;
        let cached_there = !ship_source && holding_chain.contains(&executor.id);
        let mut source = (!cached_there).then(|| {
            let mut source = pipeline.source.clone();
            if !ship_source {
                leave_out_cached_chains(state, &executor.id, &mut source);
            }
            source
        });
        if let Err(shuffle) = locate_map_outputs(state, source.as_mut()) {
            // Computing the missing map outputs needs task slots of its own.
            drop(slot);
            let live: Vec<String> = state.executors.list().into_iter().map(|e| e.id).collect();
            state.map_outputs.forget_all_but(&live, shuffle);
            dag::compute_shuffle(state.clone(), job_id, shuffle).await?;
            continue;
        }
        let _slot = slot;
        let spec = TaskSpec {
            job_id,
            task_id: state.next_task_id(),
            attempt,
            partition,
            source,
            steps: pipeline.steps.clone(),
            action: action.clone(),
            files: state.side_files.list(),
        };
        let task = bincode::serialize(&spec).map_err(|e| format!("cannot encode task: {e}"))?;
        match executor
            .client
            .clone()
            .run_task(RunTaskRequest { task })
            .await
        {
            Ok(reply) => match tessera_plan::decode_outcome(&reply.into_inner().outcome) {
                Ok(TaskOutcome::Success { result, metrics }) => {
                    state.blocks.record(&executor.id, &metrics.stored);
                    state.blocks.forget(&executor.id, &metrics.evicted);
                    // Only a successful attempt's updates count, once.
                    state
                        .shared_values
                        .accumulate(metrics.accumulator_updates.clone());
                    let stage = match &action {
                        TaskAction::ShuffleWrite { shuffle, .. } => format!("map:{shuffle}"),
                        TaskAction::Count | TaskAction::Run(_) => "result".to_string(),
                    };
                    state.record_metrics(
                        job_id,
                        &stage,
                        partition,
                        locality,
                        metrics,
                        result.len() as u64,
                    );
                    return Ok(TaskDone {
                        executor_id: executor.id,
                        result,
                    });
                }
                Ok(TaskOutcome::CacheMiss) => {
                    // Not a failure: the block went away after the block map heard of it.
                    ship_source = true;
                    continue;
                }
                Ok(TaskOutcome::FetchFailed {
                    shuffle,
                    executor_id,
                    message,
                }) => {
                    // Not the task's fault: the map outputs on `executor_id` are lost. They
                    // are computed again (the map stage is resubmitted) before the next try.
                    tracing::warn!(shuffle, executor = %executor_id, %message, "shuffle fetch failed");
                    state
                        .map_outputs
                        .forget_executor(&executor_id, Some(shuffle));
                    fetch_failures += 1;
                    if fetch_failures >= MAX_TASK_ATTEMPTS {
                        return Err(format!(
                            "task for partition {partition} could not fetch the output of shuffle {shuffle} {MAX_TASK_ATTEMPTS} times; most recent failure from executor {executor_id}: {message}"
                        ));
                    }
                    continue;
                }
                Ok(TaskOutcome::Failed { message }) => {
                    failures.push((executor.id.clone(), message))
                }
                Err(e) => failures.push((executor.id.clone(), e.to_string())),
            },
            Err(status) => {
                // The executor is gone or unreachable: what it cached is lost with it.
                failures.push((
                    executor.id.clone(),
                    format!("executor lost: {}", status.message()),
                ));
                state.lose_executor(&executor.id);
            }
        }
        attempt += 1;
    }
    let (executor, message) = failures.pop().expect("at least one attempt ran");
    Err(format!(
        "task for partition {partition} failed {MAX_TASK_ATTEMPTS} times; most recent failure on executor {executor}: {message}"
    ))
}

/// Fills in where the map outputs of every shuffle `source` reads are; the first shuffle with
/// an output missing is the error.
fn locate_map_outputs(state: &DriverState, source: Option<&mut TaskSource>) -> Result<(), RddId> {
    match source {
        Some(TaskSource::ShuffleRead {
            shuffle, locations, ..
        }) => {
            let address_of = |id: &str| state.executors.get(id).map(|e| e.address.clone());
            *locations = state
                .map_outputs
                .locations(*shuffle, address_of)
                .ok_or(*shuffle)?;
            Ok(())
        }
        Some(TaskSource::Concat(chains)) => chains
            .iter_mut()
            .try_for_each(|chain| locate_map_outputs(state, chain.source.as_mut())),
        _ => Ok(()),
    }
}

/// In a concatenation, drops the sources of the chains that `executor` caches a step of: it
/// resumes them from its cache (or answers CacheMiss).
fn leave_out_cached_chains(state: &DriverState, executor: &str, source: &mut TaskSource) {
    if let TaskSource::Concat(chains) = source {
        for chain in chains {
            let cached = chain.steps.iter().any(|step| {
                step.persist.is_some()
                    && state
                        .blocks
                        .locations(step.rdd, step.partition)
                        .iter()
                        .any(|e| e == executor)
            });
            if cached {
                chain.source = None;
            } else if let Some(source) = &mut chain.source {
                leave_out_cached_chains(state, executor, source);
            }
        }
    }
}

/// Executors holding the partition of the last cached step of the task's chain; failing that,
/// those holding a cached step of one of the chains a partitionwise union concatenates.
fn preferred_executors(
    state: &DriverState,
    steps: &[PipelineStep],
    source: Option<&TaskSource>,
) -> Vec<String> {
    let cached = steps
        .iter()
        .rev()
        .filter(|step| step.persist.is_some())
        .map(|step| state.blocks.locations(step.rdd, step.partition))
        .find(|locations| !locations.is_empty());
    match (cached, source) {
        (Some(locations), _) => locations,
        (None, Some(TaskSource::Concat(chains))) => chains
            .iter()
            .map(|c| preferred_executors(state, &c.steps, c.source.as_ref()))
            .find(|locations| !locations.is_empty())
            .unwrap_or_default(),
        (None, _) => Vec::new(),
    }
}

/// Whether the task reads files (text splits, checkpoints) that are on the session's host.
fn reads_files(source: &TaskSource) -> bool {
    match source {
        TaskSource::TextSplit { .. } | TaskSource::SavedPartition { .. } => true,
        TaskSource::Concat(chains) => chains
            .iter()
            .any(|chain| chain.source.as_ref().is_some_and(reads_files)),
        TaskSource::Records { .. } | TaskSource::ShuffleRead { .. } => false,
    }
}

/// Waits for a free task slot at the most local level the delay allows by now, taking the
/// most local free slot within it.
async fn acquire_executor(
    state: &DriverState,
    preferences: &Preferences,
    partition: u32,
) -> Result<(ExecutorHandle, OwnedSemaphorePermit, Locality), String> {
    let started = Instant::now();
    loop {
        let mut executors = state.executors.list();
        if executors.is_empty() {
            // The session released its executors (or lost them): ask for offers again.
            state
                .executors_wanted
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if started.elapsed() > EXECUTOR_WAIT {
                return Err(format!(
                    "no executor registered within {}s; check that the cluster has free resources \
                     (`tessera cluster status`) and look at the executor logs: {}",
                    EXECUTOR_WAIT.as_secs(),
                    state.executor_logs
                ));
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                state.executors.changed.notified(),
            )
            .await;
            continue;
        }
        let live = executors.iter().map(|e| (&*e.id, &*e.host));
        let allowed = preferences.allowed(live, started.elapsed(), state.locality_wait);
        // Partitions start at different executors, so that tasks without a preference spread.
        let n = executors.len();
        executors.rotate_left(partition as usize % n);
        executors.sort_by_key(|e| preferences.level_of(e));
        for executor in executors {
            let level = preferences.level_of(&executor);
            if level > allowed {
                break;
            }
            if let Ok(slot) = executor.slots.clone().try_acquire_owned() {
                return Ok((executor, slot, level));
            }
        }
        // Tasks queue: a session short of the executors it wants asks for offers again.
        state
            .executors_wanted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
