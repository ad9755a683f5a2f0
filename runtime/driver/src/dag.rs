//! The DAG scheduler's part: a job is cut into stages at its shuffle dependencies. Before a
//! stage's tasks run, every shuffle they read must have all its map outputs; missing ones (never
//! computed, or lost with an executor) are computed by running the shuffle's map stage for just
//! those partitions, after its own parent stages. Outputs an earlier job computed are reused.

use crate::DriverState;
use crate::scheduler::run_task;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tessera_plan::{RddId, ShuffleId, TaskAction};

type StageFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Computes the missing map outputs of every shuffle that computing `rdd` reads, side by side.
pub fn compute_parent_shuffles(state: Arc<DriverState>, job_id: u64, rdd: RddId) -> StageFuture {
    Box::pin(async move {
        let shuffles = state
            .lineage
            .parent_shuffles(rdd, |rdd, p| !state.blocks.locations(rdd, p).is_empty())?;
        let mut stages = tokio::task::JoinSet::new();
        for shuffle in shuffles {
            stages.spawn(compute_shuffle(state.clone(), job_id, shuffle));
        }
        while let Some(done) = stages.join_next().await {
            done.map_err(|e| format!("a stage's scheduler failed: {e}"))??;
        }
        Ok(())
    })
}

/// Runs the map stage of `shuffle` for the map partitions whose output no executor holds.
pub fn compute_shuffle(state: Arc<DriverState>, job_id: u64, shuffle: ShuffleId) -> StageFuture {
    Box::pin(async move {
        let lock = state.map_outputs.computing_lock(shuffle);
        let _computing = lock.lock().await;
        let stage = state.lineage.shuffle_stage(shuffle)?;
        let missing = state.map_outputs.missing(shuffle, stage.map_partitions);
        if missing.is_empty() {
            return Ok(());
        }
        compute_parent_shuffles(state.clone(), job_id, stage.parent).await?;
        state.jobs.add_stage(job_id, missing.len() as u32);
        let mut tasks = tokio::task::JoinSet::new();
        for map_partition in missing {
            let state = state.clone();
            let action = TaskAction::ShuffleWrite {
                shuffle,
                writer: stage.writer.clone(),
            };
            tasks.spawn(async move {
                let done = run_task(&state, job_id, stage.parent, map_partition, action).await?;
                state
                    .map_outputs
                    .register(shuffle, map_partition, &done.executor_id);
                Ok::<(), String>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| format!("a task's scheduler failed: {e}"))??;
        }
        state.jobs.stage_done(job_id);
        Ok(())
    })
}

/// How many stages computing `rdd` will run as things stand: its result stage, and the map
/// stage of every shuffle it reads (through its parents) whose output is missing, as
/// [`compute_parent_shuffles`] will find them. Progress displays show it as "stage x of y".
pub fn planned_stages(state: &DriverState, rdd: RddId) -> Result<u32, String> {
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![rdd];
    while let Some(rdd) = pending.pop() {
        let shuffles = state
            .lineage
            .parent_shuffles(rdd, |rdd, p| !state.blocks.locations(rdd, p).is_empty())?;
        for shuffle in shuffles {
            let stage = state.lineage.shuffle_stage(shuffle)?;
            let missing = state.map_outputs.missing(shuffle, stage.map_partitions);
            if !missing.is_empty() && seen.insert(shuffle) {
                pending.push(stage.parent);
            }
        }
    }
    Ok(1 + seen.len() as u32)
}
