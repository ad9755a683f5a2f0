//! The DAG scheduler: owns jobs and their stages. A job is cut into stages at its shuffle
//! dependencies: its result stage, and the map stage of every shuffle it reads whose outputs
//! are missing (never computed, or lost with an executor), run for just the missing map
//! partitions after their own parent stages. Outputs an earlier job computed are reused.
//!
//! A stage runs its tasks side by side (see [`scheduler`](crate::scheduler)), in a [`Round`]
//! that also copies tasks that run long when speculation is on ([`crate::speculation`]); tasks
//! that find map outputs missing end with [`TaskEnd::NeedsShuffle`], and the stage computes
//! those and runs them again, as long as [`Resubmissions::after_round`] allows.

use crate::error::DriverError;
use crate::jobs::JobState;
use crate::map_outputs::FetchFailure;
use crate::remote_executor::{BoxFuture, Notice};
use crate::scheduler::{Placements, TaskDone, TaskEnd, run_task};
use crate::state::DriverState;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_plan::{RddId, ShuffleId, TaskAction};

/// Rounds of a stage, in a row, in which a fetch failed before the job fails, as Spark's
/// `spark.stage.maxConsecutiveAttempts`.
pub const MAX_STAGE_ATTEMPTS: u32 = 4;
/// Rounds of a stage whose map outputs went missing for any reason (executors lost between
/// rounds) before the job fails.
pub const MAX_STAGE_ROUNDS: u32 = 4 * MAX_STAGE_ATTEMPTS;

/// Runs a job: `action` on `partitions` (all by default) of `rdd`, after the map stages it
/// needs. Results come in the order of `partitions`. The inputs a job reads that are made
/// lazily (a sort's ranges, a released broadcast side) are made before it comes here: jobs
/// start at `lazy_inputs::run_job`.
pub async fn run_job(
    state: Arc<DriverState>,
    rdd: RddId,
    action: TaskAction,
    partitions: Option<Vec<u32>>,
    description: String,
) -> Result<Vec<Vec<u8>>, DriverError> {
    let all = state.lineage.num_partitions(rdd)?;
    let partitions = partitions.unwrap_or_else(|| (0..all).collect());
    // A lineage the plan cannot read fails the job below, where the job is on record.
    let planned = planned_stages(&state, rdd).unwrap_or(1);
    let (job_id, mut cancelled) = state
        .jobs
        .start(description, partitions.len() as u32, planned);
    // Copies lost with an executor are made again beside the job, not before it; and after
    // it, for an executor the job found lost.
    crate::copies::replenish(&state);
    // Dropping the stage (on cancellation) aborts every task it spawned.
    let outcome = tokio::select! {
        done = run_stage(state.clone(), job_id, rdd, action, partitions.clone()) => {
            done.map(|mut done| {
                partitions
                    .iter()
                    .map(|p| done.remove(p).map(|d| d.result).unwrap_or_default())
                    .collect()
            })
            .map_err(|cause| DriverError::JobFailed { job: job_id, cause: Box::new(cause) })
        }
        _ = cancelled.wait_for(|c| *c) => Err(DriverError::JobCancelled(job_id)),
    };
    crate::copies::replenish(&state);
    let error = match outcome {
        Ok(results) => {
            state.jobs.finish(job_id, JobState::Succeeded);
            return Ok(results);
        }
        Err(error) => error,
    };
    state.executors.notify_all(Notice::CancelJob(job_id)).await;
    let message = error.to_string();
    let cancelled = matches!(error, DriverError::JobCancelled(_));
    state.jobs.finish(
        job_id,
        if cancelled {
            JobState::Cancelled
        } else {
            JobState::Failed(message.clone())
        },
    );
    // The cell receives `message` as an error; the session tells a failed job from a panic of
    // its own by it.
    *state.failed_job.lock() = Some(crate::jobs::FailedJob { message, cancelled });
    Err(error)
}

