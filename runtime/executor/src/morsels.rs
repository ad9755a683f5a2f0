//! Sharing a running task's records with the executor's idle slots (morsels).
//!
//! A job ends with its last task. With four partitions on two cores whose speeds differ (this
//! machine's differ by up to 1.8x, `BENCHMARKS.md`), or with fewer partitions than cores, one
//! core sits idle while the other runs the last task; Spark's only remedy is more partitions.
//! Here, as in the morsel-driven executors of polars and DuckDB, a task hands its records out
//! in fixed *chunks* from a shared cursor. Its own thread takes the next chunk, and so does the
//! thread of each slot of the executor that no task wants, which the task asks for help
//! ([`crate::task_slots::TaskSlots::offer_help`]), each through its own opened copy of the
//! task's steps. Each chunk goes into an action state of its own, and the chunks' states are
//! merged into the task's action in chunk order.
//!
//! Two kinds of task are shared:
//! * one whose records start from a partition cached in memory as records: its pieces
//!   (`runs.rs`: a batch's worth of records each) go out [`CHUNK_PIECES`] at a time, then its
//!   last [`TAIL_PIECES`] one by one, so that the threads end within a piece of each other;
//! * one that reads a text split: its lines go out a chunk of
//!   [`SPLIT_CHUNK_BYTES`](crate::text_split::SPLIT_CHUNK_BYTES) at a time
//!   (`text_split.rs`). This is every session's first job over a file, and the task an
//!   executor carries on for a lost one, which otherwise ran on one core at the job's end
//!   while the other had nothing to do (`BENCHMARKS.md`, the chaos suite).
//!
//! A task that caches a partition on the way keeps each chunk's records apart, in this
//! process's memory, and adds them to the partition in chunk order as it merges the chunk's
//! state; a checkpoint of a text split's progress follows each chunk so added
//! (`runs.rs`, [`crate::open_chain::Checkpointed`]). Until a chunk is added, its records are
//! held twice at most.
//!
//! The chunks are the same whichever threads take them, and merged in the same order, so a
//! task's result does not depend on how many helpers came or when: a sum of floats is the same
//! to the last bit from run to run, and `collect` keeps the partition's order. That holds where
//! no step keeps state across records and the action's states merge ([`shares`]). A partition
//! kept in runs and its copy on another executor (decoded in batches of a piece's size) are
//! cut into the same pieces. Tasks come before help: a helper takes a slot only while no task
//! waits for one, and gives it back as soon as one does.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tessera_plan::abi::{STATUS_OK, SharedRecords, SourceVTable};
use tessera_plan::panic_text::panic_text;
use tessera_plan::{FileSplit, TaskAction, TaskSource, TaskSpec};

use crate::blocks::Block;
use crate::error::ExecutorError;
use crate::open_chain::{
    Checkpointed, Keeping, OpenChain, OpenStep, OpenStepKind, Shared, Start, build_chain, decode,
    link, open_action,
};
use crate::runs::KeptChunk;
use crate::task_env::TaskEnv;
use crate::task_slots::HelpEnded;
use crate::text_split::{line_chunk, line_chunk_count, read_part};

/// Pieces (of 4096 records) in a chunk before the partition's tail: an LR task's 250,000
/// points make seven chunks of about a quarter of a millisecond each before it, large enough
/// that opening an action state for each costs nothing to speak of.
const CHUNK_PIECES: usize = 8;

/// A partition's last pieces, handed out one at a time: a slot that ends its own task joins
/// the last one running, and the two end within a piece (about 30 µs of LR's) of each other,
/// where chunks of eight had them end 0.12 ms apart in the median (`BENCHMARKS.md`).
const TAIL_PIECES: usize = 8;

/// Help costs a slot's thread its own opening of the task's steps, and perhaps a wake-up: it
/// is asked for only while the work left would take the task's thread at least this long
/// alone.
const MIN_WORK_LEFT_TO_HELP: Duration = Duration::from_micros(100);

/// Whether help is worth asking for, `left` units of work (pieces, or chunks of lines) before
/// the end, for units that took `per_unit` each so far on the task's own thread.
fn worth_helping(per_unit: Duration, left: usize) -> bool {
    per_unit.saturating_mul(u32::try_from(left).unwrap_or(u32::MAX)) >= MIN_WORK_LEFT_TO_HELP
}

