//! A task's chain of steps opened on this executor: each operator's state made through the
//! cell library's table (its C ABI), the partitions to cache on the way, and the action at the
//! end, linked so that a batch pushed into the first step flows to the action. Running a task
//! (`task_runner`) and sharing a cached partition's batches with idle slots (`morsels`) both
//! open chains here; neither opens one of its own.

use crate::artifacts::Artifacts;
use crate::blocks::Block;
use crate::error::ExecutorError;
use crate::host_memory::HostMemory;
use crate::runs::{CarriedOn, Gathering, KeptChunk, MemoryBound};
use crate::task_env::TaskEnv;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, BatchVTable, ErrorSink, OpenArgs, OperatorVTable,
    RawBytes, STATUS_ERROR, STATUS_OK, SharedRecords, SourceVTable, Status, TableEntry,
};
use tessera_plan::{
    BatchCode, CodeRef, FileSplit, Operator, PartitionOrigin, RddId, Step, StorageLevel,
    TaskAction, TaskSource, TaskSpec,
};

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

    pub(crate) fn sink(&mut self) -> ErrorSink {
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
        kept: Box<Gathering>,
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
    pub(crate) input: BatchVTable,
    pub(crate) next: *mut OpenStep,
    shared: *mut Shared<'static>,
}

unsafe extern "C" fn push_to_step(ctx: *mut c_void, batch: Batch) -> Status {
    unsafe { (*(ctx as *mut OpenStep)).accept(batch) }
}

impl OpenStep {
    pub(crate) fn sink(step: *mut OpenStep) -> BatchSink {
        BatchSink {
            ctx: step as *mut c_void,
            push: push_to_step,
        }
    }

    pub(crate) unsafe fn accept(&mut self, batch: Batch) -> Status {
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
                unsafe { kept.keep(batch) };
                unsafe { (*self.next).accept(batch) }
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

    /// As [`OpenStep::accept`], for records of a batch the caller keeps: an operator or action
    /// that reads records in place gets them as they are, a count their number; any other step
    /// takes a copy.
    pub(crate) unsafe fn accept_shared(&mut self, records: SharedRecords) -> Status {
        let shared = unsafe { &mut *self.shared };
        if shared.cancelled.load(Ordering::Relaxed) {
            return shared.fail(ExecutorError::Cancelled);
        }
        let err = shared.sink();
        match &mut self.kind {
            OpenStepKind::Operator { table, state } => {
                if let Some(push_shared) = table.push_shared {
                    return unsafe { push_shared(*state, records, OpenStep::sink(self.next), err) };
                }
            }
            OpenStepKind::Count { records: counted } => {
                *counted += records.len as u64;
                return STATUS_OK;
            }
            OpenStepKind::Action {
                table,
                state,
                records: counted,
            } => {
                if let Some(push_shared) = table.push_shared {
                    *counted += records.len as u64;
                    return unsafe { push_shared(*state, records, err) };
                }
            }
            OpenStepKind::Cache { .. } => {}
        }
        let copy = unsafe { crate::runs::copy(&self.input, records) };
        unsafe { self.accept(copy) }
    }

    /// For a cache step carrying on part of a partition a lost executor left
    /// ([`Checkpointed`]): pushes the records it started from on to the next step.
    pub(crate) fn push_carried_on(&self) -> Status {
        let OpenStepKind::Cache { kept, .. } = &self.kind else {
            return STATUS_OK;
        };
        for piece in kept.carried_on() {
            // SAFETY: `next` was linked to a live step; the pieces are in files the gathering
            // holds, unchanged while they are read.
            let status = unsafe { (*self.next).accept_shared(piece) };
            if status != STATUS_OK {
                return status;
            }
        }
        STATUS_OK
    }

    /// For a cache step that notes how far into a text split it got ([`Checkpointed`]): notes
    /// that its records are those of the lines before `consumed_to`.
    pub(crate) fn checkpoint(&mut self, consumed_to: u64) {
        if let OpenStepKind::Cache { kept, .. } = &mut self.kind {
            kept.checkpoint(consumed_to);
        }
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
            // A cache step's gathering frees what it kept as it drops.
            OpenStepKind::Cache { .. } | OpenStepKind::Count { .. } => {}
        }
    }
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
    pub(crate) origin: PartitionOrigin,
    /// Its cache step that notes how far into a text split it got, if it has one.
    pub(crate) checkpointed: Option<Checkpointed>,
}

