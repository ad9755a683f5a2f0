//! Consecutive DataFrame steps of a chain fused into one, as Spark's whole-stage code
//! generation fuses a stage's operators: a partition's select, filter and partial aggregation
//! then run as one polars query, which polars plans as a whole (the filter feeds the
//! aggregation without a copy of the rows it keeps in between), and the partition is gathered
//! once instead of once per step. Steps just before a broadcast join are fused into the join,
//! which then filters the partition with the side's keys along with the steps' own filter.

use crate::builtin::{BroadcastJoinParams, Builtin, StepsParams};
use crate::rdd::{CodeRef, Operator};
use crate::task::Step;

/// `steps` with every run of [`Builtin::Steps`] operators merged into the last of the run,
/// and a run just before a [`Builtin::BroadcastJoin`] merged into the join, where that
/// computes the same: a step whose partition is kept (`persist`) ends a run, since its own
/// output must be stored, and a step that runs over an empty partition does not join one that
/// skips it (the run would then skip it too).
pub fn fuse_frame_steps(steps: Vec<Step>) -> Vec<Step> {
    let mut fused: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        let merged = fused
            .last()
            .filter(|before| before.persist.is_none())
            .and_then(|before| fused_op(frame_steps(before)?, &step));
        match (merged, fused.last_mut()) {
            (Some(op), Some(before)) => {
                *before = Step {
                    op: Some(op),
                    ..step
                }
            }
            _ => fused.push(step),
        }
    }
    fused
}

/// `step`'s operator running `first` before its own work, where it can.
fn fused_op(first: StepsParams, step: &Step) -> Option<Operator<CodeRef>> {
    if let Some(second) = frame_steps(step) {
        return Some(Builtin::Steps.with_params(&merge(first, second)?));
    }
    let join = broadcast_join(step)?;
    if join.before.is_some() {
        return None;
    }
    Some(Builtin::BroadcastJoin.with_params(&BroadcastJoinParams {
        before: Some(first),
        ..join
    }))
}

/// What `step` runs, if it is a [`Builtin::Steps`] operator (whose parameters decode).
fn frame_steps(step: &Step) -> Option<StepsParams> {
    params_of(step, Builtin::Steps)
}

/// What `step` joins, if it is a [`Builtin::BroadcastJoin`] operator.
fn broadcast_join(step: &Step) -> Option<BroadcastJoinParams> {
    params_of(step, Builtin::BroadcastJoin)
}

/// The parameters of `step`'s operator, if it is `builtin` (and they decode).
fn params_of<P: serde::de::DeserializeOwned>(step: &Step, builtin: Builtin) -> Option<P> {
    let op = step.op.as_ref()?;
    if Builtin::of(&op.entry) != Some(builtin) {
        return None;
    }
    bincode::deserialize(&op.params).ok()
}