/// Where a task's records start, as far as sharing them goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A partition cached in memory as records, read in place, so that any thread may read any
    /// batch of it.
    CachedRecords,
    /// A text split, whose lines any thread may read.
    TextSplit,
    /// Anything else: shipped records, a shuffle's buckets, a saved partition, a union, a
    /// partition cached as bytes.
    Elsewhere,
}

/// What decides whether a task's records are shared among threads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskShape {
    /// Where its records start.
    pub from: Origin,
    /// Whether every operator after the start maps records one by one
    /// (`OperatorVTable::recordwise`); steps may cache what they put out.
    pub steps_recordwise: bool,
    /// Whether the action's states merge (`ActionVTable::merge`, or a count).
    pub action_merges: bool,
}

/// Whether a task of `shape` is run in chunks that threads may share: it starts from a cached
/// partition or a text split, through record-wise steps, into an action whose states merge.
/// Such a task is always run in chunks, helped or not, so that its result is the same either
/// way.
pub(crate) fn shares(shape: TaskShape) -> bool {
    shape.from != Origin::Elsewhere && shape.steps_recordwise && shape.action_merges
}

/// Whether the task whose open chain and action are these shares its records ([`shares`]).
pub(crate) fn shares_batches(task: &TaskSpec, chain: &OpenChain, action: &OpenStep) -> bool {
    let from = match &chain.start {
        Start::Cached(block) if block.read_in_place() => Origin::CachedRecords,
        Start::Source(TaskSource::TextSplit { .. }, _) => Origin::TextSplit,
        Start::Cached(_) | Start::Source(..) | Start::Concat(_) => Origin::Elsewhere,
    };
    let steps_recordwise = chain.open_steps.iter().all(|step| match &step.kind {
        OpenStepKind::Operator { table, .. } => table.recordwise,
        OpenStepKind::Cache { .. } => true,
        OpenStepKind::Count { .. } | OpenStepKind::Action { .. } => false,
    });
    let action_merges = !matches!(task.action, TaskAction::ShuffleWrite { .. })
        && match &action.kind {
            OpenStepKind::Count { .. } => true,
            OpenStepKind::Action { table, .. } => table.merge.is_some(),
            _ => false,
        };
    shares(TaskShape {
        from,
        steps_recordwise,
        action_merges,
    })
}
/// Hands out the indices of a partition's chunks, each once, in order.
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

    /// The next chunk no thread has taken yet.
    fn claim(&self) -> Option<usize> {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        (next < self.end).then_some(next)
    }

    /// Chunks not taken yet.
    fn left(&self) -> usize {
        self.end.saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// Hands out nothing more: a thread failed, so the task has.
    fn stop(&self) {
        self.next.store(self.end, Ordering::Relaxed);
    }
}

/// Parts of a task, each known by its place in the task (a chunk's index), kept until every
/// part before it has come, then handed on in that order.
struct InOrder<T> {
    next: usize,
    waiting: BTreeMap<usize, T>,
}

impl<T> InOrder<T> {
    fn new() -> InOrder<T> {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Keeps part `index`.
    fn put(&mut self, index: usize, part: T) {
        self.waiting.insert(index, part);
    }

    /// The parts that are next in order, each handed to `merge` in turn.
    fn merge_ready<E>(&mut self, mut merge: impl FnMut(T) -> Result<(), E>) -> Result<(), E> {
        while let Some(part) = self.waiting.remove(&self.next) {
            self.next += 1;
            merge(part)?;
        }
        Ok(())
    }

    /// How many parts were handed on.
    fn merged(&self) -> usize {
        self.next
    }
}

/// What a shared task's chunks are cut from.
enum Parts<'a> {
    /// A partition cached as records, in its pieces ([`chunk_range`]).
    Pieces {
        block: Arc<Block>,
        pieces: Vec<SharedRecords>,
    },
    /// A text split's lines from `from` on, decoded by `decoder` ([`line_chunk`]).
    Lines {
        split: &'a FileSplit,
        from: u64,
        decoder: &'static SourceVTable,
    },
}

/// The task's records, handed out in chunks: what they are cut from, and the cursor over them.
struct Chunks<'a> {
    parts: Parts<'a>,
    cursor: Cursor,
}

