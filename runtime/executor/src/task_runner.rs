//! Runs one task: pushes a partition's batches from its source (shipped records, a file split,
//! fetched shuffle buckets, or a cached block) through the chain of operators of its narrow
//! transformations into its action, caching the partitions the plan asks for on the way. A
//! shuffle map task's action splits the partition into buckets, which are kept here: in memory,
//! or, when the writer's output is larger than the task's spill budget, streamed to a file
//! ([`OutputSink`]). A task reading a shuffle decodes its buckets one record frame at a time.

use crate::artifacts::Artifacts;
use crate::bad_record::{first_failing_line, read_bad_record, with_place};
use crate::blocks::{Block, BlockManager};
use crate::error::ExecutorError;
use crate::morsels;
use crate::shuffle_store::{Bucket, ShuffleStore};
use crate::task_host::TaskHost;
use crate::task_slots::TaskSlots;
use std::collections::HashMap;
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, BatchVTable, ByteSink, ErrorSink,
    MALFORMED_PREFIX, OpenArgs, OperatorVTable, PANIC_PREFIX, RawBytes, STATUS_ERROR, STATUS_OK,
    SourceVTable, Status, TableEntry,
};
use tessera_plan::builtin::is_builtin;
use tessera_plan::map_output::MapOutput;
use tessera_plan::{
    BatchCode, Chain, CodeRef, FileSplit, Operator, PartitionOrigin, RddId, ShuffleId, Step,
    StorageLevel, StoredBlock, TaskAction, TaskMetrics, TaskOutcome, TaskSource, TaskSpec,
};

/// What a task may use of its executor.
pub struct TaskEnv<'a> {
    pub artifacts: &'a Artifacts,
    pub blocks: &'a BlockManager,
    pub shuffles: &'a ShuffleStore,
    pub cancelled: &'a AtomicBool,
    /// The executor's slots, whose idle ones may help with a cached partition's batches
    /// ([`morsels`]).
    pub slots: Option<&'a TaskSlots>,
    pub executor_id: &'a str,
    pub host: &'a TaskHost<'a>,
    /// The buckets of each shuffle partition the task's source reads, fetched before it runs
    /// (a task that concatenates partitions, as `coalesce` does, may read several of one
    /// shuffle).
    pub shuffle_input: &'a HashMap<(ShuffleId, u32), Vec<Bucket>>,
    /// Bytes of those buckets that were kept on disk rather than in memory.
    pub fetch_spilled: u64,
}

/// Every library a task's code lives in, so they can be fetched before it runs.
pub fn libraries(task: &TaskSpec) -> Vec<String> {
    let operators = task.operators();
    let mut libraries: Vec<String> = operators
        .iter()
        .flat_map(|op| std::iter::once(&op.entry).chain(op.env_decoder.as_ref()))
        .filter(|code| !is_builtin(code))
        .map(|code| code.library.clone())
        .collect();
    libraries.sort();
    libraries.dedup();
    libraries
}

pub fn run_task(task: &TaskSpec, env: &TaskEnv) -> TaskOutcome {
    let started = Instant::now();
    let mut shared = Shared::new(env.cancelled);
    match run(task, env, &mut shared) {
        Ok(None) => TaskOutcome::CacheMiss,
        Ok(Some(ran)) => TaskOutcome::Success {
            result: ran.result,
            metrics: TaskMetrics {
                executor_id: env.executor_id.to_string(),
                executor_pid: std::process::id(),
                origin: ran.origin,
                records: ran.records,
                run_micros: started.elapsed().as_micros() as u64,
                // Known to the service, which waited for the slot.
                slot_wait_micros: 0,
                stored: ran.stored,
                evicted: ran.evicted,
                // The task's operators, closed by now, reported what they accumulated.
                accumulator_updates: env.host.take_updates(),
                shuffle_read_bytes: env.shuffle_input.values().flatten().map(Bucket::len).sum(),
                shuffle_write_bytes: ran.shuffle_written,
                spilled_bytes: env.host.spilled() + env.fetch_spilled,
                threads: ran.threads,
            },
        },
        // The outcome travels as text.
        Err(error) => TaskOutcome::Failed {
            message: locate_bad_record(task, env, error.to_string()),
        },
    }
}

