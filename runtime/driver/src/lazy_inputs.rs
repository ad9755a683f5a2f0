//! Inputs of a job that are made only when a job first reads them, each by a job of its own:
//! the key ranges of a DataFrame sort's shuffle, drawn from a sample of its input as Spark's
//! `RangePartitioner` does, and the broadcast join sides that the cleaner released. Jobs start
//! here: [`run_job`] makes the lazy inputs a job reaches (the job that makes one makes those it
//! reads first), then hands the job to the DAG scheduler ([`dag::run_job`]), which knows nothing
//! of DataFrames.
//!
//! It sits between the two: the DataFrames (`frames`) run their jobs through it and collect
//! broadcast join sides with [`collect_side`]; the DAG scheduler imports neither.

use crate::dag;
use crate::error::DriverError;
use crate::remote_executor::BoxFuture;
use crate::state::DriverState;
use std::sync::Arc;
use tessera_frame::ranges::sample_rows;
use tessera_plan::builtin::{
    BroadcastJoinParams, Builtin, KeySample, RangeShuffleParams, SampleParams,
};
use tessera_plan::frame::Schema;
use tessera_plan::range_bounds::range_bounds;
use tessera_plan::{CodeRef, RddId, RddKind, TaskAction};

/// Runs a job: `action` on `partitions` (all by default) of `rdd`, once the lazy inputs it
/// reads are made: first the ranges of the sorts it reaches, then the broadcast sides the
/// cleaner released. Results come in the order of `partitions`.
pub async fn run_job(
    state: Arc<DriverState>,
    rdd: RddId,
    action: TaskAction,
    partitions: Option<Vec<u32>>,
    description: String,
) -> Result<Vec<Vec<u8>>, DriverError> {
    sample_sort_ranges(&state, rdd).await?;
    restore_broadcasts(&state, rdd).await?;
    dag::run_job(state, rdd, action, partitions, description).await
}

/// Partitions of a side of join `name` (Arrow IPC streams), as the one stream a broadcast
/// variable holds.
pub fn concat_side(
    parts: &[impl AsRef<[u8]>],
    schema: &Schema,
    name: &str,
) -> Result<Vec<u8>, DriverError> {
    tessera_frame::ipc::concat(parts, schema).map_err(|source| DriverError::Frame {
        what: format!("collecting the small side of {name}"),
        source,
    })
}

/// Collects DataFrame `rdd` (of `schema`), a side of join `name` to broadcast, as one Arrow IPC
/// stream (what a broadcast variable holds, which every executor fetches once).
pub async fn collect_side(
    state: &Arc<DriverState>,
    rdd: RddId,
    schema: &Schema,
    name: &str,
) -> Result<Vec<u8>, DriverError> {
    let action = TaskAction::Run(Builtin::Ipc.operator(Vec::new()));
    let description = format!("collect the small side of {name} to broadcast it");
    let parts = run_job(state.clone(), rdd, action, None, description).await?;
    concat_side(&parts, schema, name)
}

/// Collects again the broadcast join sides that a job on `rdd` reads and the cleaner released
/// (a DataFrame it found unreachable was used after all), each under its old id; a job of its
/// own each, as when the join was planned.
fn restore_broadcasts(
    state: &Arc<DriverState>,
    rdd: RddId,
) -> BoxFuture<'_, Result<(), DriverError>> {
    Box::pin(async move {
        if !state.shared_values.any_released() {
            return Ok(());
        }
        for id in state.lineage.reachable_from(rdd)? {
            let join = state
                .lineage
                .with(id, |e| BroadcastJoinParams::of(&e.node.kind))?;
            let Some(join) = join.filter(|j| state.shared_values.is_released(j.broadcast)) else {
                continue;
            };
            let name = state.lineage.with(id, |e| e.node.name.clone())?;
            let schema = state.frames.get(join.small_side)?;
            let side = collect_side(state, join.small_side, &schema, &name).await?;
            state.shared_values.restore(join.broadcast, side);
            tracing::info!(
                rdd = id,
                broadcast = join.broadcast,
                "collected a released broadcast side again"
            );
        }
        Ok(())
    })
}