// SAFETY: the pieces point into the block's batches, which are only read while it is shared
// (`Block` is `Sync` for that reason), and the block outlives them here. A source's table is
// plain functions.
unsafe impl Sync for Chunks<'_> {}

impl<'a> Chunks<'a> {
    /// The chunks of the records `chain` starts from: a cached partition's pieces, or a text
    /// split's lines from where the chain reads it.
    fn of(chain: &OpenChain<'a>) -> Chunks<'a> {
        let parts = match &chain.start {
            Start::Cached(block) => Parts::Pieces {
                block: block.clone(),
                pieces: block.pieces().unwrap_or_default(),
            },
            &Start::Source(TaskSource::TextSplit { split, .. }, decoder) => Parts::Lines {
                split,
                from: chain
                    .checkpointed
                    .and_then(|at| at.resume_from)
                    .unwrap_or(split.start),
                decoder,
            },
            Start::Source(..) | Start::Concat(_) => {
                unreachable!("only a cached partition or a text split is shared")
            }
        };
        let count = match &parts {
            Parts::Pieces { pieces, .. } => chunk_count(pieces.len()),
            Parts::Lines { split, from, .. } => line_chunk_count(*from, split.end),
        };
        Chunks {
            parts,
            cursor: Cursor::new(count),
        }
    }

    /// Whether a chain that starts at `start` reads these chunks' records: a helper's, opened
    /// as the task's was.
    fn read_from(&self, start: &Start) -> bool {
        match (&self.parts, start) {
            (Parts::Pieces { block, .. }, Start::Cached(from)) => Arc::ptr_eq(block, from),
            (Parts::Lines { .. }, Start::Source(TaskSource::TextSplit { .. }, _)) => true,
            _ => false,
        }
    }

    /// Pushes the records of chunk `index` into `head`.
    fn feed(
        &self,
        index: usize,
        head: *mut OpenStep,
        shared: &mut Shared,
    ) -> Result<(), ExecutorError> {
        let mut status = STATUS_OK;
        match &self.parts {
            Parts::Pieces { pieces, .. } => {
                for &piece in &pieces[chunk_range(index, pieces.len())] {
                    // SAFETY: `head` is a linked step; the block keeps the piece.
                    status = unsafe { (*head).accept_shared(piece) };
                    if status != STATUS_OK {
                        break;
                    }
                }
            }
            Parts::Lines {
                split,
                from,
                decoder,
            } => {
                read_part(split, &line_chunk(split, *from, index), |lines, _| {
                    status = decode(decoder, lines, head, shared);
                    status == STATUS_OK
                })?;
            }
        }
        if status != STATUS_OK {
            return Err(shared.take_error(ExecutorError::TaskFailed));
        }
        Ok(())
    }

    /// Units of work in chunk `index`: its pieces, or one chunk of lines.
    fn units(&self, index: usize) -> usize {
        match &self.parts {
            Parts::Pieces { pieces, .. } => chunk_range(index, pieces.len()).len(),
            Parts::Lines { .. } => 1,
        }
    }

    /// Units of work no thread has taken yet.
    fn units_left(&self) -> usize {
        match &self.parts {
            Parts::Pieces { pieces, .. } => {
                let next = self.count() - self.cursor.left();
                pieces.len() - chunk_range(next, pieces.len()).start
            }
            Parts::Lines { .. } => self.cursor.left(),
        }
    }

    /// Where a task carrying this one on would read its split from once chunk `index` is kept.
    fn resume_point(&self, index: usize) -> Option<u64> {
        match &self.parts {
            Parts::Pieces { .. } => None,
            Parts::Lines { split, from, .. } => Some(line_chunk(split, *from, index).end),
        }
    }

    /// How many chunks there are.
    fn count(&self) -> usize {
        self.cursor.end
    }
}

/// How many chunks `pieces` pieces make: chunks of [`CHUNK_PIECES`], then one for each of
/// the last [`TAIL_PIECES`].
fn chunk_count(pieces: usize) -> usize {
    let tail = pieces.min(TAIL_PIECES);
    (pieces - tail).div_ceil(CHUNK_PIECES) + tail
}

/// Which of `pieces` pieces chunk `index` holds (past the last chunk: an empty range at the
/// end).
fn chunk_range(index: usize, pieces: usize) -> std::ops::Range<usize> {
    let body = pieces - pieces.min(TAIL_PIECES);
    let body_chunks = body.div_ceil(CHUNK_PIECES);
    if index < body_chunks {
        let start = index * CHUNK_PIECES;
        start..(start + CHUNK_PIECES).min(body)
    } else {
        let start = (body + (index - body_chunks)).min(pieces);
        start..(start + 1).min(pieces)
    }
}

/// What a chunk came to: the action state it went into, boxed (the steps that fed it pointed
/// at it), and the records its cache steps kept.
struct ChunkState {
    index: usize,
    action: Box<OpenStep>,
    kept: Vec<KeptChunk>,
}

// SAFETY: a chunk's state is the task's own, opened for this task and used by one thread at a
// time: the thread that fed it, then the task's thread, which merges and closes it. Cell code's
// actions are `Send` (their trait says so).
unsafe impl Send for ChunkState {}

/// What a helper sends the task's thread: a chunk's state, or why it failed.
type Done = Result<ChunkState, ExecutorError>;

/// Opens an action state for chunk `index`, links `chain`'s steps to it, pushes the chunk's
/// records through them, and returns it with what the chain's cache steps kept of them.
fn run_chunk(
    task: &TaskSpec,
    env: &TaskEnv,
    chain: &mut OpenChain,
    chunks: &Chunks,
    index: usize,
    shared: &mut Shared,
) -> Result<ChunkState, ExecutorError> {
    let mut action = Box::new(open_action(task, env, chain.output, shared)?);
    let head = link(chain, &mut *action);
    chunks.feed(index, head, shared)?;
    Ok(ChunkState {
        index,
        action,
        kept: chain.take_chunk(),
    })
}

/// A chain of the task's steps to run chunks through ([`Keeping::Chunk`]), if it starts where
/// the task's chunks come from.
fn open_for_chunks<'a>(
    task: &'a TaskSpec,
    env: &TaskEnv,
    chunks: &Chunks,
    shared: &mut Shared,
) -> Result<Option<OpenChain<'a>>, ExecutorError> {
    let opened = build_chain(
        task.chain.source.as_ref(),
        &task.chain.steps,
        env,
        shared,
        Keeping::Chunk,
    )?;
    Ok(opened.filter(|chain| chunks.read_from(&chain.start)))
}

