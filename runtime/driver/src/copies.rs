//! Copies of cached partitions made again after an executor is lost (Spark's proactive
//! replication, `TESSERA_PROACTIVE_REPLICATION=1`): as each job starts and ends, the holders of
//! blocks that have fewer copies than their level keeps are asked to copy them to live
//! executors without one — `replication::repairs` decides which, this module keeps the books
//! and does the calls. Copies are made in the background: no job waits for them, and a block
//! whose copy is under way is not asked again.
//!
//! Off by default, as in Spark: a copy costs the executor that sends it and the one that
//! receives it CPU while the session's jobs run. In the chaos suite's short LR job, an
//! executor's loss cost about one iteration with two copies, and three and a half once the
//! lost copies were made again beside the remaining iterations (BENCHMARKS.md). A long job, or
//! one that must survive a second loss, gains: the replacement executor gets copies and tasks
//! spread over it again.

use crate::replication::{BlockCopies, Candidate, Repair, repairs};
use crate::state::DriverState;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_plan::RddId;

/// Starts the copies that bring every block that lost some back to its level.
pub(crate) fn replenish(state: &Arc<DriverState>) {
    if !state.proactive_replication {
        return;
    }
    let wanted: HashMap<RddId, usize> = state
        .lineage
        .persisted()
        .into_iter()
        .map(|(rdd, _, _, _, level)| (rdd, level.replication()))
        .filter(|(_, copies)| *copies > 1)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let copies = state.blocks.copies();
    let under_way = state.copies_under_way.now();
    let blocks: Vec<BlockCopies> = copies
        .iter()
        .filter(|((rdd, partition), _)| !under_way.contains(&(*rdd, *partition)))
        .filter_map(|((rdd, partition), holders)| {
            Some(BlockCopies {
                rdd: *rdd,
                partition: *partition,
                holders: holders.iter().map(String::as_str).collect(),
                wanted: *wanted.get(rdd)?,
            })
        })
        .collect();
    let live = state.executors.list();
    let candidates: Vec<Candidate> = live.iter().map(Candidate::of).collect();
    for repair in repairs(&blocks, &candidates) {
        let key = (repair.rdd, repair.partition);
        state.copies_under_way.start(key);
        tokio::spawn(copy(state.clone(), repair));
    }
}

/// Makes one copy and records it.
async fn copy(state: Arc<DriverState>, repair: Repair) {
    let Repair {
        rdd,
        partition,
        holder,
        to,
    } = repair;
    if let Some(executor) = state.executors.get(&holder) {
        match executor.client.copy_block(rdd, partition, &to).await {
            Ok(()) => {
                // Recorded only if the receiver is still live: a copy on an executor lost
                // meanwhile would point tasks at it.
                if state.executors.get(&to.executor_id).is_some() {
                    state.blocks.add_copy(&to.executor_id, rdd, partition);
                }
            }
            Err(e) => tracing::debug!(
                rdd,
                partition,
                from = %holder,
                to = %to.executor_id,
                "cannot copy a cached partition again: {e}"
            ),
        }
    }
    state.copies_under_way.end((rdd, partition));
}