/// The first cache step of a chain that reads a text split through recordwise steps: it notes
/// after each chunk of lines how far into the split it got ([`Gathering::checkpoint`]).
#[derive(Clone, Copy)]
pub(crate) struct Checkpointed {
    /// Its index among the chain's open steps.
    pub(crate) step: usize,
    /// Where it carries on a part a lost executor left: the offset to read the split from.
    pub(crate) resume_from: Option<u64>,
}

/// Where the cache steps of a chain keep what they gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keeping {
    /// The task's own chain: the partition, handed to the executor's blocks once the task
    /// succeeds, in host memory where it can be, with checkpoints where the chain allows.
    Partition,
    /// A chain that runs some of a shared task's chunks (`morsels.rs`): each chunk's records in
    /// this process's memory, handed to the task's own chain in chunk order
    /// ([`OpenChain::take_chunk`], [`OpenChain::keep_chunk`]).
    Chunk,
}

/// Builds a chain from `source` through `steps`, resuming from the last step this executor
/// caches, its cache steps keeping as `keeping` says; `None` when it came without its source
/// and nothing of it is cached.
pub(crate) fn build_chain<'a>(
    source: Option<&'a TaskSource>,
    steps: &[Step],
    env: &TaskEnv,
    shared: &mut Shared,
    keeping: Keeping,
) -> Result<Option<OpenChain<'a>>, ExecutorError> {
    // The open steps point at `shared` for as long as they live, which is within `run`.
    let shared_ptr = (shared as *mut Shared).cast::<Shared<'static>>();
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
                match build_chain(chain.source.as_ref(), &chain.steps, env, shared, keeping)? {
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
    let split = match &start {
        Start::Source(TaskSource::TextSplit { split, .. }, _) => Some(split),
        _ => None,
    };
    let (mut input, mut code, mut origin) = match &start {
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
        });
        open_steps.len() - 1
    };
    // Whether every step so far puts out each chunk's records before the next chunk comes, so
    // that a cache step's records are those of the lines read so far.
    let mut recordwise = true;
    let mut checkpointed = None;
    let mut cache_steps = 0;
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
            recordwise &= table.recordwise;
            input = table.output;
            code = BatchCode::Operator(op.entry.clone());
        }
        // A step without an operator is the source, or a union passing records on unchanged.
        if let Some(level) = step.persist {
            cache_steps += 1;
            let key = (step.rdd, step.partition);
            let memory = env
                .blocks
                .host_memory()
                .filter(|_| keeping == Keeping::Partition);
            let checkpoints =
                split.filter(|_| keeping == Keeping::Partition && recordwise && cache_steps == 1);
            let target = cache_target(level, keeping);
            let (kept, carried_on) = open_gathering(
                env,
                key,
                (level, &code, input),
                (target, memory, checkpoints),
            );
            if let Some(carried_on) = carried_on {
                origin = PartitionOrigin::Resumed {
                    rdd: step.rdd,
                    records: carried_on.records,
                };
            }
            let kind = OpenStepKind::Cache {
                rdd: step.rdd,
                partition: step.partition,
                level,
                kept: Box::new(kept),
                code: code.clone(),
            };
            let index = add(kind, input);
            if checkpoints.is_some() {
                checkpointed = Some(Checkpointed {
                    step: index,
                    resume_from: carried_on.map(|c| c.from),
                });
            }
        }
    }
    Ok(Some(OpenChain {
        start,
        open_steps,
        output: input,
        output_code: code,
        origin,
        checkpointed,
    }))
}

/// Where a cache step's records go as they come, before the task hands the partition to the
/// block manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheTarget {
    /// Gathered in memory, however many (`MEMORY_ONLY_SER`, encoded once gathered; and a
    /// chunk of a partition, whose cache step takes it in order).
    Memory,
    /// Written to a block file (`DISK_ONLY`), as Spark's `DiskStore` writes a block's values
    /// as they come: none stays in memory.
    BlockFile,
    /// Gathered in memory within all the memory the block manager may hold: past it, on to a
    /// block file with what was kept (`MEMORY_AND_DISK`), or not cached (`MEMORY_ONLY`), as
    /// Spark's memory store gives up unrolling a partition that does not fit.
    BoundedMemory {
        /// Whether the records go on to a block file past the bound.
        then_disk: bool,
    },
}

/// Where the records of a partition cached at `level` go as they come, for a chain that keeps
/// what `keeping` says.
fn cache_target(level: StorageLevel, keeping: Keeping) -> CacheTarget {
    if keeping != Keeping::Partition {
        return CacheTarget::Memory;
    }
    match level.one_copy() {
        StorageLevel::DiskOnly => CacheTarget::BlockFile,
        StorageLevel::MemoryOnly => CacheTarget::BoundedMemory { then_disk: false },
        StorageLevel::MemoryAndDisk => CacheTarget::BoundedMemory { then_disk: true },
        _ => CacheTarget::Memory,
    }
}

