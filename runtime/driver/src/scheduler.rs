//! The task scheduler: runs one task of a stage until it succeeds, fails for good, or needs map
//! outputs that are missing. Each attempt is placed as close to its data as a free slot allows
//! (see [`locality`](crate::locality)), carries what [`task_plan`](crate::task_plan) decides, and
//! ends in an [`AttemptEnd`]; what follows an attempt is [`Attempts::after`], a pure decision.
//! Missing map outputs (never computed, lost with an executor, or a fetch that failed) are not
//! the task's to compute: it returns [`TaskEnd::NeedsShuffle`] and the DAG scheduler (`dag`,
//! above this one) resubmits the shuffle's map stage, then the task.

use crate::error::DriverError;
use crate::executors::{ExecutorHandle, Slot};
use crate::locality::{Locality, Preferences, next_relaxation};
use crate::map_outputs::FetchFailure;
use crate::replication::{Candidate, replica_peers};
use crate::state::DriverState;
use crate::task_plan::{self, DataLocations};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_plan::{
    Chain, RddId, ReplicaPeer, ShuffleId, TaskAction, TaskMetrics, TaskOutcome, TaskSpec,
};

/// Attempts per task before the job fails, as in Spark (`spark.task.maxFailures`).
pub const MAX_TASK_ATTEMPTS: u32 = 4;
/// How long a job waits for its first executor.
pub const EXECUTOR_WAIT: Duration = Duration::from_secs(120);

/// A task that succeeded: where it ran and what it returned.
pub struct TaskDone {
    pub executor_id: String,
    pub result: Vec<u8>,
    /// What its code added to accumulators: the stage applies them once it accepts this
    /// attempt (a speculative copy may succeed too, and must not count twice).
    pub accumulator_updates: Vec<(u64, Vec<u8>)>,
}

/// How a task ended, short of failing the job.
pub enum TaskEnd {
    Done(TaskDone),
    /// Map outputs of `shuffle` that the task reads are missing (after `fetch_failure`, if a
    /// fetch failed): the shuffle's map stage must run again before the task can.
    NeedsShuffle {
        shuffle: ShuffleId,
        fetch_failure: Option<FetchFailure>,
    },
}

/// How one attempt of a task ended, other than in success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The task's code failed (a panic, an error it returned, a record it could not decode).
    Failed { executor: String, message: String },
    /// The task came without its source and the executor no longer caches the partition.
    CacheMiss,
    /// A map output could not be fetched from `fetch_failure.executor`.
    FetchFailed {
        shuffle: ShuffleId,
        fetch_failure: FetchFailure,
    },
    /// The executor did not answer: it is gone, with what it held.
    ExecutorLost { executor: String, message: String },
    /// Before the task was sent: a shuffle it reads has a map output missing.
    MapOutputsMissing { shuffle: ShuffleId },
}

/// What follows an attempt that did not succeed.
#[derive(Debug)]
pub enum NextStep {
    /// Run the task again (with its source whatever the block map says, after a cache miss).
    Retry,
    /// End the task: the map stage of the shuffle must run first.
    NeedsShuffle {
        shuffle: ShuffleId,
        fetch_failure: Option<FetchFailure>,
    },
    /// The task failed for good.
    Fail(DriverError),
}

/// The attempts of one task so far.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Attempts that failed through the task's code or its executor's loss.
    pub failed: u32,
    /// Send the source: a cache miss showed the block map out of date.
    pub ship_source: bool,
}

impl Attempts {
    /// What follows `end`, an attempt of the task of `partition`. Failures of the task's code
    /// and lost executors count towards [`MAX_TASK_ATTEMPTS`], as in Spark; a cache miss is
    /// nobody's failure, and missing map outputs are the DAG scheduler's to recompute.
    pub fn after(&mut self, partition: u32, end: AttemptEnd) -> NextStep {
        let (executor, message) = match end {
            AttemptEnd::CacheMiss => {
                self.ship_source = true;
                return NextStep::Retry;
            }
            AttemptEnd::FetchFailed {
                shuffle,
                fetch_failure,
            } => {
                return NextStep::NeedsShuffle {
                    shuffle,
                    fetch_failure: Some(fetch_failure),
                };
            }
            AttemptEnd::MapOutputsMissing { shuffle } => {
                return NextStep::NeedsShuffle {
                    shuffle,
                    fetch_failure: None,
                };
            }
            AttemptEnd::Failed { executor, message } => (executor, message),
            AttemptEnd::ExecutorLost { executor, message } => {
                (executor, format!("executor lost: {message}"))
            }
        };
        self.failed += 1;
        if self.failed < MAX_TASK_ATTEMPTS {
            return NextStep::Retry;
        }
        NextStep::Fail(DriverError::TaskFailed {
            partition,
            attempts: self.failed,
            executor,
            message,
        })
    }
}

