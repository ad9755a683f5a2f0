//! Code that lives in the executor itself rather than in a cell library: the operators that
//! run DataFrames with polars. A [`CodeRef`] whose library is [`BUILTIN_LIBRARY`] names one by
//! its offset; the executor resolves it without fetching or loading anything, and the rest of
//! the engine (tasks, caching, shuffles, recovery) treats it as it treats cell code.

use crate::frame::{CsvOptions, FrameStep, JoinOn, JsonOptions, Schema, WriteFormat};
use crate::rdd::{CodeRef, Operator};
use serde::{Deserialize, Serialize};

/// The library name of built-in code (not a content hash: it cannot collide with one).
pub const BUILTIN_LIBRARY: &str = "builtin:tessera-frame";

/// The built-in entry points. Each returns the table the plan expects where it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u64)]
pub enum Builtin {
    /// Source ([`crate::abi::SourceVTable`]): a text split's whole lines, as line chunks.
    Lines = 0,
    /// Operator: line chunks to DataFrames, parsing CSV; params [`CsvParams`].
    ParseCsv = 1,
    /// Operator: line chunks to DataFrames, parsing JSON lines; params [`JsonParams`].
    ParseJson = 2,
    /// Operator: a partition's DataFrames, gathered, through [`FrameStep`]s; params
    /// [`StepsParams`].
    Steps = 3,
    /// Action (a shuffle's map side): a partition's rows into buckets by a hash of key
    /// columns; params [`FrameShuffleParams`].
    HashWriter = 4,
    /// Source: one record frame of a shuffle bucket (Arrow IPC) as a DataFrame.
    IpcReader = 5,
    /// Action: a partition's rows as plain values for the cell; params [`RowsParams`].
    Rows = 6,
    /// Source: as [`Builtin::IpcReader`], for the right side of a join (its batches are
    /// marked so).
    IpcReaderRight = 7,
    /// Operator: a partition of each side of a join, shuffled by their keys, joined; params
    /// [`JoinParams`].
    Join = 8,
    /// Operator: a partition of one side of a join with all of the other, broadcast; params
    /// [`BroadcastJoinParams`].
    BroadcastJoin = 9,
    /// Action: a partition as one Arrow IPC stream (empty for a partition without rows).
    Ipc = 10,
    /// Source: a partition's "records" are a [`ParquetPiece`] (bincode), which it reads.
    ParquetPiece = 11,
    /// Action: writes a partition's rows to one file; params [`WriteParams`]; its result is
    /// the rows written (`u64`, little-endian).
    Write = 12,
    /// Action (a shuffle's map side): a partition's rows as records for cell code — record
    /// frames of a bincode `Vec<Vec<Value>>` — all in the bucket of the partition's own index,
    /// so the RDD it makes has the DataFrame's partitions; params: the partition count (`u32`).
    RowsWriter = 13,
    /// Operator: line-chunk batches that each hold one record frame of cell records (a bincode
    /// `Vec<Vec<Value>>`) to DataFrames; params: the [`Schema`].
    ParseRecords = 14,
    /// Action: a side of a join being measured for a broadcast: the partition's rows (`u64`,
    /// little-endian), then, if they are at most [`MeasureParams::max_rows`], the partition as
    /// [`Builtin::Ipc`] gives it, so that a side found small is broadcast without computing it
    /// again.
    Measure = 15,
    /// Action: a sample of a partition's sort keys, from which the driver draws the bounds of
    /// a [`Builtin::RangeWriter`]'s ranges; params [`SampleParams`]; its result a
    /// [`KeySample`] (bincode).
    SampleSortKeys = 16,
    /// Action (a shuffle's map side): a partition's rows into buckets by the range of sort
    /// keys each falls in; params [`RangeShuffleParams`].
    RangeWriter = 17,
}

impl Builtin {
    /// Every built-in, in offset order.
    pub const ALL: [Builtin; 18] = [
        Builtin::Lines,
        Builtin::ParseCsv,
        Builtin::ParseJson,
        Builtin::Steps,
        Builtin::HashWriter,
        Builtin::IpcReader,
        Builtin::Rows,
        Builtin::IpcReaderRight,
        Builtin::Join,
        Builtin::BroadcastJoin,
        Builtin::Ipc,
        Builtin::ParquetPiece,
        Builtin::Write,
        Builtin::RowsWriter,
        Builtin::ParseRecords,
        Builtin::Measure,
        Builtin::SampleSortKeys,
        Builtin::RangeWriter,
    ];

