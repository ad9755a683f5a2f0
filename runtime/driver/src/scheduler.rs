//! Runs jobs: one task per partition, placed on an executor that already holds the partition's
//! cached data when there is one (waiting up to the locality wait for it, as Spark's delay
//! scheduling does), retried on another attempt when it fails.

use crate::DriverState;
use crate::executors::ExecutorHandle;
use crate::jobs::JobState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_plan::{PipelineStep, RddId, TaskAction, TaskOutcome, TaskSpec};
use tessera_wire::executor::{CancelJobRequest, RunTaskRequest};
use tokio::sync::OwnedSemaphorePermit;

/// Attempts per task before the job fails, as in Spark (`spark.task.maxFailures`).
pub const MAX_TASK_ATTEMPTS: u32 = 4;
/// How long a task waits for the executor that caches its data before running anywhere.
pub const LOCALITY_WAIT: Duration = Duration::from_secs(3);
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
    let (job_id, mut cancelled) = state.jobs.start(description, partitions.len() as u32);
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
    let outcome = loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break Ok(()),
                Some(Ok((index, Ok(result)))) => {
                    results[index] = result;
                }
                Some(Ok((_, Err(message)))) => break Err(format!("Job {job_id} failed: {message}")),
                Some(Err(e)) => break Err(format!("Job {job_id} failed: a task's scheduler failed: {e}")),
            },
            _ = cancelled.wait_for(|c| *c) => break Err(format!("Job {job_id} was cancelled")),
        }
    };
    if outcome.is_err() {
        tasks.abort_all();
        for executor in state.executors.list() {
            let _ = executor
                .client
                .clone()
                .cancel_job(CancelJobRequest { job_id })
                .await;
        }
    }
    match outcome {
        Ok(()) => {
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
            Err(message)
        }
    }
}

async fn run_task(
    state: &DriverState,
    job_id: u64,
    rdd: RddId,
    partition: u32,
    action: TaskAction,
) -> Result<Vec<u8>, String> {
    let pipeline = state.lineage.pipeline(rdd, partition)?;
    let preferred = preferred_executors(state, &pipeline.steps);
    let mut failures = Vec::new();
    let mut attempt = 0;
    let mut ship_source = false;
    while attempt < MAX_TASK_ATTEMPTS {
        let (executor, _slot) = acquire_executor(state, &preferred, partition).await?;
        let cached_there = !ship_source && preferred.contains(&executor.id);
        let spec = TaskSpec {
            job_id,
            task_id: state.next_task_id(),
            attempt,
            partition,
            source: (!cached_there).then(|| pipeline.source.clone()),
            steps: pipeline.steps.clone(),
            action: action.clone(),
        };
        let task = bincode::serialize(&spec).map_err(|e| format!("cannot encode task: {e}"))?;
        match executor
            .client
            .clone()
            .run_task(RunTaskRequest { task })
            .await
        {
            Ok(reply) => match bincode::deserialize::<TaskOutcome>(&reply.into_inner().outcome) {
                Ok(TaskOutcome::Success { result, metrics }) => {
                    state.blocks.record(&executor.id, &metrics.stored);
                    state.record_metrics(job_id, partition, metrics);
                    return Ok(result);
                }
                Ok(TaskOutcome::CacheMiss) => {
                    // Not a failure: the block went away after the block map heard of it.
                    ship_source = true;
                    continue;
                }
                Ok(TaskOutcome::Failed { message }) => {
                    failures.push((executor.id.clone(), message))
                }
                Err(e) => failures.push((
                    executor.id.clone(),
                    format!("cannot decode the task outcome: {e}"),
                )),
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

/// Executors holding the partition of the last cached step of the task's pipeline.
fn preferred_executors(state: &DriverState, steps: &[PipelineStep]) -> Vec<String> {
    steps
        .iter()
        .rev()
        .filter(|step| step.persist.is_some())
        .map(|step| state.blocks.locations(step.rdd, step.partition))
        .find(|locations| !locations.is_empty())
        .unwrap_or_default()
}

/// Waits for a free task slot, on a preferred executor while the locality wait lasts.
async fn acquire_executor(
    state: &DriverState,
    preferred: &[String],
    partition: u32,
) -> Result<(ExecutorHandle, OwnedSemaphorePermit), String> {
    let started = Instant::now();
    loop {
        let executors = state.executors.list();
        if executors.is_empty() {
            if started.elapsed() > EXECUTOR_WAIT {
                return Err(format!(
                    "no executor registered within {}s; check that the cluster has free resources \
                     (`tessera cluster status`) and look at the executor logs in {}",
                    EXECUTOR_WAIT.as_secs(),
                    state.work_dir.display()
                ));
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                state.executors.changed.notified(),
            )
            .await;
            continue;
        }
        let mut preferred_alive = false;
        for id in preferred {
            if let Some(executor) = state.executors.get(id) {
                preferred_alive = true;
                if let Ok(slot) = executor.slots.clone().try_acquire_owned() {
                    return Ok((executor, slot));
                }
            }
        }
        if !preferred_alive || started.elapsed() >= LOCALITY_WAIT {
            let n = executors.len();
            for i in 0..n {
                let executor = &executors[(partition as usize + i) % n];
                if let Ok(slot) = executor.slots.clone().try_acquire_owned() {
                    return Ok((executor.clone(), slot));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