/// A cache step's gathering for partition `key`, its records of `input` going where `target`
/// says; `memory` and `checkpoints` as for [`Gathering::with_checkpoints`]. A block file that
/// cannot be made is a warning, and the records are gathered in memory, to go to disk once
/// gathered as they did before.
fn open_gathering(
    env: &TaskEnv,
    key: (RddId, u32),
    (level, code, input): (StorageLevel, &BatchCode, BatchVTable),
    (target, memory, checkpoints): (CacheTarget, Option<Arc<HostMemory>>, Option<&FileSplit>),
) -> (Gathering, Option<CarriedOn>) {
    let (rdd, partition) = key;
    if target == CacheTarget::BlockFile {
        match env.blocks.block_file_writer(rdd, partition, input) {
            Ok(file) => return (Gathering::on_disk(input, file), None),
            Err(e) => tracing::warn!(rdd, partition, "{e}"),
        }
    }
    let (kept, carried_on) = match checkpoints {
        Some(split) => Gathering::with_checkpoints(input, memory, key, (level, code), split),
        None => (Gathering::new(input, memory, key, level), None),
    };
    match target {
        CacheTarget::BoundedMemory { then_disk } => {
            let overflow = then_disk.then(|| env.blocks.disk_path(rdd, partition));
            let bound = MemoryBound::new(key, env.blocks.limit(), overflow);
            (kept.within(bound), carried_on)
        }
        CacheTarget::Memory | CacheTarget::BlockFile => (kept, carried_on),
    }
}

impl OpenChain<'_> {
    /// What each cache step of a chain built to keep chunks ([`Keeping::Chunk`]) gathered since
    /// it last gave it up: the records of the chunk it ran.
    pub(crate) fn take_chunk(&mut self) -> Vec<KeptChunk> {
        self.open_steps
            .iter_mut()
            .filter_map(|step| match &mut step.kind {
                OpenStepKind::Cache { kept, .. } => Some(kept.take_chunk()),
                _ => None,
            })
            .collect()
    }

    /// Keeps the records of a chunk, each cache step's gathered by a chain of the same steps
    /// ([`OpenChain::take_chunk`]), after what its cache steps kept so far.
    pub(crate) fn keep_chunk(&mut self, chunk: Vec<KeptChunk>) {
        let cache_steps = self
            .open_steps
            .iter_mut()
            .filter_map(|step| match &mut step.kind {
                OpenStepKind::Cache { kept, .. } => Some(kept),
                _ => None,
            });
        for (kept, records) in cache_steps.zip(chunk) {
            kept.keep_chunk(records);
        }
    }

    /// Whether any of its steps caches what it puts out.
    pub(crate) fn caches(&self) -> bool {
        self.open_steps
            .iter()
            .any(|step| matches!(step.kind, OpenStepKind::Cache { .. }))
    }
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

/// Decodes `bytes` of a task's source (its shipped records, a shuffle's record frame, a text
/// split's lines, a saved partition) with the source's table, pushing the records into `head`.
pub(crate) fn decode(
    table: &SourceVTable,
    bytes: &[u8],
    head: *mut OpenStep,
    shared: &mut Shared,
) -> Status {
    if bytes.is_empty() {
        return STATUS_OK;
    }
    // SAFETY: `head` is a linked step of a chain that outlives the call.
    unsafe {
        (table.decode)(
            RawBytes::from_slice(bytes),
            OpenStep::sink(head),
            shared.sink(),
        )
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
        shared: (shared as *mut Shared).cast::<Shared<'static>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_partition_goes_to_disk_or_within_the_cache_memory_as_its_level_says() {
        use StorageLevel::*;
        let bounded = |then_disk| CacheTarget::BoundedMemory { then_disk };
        for (level, target) in [
            (MemoryOnly, bounded(false)),
            (MemoryOnly2, bounded(false)),
            (MemoryAndDisk, bounded(true)),
            (MemoryAndDisk2, bounded(true)),
            (DiskOnly, CacheTarget::BlockFile),
            (DiskOnly2, CacheTarget::BlockFile),
            (MemoryOnlySer, CacheTarget::Memory),
            (MemoryOnlySer2, CacheTarget::Memory),
        ] {
            assert_eq!(cache_target(level, Keeping::Partition), target, "{level:?}");
            // A chunk of a partition is gathered in memory, whatever its level: the
            // partition's own cache step takes the chunks in order.
            assert_eq!(cache_target(level, Keeping::Chunk), CacheTarget::Memory);
        }
    }
}