/// Runs the tasks of `partitions` of `rdd` with `action`, after the map stages they read, and
/// again for those that found map outputs missing. A map stage's outputs are registered as its
/// tasks succeed.
async fn run_stage(
    state: Arc<DriverState>,
    job_id: u64,
    rdd: RddId,
    action: TaskAction,
    mut pending: Vec<u32>,
) -> Result<BTreeMap<u32, TaskDone>, DriverError> {
    let mut done = BTreeMap::new();
    let mut resubmissions = Resubmissions::default();
    compute_shuffles(state.clone(), job_id, parent_shuffles(&state, rdd)?).await?;
    loop {
        let mut round = Round::start(&state, job_id, rdd, &action, pending.drain(..));
        let mut needs = Vec::new();
        while let Some((partition, end)) = round.next_end(&state).await? {
            match end? {
                TaskEnd::Done(mut task) => {
                    if let TaskAction::ShuffleWrite { shuffle, .. } = &action {
                        state
                            .map_outputs
                            .register(*shuffle, partition, &task.executor_id);
                    }
                    state
                        .shared_values
                        .accumulate(std::mem::take(&mut task.accumulator_updates));
                    done.insert(partition, task);
                }
                TaskEnd::NeedsShuffle {
                    shuffle,
                    fetch_failure,
                } => needs.push(Need {
                    partition,
                    shuffle,
                    fetch_failure,
                }),
            }
        }
        if needs.is_empty() {
            return Ok(done);
        }
        resubmissions.after_round(&needs, &state.executor_logs)?;
        let mut shuffles: Vec<ShuffleId> = needs.iter().map(|n| n.shuffle).collect();
        shuffles.sort_unstable();
        shuffles.dedup();
        compute_shuffles(state.clone(), job_id, shuffles).await?;
        pending = needs.iter().map(|n| n.partition).collect();
    }
}

/// One round of a stage's tasks, side by side: each task's end, once, and with speculation on
/// ([`crate::speculation`]), a copy of a task that runs long, the first of its attempts to end
/// being the task's (the other is stopped).
struct Round {
    job_id: u64,
    rdd: RddId,
    action: TaskAction,
    tasks: tokio::task::JoinSet<(u32, Result<TaskEnd, DriverError>)>,
    /// The tasks not ended yet.
    open: BTreeMap<u32, OpenTask>,
    /// How long the tasks that succeeded took.
    finished: Vec<std::time::Duration>,
    /// How many tasks the round started with.
    size: usize,
}

/// A task of a round that has not ended.
struct OpenTask {
    started: std::time::Instant,
    /// The executors its attempts run on.
    placed: Placements,
    attempts: Vec<tokio::task::AbortHandle>,
}

impl Round {
    fn start(
        state: &Arc<DriverState>,
        job_id: u64,
        rdd: RddId,
        action: &TaskAction,
        partitions: impl Iterator<Item = u32>,
    ) -> Round {
        let mut round = Round {
            job_id,
            rdd,
            action: action.clone(),
            tasks: tokio::task::JoinSet::new(),
            open: BTreeMap::new(),
            finished: Vec::new(),
            size: 0,
        };
        // Each task is placed and sent as it is spawned (`Round::spawn`); the executors'
        // senders send them once all are.
        let _placing = state.executors.sends.hold();
        for partition in partitions {
            let placed = Placements::default();
            let attempt = round.spawn(state, partition, Vec::new(), placed.clone());
            round.open.insert(
                partition,
                OpenTask {
                    started: std::time::Instant::now(),
                    placed,
                    attempts: vec![attempt],
                },
            );
        }
        round.size = round.open.len();
        round
    }

    /// Starts an attempt of the task of `partition`, off the executors in `avoid` if it can.
    fn spawn(
        &mut self,
        state: &Arc<DriverState>,
        partition: u32,
        avoid: Vec<String>,
        placed: Placements,
    ) -> tokio::task::AbortHandle {
        let (state, action) = (state.clone(), self.action.clone());
        let (job_id, rdd) = (self.job_id, self.rdd);
        let mut attempt = Box::pin(async move {
            let end = run_task(&state, job_id, rdd, partition, &action, &avoid, &placed).await;
            (partition, end)
        });
        // Placed and sent here, as far as it goes without waiting (a free slot on an executor,
        // as a round's tasks mostly find), rather than when the runtime first runs it: the
        // tasks of a round then reach each executor's sender while the round holds it
        // (`send_hold.rs`) and go in one call. The runtime polls it again as it spawns it,
        // with its own waker, so no wake-up is lost.
        let mut not_yet_spawned = std::task::Context::from_waker(std::task::Waker::noop());
        match attempt.as_mut().poll(&mut not_yet_spawned) {
            std::task::Poll::Ready(end) => self.tasks.spawn(std::future::ready(end)),
            std::task::Poll::Pending => self.tasks.spawn(attempt),
        }
    }