/// `first` then `second` as one list of steps, when that computes what the two compute.
fn merge(first: StepsParams, second: StepsParams) -> Option<StepsParams> {
    // Over an empty partition, `first` yields nothing when it skips it, and `second` would
    // have run over nothing: the merged steps may skip it only if `second` does.
    if !first.run_on_empty && second.run_on_empty {
        return None;
    }
    let mut steps = first.steps;
    steps.extend(second.steps);
    Some(StepsParams {
        steps,
        input: first.input,
        run_on_empty: first.run_on_empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{DataType, Field, FrameStep, Schema, col, lit};
    use crate::rdd::{CodeRef, Operator, StorageLevel};

    fn schema(name: &str) -> Schema {
        Schema {
            fields: vec![Field {
                name: name.into(),
                dtype: DataType::Int64,
            }],
        }
    }

    fn frame_step(rdd: u64, column: &str, run_on_empty: bool) -> Step {
        let params = StepsParams {
            steps: vec![FrameStep::Filter(col(column).gt(lit(rdd as i64)))],
            input: schema(column),
            run_on_empty,
        };
        Step {
            rdd,
            partition: 3,
            op: Some(Builtin::Steps.with_params(&params)),
            persist: None,
            element_type: "frame".into(),
        }
    }

    fn other_step(rdd: u64) -> Step {
        Step {
            rdd,
            partition: 3,
            op: Some(Operator {
                entry: CodeRef {
                    library: "cell".into(),
                    offset: 7,
                },
                env_decoder: None,
                captures: Vec::new(),
                params: Vec::new(),
            }),
            persist: None,
            element_type: "frame".into(),
        }
    }

    fn source_step(rdd: u64) -> Step {
        Step {
            op: None,
            ..other_step(rdd)
        }
    }

    fn rdds(steps: &[Step]) -> Vec<u64> {
        steps.iter().map(|s| s.rdd).collect()
    }

    #[test]
    fn a_run_of_frame_steps_becomes_the_last_of_them_running_all_in_order() {
        let steps = vec![
            source_step(1),
            frame_step(2, "a", false),
            frame_step(3, "b", false),
            frame_step(4, "c", false),
        ];
        let fused = fuse_frame_steps(steps);
        assert_eq!(rdds(&fused), [1, 4]);
        let params = frame_steps(&fused[1]).unwrap();
        assert_eq!(
            params.steps,
            [
                FrameStep::Filter(col("a").gt(lit(2i64))),
                FrameStep::Filter(col("b").gt(lit(3i64))),
                FrameStep::Filter(col("c").gt(lit(4i64))),
            ]
        );
        assert_eq!(params.input, schema("a"), "the input is the first step's");
        assert_eq!(fused[1].partition, 3);
    }

    #[test]
    fn a_kept_partition_or_other_code_ends_a_run() {
        let mut kept = frame_step(3, "b", false);
        kept.persist = Some(StorageLevel::MemoryOnly);
        let steps = vec![
            source_step(1),
            frame_step(2, "a", false),
            kept,
            frame_step(4, "c", false),
            other_step(5),
            frame_step(6, "d", false),
            frame_step(7, "e", false),
        ];
        let fused = fuse_frame_steps(steps);
        assert_eq!(rdds(&fused), [1, 3, 4, 5, 7]);
        assert_eq!(fused[1].persist, Some(StorageLevel::MemoryOnly));
        assert_eq!(frame_steps(&fused[1]).unwrap().steps.len(), 2);
        assert_eq!(frame_steps(&fused[2]).unwrap().steps.len(), 1);
    }

    fn join_step(rdd: u64, before: Option<StepsParams>) -> Step {
        let params = BroadcastJoinParams {
            on: crate::frame::JoinOn {
                left_on: vec!["a".into()],
                right_on: vec!["k".into()],
                how: crate::frame::JoinKind::Inner,
            },
            broadcast: 9,
            small_side: 8,
            broadcast_right: true,
            partition_schema: schema("a"),
            before,
        };
        Step {
            op: Some(Builtin::BroadcastJoin.with_params(&params)),
            ..frame_step(rdd, "a", false)
        }
    }

    #[test]
    fn steps_just_before_a_broadcast_join_run_inside_it() {
        let steps = vec![
            source_step(1),
            frame_step(2, "a", false),
            frame_step(3, "b", false),
            join_step(4, None),
            frame_step(5, "c", false),
        ];
        let fused = fuse_frame_steps(steps);
        assert_eq!(rdds(&fused), [1, 4, 5]);
        let join = broadcast_join(&fused[1]).expect("the join");
        let before = join.before.expect("the steps before it");
        assert_eq!(before.steps.len(), 2);
        assert_eq!(before.input, schema("a"));
        assert_eq!(join.partition_schema, schema("a"));
        // A kept partition before the join stays a step of its own, and a join that runs
        // steps already takes no more.
        let mut kept = frame_step(2, "a", false);
        kept.persist = Some(StorageLevel::MemoryOnly);
        assert_eq!(
            rdds(&fuse_frame_steps(vec![kept, join_step(3, None)])),
            [2, 3]
        );
        let ran = Some(frame_steps(&frame_step(0, "z", false)).unwrap());
        let fused = fuse_frame_steps(vec![frame_step(2, "a", false), join_step(3, ran.clone())]);
        assert_eq!(rdds(&fused), [2, 3]);
        assert_eq!(broadcast_join(&fused[1]).unwrap().before, ran);
    }

    #[test]
    fn a_step_over_empty_partitions_does_not_join_one_that_skips_them() {
        let fused = fuse_frame_steps(vec![frame_step(1, "a", false), frame_step(2, "b", true)]);
        assert_eq!(rdds(&fused), [1, 2]);
        let fused = fuse_frame_steps(vec![frame_step(1, "a", true), frame_step(2, "b", false)]);
        assert_eq!(rdds(&fused), [2]);
        assert!(frame_steps(&fused[0]).unwrap().run_on_empty);
    }
}
