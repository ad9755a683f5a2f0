//! DataFrames in the driver: each is an RDD whose partitions are polars DataFrames and whose
//! code is built into the executors ([`tessera_plan::builtin`]); this module keeps each one's
//! schema and adds the RDDs a read or a step needs, as [`frame_plan`] decides.

use crate::error::DriverError;
use crate::frame_plan::{
    Distributed, JoinStrategy, distribute, is_aggregation, join_strategy, limit_over_its_input,
    measured_bytes, projected_bytes, rows_within, side_estimate, sides_to_measure,
};
use crate::lazy_inputs::{collect_side, concat_side, run_job};
use crate::state::DriverState;
use crate::text_splits;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;
use tessera_frame::batch::{FRAME_TYPE, LINES_TYPE};
use tessera_plan::builtin::{
    BroadcastJoinParams, Builtin, CsvParams, FrameShuffleParams, JoinParams, JsonParams,
    MeasureParams, ParquetPiece, RangeShuffleParams, SkippedRows, StepsParams, split_measured,
};
use tessera_plan::frame::{FileFormat, FrameStep, JoinOn, Schema};
use tessera_plan::{
    CodeRef, FileSplit, Operator, Partitioner, RddId, RddKind, RddNode, TaskAction,
};

/// Bytes of the first file read to infer a schema (polars looks at its first rows).
const SCHEMA_SAMPLE_BYTES: u64 = 1 << 20;

/// Registers DataFrame `rdd` as SQL table `name`, replacing a table of that name, as Spark's
/// `createOrReplaceTempView` does. A registered table is a root for the cleaner: its cached
/// partitions stay while the session may query it.
pub fn register(state: &DriverState, rdd: RddId, name: String) -> Result<(), DriverError> {
    state.frames.get(rdd)?;
    state.frames.register_table(name, rdd);
    Ok(())
}

/// A DataFrame the driver added: its RDD, partitions and schema.
pub struct Frame {
    pub rdd: RddId,
    pub num_partitions: u32,
    pub schema: Schema,
}

/// DataFrame `rdd` of `num_partitions` partitions, its schema kept for the steps after it.
fn kept(state: &DriverState, rdd: RddId, num_partitions: u32, schema: Schema) -> Frame {
    state.frames.insert(rdd, schema.clone());
    Frame {
        rdd,
        num_partitions,
        schema,
    }
}

/// Adds the RDD of `kind` holding DataFrames (or, with `element_type`, line chunks).
fn define(
    state: &DriverState,
    kind: RddKind<CodeRef>,
    num_partitions: u32,
    element_type: &str,
    name: &str,
) -> Result<(RddId, u32), DriverError> {
    state.lineage.define(RddNode {
        kind,
        num_partitions,
        element_type: element_type.to_string(),
        name: name.to_string(),
    })
}

