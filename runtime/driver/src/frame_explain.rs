//! `df.explain()`: a DataFrame's distributed plan as text — the RDDs it is computed from, its
//! stages (a shuffle ends one), which side of a join is broadcast, and the polars plan each
//! partition runs — read off the lineage the driver holds.

use crate::error::DriverError;
use crate::state::DriverState;
use std::collections::BTreeSet;
use std::fmt::Write;
use tessera_plan::builtin::{
    BroadcastJoinParams, Builtin, CsvParams, FrameShuffleParams, JoinParams, JsonParams,
    ParquetPiece, RangeShuffleParams, StepsParams,
};
use tessera_plan::{CodeRef, Operator, RddId, RddKind};

/// The distributed plan of DataFrame `rdd`.
pub fn explain(state: &DriverState, rdd: RddId) -> Result<String, DriverError> {
    let mut out = format!("== distributed plan of DataFrame#{rdd} ==\n");
    let mut stage = 0;
    write_node(state, rdd, 0, &mut stage, &mut out)?;
    Ok(out)
}

/// `bytes`, bincode, as `T`; `None` for parameters of another version.
fn params<T: serde::de::DeserializeOwned>(op: &Operator<CodeRef>) -> Option<T> {
    bincode::deserialize(&op.params).ok()
}

/// How a shuffle's `writer` places rows: by ranges of sort keys (sampled yet or not), by a
/// hash of keys, or into one partition.
fn placement(writer: &Operator<CodeRef>) -> String {
    if Builtin::of(&writer.entry) == Some(Builtin::RangeWriter) {
        return match params::<RangeShuffleParams>(writer) {
            Some(RangeShuffleParams {
                keys,
                bounds: Some(bounds),
                ..
            }) => format!(
                "by ranges of {:?} ({} bounds sampled)",
                keys.by,
                bounds.len()
            ),
            Some(p) => format!(
                "by ranges of {:?} (drawn from a sample when a job first runs it)",
                p.keys.by
            ),
            None => "by ranges".to_string(),
        };
    }
    match params::<FrameShuffleParams>(writer) {
        Some(p) if p.keys.is_empty() => "into one partition".to_string(),
        Some(p) => format!("by {:?}", p.keys),
        None => "by key".to_string(),
    }
}

/// What a narrow operator does, with the polars plan of a steps operator on the lines after.
fn narrow(op: &Operator<CodeRef>) -> String {
    match Builtin::of(&op.entry) {
        Some(Builtin::ParseCsv) => match params::<CsvParams>(op) {
            Some(p) => format!(
                "parse CSV lines as ({}){}",
                crate::frames::describe_schema(&p.schema),
                if p.options.skip_malformed {
                    ", skipping malformed rows"
                } else {
                    ""
                }
            ),
            None => "parse CSV lines".to_string(),
        },
        Some(Builtin::ParseJson) => match params::<JsonParams>(op) {
            Some(p) if p.options.skip_malformed => {
                "parse JSON lines, skipping malformed ones".to_string()
            }
            _ => "parse JSON lines".to_string(),
        },
        Some(Builtin::ParseRecords) => "make DataFrames of a cell's records".to_string(),
        Some(Builtin::Steps) => {
            let Some(p) = params::<StepsParams>(op) else {
                return "polars steps".to_string();
            };
            let plan = tessera_frame::steps::describe(&p.input, &p.steps)
                .unwrap_or_else(|e| format!("(no plan: {e})"));
            format!("polars, on each partition:\n{plan}")
        }
        Some(Builtin::Join) => match params::<JoinParams>(op) {
            Some(p) => format!(
                "{:?} join of the two shuffled sides of each partition on {:?} = {:?}",
                p.on.how, p.on.left_on, p.on.right_on
            ),
            None => "join of shuffled sides".to_string(),
        },
        Some(Builtin::BroadcastJoin) => match params::<BroadcastJoinParams>(op) {
            Some(p) => format!(
                "{:?} join of each partition with the {} side, collected and broadcast to every \
                 executor (broadcast #{}), on {:?} = {:?}{}",
                p.on.how,
                if p.broadcast_right { "right" } else { "left" },
                p.broadcast,
                p.on.left_on,
                p.on.right_on,
                if tessera_frame::merge_join::mergeable(&p.on) {
                    " (merged with the side's keys in order where a partition's integer key is in \
                     order, else hashed)"
                } else {
                    ""
                }
            ),
            None => "broadcast join".to_string(),
        },
        _ => "a cell's code, on each partition".to_string(),
    }
}