/// `message`, the reason a task failed, with the line of one of its text splits that makes its
/// closures panic, when one line does (found as `bad_record` says). A task that concatenates
/// chains (`coalesce`, `cartesian`) is searched one text split at a time, the others left out.
fn locate_bad_record(task: &TaskSpec, env: &TaskEnv, message: String) -> String {
    let Some(source) = &task.chain.source else {
        return message;
    };
    let malformed = message.starts_with(MALFORMED_PREFIX);
    if !(message.starts_with(PANIC_PREFIX) || malformed) || env.cancelled.load(Ordering::Relaxed) {
        return message;
    }
    // A reader's message for a row that does not parse says where in its chunk it was, which
    // differs as the chunks do: any such failure is the same failure.
    let same_failure = |e: &ExecutorError| {
        let text = e.to_string();
        text == message || (malformed && text.starts_with(MALFORMED_PREFIX))
    };
    let replay = replay_of(task, env);
    let mut leaves = Vec::new();
    text_splits(source, &mut Vec::new(), &mut leaves);
    for (at, split) in leaves {
        let fails = |range: std::ops::Range<u64>| {
            let Some(alone) = one_split(source, &at, range) else {
                return false;
            };
            run_from(&replay, alone, env).is_err_and(|e| same_failure(&e))
        };
        if !fails(split.start..split.end) {
            continue;
        }
        let place = first_failing_line(split.start..split.end, fails)
            .and_then(|start| read_bad_record(&split.path, start).ok());
        return with_place(message, place.as_ref());
    }
    message
}

/// `steps` with nothing cached.
fn uncached(steps: &[Step]) -> Vec<Step> {
    steps
        .iter()
        .map(|step| Step {
            persist: None,
            ..step.clone()
        })
        .collect()
}

/// Every text split `source` reads, with where it is: the chain to take at each level of
/// concatenation.
fn text_splits(source: &TaskSource, at: &mut Vec<usize>, out: &mut Vec<(Vec<usize>, FileSplit)>) {
    match source {
        TaskSource::TextSplit { split, .. } => out.push((at.clone(), split.clone())),
        TaskSource::Concat(chains) => {
            for (i, chain) in chains.iter().enumerate() {
                if let Some(source) = &chain.source {
                    at.push(i);
                    text_splits(source, at, out);
                    at.pop();
                }
            }
        }
        TaskSource::Records { .. }
        | TaskSource::ShuffleRead { .. }
        | TaskSource::SavedPartition { .. } => {}
    }
}

/// `source` reduced to the text split at `at`, reading only the lines that start in `range`:
/// the other chains of each concatenation left out.
fn one_split(source: &TaskSource, at: &[usize], range: std::ops::Range<u64>) -> Option<TaskSource> {
    match (source, at) {
        (TaskSource::TextSplit { split, decoder }, []) => Some(TaskSource::TextSplit {
            split: FileSplit {
                path: split.path.clone(),
                start: range.start,
                end: range.end,
            },
            decoder: decoder.clone(),
        }),
        (TaskSource::Concat(chains), [i, rest @ ..]) => {
            let chain = chains.get(*i)?;
            let inner = one_split(chain.source.as_ref()?, rest, range)?;
            Some(TaskSource::Concat(vec![Chain {
                source: Some(inner),
                steps: uncached(&chain.steps),
            }]))
        }
        _ => None,
    }
}

/// `task` as the search for a bad line runs it again, from the files alone: its steps cache
/// nothing (and read nothing cached), and it ends in its own action when the action's table
/// says it only folds (such as the fused `map` and `reduce`, whose closure may be the one that
/// panicked), else in a count.
fn replay_of(task: &TaskSpec, env: &TaskEnv) -> TaskSpec {
    let action = match &task.action {
        TaskAction::Run(op)
            if table::<ActionVTable>(env.artifacts, &op.entry, |t| t.abi_version)
                .is_ok_and(|t| t.replayable) =>
        {
            task.action.clone()
        }
        _ => TaskAction::Count,
    };
    TaskSpec {
        chain: Chain {
            source: task.chain.source.clone(),
            steps: uncached(&task.chain.steps),
        },
        action,
        replicate_to: Vec::new(),
        ..task.clone()
    }
}

/// `replay` run from `source`: the error it fails with.
fn run_from(replay: &TaskSpec, source: TaskSource, env: &TaskEnv) -> Result<(), ExecutorError> {
    let mut again = replay.clone();
    again.chain.source = Some(source);
    let mut shared = Shared {
        error: None,
        cancelled: env.cancelled,
    };
    run(&again, env, &mut shared).map(|_| ())
}

/// State every step of a running task shares: the first error, and the cancel flag.
pub(crate) struct Shared<'a> {
    error: Option<ExecutorError>,
    cancelled: &'a AtomicBool,
}