    /// The built-in `code` names, if it names one.
    pub fn of(code: &CodeRef) -> Option<Builtin> {
        if code.library != BUILTIN_LIBRARY {
            return None;
        }
        Builtin::ALL
            .get(usize::try_from(code.offset).ok()?)
            .copied()
    }

    /// Where the plan finds it.
    pub fn code(self) -> CodeRef {
        CodeRef {
            library: BUILTIN_LIBRARY.to_string(),
            offset: self as u64,
        }
    }

    /// It as an operator of a plan, with `params` (bincode).
    pub fn operator(self, params: Vec<u8>) -> Operator<CodeRef> {
        Operator {
            entry: self.code(),
            env_decoder: None,
            captures: Vec::new(),
            params,
        }
    }

    /// The operator that runs this built-in with `params`, encoded as the executor decodes
    /// them (bincode).
    pub fn with_params<P: Serialize>(self, params: &P) -> Operator<CodeRef> {
        self.operator(bincode::serialize(params).expect("built-in parameters serialize"))
    }
}

/// Whether `code` is built into the executor (nothing to fetch or load).
pub fn is_builtin(code: &CodeRef) -> bool {
    code.library == BUILTIN_LIBRARY
}

/// What [`Builtin::ParseCsv`] reads lines as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvParams {
    /// The columns each line is parsed into.
    pub schema: Schema,
    /// How the CSV is read.
    pub options: CsvOptions,
    /// With `options.skip_malformed`: the accumulator each task adds its partition's count of
    /// skipped rows to, as a [`SkippedRows`].
    pub skipped_rows: Option<u64>,
}

/// What [`Builtin::ParseJson`] reads lines as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonParams {
    /// The columns each line is parsed into.
    pub schema: Schema,
    /// How the lines are read.
    pub options: JsonOptions,
    /// With `options.skip_malformed`: the accumulator each task adds its partition's count of
    /// skipped lines to, as a [`SkippedRows`].
    pub skipped_rows: Option<u64>,
}

/// A partition's count of malformed rows skipped, as a reader reports it to its accumulator:
/// the driver keeps one count per partition, so reading a partition again does not count its
/// rows twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRows {
    /// The partition read.
    pub partition: u32,
    /// How many of its rows were skipped.
    pub rows: u64,
}

/// How [`Builtin::HashWriter`] places rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameShuffleParams {
    /// The columns whose values decide a row's bucket (all of them when empty).
    pub keys: Vec<String>,
    /// How many buckets: the partitions of the shuffle's output.
    pub partitions: u32,
}

/// The columns a sort orders rows by, and in which direction each (nulls first, as polars
/// sorts by default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKeys {
    /// The columns, most significant first.
    pub by: Vec<String>,
    /// Per column of `by`, whether it sorts descending.
    pub descending: Vec<bool>,
}

/// What [`Builtin::SampleSortKeys`] samples: at most `rows` rows of a partition, a row at
/// random from each of as many equal stretches of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleParams {
    /// The sort keys sampled.
    pub keys: SortKeys,
    /// At most this many rows are sampled.
    pub rows: u64,
}

/// A partition's sampled sort keys: how many rows it has, and the keys of the rows sampled,
/// each row's encoded so that bytes compare as the sort orders rows (polars' row encoding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySample {
    /// How many rows the partition has.
    pub rows: u64,
    /// The encoded sort keys of each row sampled.
    pub keys: Vec<Vec<u8>>,
}

/// How [`Builtin::RangeWriter`] places rows: a row whose encoded sort keys (as in a
/// [`KeySample`]) are at most `bounds[0]` goes to bucket 0; above `bounds[i - 1]` and at most
/// `bounds[i]`, to bucket `i`; above every bound, to the bucket after the last. Equal keys
/// share a bucket, and every row of a bucket sorts before every row of the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeShuffleParams {
    /// The sort keys that place rows.
    pub keys: SortKeys,
    /// How many buckets: the partitions of the shuffle's output.
    pub partitions: u32,
    /// Ascending, fewer than `partitions`; `None` until the driver has sampled the input,
    /// which it does before the first job that needs the shuffle.
    pub bounds: Option<Vec<Vec<u8>>>,
}

/// What [`Builtin::Rows`] brings back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsParams {
    /// At most this many rows of the partition (all when `None`).
    pub limit: Option<u64>,
}

