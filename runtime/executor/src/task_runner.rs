//! Runs one task: pushes a partition's batches from its source (shipped records, a file split,
//! fetched shuffle buckets, or a cached block) through the chain of operators of its narrow
//! transformations into its action, caching the partitions the plan asks for on the way. A
//! shuffle map task's action splits the partition into buckets, which are kept here: in memory,
//! or, when the writer's output is larger than the task's spill budget, streamed to a file
//! ([`OutputSink`]). A task reading a shuffle decodes its buckets one record frame at a time.

use crate::bad_record::{first_failing_line, read_bad_record, with_place};
use crate::error::ExecutorError;
use crate::morsels;
use crate::open_chain::{
    Checkpointed, Keeping, OpenChain, OpenStep, OpenStepKind, Shared, Start, build_chain, decode,
    link, open_action, table,
};
use crate::shuffle_store::Bucket;
use crate::task_env::TaskEnv;
use crate::text_split::read_part;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tessera_plan::abi::{
    ActionVTable, ByteSink, MALFORMED_PREFIX, PANIC_PREFIX, RawBytes, STATUS_OK, SourceVTable,
};
use tessera_plan::builtin::is_builtin;
use tessera_plan::map_output::MapOutput;
use tessera_plan::{
    Chain, FileSplit, NotCached, PartitionOrigin, RddId, Step, StoredBlock, TaskAction,
    TaskMetrics, TaskOutcome, TaskSource, TaskSpec,
};

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
                not_cached: ran.not_cached,
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
    let mut shared = Shared::new(env.cancelled);
    run(&again, env, &mut shared).map(|_| ())
}

/// What a task that ran to its end produced.
struct Ran {
    result: Vec<u8>,
    origin: PartitionOrigin,
    records: u64,
    stored: Vec<StoredBlock>,
    evicted: Vec<(RddId, u32)>,
    not_cached: Vec<NotCached>,
    shuffle_written: u64,
    /// Threads its records went through ([`morsels`]).
    threads: u32,
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
            if let Some(pieces) = block.pieces() {
                // Read in place: the block outlives the chain, and nothing changes it.
                for piece in pieces {
                    status = unsafe { (*head).accept_shared(piece) };
                    if status != STATUS_OK {
                        break;
                    }
                }
            } else {
                // Decoded a frame at a time as the chain takes them.
                block.each_batch(|batch| {
                    status = unsafe { (*head).accept(batch) };
                    status == STATUS_OK
                })?;
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
            let decode_bytes =
                |bytes: &[u8], shared: &mut Shared| decode(table, bytes, head, shared);
            match source {
                TaskSource::Records { bytes, .. } => decode_bytes(bytes, shared),
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
                                status = decode_bytes(frame, shared);
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
                    let checkpointed = chain.checkpointed;
                    // Carrying on a lost executor's part: its records go on past the cache,
                    // which holds them already, and the split is read from where they end.
                    let (mut status, from) = match checkpointed {
                        Some(Checkpointed {
                            step,
                            resume_from: Some(from),
                        }) => (chain.open_steps[step].push_carried_on(), from),
                        _ => (STATUS_OK, split.start),
                    };
                    let read = FileSplit {
                        start: from,
                        ..split.clone()
                    };
                    if status == STATUS_OK {
                        read_part(split, &read, |lines, consumed_to| {
                            status = decode_bytes(lines, shared);
                            if let (STATUS_OK, Some(at)) = (status, checkpointed) {
                                chain.open_steps[at.step].checkpoint(consumed_to);
                            }
                            status == STATUS_OK
                        })?;
                    }
                    status
                }
                TaskSource::SavedPartition { path, .. } => {
                    let bytes = std::fs::read(path.as_str()).map_err(|source| {
                        ExecutorError::CheckpointRead {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    decode_bytes(&bytes, shared)
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

/// What a task's cache steps left: the blocks kept, those evicted to make room, and the
/// partitions not cached.
#[derive(Default)]
struct Cached {
    stored: Vec<StoredBlock>,
    evicted: Vec<(RddId, u32)>,
    not_cached: Vec<NotCached>,
}

/// Keeps the partitions the chain (and the chains it concatenates) was asked to cache; notes
/// those it kept, those evicted to make room, and those it could not keep.
fn store_cached(chain: &mut OpenChain, env: &TaskEnv, cached: &mut Cached) {
    if let Start::Concat(chains) = &mut chain.start {
        for chain in chains {
            store_cached(chain, env, cached);
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
            let put = kept.finish(*level, code).and_then(|gathered| {
                env.blocks
                    .put(*rdd, *partition, *level, gathered, step.input, code.clone())
            });
            match put {
                Ok(outcome) => {
                    if let Some(bytes) = outcome.kept {
                        cached.stored.push(StoredBlock {
                            rdd: *rdd,
                            partition: *partition,
                            bytes,
                            level: *level,
                            // Copied by the service once the task is done.
                            replicas: Vec::new(),
                        });
                    }
                    cached.evicted.extend(outcome.dropped);
                }
                // Not caching loses nothing: the partition is recomputed when needed. The
                // driver tells the user why.
                Err(e) => {
                    tracing::warn!(rdd, partition, "cannot cache a partition: {e}");
                    cached.not_cached.push(NotCached {
                        rdd: *rdd,
                        partition: *partition,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
}

unsafe extern "C" fn append_bytes(ctx: *mut c_void, bytes: RawBytes) {
    unsafe { (*(ctx as *mut Vec<u8>)).extend_from_slice(bytes.as_slice()) }
}

/// Runs the task; `None` when it came without its source and the partition is not cached.
fn run(task: &TaskSpec, env: &TaskEnv, shared: &mut Shared) -> Result<Option<Ran>, ExecutorError> {
    let Some(mut chain) = build_chain(
        task.chain.source.as_ref(),
        &task.chain.steps,
        env,
        shared,
        Keeping::Partition,
    )?
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
    let mut cached = Cached::default();
    store_cached(&mut chain, env, &mut cached);
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
        stored: cached.stored,
        evicted: cached.evicted,
        not_cached: cached.not_cached,
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