impl Shared<'_> {
    /// A task's first error, none yet.
    pub(crate) fn new(cancelled: &AtomicBool) -> Shared<'_> {
        Shared {
            error: None,
            cancelled,
        }
    }

    fn fail(&mut self, error: ExecutorError) -> Status {
        self.error.get_or_insert(error);
        STATUS_ERROR
    }

    fn sink(&mut self) -> ErrorSink {
        ErrorSink {
            ctx: self as *mut Shared as *mut c_void,
            set: set_error,
        }
    }

    /// The first error, or `fallback` when the code failed without saying why.
    pub(crate) fn take_error(&mut self, fallback: ExecutorError) -> ExecutorError {
        self.error.take().unwrap_or(fallback)
    }
}

unsafe extern "C" fn set_error(ctx: *mut c_void, message: RawBytes) {
    let shared = unsafe { &mut *(ctx as *mut Shared) };
    shared.fail(ExecutorError::UserCode {
        message: String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned(),
    });
}

pub(crate) enum OpenStepKind {
    Operator {
        table: &'static OperatorVTable,
        state: *mut c_void,
    },
    Cache {
        rdd: RddId,
        partition: u32,
        /// How the block manager keeps the partition once the task succeeds.
        level: StorageLevel,
        kept: Vec<Batch>,
        /// Where the table of its batches comes from, sent with a copy to another executor.
        code: BatchCode,
    },
    Count {
        records: u64,
    },
    Action {
        table: &'static ActionVTable,
        state: *mut c_void,
        records: u64,
    },
}

/// One step of a chain, opened on this executor (its operator's state made); `input` is the
/// table of the batches it receives.
pub(crate) struct OpenStep {
    pub(crate) kind: OpenStepKind,
    input: BatchVTable,
    next: *mut OpenStep,
    shared: *mut Shared<'static>,
}

unsafe extern "C" fn push_to_step(ctx: *mut c_void, batch: Batch) -> Status {
    unsafe { (*(ctx as *mut OpenStep)).accept(batch) }
}

impl OpenStep {
    fn sink(step: *mut OpenStep) -> BatchSink {
        BatchSink {
            ctx: step as *mut c_void,
            push: push_to_step,
        }
    }

    unsafe fn accept(&mut self, batch: Batch) -> Status {
        let shared = unsafe { &mut *self.shared };
        if shared.cancelled.load(Ordering::Relaxed) {
            unsafe { (self.input.drop)(batch) };
            return shared.fail(ExecutorError::Cancelled);
        }
        let err = shared.sink();
        match &mut self.kind {
            OpenStepKind::Operator { table, state } => unsafe {
                (table.push)(*state, batch, OpenStep::sink(self.next), err)
            },
            OpenStepKind::Cache { kept, .. } => {
                let copy = unsafe { (self.input.clone)(batch) };
                kept.push(batch);
                unsafe { (*self.next).accept(copy) }
            }
            OpenStepKind::Count { records } => {
                *records += unsafe { (self.input.len)(batch) } as u64;
                unsafe { (self.input.drop)(batch) };
                STATUS_OK
            }
            OpenStepKind::Action {
                table,
                state,
                records,
            } => {
                *records += unsafe { (self.input.len)(batch) } as u64;
                unsafe { (table.push)(*state, batch, err) }
            }
        }
    }

    /// As [`OpenStep::accept`], for a batch the caller keeps: an operator or action that reads
    /// batches in place gets it as it is, a count reads its length; any other step takes a
    /// copy.
    pub(crate) unsafe fn accept_shared(&mut self, batch: Batch) -> Status {
        let shared = unsafe { &mut *self.shared };
        if shared.cancelled.load(Ordering::Relaxed) {
            return shared.fail(ExecutorError::Cancelled);
        }
        let err = shared.sink();
        match &mut self.kind {
            OpenStepKind::Operator { table, state } => {
                if let Some(push_shared) = table.push_shared {
                    return unsafe { push_shared(*state, batch, OpenStep::sink(self.next), err) };
                }
            }
            OpenStepKind::Count { records } => {
                *records += unsafe { (self.input.len)(batch) } as u64;
                return STATUS_OK;
            }
            OpenStepKind::Action {
                table,
                state,
                records,
            } => {
                if let Some(push_shared) = table.push_shared {
                    *records += unsafe { (self.input.len)(batch) } as u64;
                    return unsafe { push_shared(*state, batch, err) };
                }
            }
            OpenStepKind::Cache { .. } => {}
        }
        let copy = unsafe { (self.input.clone)(batch) };
        unsafe { self.accept(copy) }
    }