/// The first bytes of `path`, up to the end of its last whole line within `limit` (all of a
/// shorter file).
fn head_of(path: &Path, limit: u64) -> Result<Vec<u8>, DriverError> {
    let unreadable = |source| DriverError::UnreadableInput {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 == limit
        && let Some(last) = bytes.iter().rposition(|&b| b == b'\n')
    {
        bytes.truncate(last + 1);
    }
    Ok(bytes)
}

/// Bytes of `path`'s first line with its line end (its header): splits start after it.
fn header_len(path: &Path) -> Result<u64, DriverError> {
    let unreadable = |source| DriverError::UnreadableInput {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut line = Vec::new();
    std::io::BufReader::new(file.take(SCHEMA_SAMPLE_BYTES))
        .read_until(b'\n', &mut line)
        .map_err(unreadable)?;
    Ok(line.len() as u64)
}

/// `splits` with each file's header left out: the split that starts at a file's beginning
/// starts after its first line.
fn without_headers(splits: Vec<FileSplit>) -> Result<Vec<FileSplit>, DriverError> {
    splits
        .into_iter()
        .map(|mut split| {
            if split.start == 0 {
                split.start = header_len(Path::new(&split.path))?.min(split.end);
            }
            Ok(split)
        })
        .collect()
}

/// Adds a DataFrame of the files `pattern` names: each split's lines, parsed in `format`
/// with `schema`, or with the schema polars infers from the first file's first rows.
pub fn read(
    state: &DriverState,
    pattern: &str,
    format: FileFormat,
    schema: Option<Schema>,
    min_partitions: u32,
    name: &str,
) -> Result<Frame, DriverError> {
    let cwd = std::env::current_dir().map_err(DriverError::NoWorkingDirectory)?;
    if format == FileFormat::Parquet {
        return read_parquet(state, pattern, &cwd, min_partitions, name);
    }
    let splits = text_splits::splits(pattern, min_partitions, state.frame_split_bytes, &cwd)?;
    let first = match splits.first() {
        Some(split) => Path::new(&split.path).to_path_buf(),
        None => {
            return Err(DriverError::NoInputFile {
                pattern: pattern.to_string(),
                cwd,
            });
        }
    };
    let infer = || -> Result<Schema, DriverError> {
        let sample = head_of(&first, SCHEMA_SAMPLE_BYTES)?;
        let schema = match &format {
            FileFormat::Csv(options) => tessera_frame::read::infer_csv_schema(&sample, options),
            FileFormat::Json(_) => tessera_frame::read::infer_json_schema(&sample),
            FileFormat::Parquet => unreachable!("read above"),
        };
        schema.map_err(|source| DriverError::Frame {
            what: format!("inferring the schema of {}", first.display()),
            source,
        })
    };
    let schema = match schema {
        Some(schema) => schema,
        None => infer()?,
    };
    let (splits, parse) = match format {
        FileFormat::Csv(options) => {
            let splits = if options.has_header {
                without_headers(splits)?
            } else {
                splits
            };
            let skipped_rows = options
                .skip_malformed
                .then(|| state.shared_values.accumulator());
            let params = CsvParams {
                schema: schema.clone(),
                options,
                skipped_rows,
            };
            (splits, Builtin::ParseCsv.with_params(&params))
        }
        FileFormat::Json(options) => {
            let params = JsonParams {
                schema: schema.clone(),
                skipped_rows: options
                    .skip_malformed
                    .then(|| state.shared_values.accumulator()),
                options,
            };
            (splits, Builtin::ParseJson.with_params(&params))
        }
        FileFormat::Parquet => unreachable!("read above"),
    };
    let num_partitions = splits.len() as u32;
    let lines = RddKind::TextFile {
        splits,
        decoder: Builtin::Lines.operator(Vec::new()),
    };
    let (lines, _) = define(
        state,
        lines,
        num_partitions,
        LINES_TYPE,
        &format!("lines of {name}"),
    )?;
    let parsed = RddKind::Narrow {
        parent: lines,
        op: parse,
        preserves_partitioning: false,
    };
    let (rdd, num_partitions) = define(state, parsed, num_partitions, FRAME_TYPE, name)?;
    Ok(kept(state, rdd, num_partitions, schema))
}

/// Adds a DataFrame of the Parquet files `pattern` names, with the first file's schema: each
/// partition reads whole row groups of one file (consecutive ones together, up to about a
/// `min_partitions`-th of the whole, at most 32 MiB).
fn read_parquet(
    state: &DriverState,
    pattern: &str,
    cwd: &Path,
    min_partitions: u32,
    name: &str,
) -> Result<Frame, DriverError> {
    let files = text_splits::matching_files(pattern, cwd)?;
    let mut schema = None;
    let mut groups = Vec::new();
    for file in &files {
        let (file_schema, file_groups) =
            tessera_frame::files::parquet_layout(file).map_err(|source| DriverError::Frame {
                what: format!("reading {name}"),
                source,
            })?;
        schema.get_or_insert(file_schema);
        groups.push((file.display().to_string(), file_groups));
    }
    let total: u64 = groups.iter().flat_map(|(_, g)| g).map(|g| g.1).sum();
    let goal = (total / u64::from(min_partitions.max(1))).clamp(1, 32 << 20);
    let pieces = parquet_pieces(&groups, goal);
    let schema = schema.unwrap_or_default();
    let kind = RddKind::Parallelize {
        partitions: pieces.iter().map(encode).collect(),
        decoder: Builtin::ParquetPiece.operator(Vec::new()),
    };
    let (rdd, num_partitions) = define(state, kind, pieces.len() as u32, FRAME_TYPE, name)?;
    Ok(kept(state, rdd, num_partitions, schema))
}

/// The partitions of Parquet files with row groups `groups` ((rows, bytes) of each, per
/// file): consecutive row groups of one file together until they reach `goal` bytes.
pub(crate) fn parquet_pieces(groups: &[(String, Vec<(u64, u64)>)], goal: u64) -> Vec<ParquetPiece> {
    let mut pieces = Vec::new();
    for (path, file_groups) in groups {
        let mut first_row = 0;
        let mut piece: Option<ParquetPiece> = None;
        for &(rows, bytes) in file_groups {
            let current = piece.get_or_insert_with(|| ParquetPiece {
                path: path.clone(),
                first_row,
                rows: 0,
                bytes: 0,
            });
            current.rows += rows;
            current.bytes += bytes;
            first_row += rows;
            if current.bytes >= goal {
                pieces.extend(piece.take());
            }
        }
        pieces.extend(piece);
    }
    pieces
}

fn encode<T: serde::Serialize>(params: &T) -> Vec<u8> {
    bincode::serialize(params).expect("plans serialize")
}

/// Adds the RDD of `steps` over each partition of `parent` (schema `input`).
fn steps_over(
    state: &DriverState,
    parent: RddId,
    steps: Vec<FrameStep>,
    input: &Schema,
    run_on_empty: bool,
    name: &str,
) -> Result<(RddId, u32), DriverError> {
    let num_partitions = state.lineage.with(parent, |e| e.node.num_partitions)?;
    let params = StepsParams {
        steps,
        input: input.clone(),
        run_on_empty,
    };
    let kind = RddKind::Narrow {
        parent,
        op: Builtin::Steps.with_params(&params),
        preserves_partitioning: false,
    };
    define(state, kind, num_partitions, FRAME_TYPE, name)
}

/// Adds the RDD of `parent`'s rows shuffled as `shuffle` says, read back by `reader` (which
/// marks the side of a join the rows are).
fn shuffle_by(
    state: &DriverState,
    parent: RddId,
    shuffle: FrameShuffleParams,
    reader: Builtin,
    name: &str,
) -> Result<RddId, DriverError> {
    let partitioner = Partitioner::Custom {
        partitions: shuffle.partitions,
        name: "DataFrame hash".to_string(),
        state: encode(&shuffle.keys),
    };
    let writer = Builtin::HashWriter.with_params(&shuffle);
    define_shuffle(state, parent, partitioner, writer, reader, name)
}

/// Adds the RDD of `parent`'s rows placed by `writer` in the partitions `partitioner` says,
/// read back by `reader`.
fn define_shuffle(
    state: &DriverState,
    parent: RddId,
    partitioner: Partitioner,
    writer: Operator<CodeRef>,
    reader: Builtin,
    name: &str,
) -> Result<RddId, DriverError> {
    let partitions = partitioner.partitions();
    let kind = RddKind::Shuffled {
        parent,
        partitioner,
        writer,
        reader: reader.operator(Vec::new()),
        merge: None,
    };
    Ok(define(state, kind, partitions, FRAME_TYPE, name)?.0)
}

/// The steps that made DataFrame `rdd`, the last first, as far back as the session recorded,
/// read only as far as the caller goes.
fn made_by(state: &DriverState, rdd: RddId) -> impl Iterator<Item = FrameStep> + '_ {
    std::iter::successors(state.frames.made_by(rdd), |(input, _)| {
        state.frames.made_by(*input)
    })
    .map(|(_, step)| step)
}

/// About how many bytes the input of `rdd` is: its files' (or shipped records') size. As
/// Spark's size estimate of a plan without statistics, it does not shrink through a filter;
/// unknown (checkpoints) is `u64::MAX`, never broadcast.
fn estimated_bytes(state: &DriverState, rdd: RddId) -> Result<u64, DriverError> {
    let kind = state.lineage.with(rdd, |e| e.node.kind.clone())?;
    fn sum(mut parts: impl Iterator<Item = Result<u64, DriverError>>) -> Result<u64, DriverError> {
        parts.try_fold(0u64, |total, bytes| Ok(total.saturating_add(bytes?)))
    }
    match kind {
        // A Parquet file's partitions are descriptions of its row groups, which know their
        // size.
        RddKind::Parallelize {
            partitions,
            decoder,
        } if Builtin::of(&decoder.entry) == Some(Builtin::ParquetPiece) => Ok(partitions
            .iter()
            .filter_map(|p| bincode::deserialize::<ParquetPiece>(p).ok())
            .map(|p| p.bytes)
            .sum()),
        RddKind::Parallelize { partitions, .. } => {
            Ok(partitions.iter().map(|p| p.len() as u64).sum())
        }
        RddKind::TextFile { splits, .. } => Ok(splits.iter().map(|s| s.end - s.start).sum()),
        RddKind::Checkpoint { .. } => Ok(u64::MAX),
        // Between DataFrames, scaled by their rows' widths, as Spark estimates a projection.
        RddKind::Narrow { parent, .. } | RddKind::Shuffled { parent, .. } => {
            let bytes = estimated_bytes(state, parent)?;
            Ok(match (state.frames.get(parent), state.frames.get(rdd)) {
                (Ok(input), Ok(output)) => projected_bytes(bytes, &input, &output),
                _ => bytes,
            })
        }
        RddKind::Union { parents } | RddKind::PartitionwiseUnion { parents } => {
            sum(parents.iter().map(|p| estimated_bytes(state, *p)))
        }
        // Each listed partition as an even share of its parent.
        RddKind::Concatenated { inputs } => sum(inputs.iter().flatten().map(|(parent, _)| {
            let partitions = state.lineage.with(*parent, |e| e.node.num_partitions)?;
            Ok(estimated_bytes(state, *parent)? / u64::from(partitions.max(1)))
        })),
    }
}

/// Adds the join of DataFrames `left` and `right` on `on`: the small side broadcast when one
/// may be (collected by a job now), by its estimate or, failing that, by its measured size
/// (`sides_to_measure`), else both shuffled by their keys.
pub async fn join(
    state: &Arc<DriverState>,
    left: RddId,
    right: RddId,
    on: JoinOn,
    name: &str,
) -> Result<Frame, DriverError> {
    let (left_schema, right_schema) = (state.frames.get(left)?, state.frames.get(right)?);
    let schema = tessera_frame::join::join_schema(
        &left_schema,
        &right_schema,
        &on.left_on,
        &on.right_on,
        on.how,
    )
    .map_err(|source| DriverError::Frame {
        what: name.to_string(),
        source,
    })?;
    let threshold = state.broadcast_join_bytes;
    let estimate = |rdd: RddId| -> Result<u64, DriverError> {
        let bytes = estimated_bytes(state, rdd)?;
        Ok(side_estimate(
            bytes,
            is_aggregation(made_by(state, rdd)),
            threshold,
        ))
    };
    let (left_bytes, right_bytes) = (estimate(left)?, estimate(right)?);
    let sides = |small_right: bool| {
        if small_right {
            (right, &right_schema, left, &left_schema)
        } else {
            (left, &left_schema, right, &right_schema)
        }
    };
    // The side to broadcast (`true` for the right), by its estimate or else by its count, with
    // its rows if measuring it brought them all.
    let small_side = match join_strategy(on.how, left_bytes, right_bytes, threshold) {
        JoinStrategy::Broadcast { right } => Some((right, None)),
        JoinStrategy::Shuffle => {
            let mut fits = None;
            for right in sides_to_measure(on.how, left_bytes, right_bytes, threshold) {
                let (small, small_schema, ..) = sides(right);
                let measured = measure_side(state, small, small_schema, threshold, name).await?;
                if let Measured::Small(whole) = measured {
                    fits = Some((right, whole));
                    break;
                }
            }
            fits
        }
    };
    let partitions_of = |rdd: RddId| state.lineage.with(rdd, |e| e.node.num_partitions);
    let (rdd, num_partitions) = match small_side {
        Some((small_right, measured)) => {
            let (small, small_schema, large, large_schema) = sides(small_right);
            let whole = match measured {
                Some(whole) => whole,
                None => collect_side(state, small, small_schema, name).await?,
            };
            let about = format!("the small side of {name} (rdd {small})");
            let broadcast = state.shared_values.broadcast(whole, about);
            let params = BroadcastJoinParams {
                on,
                broadcast,
                small_side: small,
                broadcast_right: small_right,
                partition_schema: large_schema.clone(),
                before: None,
            };
            let kind = RddKind::Narrow {
                parent: large,
                op: Builtin::BroadcastJoin.with_params(&params),
                preserves_partitioning: false,
            };
            define(state, kind, partitions_of(large)?, FRAME_TYPE, name)?
        }
        None => {
            let partitions = partitions_of(left)?.max(partitions_of(right)?).max(1);
            let by = |keys: &[String]| FrameShuffleParams {
                keys: keys.to_vec(),
                partitions,
            };
            let left_name = format!("{name} (left side shuffle)");
            let right_name = format!("{name} (right side shuffle)");
            let l = shuffle_by(state, left, by(&on.left_on), Builtin::IpcReader, &left_name)?;
            let r = shuffle_by(
                state,
                right,
                by(&on.right_on),
                Builtin::IpcReaderRight,
                &right_name,
            )?;
            let pairs = RddKind::Concatenated {
                inputs: (0..partitions).map(|p| vec![(l, p), (r, p)]).collect(),
            };
            let pairs_name = format!("{name} (both sides)");
            let (pairs, _) = define(state, pairs, partitions, FRAME_TYPE, &pairs_name)?;
            let params = JoinParams {
                on,
                left: left_schema,
                right: right_schema,
            };
            let kind = RddKind::Narrow {
                parent: pairs,
                op: Builtin::Join.with_params(&params),
                preserves_partitioning: false,
            };
            define(state, kind, partitions, FRAME_TYPE, name)?
        }
    };
    Ok(kept(state, rdd, num_partitions, schema))
}

/// What measuring a side of a join found.
enum Measured {
    /// Its rows take more than the broadcast threshold.
    TooLarge,
    /// Its rows fit the threshold; with the whole side as one Arrow IPC stream if every
    /// partition came along with its count.
    Small(Option<Vec<u8>>),
}

/// Measures DataFrame `rdd` (of `schema`), a side of join `name`, by a job that counts each
/// partition's rows and brings along those of a partition whose share of the side stays within
/// `threshold`: a side found small is then broadcast from what the count brought, as Spark's
/// adaptive execution broadcasts a side from its materialized shuffle, instead of being
/// computed a second time. A count that does not decode is taken as too many rows.
async fn measure_side(
    state: &Arc<DriverState>,
    rdd: RddId,
    schema: &Schema,
    threshold: u64,
    name: &str,
) -> Result<Measured, DriverError> {
    let num_partitions = state.lineage.with(rdd, |e| e.node.num_partitions)?;
    let params = MeasureParams {
        max_rows: rows_within(threshold / u64::from(num_partitions.max(1)), schema),
    };
    let action = TaskAction::Run(Builtin::Measure.with_params(&params));
    let description = format!("count the rows of a side of {name} to measure it");
    let parts = run_job(state.clone(), rdd, action, None, description).await?;
    let mut rows = 0u64;
    // The partitions' streams, as long as every one came.
    let mut streams = Some(Vec::with_capacity(parts.len()));
    for part in &parts {
        let (part_rows, stream) = split_measured(part).unwrap_or((u64::MAX, None));
        rows = rows.saturating_add(part_rows);
        match (stream, &mut streams) {
            (Some(stream), Some(streams)) => streams.push(stream),
            _ => streams = None,
        }
    }
    if measured_bytes(rows, schema) > threshold {
        return Ok(Measured::TooLarge);
    }
    let whole = streams
        .map(|streams| concat_side(&streams, schema, name))
        .transpose()?;
    Ok(Measured::Small(whole))
}

/// Adds the DataFrame `step` makes of DataFrame `input`.
pub fn apply(
    state: &DriverState,
    input: RddId,
    step: FrameStep,
    name: &str,
) -> Result<Frame, DriverError> {
    let made_from = input;
    let made_by = step.clone();
    // A step that is better planned over the DataFrame its input was made from (a limit after
    // a sort) is, unless that input is cached: its rows are then read where they are kept.
    let over_input_of_input = match (&step, state.frames.made_by(input)) {
        (FrameStep::Head(n), Some((earlier, earlier_step)))
            if state.lineage.with(input, |e| e.persist.is_none())? =>
        {
            limit_over_its_input(*n, &earlier_step).map(|planned| (earlier, planned))
        }
        _ => None,
    };
    let input_schema = state.frames.get(input)?;
    let planning = |source| DriverError::Frame {
        what: name.to_string(),
        source,
    };
    let output = tessera_frame::steps::output_schema(&input_schema, std::slice::from_ref(&step))
        .map_err(planning)?;
    let (input, distributed) = match over_input_of_input {
        Some(planned) => planned,
        None => (
            input,
            distribute(step, &input_schema, &output).map_err(DriverError::FramePlan)?,
        ),
    };
    // What the step is planned over has its input's columns.
    let input_schema = state.frames.get(input)?;
    let (rdd, num_partitions) = match distributed {
        Distributed::Narrow(step) => {
            steps_over(state, input, vec![step], &input_schema, true, name)?
        }
        Distributed::Shuffle {
            before,
            keys,
            after,
        } => around_a_shuffle(
            state,
            input,
            &input_schema,
            (before.into_iter().collect(), "partial"),
            keys,
            vec![after],
            name,
        )?,
        Distributed::SortedRanges(keys) => {
            let partitions = state.lineage.with(input, |e| e.node.num_partitions)?.max(1);
            let sort = FrameStep::Sort {
                by: keys.by.clone(),
                descending: keys.descending.clone(),
            };
            // Equal only to a range shuffle of the same input by the same keys, whose sample,
            // taken the same way, draws the same ranges.
            let partitioner = Partitioner::Custom {
                partitions,
                name: "DataFrame ranges".to_string(),
                state: encode(&(input, &keys)),
            };
            let shuffle = RangeShuffleParams {
                keys,
                partitions,
                bounds: None,
            };
            let shuffled = define_shuffle(
                state,
                input,
                partitioner,
                Builtin::RangeWriter.with_params(&shuffle),
                Builtin::IpcReader,
                &format!("{name} (shuffle by ranges)"),
            )?;
            steps_over(state, shuffled, vec![sort], &input_schema, true, name)?
        }
        Distributed::FirstSorted { sort, n } => {
            let first = vec![sort, FrameStep::Head(n)];
            around_a_shuffle(
                state,
                input,
                &input_schema,
                (first.clone(), "first rows of each partition"),
                Vec::new(),
                first,
                name,
            )?
        }
    };
    state.frames.made(rdd, made_from, made_by);
    Ok(kept(state, rdd, num_partitions, output))
}

/// Adds the RDDs of `before` on each partition of `input` (schema `input_schema`; partitions
/// without rows skipped), named for its `phase`; a shuffle of its rows by `keys` (into one
/// partition without keys); and `after` on each partition of the shuffle's.
fn around_a_shuffle(
    state: &DriverState,
    input: RddId,
    input_schema: &Schema,
    (before, phase): (Vec<FrameStep>, &str),
    keys: Vec<String>,
    after: Vec<FrameStep>,
    name: &str,
) -> Result<(RddId, u32), DriverError> {
    // The schema between the phases, which the second phase's operator needs for an empty
    // partition.
    let (middle_schema, partial) = if before.is_empty() {
        (input_schema.clone(), input)
    } else {
        let middle =
            tessera_frame::steps::output_schema(input_schema, &before).map_err(|source| {
                DriverError::Frame {
                    what: name.to_string(),
                    source,
                }
            })?;
        let phase = format!("{name} ({phase})");
        let (partial, _) = steps_over(state, input, before, input_schema, false, &phase)?;
        (middle, partial)
    };
    let map_partitions = state.lineage.with(partial, |e| e.node.num_partitions)?;
    let partitions = if keys.is_empty() {
        1
    } else {
        map_partitions.max(1)
    };
    let shuffle = FrameShuffleParams { keys, partitions };
    let shuffled_name = format!("{name} (shuffle)");
    let shuffled = shuffle_by(state, partial, shuffle, Builtin::IpcReader, &shuffled_name)?;
    steps_over(state, shuffled, after, &middle_schema, true, name)
}

/// Adds the rows of every DataFrame of `inputs`, which must share one schema.
pub fn union(state: &DriverState, inputs: &[RddId], name: &str) -> Result<Frame, DriverError> {
    let first = *inputs.first().ok_or(DriverError::EmptyFrameUnion)?;
    let schema = state.frames.get(first)?;
    for &other in &inputs[1..] {
        let theirs = state.frames.get(other)?;
        if theirs != schema {
            return Err(DriverError::FrameUnionOfSchemas {
                first: describe_schema(&schema),
                other: describe_schema(&theirs),
            });
        }
    }
    let kind = RddKind::Union {
        parents: inputs.to_vec(),
    };
    let (rdd, num_partitions) = define(state, kind, 0, FRAME_TYPE, name)?;
    Ok(kept(state, rdd, num_partitions, schema))
}

/// `name: type, ...`, for messages.
pub(crate) fn describe_schema(schema: &Schema) -> String {
    schema
        .fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.dtype))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the RDD of DataFrame `frame`'s rows as records for cell code, decoded by `reader`: the