/// Draws the ranges of every sort's shuffle that a job on `rdd` reaches and that has none yet
/// (see [`Distributed::SortedRanges`](crate::frame_plan::Distributed::SortedRanges)): a job
/// samples the keys of the shuffle's input, as Spark's `RangePartitioner` does when its shuffle
/// is first needed, so that a sort planned and then only limited (whose limit reads its input
/// instead) costs nothing. A sample that does not decode counts as no keys: the ranges are then
/// fewer, never wrong.
fn sample_sort_ranges(
    state: &Arc<DriverState>,
    rdd: RddId,
) -> BoxFuture<'_, Result<(), DriverError>> {
    Box::pin(async move {
        for id in state.lineage.reachable_from(rdd)? {
            let unsampled = state.lineage.with(id, |e| {
                unsampled_ranges(&e.node.kind).map(|found| (found, e.node.name.clone()))
            })?;
            let Some(((parent, mut shuffle), name)) = unsampled else {
                continue;
            };
            let input_partitions = state.lineage.num_partitions(parent)?;
            let params = SampleParams {
                keys: shuffle.keys.clone(),
                rows: sample_rows(shuffle.partitions, input_partitions),
            };
            let action = TaskAction::Run(Builtin::SampleSortKeys.with_params(&params));
            let description = format!("sample the keys of {name} to draw its ranges");
            // Sampling runs a job on `parent`, which samples the sorts below it first.
            let parts = run_job(state.clone(), parent, action, None, description).await?;
            let samples = parts
                .iter()
                .map(|part| bincode::deserialize(part).unwrap_or_default())
                .map(|sample: KeySample| (sample.rows, sample.keys))
                .collect();
            shuffle.bounds = Some(range_bounds(samples, shuffle.partitions));
            let mut kind = state.lineage.with(id, |e| e.node.kind.clone())?;
            if let RddKind::Shuffled { writer, .. } = &mut kind {
                *writer = Builtin::RangeWriter.with_params(&shuffle);
            }
            state.lineage.replace_kind(id, kind)?;
        }
        Ok(())
    })
}

/// The input and the params of `kind` if it is a sort's shuffle by ranges whose ranges are not
/// drawn yet.
fn unsampled_ranges(kind: &RddKind<CodeRef>) -> Option<(RddId, RangeShuffleParams)> {
    let RddKind::Shuffled { parent, writer, .. } = kind else {
        return None;
    };
    if Builtin::of(&writer.entry) != Some(Builtin::RangeWriter) {
        return None;
    }
    let shuffle: RangeShuffleParams = bincode::deserialize(&writer.params).ok()?;
    shuffle.bounds.is_none().then_some((*parent, shuffle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::Partitioner;
    use tessera_plan::builtin::{FrameShuffleParams, SortKeys};

    #[test]
    fn only_a_sorts_shuffle_without_ranges_is_sampled() {
        let keys = SortKeys {
            by: vec!["x".into()],
            descending: vec![false],
        };
        let shuffled = |writer| RddKind::Shuffled {
            parent: 7,
            partitioner: Partitioner::Hash { partitions: 2 },
            writer,
            reader: Builtin::IpcReader.operator(Vec::new()),
            merge: None,
        };
        let ranges = |bounds| RangeShuffleParams {
            keys: keys.clone(),
            partitions: 2,
            bounds,
        };
        assert_eq!(
            unsampled_ranges(&shuffled(Builtin::RangeWriter.with_params(&ranges(None)))),
            Some((7, ranges(None)))
        );
        let drawn = ranges(Some(vec![vec![1]]));
        assert_eq!(
            unsampled_ranges(&shuffled(Builtin::RangeWriter.with_params(&drawn))),
            None
        );
        let hash = FrameShuffleParams {
            keys: vec!["x".into()],
            partitions: 2,
        };
        assert_eq!(
            unsampled_ranges(&shuffled(Builtin::HashWriter.with_params(&hash))),
            None
        );
    }
}