    /// Folds what `other`, the same action opened for the same partition, was pushed into this
    /// one (see [`ActionVTable::merge`]); `other` is left to be dropped.
    pub(crate) fn merge(
        &mut self,
        other: &mut OpenStep,
        shared: &mut Shared,
    ) -> Result<(), ExecutorError> {
        match (&mut self.kind, &mut other.kind) {
            (OpenStepKind::Count { records }, OpenStepKind::Count { records: more }) => {
                *records += *more;
                Ok(())
            }
            (
                OpenStepKind::Action {
                    table,
                    state,
                    records,
                },
                OpenStepKind::Action {
                    state: other_state,
                    records: more,
                    ..
                },
            ) => {
                let merge = table
                    .merge
                    .expect("only an action that merges is shared among threads");
                if unsafe { merge(*state, *other_state, shared.sink()) } != STATUS_OK {
                    return Err(shared.take_error(ExecutorError::TaskFailed));
                }
                *records += *more;
                Ok(())
            }
            _ => unreachable!("a task's threads open the same action"),
        }
    }
}

impl Drop for OpenStep {
    fn drop(&mut self) {
        match &mut self.kind {
            OpenStepKind::Operator { table, state } => unsafe { (table.close)(*state) },
            OpenStepKind::Action { table, state, .. } => unsafe { (table.close)(*state) },
            OpenStepKind::Cache { kept, .. } => {
                for batch in kept.drain(..) {
                    unsafe { (self.input.drop)(batch) };
                }
            }
            OpenStepKind::Count { .. } => {}
        }
    }
}

unsafe extern "C" fn append_bytes(ctx: *mut c_void, bytes: RawBytes) {
    unsafe { (*(ctx as *mut Vec<u8>)).extend_from_slice(bytes.as_slice()) }
}

fn type_name(f: unsafe extern "C" fn() -> RawBytes) -> String {
    String::from_utf8_lossy(unsafe { f().as_slice() }).into_owned()
}

/// Finds the table an operator's entry returns, checking its ABI version.
pub(crate) fn table<T>(
    artifacts: &Artifacts,
    code: &CodeRef,
    version: impl Fn(&T) -> u32,
) -> Result<&'static T, ExecutorError> {
    let address = artifacts.resolve(code)?;
    // SAFETY: the plan says this address is a `TableEntry` of this library.
    let entry: TableEntry = unsafe { std::mem::transmute::<*const c_void, TableEntry>(address) };
    let table = unsafe { &*(entry() as *const T) };
    if version(table) != ABI_VERSION {
        return Err(ExecutorError::AbiMismatch {
            library: code.library.clone(),
            library_version: version(table),
            executor_version: ABI_VERSION,
        });
    }
    Ok(table)
}

fn open_args(
    env: &TaskEnv,
    op: &Operator<CodeRef>,
    partition: u32,
) -> Result<OpenArgs, ExecutorError> {
    let env_decoder = match &op.env_decoder {
        None => None,
        Some(code) => {
            let address = env.artifacts.resolve(code)?;
            // SAFETY: the plan says this address is an `EnvDecoder`.
            Some(unsafe {
                std::mem::transmute::<*const c_void, tessera_plan::abi::EnvDecoder>(address)
            })
        }
    };
    Ok(OpenArgs {
        captures: RawBytes::from_slice(&op.captures),
        env_decoder,
        params: RawBytes::from_slice(&op.params),
        partition,
        host: env.host.table(),
    })
}

type OpenFn = unsafe extern "C" fn(OpenArgs, *mut *mut c_void, ErrorSink) -> Status;

/// Opens operator or action `op` (through its table's `open`) after checking that it takes the
/// records `input` holds; returns its state.
#[allow(clippy::too_many_arguments)]
fn open_state(
    env: &TaskEnv,
    op: &Operator<CodeRef>,
    partition: u32,
    shared: &mut Shared,
    what: &str,
    open: OpenFn,
    input_type: unsafe extern "C" fn() -> RawBytes,
    input: &BatchVTable,
) -> Result<*mut c_void, ExecutorError> {
    check_input(what, &type_name(input_type), &type_name(input.type_name))?;
    let args = open_args(env, op, partition)?;
    let mut state = std::ptr::null_mut();
    if unsafe { open(args, &mut state, shared.sink()) } != STATUS_OK {
        return Err(shared.take_error(ExecutorError::OpenFailed {
            what: what.to_string(),
        }));
    }
    Ok(state)
}

fn check_input(what: &str, expected: &str, actual: &str) -> Result<(), ExecutorError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ExecutorError::InputTypeMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// What a task that ran to its end produced.
struct Ran {
    result: Vec<u8>,
    origin: PartitionOrigin,
    records: u64,
    stored: Vec<StoredBlock>,
    evicted: Vec<(RddId, u32)>,
    shuffle_written: u64,
    /// Threads its records went through ([`morsels`]).
    threads: u32,
}

