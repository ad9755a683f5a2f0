//! Sharing a running task's cached partition with the executor's idle slots (morsels).
//!
//! A job ends with its last task. With four partitions on two cores whose speeds differ (this
//! machine's differ by up to 1.8x, `BENCHMARKS.md`), or with fewer partitions than cores, one
//! core sits idle while the other runs the last task; Spark's only remedy is more partitions.
//! Here, as in the morsel-driven executors of polars and DuckDB, a task whose records start
//! from a partition cached in memory hands its batches out one at a time from a shared
//! cursor: its own thread takes the next, and so does a helper thread for each slot of the
//! executor that no task wants, each through its own opened copy of the task's steps and
//! action. When the batches run out, each helper's action is merged into the task's.
//!
//! That gives the task's result only where the order in which batches meet the action does
//! not matter and no step keeps state across records ([`shares`]). Tasks come before help: a
//! helper takes a slot only while no task waits for one, and gives it back as soon as one
//! does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tessera_plan::abi::{Batch, STATUS_OK};
use tessera_plan::{TaskAction, TaskSpec};

use crate::blocks::Block;
use crate::error::ExecutorError;
use crate::task_runner::{
    OpenChain, OpenStep, OpenStepKind, Shared, Start, TaskEnv, build_chain, finish_steps, link,
    open_action,
};
use crate::task_slots::{IdleSlot, TaskSlots};

/// A helper costs a thread's start and its own opening of the steps and the action (about a
/// tenth of a millisecond): it is started only while the batches left would take the task's
/// thread at least this long alone.
const MIN_WORK_LEFT_TO_HELP: Duration = Duration::from_micros(300);

/// Whether a helper is worth starting, `left` batches before the end, for batches that took
/// `per_batch` each so far on the task's own thread.
fn worth_helping(per_batch: Duration, left: usize) -> bool {
    per_batch.saturating_mul(u32::try_from(left).unwrap_or(u32::MAX)) >= MIN_WORK_LEFT_TO_HELP
}

/// What decides whether a task's batches may be shared among threads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskShape {
    /// How many batches the task starts from, when they are a partition cached in memory as
    /// records (read in place, so that any thread may read any of them).
    pub cached_batches: Option<usize>,
    /// Whether every step after the cached partition maps records one by one
    /// (`OperatorVTable::recordwise`), none of them caching what it puts out.
    pub steps_recordwise: bool,
    /// Whether the action's states merge (`ActionVTable::merge`, or a count), and it writes
    /// no shuffle.
    pub action_merges: bool,
}

/// Whether a task of `shape` shares its batches: it starts from a cached partition of more than
/// one batch, through record-wise steps, into an action whose states merge.
pub(crate) fn shares(shape: TaskShape) -> bool {
    shape.cached_batches.is_some_and(|batches| batches > 1)
        && shape.steps_recordwise
        && shape.action_merges
}

/// Whether the task whose open chain and action are these shares its batches ([`shares`]).
pub(crate) fn shares_batches(task: &TaskSpec, chain: &OpenChain, action: &OpenStep) -> bool {
    let batches = match &chain.start {
        Start::Cached(block) => block.shared(),
        Start::Source(..) | Start::Concat(_) => None,
    };
    let steps_recordwise = chain.open_steps.iter().all(|step| match &step.kind {
        OpenStepKind::Operator { table, .. } => table.recordwise,
        _ => false,
    });
    let action_merges = !matches!(task.action, TaskAction::ShuffleWrite { .. })
        && match &action.kind {
            OpenStepKind::Count { .. } => true,
            OpenStepKind::Action { table, .. } => table.merge.is_some(),
            _ => false,
        };
    let shape = TaskShape {
        cached_batches: batches.map(<[Batch]>::len),
        steps_recordwise,
        action_merges,
    };
    shares(shape)
}

/// Hands out the indices of a partition's batches, each once.
struct Cursor {
    next: AtomicUsize,
    end: usize,
}