/// Where the attempts of one task run: each adds its executor as it is placed, and a
/// speculative copy is kept off the executors already there ([`crate::speculation`]).
pub type Placements = Arc<parking_lot::Mutex<Vec<String>>>;

/// Runs the task that computes `partition` of `rdd` and applies `action` to it, attempt after
/// attempt as [`Attempts::after`] decides, off the executors in `avoid` while any other can
/// take it, noting each attempt's executor in `placed`.
pub async fn run_task(
    state: &Arc<DriverState>,
    job_id: u64,
    rdd: RddId,
    partition: u32,
    action: &TaskAction,
    avoid: &[String],
    placed: &Placements,
) -> Result<TaskEnd, DriverError> {
    let chain = state.lineage.chain(rdd, partition)?;
    let mut attempts = Attempts::default();
    loop {
        // Looked up for each attempt: an attempt's end may have moved the data (a lost
        // executor's blocks adopted elsewhere, or the part of its partition it was computing).
        let preferences = with_locations(state, |known| {
            task_plan::preferences(&chain, known, &state.host)
        });
        let (executor, slot, locality) =
            acquire_executor(state, &preferences, partition, avoid).await?;
        placed.lock().push(executor.id.clone());
        let sent = crate::task_times::Sent::now();
        let end = match attempt(
            state, job_id, &chain, partition, action, &attempts, &executor,
        )
        .await
        {
            Ok((result, mut metrics)) => {
                drop(slot);
                record_success(state, &executor.id, &metrics);
                let accumulator_updates = std::mem::take(&mut metrics.accumulator_updates);
                state.record_metrics(
                    job_id,
                    &stage_name(action),
                    partition,
                    locality,
                    (metrics, result.len() as u64),
                    sent,
                );
                return Ok(TaskEnd::Done(TaskDone {
                    executor_id: executor.id,
                    result,
                    accumulator_updates,
                }));
            }
            Err(end) => end,
        };
        drop(slot);
        forget_what_the_end_lost(state, &end).await;
        match attempts.after(partition, end) {
            NextStep::Retry => continue,
            NextStep::NeedsShuffle {
                shuffle,
                fetch_failure,
            } => {
                return Ok(TaskEnd::NeedsShuffle {
                    shuffle,
                    fetch_failure,
                });
            }
            NextStep::Fail(error) => return Err(error),
        }
    }
}

/// One attempt on `executor`: its result and metrics, or how it ended otherwise.
async fn attempt(
    state: &DriverState,
    job_id: u64,
    chain: &Chain,
    partition: u32,
    action: &TaskAction,
    attempts: &Attempts,
    executor: &ExecutorHandle,
) -> Result<(Vec<u8>, TaskMetrics), AttemptEnd> {
    let sent = with_locations(state, |known| {
        task_plan::chain_for(chain, &executor.id, attempts.ship_source, known)
    })
    .map_err(|shuffle| AttemptEnd::MapOutputsMissing { shuffle })?;
    let spec = TaskSpec {
        job_id,
        task_id: state.next_task_id(),
        attempt: attempts.failed,
        partition,
        chain: sent,
        action: action.clone(),
        files: state.side_files.list(),
        replicate_to: replicas_for(state, executor, partition, chain.replication() - 1),
    };
    match executor.client.run_task(&spec).await {
        Ok(TaskOutcome::Success { result, metrics }) => Ok((result, metrics)),
        Ok(TaskOutcome::CacheMiss) => Err(AttemptEnd::CacheMiss),
        Ok(TaskOutcome::FetchFailed {
            shuffle,
            executor_id,
            through_agent,
            message,
        }) => Err(AttemptEnd::FetchFailed {
            shuffle,
            fetch_failure: FetchFailure {
                executor: executor_id,
                through_agent,
                message,
            },
        }),
        Ok(TaskOutcome::Failed { message }) => Err(AttemptEnd::Failed {
            executor: executor.id.clone(),
            message,
        }),
        Err(lost) => Err(AttemptEnd::ExecutorLost {
            executor: executor.id.clone(),
            message: lost.0,
        }),
    }
}