pub(crate) enum Start<'a> {
    Cached(std::sync::Arc<Block>),
    Source(&'a TaskSource, &'static SourceVTable),
    /// The chains of a partitionwise union, each feeding the step after the union in turn.
    Concat(Vec<OpenChain<'a>>),
}

/// A chain's open steps before they are linked: where its records start, the open steps of the steps
/// after the last one this executor caches, and the table of the batches it puts out.
pub(crate) struct OpenChain<'a> {
    pub(crate) start: Start<'a>,
    pub(crate) open_steps: Vec<OpenStep>,
    pub(crate) output: BatchVTable,
    /// Where `output` comes from.
    output_code: BatchCode,
    origin: PartitionOrigin,
}

/// Builds a chain from `source` through `steps`, resuming from the last step this executor
/// caches; `None` when it came without its source and nothing of it is cached.
pub(crate) fn build_chain<'a>(
    source: Option<&'a TaskSource>,
    steps: &[Step],
    env: &TaskEnv,
    shared: &mut Shared,
) -> Result<Option<OpenChain<'a>>, ExecutorError> {
    // The open steps point at `shared` for as long as they live, which is within `run`.
    let shared_ptr = shared as *mut Shared as *mut Shared<'static>;
    let resume = steps.iter().enumerate().rev().find_map(|(i, step)| {
        step.persist
            .and_then(|_| env.blocks.get(step.rdd, step.partition))
            .map(|block| (i, block))
    });
    let (start, first_step) = match (resume, source) {
        (Some((i, block)), _) => (Start::Cached(block), i + 1),
        (None, Some(TaskSource::Concat(chains))) => {
            let mut built = Vec::new();
            for chain in chains {
                match build_chain(chain.source.as_ref(), &chain.steps, env, shared)? {
                    Some(chain) => built.push(chain),
                    None => return Ok(None),
                }
            }
            (Start::Concat(built), 0)
        }
        (None, Some(source)) => {
            let decoder = source.operators()[0];
            let table = table::<SourceVTable>(env.artifacts, &decoder.entry, |t| t.abi_version)?;
            (Start::Source(source, table), 0)
        }
        (None, None) => return Ok(None),
    };
    let (mut input, mut code, origin) = match &start {
        Start::Cached(block) => (
            *block.vtable(),
            block.code().clone(),
            PartitionOrigin::Cached {
                rdd: steps[first_step - 1].rdd,
            },
        ),
        Start::Source(source, table) => (
            table.output,
            BatchCode::Source(source.operators()[0].entry.clone()),
            PartitionOrigin::Computed,
        ),
        Start::Concat(chains) => {
            let first = chains.first().ok_or(ExecutorError::EmptyUnion)?;
            for chain in chains {
                check_input(
                    "a union",
                    &type_name(first.output.type_name),
                    &type_name(chain.output.type_name),
                )?;
            }
            let cached = chains
                .iter()
                .map(|c| c.origin.clone())
                .find(|o| *o != PartitionOrigin::Computed);
            (
                first.output,
                first.output_code.clone(),
                cached.unwrap_or(PartitionOrigin::Computed),
            )
        }
    };

    let mut open_steps = Vec::new();
    let mut add = |kind, input| {
        open_steps.push(OpenStep {
            kind,
            input,
            next: std::ptr::null_mut(),
            shared: shared_ptr,
        })
    };
    for step in steps.iter().skip(first_step) {
        if let Some(op) = &step.op {
            let table = table::<OperatorVTable>(env.artifacts, &op.entry, |t| t.abi_version)?;
            let what = format!("rdd {}", step.rdd);
            let state = open_state(
                env,
                op,
                step.partition,
                shared,
                &what,
                table.open,
                table.input_type,
                &input,
            )?;
            add(OpenStepKind::Operator { table, state }, input);
            input = table.output;
            code = BatchCode::Operator(op.entry.clone());
        }
        // A step without an operator is the source, or a union passing records on unchanged.
        if let Some(level) = step.persist {
            let kind = OpenStepKind::Cache {
                rdd: step.rdd,
                partition: step.partition,
                level,
                kept: Vec::new(),
                code: code.clone(),
            };
            add(kind, input);
        }
    }
    Ok(Some(OpenChain {
        start,
        open_steps,
        output: input,
        output_code: code,
        origin,
    }))
}

