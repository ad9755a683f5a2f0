//! What a task may use of its executor while it runs: the code, the cached blocks, the shuffle
//! outputs and the buckets fetched for it, the slots, and the cancel flag.

use crate::artifacts::Artifacts;
use crate::blocks::BlockManager;
use crate::shuffle_store::{Bucket, ShuffleStore};
use crate::task_host::TaskHost;
use crate::task_slots::TaskSlots;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use tessera_plan::ShuffleId;

/// What a task may use of its executor.
pub struct TaskEnv<'a> {
    pub artifacts: &'a Artifacts,
    pub blocks: &'a BlockManager,
    pub shuffles: &'a ShuffleStore,
    pub cancelled: &'a AtomicBool,
    /// The executor's slots, whose idle ones may help with a cached partition's batches
    /// (`morsels`).
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