impl Cursor {
    fn new(end: usize) -> Cursor {
        Cursor {
            next: AtomicUsize::new(0),
            end,
        }
    }

    /// The next batch no thread has taken yet.
    fn claim(&self) -> Option<usize> {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        (next < self.end).then_some(next)
    }

    /// Batches not taken yet.
    fn left(&self) -> usize {
        self.end.saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// Hands out nothing more: a thread failed, so the task has.
    fn stop(&self) {
        self.next.store(self.end, Ordering::Relaxed);
    }
}

/// A cached partition's batches, read by several threads: each batch by one at a time, and
/// none changed while the task runs (the block holds them).
struct SharedBatches<'b>(&'b [Batch]);

// SAFETY: see the type's comment; a batch read in place is only read.
unsafe impl Sync for SharedBatches<'_> {}

/// What a helper did: its steps and action, finished, to be merged into the task's.
struct Part<'a> {
    /// Boxed: the helper's last step points at it.
    action: Box<OpenStep>,
    /// Its operators' states, closed with the part.
    _chain: OpenChain<'a>,
    /// Boxed: its steps point at it. Dropped last.
    _shared: Box<Shared<'a>>,
}

// SAFETY: a part is the task's own state, opened by a helper for this task and used by one
// thread at a time: the helper, then the task's thread, which merges and closes it. Cell code's
// operators and actions are `Send` (their traits say so).
unsafe impl Send for Part<'_> {}