/// Feeds a chain's records through its open steps into `sink`, then finishes its open steps in order
/// (finishing one may push more batches into the next). `sink` is not finished.
fn drive(
    chain: &mut OpenChain,
    sink: *mut OpenStep,
    env: &TaskEnv,
    shared: &mut Shared,
) -> Result<(), ExecutorError> {
    let head = link(chain, sink);
    let fed = match &mut chain.start {
        Start::Cached(block) => {
            let mut status = STATUS_OK;
            if let Some(batches) = block.shared() {
                // Read in place: the block outlives the chain, and nothing changes it.
                for &batch in batches {
                    status = unsafe { (*head).accept_shared(batch) };
                    if status != STATUS_OK {
                        break;
                    }
                }
            } else {
                for batch in block.batches()? {
                    if status == STATUS_OK {
                        status = unsafe { (*head).accept(batch) };
                    } else {
                        unsafe { (block.vtable().drop)(batch) };
                    }
                }
            }
            status
        }
        Start::Concat(chains) => {
            for chain in chains {
                drive(chain, head, env, shared)?;
            }
            STATUS_OK
        }
        Start::Source(source, table) => {
            let table: &SourceVTable = table;
            let decode = |bytes: &[u8], shared: &mut Shared| {
                if bytes.is_empty() {
                    return STATUS_OK;
                }
                unsafe {
                    (table.decode)(
                        RawBytes::from_slice(bytes),
                        OpenStep::sink(head),
                        shared.sink(),
                    )
                }
            };
            match source {
                TaskSource::Records { bytes, .. } => decode(bytes, shared),
                TaskSource::ShuffleRead {
                    shuffle, partition, ..
                } => {
                    let buckets = env
                        .shuffle_input
                        .get(&(*shuffle, *partition))
                        .ok_or(ExecutorError::ShuffleNotFetched { shuffle: *shuffle })?;
                    let mut status = STATUS_OK;
                    for bucket in buckets {
                        bucket
                            .read_frames(|frame| {
                                status = decode(frame, shared);
                                status == STATUS_OK
                            })
                            .map_err(|source| ExecutorError::ShuffleBucketRead {
                                shuffle: *shuffle,
                                source,
                            })?;
                        if status != STATUS_OK {
                            break;
                        }
                    }
                    status
                }
                TaskSource::TextSplit { split, .. } => {
                    let mut status = STATUS_OK;
                    read_split(split, SPLIT_CHUNK_BYTES, |lines| {
                        status = decode(lines, shared);
                        status == STATUS_OK
                    })
                    .map_err(|source| ExecutorError::SplitRead {
                        path: split.path.clone(),
                        host: tessera_wire::hostname(),
                        start: split.start,
                        end: split.end,
                        source,
                    })?;
                    status
                }
                TaskSource::SavedPartition { path, .. } => {
                    let bytes = std::fs::read(path.as_str()).map_err(|source| {
                        ExecutorError::CheckpointRead {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    decode(&bytes, shared)
                }
                TaskSource::Concat(_) => unreachable!("built as Start::Concat"),
            }
        }
    };
    if fed != STATUS_OK {
        return Err(shared.take_error(ExecutorError::TaskFailed));
    }
    finish_steps(chain, shared)
}

/// Links a chain's open steps to each other and the last to `sink`; returns the first step
/// (`sink` when there is none). `open_steps` is not resized from here on, so the pointers stay
/// valid.
pub(crate) fn link(chain: &mut OpenChain, sink: *mut OpenStep) -> *mut OpenStep {
    let count = chain.open_steps.len();
    let base = chain.open_steps.as_mut_ptr();
    for i in 0..count {
        let next = if i + 1 < count {
            unsafe { base.add(i + 1) }
        } else {
            sink
        };
        unsafe { (*base.add(i)).next = next };
    }
    if count == 0 { sink } else { base }
}

/// Finishes a chain's operators in order (finishing one may push more batches into the next).
fn finish_steps(chain: &mut OpenChain, shared: &mut Shared) -> Result<(), ExecutorError> {
    for step in &mut chain.open_steps {
        if let OpenStepKind::Operator { table, state } = &mut step.kind {
            let status =
                unsafe { (table.finish)(*state, OpenStep::sink(step.next), shared.sink()) };
            if status != STATUS_OK {
                return Err(shared.take_error(ExecutorError::TaskFailed));
            }
        }
    }
    Ok(())
}

/// Keeps the partitions the chain (and the chains it concatenates) was asked to cache; notes
/// those it kept and those evicted to make room.
fn store_cached(
    chain: &mut OpenChain,
    env: &TaskEnv,
    stored: &mut Vec<StoredBlock>,
    evicted: &mut Vec<(RddId, u32)>,
) {
    if let Start::Concat(chains) = &mut chain.start {
        for chain in chains {
            store_cached(chain, env, stored, evicted);
        }
    }
    for step in &mut chain.open_steps {
        if let OpenStepKind::Cache {
            rdd,
            partition,
            level,
            kept,
            code,
        } = &mut step.kind
        {
            let batches = std::mem::take(kept);
            match env
                .blocks
                .put(*rdd, *partition, *level, batches, step.input, code.clone())
            {
                Ok(outcome) => {
                    if let Some(bytes) = outcome.kept {
                        stored.push(StoredBlock {
                            rdd: *rdd,
                            partition: *partition,
                            bytes,
                            level: *level,
                            // Copied by the service once the task is done.
                            replicas: Vec::new(),
                        });
                    }
                    evicted.extend(outcome.dropped);
                }
                // Not caching loses nothing: the partition is recomputed when needed.
                Err(e) => tracing::warn!(rdd, partition, "cannot cache a partition: {e}"),
            }
        }
    }
}

/// Opens the task's action, which takes the records `input` holds.
pub(crate) fn open_action(
    task: &TaskSpec,
    env: &TaskEnv,
    input: BatchVTable,
    shared: &mut Shared,
) -> Result<OpenStep, ExecutorError> {
    let kind = match &task.action {
        TaskAction::Count => OpenStepKind::Count { records: 0 },
        TaskAction::Run(op) | TaskAction::ShuffleWrite { writer: op, .. } => {
            let table = table::<ActionVTable>(env.artifacts, &op.entry, |t| t.abi_version)?;
            let state = open_state(
                env,
                op,
                task.partition,
                shared,
                "the action",
                table.open,
                table.input_type,
                &input,
            )?;
            OpenStepKind::Action {
                table,
                state,
                records: 0,
            }
        }
    };
    Ok(OpenStep {
        kind,
        input,
        next: std::ptr::null_mut(),
        shared: shared as *mut Shared as *mut Shared<'static>,
    })
}

/// Runs the task; `None` when it came without its source and the partition is not cached.
fn run(task: &TaskSpec, env: &TaskEnv, shared: &mut Shared) -> Result<Option<Ran>, ExecutorError> {
    let Some(mut chain) = build_chain(task.chain.source.as_ref(), &task.chain.steps, env, shared)?
    else {
        return Ok(None);
    };
    let mut action = open_action(task, env, chain.output, shared)?;
    let threads = if morsels::shares_batches(task, &chain, &action) {
        morsels::drive_shared(task, env, &mut chain, &mut action, shared)?
    } else {
        drive(&mut chain, &mut action, env, shared)?;
        1
    };

    let mut result = Vec::new();
    let mut output = match &task.action {
        TaskAction::ShuffleWrite { shuffle, .. } => Some(OutputSink::new(
            env.shuffles.output_path(*shuffle, task.partition)?,
            env.host.spill_budget(),
        )),
        _ => None,
    };
    let (status, records) = match &mut action.kind {
        OpenStepKind::Action {
            table,
            state,
            records,
        } => {
            let out = match &mut output {
                Some(output) => ByteSink {
                    ctx: output as *mut OutputSink as *mut c_void,
                    write: OutputSink::write,
                },
                None => ByteSink {
                    ctx: &mut result as *mut Vec<u8> as *mut c_void,
                    write: append_bytes,
                },
            };
            (
                unsafe { (table.finish)(*state, out, shared.sink()) },
                *records,
            )
        }
        OpenStepKind::Count { records } => {
            result = records.to_le_bytes().to_vec();
            (STATUS_OK, *records)
        }
        OpenStepKind::Operator { .. } | OpenStepKind::Cache { .. } => unreachable!("built above"),
    };
    if status != STATUS_OK {
        return Err(shared.take_error(ExecutorError::TaskFailed));
    }

    // The task succeeded: keep the partitions it was asked to cache.
    let (mut stored, mut evicted) = (Vec::new(), Vec::new());
    store_cached(&mut chain, env, &mut stored, &mut evicted);
    let origin = chain.origin.clone();
    drop(chain);
    drop(action);

    // A map task keeps its buckets here for reducers, and tells the driver nothing more.
    let mut shuffle_written = 0;
    if let (TaskAction::ShuffleWrite { shuffle, .. }, Some(output)) = (&task.action, output) {
        shuffle_written = match output.finish()? {
            Written::Memory(bytes) => {
                let output = MapOutput::parse(bytes)?;
                let written = output.payload_len();
                env.shuffles.put(*shuffle, task.partition, output)?;
                written
            }
            Written::File(path) => env.shuffles.put_file(*shuffle, task.partition, path)?,
        };
    }
    Ok(Some(Ran {
        result,
        origin,
        records,
        stored,
        evicted,
        shuffle_written,
        threads,
    }))
}

/// Where a map task's writer streams its output: memory while it fits in the task's budget,
/// then a file in the shuffle directory (removed if the task fails).
struct OutputSink {
    memory: Vec<u8>,
    limit: u64,
    path: std::path::PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    error: Option<std::io::Error>,
}

/// Where a map output ended up.
enum Written {
    Memory(Vec<u8>),
    File(std::path::PathBuf),
}

impl OutputSink {
    fn new(path: std::path::PathBuf, limit: u64) -> OutputSink {
        OutputSink {
            memory: Vec::new(),
            limit,
            path,
            file: None,
            error: None,
        }
    }

    fn take(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if self.file.is_none() && (self.memory.len() + bytes.len()) as u64 > self.limit {
            let mut file = std::io::BufWriter::with_capacity(
                1 << 16,
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&self.path)?,
            );
            file.write_all(&std::mem::take(&mut self.memory))?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes),
            None => {
                self.memory.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    unsafe extern "C" fn write(ctx: *mut c_void, bytes: RawBytes) {
        let sink = unsafe { &mut *(ctx as *mut OutputSink) };
        if sink.error.is_none()
            && let Err(e) = sink.take(unsafe { bytes.as_slice() })
        {
            sink.error = Some(e);
        }
    }

    fn finish(mut self) -> Result<Written, ExecutorError> {
        use std::io::Write;
        let failed = |path: &std::path::Path, source| ExecutorError::MapOutputWrite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(e) = self.error.take() {
            return Err(failed(&self.path, e));
        }
        match self.file.take() {
            None => Ok(Written::Memory(std::mem::take(&mut self.memory))),
            Some(mut file) => {
                file.flush().map_err(|e| failed(&self.path, e))?;
                Ok(Written::File(std::mem::take(&mut self.path)))
            }
        }
    }
}

impl Drop for OutputSink {
    fn drop(&mut self) {
        // Not handed to the store (the task failed): the partial file goes.
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// How much of a text split is read (and decoded into lines) at a time: a split is streamed,
/// so a task's memory does not grow with the size of its split.
const SPLIT_CHUNK_BYTES: usize = 1 << 20;

/// Hands `each` the lines whose first byte lies in `split`, about `chunk` bytes of whole lines
/// at a time, each line ended by '\n' (the file's last perhaps not), until `each` says stop. A
/// split that starts mid-line leaves that line to the previous one.
fn read_split(
    split: &FileSplit,
    chunk: usize,
    mut each: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    let mut file = BufReader::new(std::fs::File::open(&split.path)?);
    let mut position = split.start;
    if position > 0 {
        file.seek(SeekFrom::Start(position - 1))?;
        let mut skipped = Vec::new();
        position = position - 1 + file.read_until(b'\n', &mut skipped)? as u64;
    }
    let mut lines = Vec::with_capacity(chunk);
    while position < split.end {
        lines.clear();
        let wanted = (split.end - position).min(chunk as u64);
        file.by_ref().take(wanted).read_to_end(&mut lines)?;
        if lines.is_empty() {
            break; // the file ends before the split does
        }
        if lines.last() != Some(&b'\n') {
            file.read_until(b'\n', &mut lines)?;
        }
        position += lines.len() as u64;
        if !each(&lines) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_read_in_chunks_give_every_line_once() {
        let text = "alpha\nbe\n\ngamma delta\nepsilon\nz";
        let path = std::env::temp_dir().join(format!("tessera-split-{}.txt", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let len = text.len() as u64;
        for cut in [1, 5, 6, 9, 14, 20, len] {
            for chunk in [1, 3, 64] {
                let mut lines = String::new();
                for (start, end) in [(0, cut), (cut, len)] {
                    let split = FileSplit {
                        path: path.to_string_lossy().into_owned(),
                        start,
                        end,
                    };
                    read_split(&split, chunk, |bytes| {
                        assert!(bytes.ends_with(b"\n") || bytes.ends_with(b"z"));
                        lines.push_str(std::str::from_utf8(bytes).unwrap());
                        true
                    })
                    .unwrap();
                }
                assert_eq!(lines, text, "cut at {cut}, chunks of {chunk}");
            }
        }
        std::fs::remove_file(path).unwrap();
    }
}