/// Writes `rdd` and what it is computed from, indented by `depth`; a shuffle starts a new
/// stage, numbered from the result's (0) down.
fn write_node(
    state: &DriverState,
    rdd: RddId,
    depth: usize,
    stage: &mut u32,
    out: &mut String,
) -> Result<(), DriverError> {
    let (kind, name, partitions, persist) = state.lineage.with(rdd, |e| {
        (
            e.node.kind.clone(),
            e.node.name.clone(),
            e.node.num_partitions,
            e.persist,
        )
    })?;
    let pad = "  ".repeat(depth);
    let cached = persist.map_or(String::new(), |level| format!(" [cached, {level}]"));
    let mut line = |text: &str| {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(
            out,
            "{pad}{name} (rdd {rdd}, {partitions} partitions){cached}: {first}"
        );
        for more in lines {
            let _ = writeln!(out, "{pad}    {more}");
        }
    };
    match kind {
        RddKind::TextFile { splits, .. } => {
            let files: BTreeSet<&str> = splits.iter().map(|s| s.path.as_str()).collect();
            let bytes: u64 = splits.iter().map(|s| s.end - s.start).sum();
            line(&format!(
                "read {} byte ranges of {} file(s), {bytes} bytes",
                splits.len(),
                files.len()
            ));
        }
        RddKind::Parallelize {
            partitions: pieces,
            decoder,
        } if Builtin::of(&decoder.entry) == Some(Builtin::ParquetPiece) => {
            let pieces: Vec<ParquetPiece> = pieces
                .iter()
                .filter_map(|p| bincode::deserialize(p).ok())
                .collect();
            let files: BTreeSet<&str> = pieces.iter().map(|p| p.path.as_str()).collect();
            let bytes: u64 = pieces.iter().map(|p| p.bytes).sum();
            line(&format!(
                "read row groups of {} Parquet file(s), {bytes} bytes uncompressed",
                files.len()
            ));
        }
        RddKind::Parallelize { .. } => line("records shipped from the session"),
        RddKind::Checkpoint { .. } => line("partitions saved by checkpoint"),
        RddKind::Narrow { parent, op, .. } => {
            line(&narrow(&op));
            if Builtin::of(&op.entry) == Some(Builtin::BroadcastJoin)
                && let Some(p) = params::<BroadcastJoinParams>(&op)
            {
                let _ = writeln!(
                    out,
                    "{pad}  the broadcast side, collected by a job of its own (or by the count \
                     that measured it):"
                );
                let mut own_stage = 0;
                write_node(state, p.small_side, depth + 2, &mut own_stage, out)?;
            }
            write_node(state, parent, depth, stage, out)?;
        }
        RddKind::Shuffled { parent, writer, .. } => {
            *stage += 1;
            let by = placement(&writer);
            line(&format!(
                "shuffle {by}: stage {stage} writes it, the stage above reads it"
            ));
            write_node(state, parent, depth + 1, stage, out)?;
        }
        RddKind::Union { .. }
        | RddKind::PartitionwiseUnion { .. }
        | RddKind::Concatenated { .. } => {
            let parents = kind.parents();
            line(&match kind {
                RddKind::Concatenated { .. } => format!(
                    "each partition reads partitions of {} parent(s) in turn",
                    parents.len()
                ),
                _ => format!("the partitions of {} DataFrames", parents.len()),
            });
            for parent in parents {
                write_node(state, parent, depth + 1, stage, out)?;
            }
        }
    }
    Ok(())
}