/// map side (built in) writes each partition's rows to the bucket of its own index, so the RDD
/// has the DataFrame's partitions, in order.
pub fn to_rdd(
    state: &DriverState,
    frame: RddId,
    reader: Operator<CodeRef>,
    element_type: String,
    name: &str,
) -> Result<RddId, DriverError> {
    state.frames.get(frame)?;
    let partitions = state.lineage.with(frame, |e| e.node.num_partitions)?.max(1);
    let kind = RddKind::Shuffled {
        parent: frame,
        // No key places the records: nothing later may count on where they are.
        partitioner: Partitioner::RoundRobin { partitions },
        writer: Builtin::RowsWriter.with_params(&partitions),
        reader,
        merge: None,
    };
    Ok(define(state, kind, partitions, &element_type, name)?.0)
}

/// Adds the DataFrame of `schema` made of RDD `rdd`'s records (`Vec<Value>`), dealt into
/// `partitions` partitions by the cell's `writer`: each record frame of a bucket becomes a
/// DataFrame on the reduce side (built in).
pub fn from_rdd(
    state: &DriverState,
    rdd: RddId,
    writer: Operator<CodeRef>,
    partitions: u32,
    schema: Schema,
    name: &str,
) -> Result<Frame, DriverError> {
    let partitions = partitions.max(1);
    let records = RddKind::Shuffled {
        parent: rdd,
        partitioner: Partitioner::RoundRobin { partitions },
        writer,
        reader: Builtin::Lines.operator(Vec::new()),
        merge: None,
    };
    let records_name = format!("{name} (records)");
    let (records, _) = define(state, records, partitions, LINES_TYPE, &records_name)?;
    let parsed = RddKind::Narrow {
        parent: records,
        op: Builtin::ParseRecords.with_params(&schema),
        preserves_partitioning: false,
    };
    let (rdd, num_partitions) = define(state, parsed, partitions, FRAME_TYPE, name)?;
    Ok(kept(state, rdd, num_partitions, schema))
}