    /// The next task to end and how, or `None` once every task has.
    async fn next_end(
        &mut self,
        state: &Arc<DriverState>,
    ) -> Result<Option<(u32, Result<TaskEnd, DriverError>)>, DriverError> {
        loop {
            let could_copy = self.open.values().any(|task| task.attempts.len() == 1);
            let joined = match state.speculation.filter(|_| could_copy) {
                Some(policy) => tokio::select! {
                    joined = self.tasks.join_next() => joined,
                    () = tokio::time::sleep(policy.look_every()) => {
                        self.copy_slow_tasks(state, &policy);
                        continue;
                    }
                },
                None => self.tasks.join_next().await,
            };
            let Some(joined) = joined else {
                return Ok(None);
            };
            let (partition, end) = match joined {
                Ok(ended) => ended,
                // The other attempt of a task that has ended, stopped.
                Err(error) if error.is_cancelled() => continue,
                Err(error) => return Err(DriverError::Scheduler(error.to_string())),
            };
            let Some(task) = self.open.get(&partition) else {
                continue; // the task ended already, through its other attempt
            };
            let succeeded = matches!(end, Ok(TaskEnd::Done(_)));
            // The attempt that ended is finished; another that is not decides instead.
            if !succeeded && task.attempts.iter().any(|attempt| !attempt.is_finished()) {
                continue;
            }
            let task = self.open.remove(&partition).expect("open");
            for attempt in &task.attempts {
                attempt.abort();
            }
            if succeeded {
                self.finished.push(task.started.elapsed());
            }
            return Ok(Some((partition, end)));
        }
    }

    /// The open tasks, as the speculation policy sees them.
    fn running(&self) -> Vec<crate::speculation::Running> {
        self.open
            .iter()
            .map(|(partition, task)| crate::speculation::Running {
                partition: *partition,
                elapsed: task.started.elapsed(),
                copied: task.attempts.len() > 1,
            })
            .collect()
    }

    /// Starts a copy of each task [`crate::speculation::Speculation::tasks_to_copy`] picks.
    fn copy_slow_tasks(
        &mut self,
        state: &Arc<DriverState>,
        policy: &crate::speculation::Speculation,
    ) {
        for partition in policy.tasks_to_copy(self.size, &self.finished, &self.running()) {
            let Some(placed) = self.open.get(&partition).map(|task| task.placed.clone()) else {
                continue;
            };
            // On another executor: a copy beside the slow attempt would be as slow.
            let avoid = placed.lock().clone();
            let live = state.executors.list();
            if live.iter().all(|e| avoid.contains(&e.id)) {
                continue;
            }
            tracing::info!(
                job = self.job_id,
                partition,
                "a task runs long against the stage's others; a copy of it starts elsewhere"
            );
            let attempt = self.spawn(state, partition, avoid, placed);
            if let Some(task) = self.open.get_mut(&partition) {
                task.attempts.push(attempt);
            }
        }
    }
}

/// A task that ended needing the map outputs of `shuffle`.
#[derive(Clone, Debug)]
pub struct Need {
    pub partition: u32,
    pub shuffle: ShuffleId,
    pub fetch_failure: Option<FetchFailure>,
}

/// The rounds a stage ran again for missing map outputs.
#[derive(Debug, Default)]
pub struct Resubmissions {
    /// Rounds in a row in which a fetch failed.
    fetch_failed: u32,
    rounds: u32,
}

impl Resubmissions {
    /// Whether the stage may run the tasks of `needs` again after a round: not after
    /// [`MAX_STAGE_ATTEMPTS`] rounds in a row with a failed fetch (the map outputs cannot be
    /// fetched however often they are made), nor after [`MAX_STAGE_ROUNDS`] rounds in all.
    pub fn after_round(&mut self, needs: &[Need], logs: &str) -> Result<(), DriverError> {
        self.rounds += 1;
        match needs
            .iter()
            .find_map(|n| Some((n, n.fetch_failure.as_ref()?)))
        {
            Some((need, failure)) => {
                self.fetch_failed += 1;
                if self.fetch_failed >= MAX_STAGE_ATTEMPTS {
                    return Err(DriverError::FetchFailed {
                        partition: need.partition,
                        shuffle: need.shuffle,
                        attempts: self.fetch_failed,
                        executor: failure.executor.clone(),
                        message: failure.message.clone(),
                    });
                }
            }
            None => self.fetch_failed = 0,
        }
        if self.rounds >= MAX_STAGE_ROUNDS {
            return Err(DriverError::MapOutputsKeptLost {
                shuffle: needs[0].shuffle,
                rounds: self.rounds,
                logs: logs.to_string(),
            });
        }
        Ok(())
    }
}