/// Runs the task's records in chunks on this thread and on the executor's slots that no task
/// wants, and merges every chunk's state into `action`, in chunk order, adding what each
/// chunk cached to the partitions `chain` caches. Returns how many threads took chunks. A
/// record-wise step holds nothing between batches: its `finish` is not called.
pub(crate) fn drive_shared<'a>(
    task: &'a TaskSpec,
    env: &TaskEnv,
    chain: &mut OpenChain<'a>,
    action: &mut OpenStep,
    shared: &mut Shared,
) -> Result<u32, ExecutorError> {
    let chunks = Chunks::of(chain);
    // Carrying on a lost executor's part: its records go on past the cache, which holds them
    // already, before the chunks of the lines after them.
    if let Some(Checkpointed {
        step,
        resume_from: Some(_),
    }) = chain.checkpointed
    {
        link(chain, action);
        if chain.open_steps[step].push_carried_on() != STATUS_OK {
            return Err(shared.take_error(ExecutorError::TaskFailed));
        }
    }
    // A chain that caches keeps its partitions in chunk order: this thread's chunks, like a
    // helper's, go through a chain of their own.
    let mut own = if chain.caches() {
        let opened = open_for_chunks(task, env, &chunks, shared)?;
        Some(opened.ok_or(ExecutorError::StartChanged)?)
    } else {
        None
    };
    let cursor = &chunks.cursor;
    let (done, finished) = mpsc::channel::<Done>();
    // What helpers give back as they end, kept until their chunks' states are merged.
    let helped: std::sync::Mutex<Vec<Helped>> = std::sync::Mutex::new(Vec::new());
    let helping = || help(task, env, &chunks, &done, &helped);
    let mut offered = None;
    let mut in_order = InOrder::new();
    let mut failed = None;
    let (started, mut ran_units) = (Instant::now(), 0u32);
    while let Some(index) = cursor.claim() {
        // Help is asked for once the task's own pace is known, by when a job's other tasks,
        // sent together, have reached the executor's other slots.
        if offered.is_none()
            && ran_units > 0
            && let Some(slots) = env.slots
            && worth_helping(started.elapsed() / ran_units, chunks.units_left())
        {
            offered = Some(slots.offer_help(&helping));
        }
        let runner = match &mut own {
            Some(own) => own,
            None => &mut *chain,
        };
        match run_chunk(task, env, runner, &chunks, index, shared) {
            Ok(state) => in_order.put(index, state),
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
        ran_units += chunks.units(index) as u32;
        if let Some(slots) = env.slots {
            slots.make_way();
        }
        // What helpers finished meanwhile, merged as soon as it is next in order.
        for helped in finished.try_iter() {
            match helped {
                Ok(state) => in_order.put(state.index, state),
                Err(error) => failed = failed.or(Some(error)),
            }
        }
        if failed.is_some() {
            break;
        }
        if let Err(error) = in_order.merge_ready(|part| merge(action, chain, &chunks, part, shared))
        {
            failed = Some(error);
            break;
        }
    }
    if failed.is_some() {
        cursor.stop();
    }
    // Withdrawn, the offer has no helper left: none uses this task's state any more.
    drop(offered);
    let helped = helped.into_inner().unwrap_or_else(|e| e.into_inner());
    let threads = 1 + helped.iter().filter(|helper| helper.took_chunks).count() as u32;
    for helped in finished.try_iter() {
        match helped {
            Ok(state) => in_order.put(state.index, state),
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    in_order.merge_ready(|part| merge(action, chain, &chunks, part, shared))?;
    debug_assert_eq!(in_order.merged(), chunks.count(), "every chunk merged");
    // The steps point at the task's action again, not at a chunk's state merged and gone.
    link(chain, action);
    // The helpers' error states, which their chunks' steps pointed at, go last.
    drop(helped);
    Ok(threads)
}

/// Merges a chunk's state into the task's action, after adding what it cached to the
/// partitions `chain` caches and noting how far into its text split the partition now goes.
fn merge(
    action: &mut OpenStep,
    chain: &mut OpenChain,
    chunks: &Chunks,
    part: ChunkState,
    shared: &mut Shared,
) -> Result<(), ExecutorError> {
    let ChunkState {
        index,
        action: mut state,
        kept,
    } = part;
    if !kept.is_empty() {
        chain.keep_chunk(kept);
        if let (Some(at), Some(to)) = (chain.checkpointed, chunks.resume_point(index)) {
            chain.open_steps[at.step].checkpoint(to);
        }
    }
    action.merge(&mut state, shared)
}

/// What a helper gives back as it ends.
struct Helped<'a> {
    /// Whether it ran a chunk.
    took_chunks: bool,
    /// The error state that the steps which fed its chunks' states point at, kept until those
    /// are merged.
    _shared: Box<Shared<'a>>,
}

/// A slot's help with the task's chunks, on the slot's own thread: opens the task's steps
/// again, starting where the task's do, and runs chunks until none are left or a task wants
/// the slot, sending each chunk's state to the task's thread.
fn help<'a>(
    task: &'a TaskSpec,
    env: &'a TaskEnv,
    chunks: &Chunks,
    done: &mpsc::Sender<Done>,
    helped: &std::sync::Mutex<Vec<Helped<'a>>>,
) -> HelpEnded {
    let mut shared = Box::new(Shared::new(env.cancelled));
    let mut took_chunks = false;
    let mut ended = HelpEnded::NothingLeft;
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // Opening as the task did cannot fail where the task's did not, unless the block went
        // in between; then the task's thread does the rest alone.
        let Some(mut chain) = open_for_chunks(task, env, chunks, &mut shared)
            .ok()
            .flatten()
        else {
            return;
        };
        loop {
            if env.slots.is_some_and(|slots| slots.task_waiting()) {
                ended = HelpEnded::TaskWaiting;
                return;
            }
            let Some(index) = chunks.cursor.claim() else {
                return;
            };
            took_chunks = true;
            let ran = run_chunk(task, env, &mut chain, chunks, index, &mut shared);
            let failed = ran.is_err();
            if failed {
                chunks.cursor.stop();
            }
            if done.send(ran).is_err() || failed {
                return;
            }
        }
    }));
    // A chunk this thread took and did not finish fails the task rather than going missing.
    if let Err(panic) = caught {
        chunks.cursor.stop();
        let text = panic_text(panic.as_ref()).unwrap_or_else(|| "no message".to_string());
        let _ = done.send(Err(ExecutorError::HelperPanicked(text)));
        ended = HelpEnded::NothingLeft;
    }
    helped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Helped {
            took_chunks,
            _shared: shared,
        });
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: TaskShape = TaskShape {
        from: Origin::CachedRecords,
        steps_recordwise: true,
        action_merges: true,
    };

    #[test]
    fn a_cached_partition_or_a_text_split_through_recordwise_steps_into_a_merging_action_is_shared()
    {
        assert!(shares(SHARED));
        assert!(shares(TaskShape {
            from: Origin::TextSplit,
            ..SHARED
        }));
    }

    #[test]
    fn anything_else_runs_on_the_tasks_own_thread() {
        let cases = [
            (
                "neither cached in memory as records nor a text split",
                TaskShape {
                    from: Origin::Elsewhere,
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
                "a text split's lines into a step that sees them whole",
                TaskShape {
                    from: Origin::TextSplit,
                    steps_recordwise: false,
                    ..SHARED
                },
            ),
            (
                "the action's states do not merge",
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
    fn help_is_asked_for_only_for_work_that_outlasts_what_it_costs() {
        let piece = Duration::from_micros(30);
        assert!(
            worth_helping(piece, 60),
            "an LR task's pieces, most of them left"
        );
        assert!(worth_helping(piece, 4));
        assert!(!worth_helping(piece, 3), "three pieces: 90 µs");
        assert!(
            !worth_helping(Duration::from_micros(2), 40),
            "a count's pieces"
        );
        assert!(!worth_helping(Duration::from_secs(1), 0), "nothing left");
        assert!(
            worth_helping(Duration::from_secs(1), usize::MAX),
            "no overflow"
        );
    }

    #[test]
    fn chunks_cover_the_pieces_once_the_last_ones_one_by_one() {
        for pieces in [0, 1, 5, 8, 9, 16, 19, 61, 1000] {
            let covered: Vec<usize> = (0..chunk_count(pieces))
                .flat_map(|i| chunk_range(i, pieces))
                .collect();
            assert_eq!(covered, (0..pieces).collect::<Vec<_>>(), "{pieces} pieces");
            let sizes: Vec<usize> = (0..chunk_count(pieces))
                .map(|i| chunk_range(i, pieces).len())
                .collect();
            let tail = pieces.min(TAIL_PIECES);
            assert!(
                sizes[sizes.len() - tail..].iter().all(|&n| n == 1),
                "{pieces}: {sizes:?}"
            );
            assert!(
                sizes.iter().all(|&n| (1..=CHUNK_PIECES).contains(&n)),
                "{pieces}: {sizes:?}"
            );
        }
        // An LR task's 61 pieces: seven chunks before the tail (the last of five), then eight.
        assert_eq!(chunk_count(61), 15);
        assert_eq!(chunk_range(6, 61), 48..53);
        assert_eq!(chunk_range(7, 61), 53..54);
        assert_eq!(chunk_range(15, 61), 61..61, "past the end: nothing");
    }

    #[test]
    fn parts_are_merged_in_their_order_whenever_they_come() {
        let mut in_order = InOrder::new();
        let mut merged = Vec::new();
        for (index, part) in [(2, "c"), (0, "a"), (3, "d"), (1, "b")] {
            in_order.put(index, part);
            in_order
                .merge_ready(|part| -> Result<(), ()> {
                    merged.push(part);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(merged, ["a", "b", "c", "d"]);
        assert_eq!(in_order.merged(), 4);
    }

    #[test]
    fn a_part_that_fails_to_merge_stops_the_merging() {
        let mut in_order = InOrder::new();
        in_order.put(0, 0);
        in_order.put(1, 1);
        let failed = in_order.merge_ready(|part| if part == 0 { Err("bad") } else { Ok(()) });
        assert_eq!(failed, Err("bad"));
    }

    #[test]
    fn the_cursor_hands_out_each_chunk_once_across_threads() {
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