/// Where a task on `executor` copies the blocks it caches: `copies` other live executors.
fn replicas_for(
    state: &DriverState,
    executor: &ExecutorHandle,
    partition: u32,
    copies: usize,
) -> Vec<ReplicaPeer> {
    if copies == 0 {
        return Vec::new();
    }
    let live = state.executors.list();
    let live: Vec<Candidate> = live.iter().map(Candidate::of).collect();
    replica_peers(Candidate::of(executor), &live, partition, copies)
}

/// What the driver knows of where data is, for [`task_plan`]'s decisions.
fn with_locations<R>(state: &DriverState, decide: impl FnOnce(&DataLocations) -> R) -> R {
    let cached = |rdd, partition| state.blocks.locations(rdd, partition);
    let map_outputs = |shuffle| {
        let address_of = |id: &str| state.executors.get(id).map(|e| e.address.clone());
        state.map_outputs.locations(shuffle, address_of)
    };
    let partial = |rdd, partition| state.blocks.partial_holder(rdd, partition);
    decide(&DataLocations {
        cached: &cached,
        map_outputs: &map_outputs,
        partial: &partial,
    })
}

/// Keeps what a successful attempt changed on its executor: the blocks it cached and evicted.
/// Its accumulator updates count once the stage accepts it ([`TaskDone`]).
fn record_success(state: &DriverState, executor: &str, metrics: &TaskMetrics) {
    state.blocks.record(executor, &metrics.stored);
    state.blocks.forget(executor, &metrics.evicted);
    for not_cached in state.not_cached_told.to_tell(&metrics.not_cached) {
        tracing::warn!(executor, "{}", not_cached.reason);
    }
}

/// Forgets what an attempt's end showed to be gone: an unreachable executor with everything it
/// held, or the map outputs of a shuffle that could not be fetched from an executor.
async fn forget_what_the_end_lost(state: &DriverState, end: &AttemptEnd) {
    match end {
        AttemptEnd::ExecutorLost { executor, .. } => state.lose_executor(executor).await,
        AttemptEnd::FetchFailed {
            shuffle,
            fetch_failure,
        } => {
            // Not the task's fault: the map outputs on that executor are read through its agent
            // or are lost.
            tracing::warn!(shuffle, executor = %fetch_failure.executor, message = %fetch_failure.message, "shuffle fetch failed");
            state.fetch_failed(fetch_failure, *shuffle);
        }
        AttemptEnd::Failed { .. }
        | AttemptEnd::CacheMiss
        | AttemptEnd::MapOutputsMissing { .. } => {}
    }
}

/// How task metrics name the stage of a task: `result`, or `map:<shuffle>`.
fn stage_name(action: &TaskAction) -> String {
    match action {
        TaskAction::ShuffleWrite { shuffle, .. } => format!("map:{shuffle}"),
        TaskAction::Count | TaskAction::Run(_) => "result".to_string(),
    }
}