/// The shuffles computing `rdd` reads, as the block map stands (nothing below an RDD whose
/// every partition is cached).
fn parent_shuffles(state: &DriverState, rdd: RddId) -> Result<Vec<ShuffleId>, DriverError> {
    state
        .lineage
        .parent_shuffles(rdd, |rdd, p| !state.blocks.locations(rdd, p).is_empty())
}

/// Computes the missing map outputs of `shuffles`, side by side.
async fn compute_shuffles(
    state: Arc<DriverState>,
    job_id: u64,
    shuffles: Vec<ShuffleId>,
) -> Result<(), DriverError> {
    let mut stages = tokio::task::JoinSet::new();
    for shuffle in shuffles {
        stages.spawn(compute_shuffle(state.clone(), job_id, shuffle));
    }
    while let Some(done) = stages.join_next().await {
        done.map_err(|e| DriverError::Scheduler(e.to_string()))??;
    }
    Ok(())
}

/// Runs the map stage of `shuffle` for the map partitions whose output no live executor holds
/// (after the map stages it reads in turn: stages recurse, hence the box).
fn compute_shuffle(
    state: Arc<DriverState>,
    job_id: u64,
    shuffle: ShuffleId,
) -> BoxFuture<'static, Result<(), DriverError>> {
    Box::pin(compute_missing_outputs(state, job_id, shuffle))
}

async fn compute_missing_outputs(
    state: Arc<DriverState>,
    job_id: u64,
    shuffle: ShuffleId,
) -> Result<(), DriverError> {
    // Stages of concurrent jobs that need the same outputs compute them once.
    let lock = state.map_outputs.computing_lock(shuffle);
    let _computing = lock.lock().await;
    let dependency = state.lineage.shuffle_dependency(shuffle)?;
    let live: Vec<String> = state.executors.list().into_iter().map(|e| e.id).collect();
    state.map_outputs.forget_all_but(&live, shuffle);
    let missing = state
        .map_outputs
        .missing(shuffle, dependency.map_partitions);
    if missing.is_empty() {
        return Ok(());
    }
    state.jobs.add_stage(job_id, missing.len() as u32);
    let action = TaskAction::ShuffleWrite {
        shuffle,
        writer: dependency.writer,
    };
    run_stage(state.clone(), job_id, dependency.parent, action, missing).await?;
    state.jobs.stage_done(job_id);
    Ok(())
}

/// How many stages computing `rdd` will run as things stand: its result stage, and the map
/// stage of every shuffle it reads (through its parents) whose output is missing, as
/// the stages will find them. Progress displays show it as "stage x of y".
pub fn planned_stages(state: &DriverState, rdd: RddId) -> Result<u32, DriverError> {
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![rdd];
    while let Some(rdd) = pending.pop() {
        for shuffle in parent_shuffles(state, rdd)? {
            let dependency = state.lineage.shuffle_dependency(shuffle)?;
            let missing = state
                .map_outputs
                .missing(shuffle, dependency.map_partitions);
            if !missing.is_empty() && seen.insert(shuffle) {
                pending.push(dependency.parent);
            }
        }
    }
    Ok(1 + seen.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(partition: u32, fetch_failed: bool) -> Need {
        Need {
            partition,
            shuffle: 5,
            fetch_failure: fetch_failed.then(|| FetchFailure {
                executor: "b".into(),
                through_agent: false,
                message: "connection refused".into(),
            }),
        }
    }

    #[test]
    fn four_rounds_in_a_row_with_a_failed_fetch_fail_the_stage() {
        let mut r = Resubmissions::default();
        for _ in 0..3 {
            r.after_round(&[need(0, false), need(1, true)], "logs")
                .unwrap();
        }
        let error = r
            .after_round(&[need(2, true)], "logs")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "task for partition 2 could not fetch the output of shuffle 5 4 times; most \
                 recent failure from executor b: connection refused"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_round_without_a_failed_fetch_starts_the_count_again_within_a_bound() {
        let mut r = Resubmissions::default();
        for round in 1..MAX_STAGE_ROUNDS {
            let fetch_failed = round % 3 != 0;
            r.after_round(&[need(0, fetch_failed)], "the logs")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let error = r.after_round(&[need(0, false)], "the logs").unwrap_err();
        assert!(
            matches!(
                error,
                DriverError::MapOutputsKeptLost {
                    rounds: MAX_STAGE_ROUNDS,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("the logs"));
    }
}