/// Feeds the batches of the cached partition `chain` starts from into `action` on this thread
/// and on helpers started on idle slots, then merges the helpers' actions into `action`.
/// Returns how many threads took batches.
pub(crate) fn drive_shared(
    task: &TaskSpec,
    env: &TaskEnv,
    chain: &mut OpenChain,
    action: &mut OpenStep,
    shared: &mut Shared,
) -> Result<u32, ExecutorError> {
    let block = match &chain.start {
        Start::Cached(block) if block.shared().is_some() => block.clone(),
        _ => unreachable!("only a partition cached as records is shared"),
    };
    let batches = SharedBatches(block.shared().unwrap_or_default());
    let cursor = Cursor::new(batches.0.len());
    let head = link(chain, action);
    std::thread::scope(|scope| {
        let mut helpers = Vec::new();
        let mut fed = Ok(());
        let (started, mut done) = (Instant::now(), 0u32);
        while let Some(index) = cursor.claim() {
            if done > 0
                && worth_helping(started.elapsed() / done, cursor.left())
                && let Some(slots) = env.slots
                && let Some(slot) = slots.take_idle()
            {
                let (block, batches, cursor) = (&block, &batches, &cursor);
                helpers.push(
                    scope.spawn(move || help(task, env, slots, slot, block, batches, cursor)),
                );
            }
            // SAFETY: `head` is this thread's first step, linked above; the block keeps the batch.
            if unsafe { (*head).accept_shared(batches.0[index]) } != STATUS_OK {
                cursor.stop();
                fed = Err(shared.take_error(ExecutorError::TaskFailed));
                break;
            }
            done += 1;
        }
        let fed = fed.and_then(|()| finish_steps(chain, shared));
        // Every helper is waited for, whatever happened here: they use this task's state.
        let parts: Vec<_> = helpers
            .into_iter()
            .map(|helper| {
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        fed?;
        let mut threads = 1;
        for part in parts {
            if let Some(mut part) = part? {
                action.merge(&mut part.action, shared)?;
                threads += 1;
            }
        }
        Ok(threads)
    })
}

/// A helper's work on an idle slot: opens the task's steps and action again, starting from the
/// same cached block, and takes batches until none are left or a task wants the slot. `None`
/// when it took none.
fn help<'a>(
    task: &'a TaskSpec,
    env: &'a TaskEnv,
    slots: &TaskSlots,
    _slot: IdleSlot,
    block: &Arc<Block>,
    batches: &SharedBatches,
    cursor: &Cursor,
) -> Result<Option<Part<'a>>, ExecutorError> {
    let mut shared = Box::new(Shared::new(env.cancelled));
    // Opening as the task did cannot fail where the task's did not, unless the block went
    // in between; then the task's thread does the rest alone.
    let opened = build_chain(
        task.chain.source.as_ref(),
        &task.chain.steps,
        env,
        &mut shared,
    )
    .ok()
    .flatten()
    .filter(|chain| matches!(&chain.start, Start::Cached(b) if Arc::ptr_eq(b, block)));
    let Some(mut chain) = opened else {
        return Ok(None);
    };
    let Ok(action) = open_action(task, env, chain.output, &mut shared) else {
        return Ok(None);
    };
    let mut action = Box::new(action);
    let head = link(&mut chain, &mut *action);
    let mut took = false;
    while !slots.task_waiting() {
        let Some(index) = cursor.claim() else { break };
        took = true;
        // SAFETY: `head` is this helper's first step, linked above; the block keeps the batch.
        if unsafe { (*head).accept_shared(batches.0[index]) } != STATUS_OK {
            cursor.stop();
            return Err(shared.take_error(ExecutorError::TaskFailed));
        }
    }
    if !took {
        return Ok(None);
    }
    if let Err(error) = finish_steps(&mut chain, &mut shared) {
        cursor.stop();
        return Err(error);
    }
    Ok(Some(Part {
        action,
        _chain: chain,
        _shared: shared,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: TaskShape = TaskShape {
        cached_batches: Some(61),
        steps_recordwise: true,
        action_merges: true,
    };

    #[test]
    fn a_cached_partition_through_recordwise_steps_into_a_merging_action_is_shared() {
        assert!(shares(SHARED));
    }

    #[test]
    fn anything_else_runs_on_the_tasks_own_thread() {
        let cases = [
            (
                "not cached in memory as records",
                TaskShape {
                    cached_batches: None,
                    ..SHARED
                },
            ),
            (
                "one batch cannot be split",
                TaskShape {
                    cached_batches: Some(1),
                    ..SHARED
                },
            ),
            (
                "a step sees the partition whole",
                TaskShape {
                    steps_recordwise: false,
                    ..SHARED
                },
            ),
            (
                "the action keeps order or writes",
                TaskShape {
                    action_merges: false,
                    ..SHARED
                },
            ),
        ];
        for (why, shape) in cases {
            assert!(!shares(shape), "{why}: {shape:?}");
        }
    }

    #[test]
    fn a_helper_starts_only_for_work_that_outlasts_its_start() {
        let batch = Duration::from_micros(40);
        assert!(
            worth_helping(batch, 60),
            "an LR task's batches, most of them left"
        );
        assert!(worth_helping(batch, 8));
        assert!(
            !worth_helping(batch, 7),
            "the last few batches go faster alone"
        );
        assert!(
            !worth_helping(Duration::from_nanos(100), 1000),
            "a count's batches"
        );
        assert!(!worth_helping(Duration::from_secs(1), 0), "nothing left");
        assert!(
            worth_helping(Duration::from_secs(1), usize::MAX),
            "no overflow"
        );
    }

    #[test]
    fn the_cursor_hands_out_each_batch_once_across_threads() {
        let cursor = Cursor::new(10_000);
        let taken: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| std::iter::from_fn(|| cursor.claim()).collect()))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut all: Vec<usize> = taken.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        assert_eq!(cursor.left(), 0);
    }

    #[test]
    fn a_stopped_cursor_hands_out_nothing_more() {
        let cursor = Cursor::new(8);
        assert_eq!(cursor.claim(), Some(0));
        assert_eq!(cursor.left(), 7);
        cursor.stop();
        assert_eq!(cursor.claim(), None);
        assert_eq!(cursor.left(), 0);
    }
}