/// The malformed rows skipped so far by the reads DataFrame `rdd` is computed from: each
/// partition's latest count, so a partition read again is not counted twice.
pub fn skipped_rows(state: &DriverState, rdd: RddId) -> Result<u64, DriverError> {
    let mut accumulators = BTreeSet::new();
    let mut to_visit = vec![rdd];
    let mut seen = BTreeSet::new();
    while let Some(id) = to_visit.pop() {
        if !seen.insert(id) {
            continue;
        }
        let kind = state.lineage.with(id, |e| e.node.kind.clone())?;
        if let RddKind::Narrow { op, .. } = &kind {
            let accumulator = match Builtin::of(&op.entry) {
                Some(Builtin::ParseCsv) => bincode::deserialize::<CsvParams>(&op.params)
                    .ok()
                    .and_then(|p| p.skipped_rows),
                Some(Builtin::ParseJson) => bincode::deserialize::<JsonParams>(&op.params)
                    .ok()
                    .and_then(|p| p.skipped_rows),
                _ => None,
            };
            accumulators.extend(accumulator);
        }
        if let Some(p) = BroadcastJoinParams::of(&kind) {
            to_visit.push(p.small_side);
        }
        to_visit.extend(kind.parents());
    }
    let mut per_partition = HashMap::new();
    for accumulator in accumulators {
        for partial in state
            .shared_values
            .partials(accumulator)
            .unwrap_or_default()
        {
            if let Ok(count) = bincode::deserialize::<SkippedRows>(&partial) {
                per_partition.insert((accumulator, count.partition), count.rows);
            }
        }
    }
    Ok(per_partition.values().sum())
}

/// DataFrame `rdd` as the driver knows it.
pub fn describe(state: &DriverState, rdd: RddId) -> Result<Frame, DriverError> {
    Ok(Frame {
        rdd,
        num_partitions: state.lineage.with(rdd, |e| e.node.num_partitions)?,
        schema: state.frames.get(rdd)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_of_one_file_go_together_up_to_the_goal_and_never_across_files() {
        let groups = vec![
            ("a".to_string(), vec![(10, 100), (10, 100), (10, 100)]),
            ("b".to_string(), vec![(5, 500)]),
        ];
        let pieces = parquet_pieces(&groups, 200);
        let described: Vec<(&str, u64, u64, u64)> = pieces
            .iter()
            .map(|p| (p.path.as_str(), p.first_row, p.rows, p.bytes))
            .collect();
        assert_eq!(
            described,
            [("a", 0, 20, 200), ("a", 20, 10, 100), ("b", 0, 5, 500)]
        );
    }
}