/// What a [`Builtin::Steps`] operator does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepsParams {
    /// The steps, run in order.
    pub steps: Vec<FrameStep>,
    /// The schema of its input: a partition without rows is an empty DataFrame of it.
    pub input: Schema,
    /// Run the steps over a partition without rows too (a final aggregation without keys
    /// makes its one row of an empty input, as polars does); partial aggregations skip it.
    pub run_on_empty: bool,
}

/// What a [`Builtin::Join`] joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinParams {
    /// The key columns of each side, and which rows the join keeps.
    pub on: JoinOn,
    /// The schema of each side: a side without rows in a partition is an empty DataFrame of it.
    pub left: Schema,
    /// The schema of the right side (see `left`).
    pub right: Schema,
}

/// What a [`Builtin::BroadcastJoin`] joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BroadcastJoinParams {
    /// The key columns of each side, and which rows the join keeps.
    pub on: JoinOn,
    /// The broadcast variable holding the small side (one Arrow IPC stream).
    pub broadcast: u64,
    /// The DataFrame the small side was collected from (for `explain`).
    pub small_side: crate::rdd::RddId,
    /// The small side is the right one (else the left).
    pub broadcast_right: bool,
    /// The schema of the side the partition is of (for a partition without rows).
    pub partition_schema: Schema,
    /// The DataFrame steps the partition goes through first, where those of the chain before
    /// the join were fused into it ([`crate::fusion`]): the join can then filter the rows
    /// with the side's keys along with the steps' own filter, before any column is copied.
    pub before: Option<StepsParams>,
}

impl BroadcastJoinParams {
    /// What `kind` joins, if it is a broadcast join.
    pub fn of(kind: &crate::rdd::RddKind<CodeRef>) -> Option<BroadcastJoinParams> {
        match kind {
            crate::rdd::RddKind::Narrow { op, .. }
                if Builtin::of(&op.entry) == Some(Builtin::BroadcastJoin) =>
            {
                bincode::deserialize(&op.params).ok()
            }
            _ => None,
        }
    }
}

/// Rows of a Parquet file that one partition reads: whole row groups, as a row range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetPiece {
    /// The Parquet file, as the executor opens it.
    pub path: String,
    /// The first row (of the file) and how many.
    pub first_row: u64,
    /// How many rows, from `first_row` on.
    pub rows: u64,
    /// Bytes of the row groups, uncompressed (the size estimate joins use).
    pub bytes: u64,
}

/// How many rows of a partition a [`Builtin::Measure`] sends along with their count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureParams {
    /// The most rows a partition may have for its rows to be sent along with their count.
    pub max_rows: u64,
}

/// The rows a [`Builtin::Measure`] result counts and the partition's Arrow IPC stream, if it
/// came (empty for a partition without rows); `None` if the result is too short to be one.
pub fn split_measured(result: &[u8]) -> Option<(u64, Option<&[u8]>)> {
    let (rows, ipc) = result.split_first_chunk::<8>()?;
    let rows = u64::from_le_bytes(*rows);
    Some((rows, (rows == 0 || !ipc.is_empty()).then_some(ipc)))
}

/// Where a [`Builtin::Write`] writes: `dir/part-NNNNN.EXT`, NNNNN the partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteParams {
    /// The directory the files go in.
    pub dir: String,
    /// The files' format.
    pub format: WriteFormat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_partition_brings_its_rows_only_when_it_has_some_and_they_came() {
        let result = |rows: u64, ipc: &[u8]| [&rows.to_le_bytes()[..], ipc].concat();
        assert_eq!(
            split_measured(&result(3, b"ipc")),
            Some((3, Some(&b"ipc"[..])))
        );
        // Counted but too many to bring along.
        assert_eq!(split_measured(&result(3, b"")), Some((3, None)));
        // No rows: nothing to bring, and nothing missing.
        assert_eq!(split_measured(&result(0, b"")), Some((0, Some(&b""[..]))));
        assert_eq!(split_measured(&[1, 2, 3]), None);
    }

    #[test]
    fn every_builtin_is_found_by_its_code_and_nothing_else_is() {
        for builtin in Builtin::ALL {
            assert_eq!(Builtin::of(&builtin.code()), Some(builtin));
        }
        let past = CodeRef {
            library: BUILTIN_LIBRARY.into(),
            offset: Builtin::ALL.len() as u64,
        };
        assert_eq!(Builtin::of(&past), None);
        let cell = CodeRef {
            library: "ab12".into(),
            offset: 0,
        };
        assert_eq!(Builtin::of(&cell), None);
        assert!(!is_builtin(&cell));
    }
}