/// Waits for a free task slot at the most local level the delay allows by now, taking the
/// most local free slot within it: one with a free core, else one where the task is sent ahead
/// to wait on the executor for a core.
async fn acquire_executor(
    state: &DriverState,
    preferences: &Preferences,
    partition: u32,
    avoid: &[String],
) -> Result<(ExecutorHandle, Slot, Locality), DriverError> {
    let started = Instant::now();
    loop {
        let changed = state.executors.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let mut executors = state.executors.list();
        if executors.iter().any(|e| !avoid.contains(&e.id)) {
            executors.retain(|e| !avoid.contains(&e.id));
        }
        if executors.is_empty() {
            // The session released its executors (or lost them): ask for offers again.
            state.want_executors();
            if started.elapsed() > EXECUTOR_WAIT {
                return Err(DriverError::NoExecutors {
                    waited: EXECUTOR_WAIT,
                    logs: state.executor_logs.clone(),
                });
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
            continue;
        }
        let live = executors.iter().map(|e| (&*e.id, &*e.host));
        let allowed = preferences.allowed(live, started.elapsed(), state.locality_wait);
        // Partitions start at different executors, so that tasks without a preference spread.
        let n = executors.len();
        executors.rotate_left(partition as usize % n);
        executors.sort_by_key(|e| preferences.level_of(e));
        if let Some(found) = most_local_slot(state, &executors, preferences, allowed, false) {
            return Ok(found);
        }
        if let Some(found) = most_local_slot(state, &executors, preferences, allowed, true) {
            // It waits for a core all the same, there.
            state.want_executors();
            return Ok(found);
        }
        // Tasks queue.
        state.want_executors();
        // Until a slot is given back or executors come or go (`changed` was enabled before the
        // look, so neither is missed), or until the locality level relaxes; at most a while,
        // in case a slot frees in a way that does not notify.
        let relaxes = next_relaxation(started.elapsed(), state.locality_wait);
        let wait = relaxes.map_or(SLOT_RECHECK, |r| r.min(SLOT_RECHECK));
        let _ = tokio::time::timeout(wait, changed).await;
    }
}

/// The first slot of `executors` (most local first) within the `allowed` level: one with a free
/// core, or, sent `ahead`, one where the task waits on the executor for a core.
fn most_local_slot(
    state: &DriverState,
    executors: &[ExecutorHandle],
    preferences: &Preferences,
    allowed: Locality,
    ahead: bool,
) -> Option<(ExecutorHandle, Slot, Locality)> {
    executors
        .iter()
        .map(|executor| (executor, preferences.level_of(executor)))
        .take_while(|(_, level)| *level <= allowed)
        .find_map(|(executor, level)| {
            let slot = state.executors.try_slot(executor, ahead)?;
            Some((executor.clone(), slot, level))
        })
}

/// The longest a task waiting for a slot goes without looking again.
const SLOT_RECHECK: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(executor: &str) -> AttemptEnd {
        AttemptEnd::Failed {
            executor: executor.into(),
            message: format!("boom on {executor}"),
        }
    }

    #[test]
    fn code_failures_and_lost_executors_fail_the_task_on_the_fourth_attempt() {
        let mut attempts = Attempts::default();
        assert!(matches!(attempts.after(2, failed("a")), NextStep::Retry));
        assert!(!attempts.ship_source);
        let lost = AttemptEnd::ExecutorLost {
            executor: "b".into(),
            message: "connection reset".into(),
        };
        assert!(matches!(attempts.after(2, lost), NextStep::Retry));
        assert!(matches!(attempts.after(2, failed("c")), NextStep::Retry));
        let NextStep::Fail(error) = attempts.after(2, failed("d")) else {
            panic!("the fourth failure fails the task");
        };
        assert_eq!(
            error.to_string(),
            "task for partition 2 failed 4 times; most recent failure on executor d: boom on d"
        );
    }

    #[test]
    fn a_cache_miss_is_nobodys_failure_and_the_source_goes_from_then_on() {
        let mut attempts = Attempts::default();
        for _ in 0..10 {
            assert!(matches!(
                attempts.after(0, AttemptEnd::CacheMiss),
                NextStep::Retry
            ));
        }
        assert_eq!(attempts.failed, 0);
        assert!(matches!(attempts.after(0, failed("a")), NextStep::Retry));
        assert!(attempts.ship_source);
    }

    #[test]
    fn missing_map_outputs_end_the_task_for_its_stage_to_resubmit() {
        let mut attempts = Attempts::default();
        let fetch_failure = FetchFailure {
            executor: "b".into(),
            through_agent: false,
            message: "connection refused".into(),
        };
        let NextStep::NeedsShuffle {
            shuffle: 7,
            fetch_failure: Some(f),
        } = attempts.after(
            0,
            AttemptEnd::FetchFailed {
                shuffle: 7,
                fetch_failure: fetch_failure.clone(),
            },
        )
        else {
            panic!("a fetch failure needs the shuffle");
        };
        assert_eq!(f, fetch_failure);
        assert!(matches!(
            attempts.after(0, AttemptEnd::MapOutputsMissing { shuffle: 3 }),
            NextStep::NeedsShuffle {
                shuffle: 3,
                fetch_failure: None
            }
        ));
        assert_eq!(attempts.failed, 0, "no failure of the task's own");
    }
}
