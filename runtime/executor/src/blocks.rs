//! The block manager: cached partitions of RDDs, kept in this executor's memory between jobs.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_plan::RddId;
use tessera_plan::abi::{Batch, BatchVTable};

/// One cached partition: the batches that made it, and the functions (from the library that
/// produced them) to clone and free them.
pub struct Block {
    batches: Vec<Batch>,
    vtable: BatchVTable,
    pub bytes: u64,
}

// SAFETY: a batch is a `Vec<T>` with `T: Send + Sync` (the API's `Data` bound); the executor
// only clones it (shared access) and frees it once, when the last reference goes.
unsafe impl Send for Block {}
unsafe impl Sync for Block {}

impl Block {
    pub fn new(batches: Vec<Batch>, vtable: BatchVTable) -> Block {
        // SAFETY: the batches were produced with this table.
        let bytes = batches
            .iter()
            .map(|&b| unsafe { (vtable.memory_bytes)(b) } as u64)
            .sum();
        Block {
            batches,
            vtable,
            bytes,
        }
    }

    pub fn vtable(&self) -> &BatchVTable {
        &self.vtable
    }

    /// A fresh copy of every batch, for a task to consume.
    pub fn cloned_batches(&self) -> impl Iterator<Item = Batch> + '_ {
        // SAFETY: cloning reads the batch; the block keeps its own.
        self.batches
            .iter()
            .map(move |&b| unsafe { (self.vtable.clone)(b) })
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        for &batch in &self.batches {
            // SAFETY: each batch is owned by this block and freed once.
            unsafe { (self.vtable.drop)(batch) };
        }
    }
}

/// Cached partitions by (rdd, partition).
#[derive(Default)]
pub struct BlockManager {
    blocks: Mutex<HashMap<(RddId, u32), Arc<Block>>>,
}

impl BlockManager {
    pub fn get(&self, rdd: RddId, partition: u32) -> Option<Arc<Block>> {
        self.blocks.lock().get(&(rdd, partition)).cloned()
    }

    pub fn put(&self, rdd: RddId, partition: u32, block: Block) -> Arc<Block> {
        let block = Arc::new(block);
        self.blocks.lock().insert((rdd, partition), block.clone());
        block
    }

    /// Drops every partition of `rdd`; tasks still reading one keep it until they finish.
    pub fn drop_rdd(&self, rdd: RddId) -> usize {
        let mut blocks = self.blocks.lock();
        let before = blocks.len();
        blocks.retain(|(id, _), _| *id != rdd);
        before - blocks.len()
    }
}
