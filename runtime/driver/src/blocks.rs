//! The block map: which executor holds which cached partition, learnt from task metrics.

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use tessera_plan::{NotCached, RddId, StoredBlock};

#[derive(Default)]
pub struct BlockMap {
    /// (rdd, partition) -> executor id -> bytes.
    blocks: Mutex<BTreeMap<(RddId, u32), BTreeMap<String, u64>>>,
    /// (rdd, partition) -> the executor holding part of it, adopted from a lost executor that
    /// was computing it: a task computing it there carries on from that part.
    partials: Mutex<BTreeMap<(RddId, u32), String>>,
}

/// The cached partitions whose copy to another executor is under way (proactive replication,
/// [`crate::copies`]): a block is asked for one copy at a time.
#[derive(Default)]
pub struct CopiesUnderWay(Mutex<BTreeSet<(RddId, u32)>>);

impl CopiesUnderWay {
    /// The blocks, as (rdd, partition), being copied now.
    pub fn now(&self) -> BTreeSet<(RddId, u32)> {
        self.0.lock().clone()
    }

    /// Notes that a copy of `block` started.
    pub fn start(&self, block: (RddId, u32)) {
        self.0.lock().insert(block);
    }

    /// Notes that the copy of `block` ended, made or not.
    pub fn end(&self, block: (RddId, u32)) {
        self.0.lock().remove(&block);
    }
}

/// The RDDs the user was told a partition of could not be cached (`TaskMetrics::not_cached`):
/// once an RDD, for a partition too large for an executor's memory is likely not alone, and
/// every job that reads the RDD tries to cache it again.
#[derive(Default)]
pub struct NotCachedTold(Mutex<BTreeSet<RddId>>);

impl NotCachedTold {
    /// Of `not_cached`, those to tell the user of: the first of each RDD not told before.
    pub fn to_tell<'a>(&self, not_cached: &'a [NotCached]) -> Vec<&'a NotCached> {
        let mut told = self.0.lock();
        not_cached.iter().filter(|n| told.insert(n.rdd)).collect()
    }
}

/// What `:storage` shows for one executor's share of an RDD.
pub struct CachedShare {
    pub partitions: u32,
    pub bytes: u64,
}

impl BlockMap {
    /// `executor` cached `stored`, and copied each to the executors its `replicas` name.
    pub fn record(&self, executor: &str, stored: &[StoredBlock]) {
        let mut blocks = self.blocks.lock();
        let mut partials = self.partials.lock();
        for block in stored {
            partials.remove(&(block.rdd, block.partition));
            let holders = blocks.entry((block.rdd, block.partition)).or_default();
            for holder in std::iter::once(executor).chain(block.replicas.iter().map(String::as_str))
            {
                holders.insert(holder.to_string(), block.bytes);
            }
        }
    }

    /// Executors holding `(rdd, partition)`.
    pub fn locations(&self, rdd: RddId, partition: u32) -> Vec<String> {
        self.blocks
            .lock()
            .get(&(rdd, partition))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every block with its holders.
    pub fn copies(&self) -> Vec<((RddId, u32), Vec<String>)> {
        self.blocks
            .lock()
            .iter()
            .map(|(key, holders)| (*key, holders.keys().cloned().collect()))
            .collect()
    }

    /// `executor` now holds a copy of `(rdd, partition)`, as large as the other holders'.
    pub fn add_copy(&self, executor: &str, rdd: RddId, partition: u32) {
        let mut blocks = self.blocks.lock();
        let holders = blocks.entry((rdd, partition)).or_default();
        let bytes = holders.values().copied().max().unwrap_or(0);
        holders.insert(executor.to_string(), bytes);
    }

    /// `executor` now holds `block`, of `bytes` bytes.
    pub fn add(&self, executor: &str, block: (RddId, u32), bytes: u64) {
        let mut blocks = self.blocks.lock();
        blocks
            .entry(block)
            .or_default()
            .insert(executor.to_string(), bytes);
    }

    /// `executor` holds part of `block`, adopted from a lost executor that was computing it.
    pub fn add_partial(&self, executor: &str, block: (RddId, u32)) {
        self.partials.lock().insert(block, executor.to_string());
    }

    /// The executor holding part of `(rdd, partition)` to carry on from, if one does.
    pub fn partial_holder(&self, rdd: RddId, partition: u32) -> Option<String> {
        self.partials.lock().get(&(rdd, partition)).cloned()
    }

    /// The blocks `executor` holds, as (rdd, partition).
    pub fn held_by(&self, executor: &str) -> Vec<(RddId, u32)> {
        self.blocks
            .lock()
            .iter()
            .filter(|(_, holders)| holders.contains_key(executor))
            .map(|(key, _)| *key)
            .collect()
    }

    /// Bytes of the blocks `executor` holds.
    pub fn bytes_held_by(&self, executor: &str) -> u64 {
        self.blocks
            .lock()
            .values()
            .filter_map(|holders| holders.get(executor))
            .sum()
    }

    /// `executor` no longer holds these (rdd, partition) blocks.
    pub fn forget(&self, executor: &str, evicted: &[(RddId, u32)]) {
        let mut blocks = self.blocks.lock();
        for key in evicted {
            if let Some(holders) = blocks.get_mut(key) {
                holders.remove(executor);
                if holders.is_empty() {
                    blocks.remove(key);
                }
            }
        }
    }

    pub fn forget_rdd(&self, rdd: RddId) {
        self.blocks.lock().retain(|(id, _), _| *id != rdd);
        self.partials.lock().retain(|(id, _), _| *id != rdd);
    }

    /// Whether `executor` holds any cached partition.
    pub fn holds_any(&self, executor: &str) -> bool {
        self.blocks
            .lock()
            .values()
            .any(|holders| holders.contains_key(executor))
    }

    pub fn forget_executor(&self, executor: &str) {
        let mut blocks = self.blocks.lock();
        for holders in blocks.values_mut() {
            holders.remove(executor);
        }
        blocks.retain(|_, holders| !holders.is_empty());
        self.partials.lock().retain(|_, holder| holder != executor);
    }

    /// For one RDD: executor id -> its cached partitions and bytes.
    pub fn shares(&self, rdd: RddId) -> BTreeMap<String, CachedShare> {
        let mut shares: BTreeMap<String, CachedShare> = BTreeMap::new();
        for ((id, _), holders) in self.blocks.lock().iter() {
            if *id == rdd {
                for (executor, bytes) in holders {
                    let share = shares.entry(executor.clone()).or_insert(CachedShare {
                        partitions: 0,
                        bytes: 0,
                    });
                    share.partitions += 1;
                    share.bytes += bytes;
                }
            }
        }
        shares
    }

    pub fn cached_partitions(&self, rdd: RddId) -> BTreeSet<u32> {
        self.blocks
            .lock()
            .keys()
            .filter(|(id, _)| *id == rdd)
            .map(|(_, p)| *p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_cached(rdd: RddId, partition: u32) -> NotCached {
        NotCached {
            rdd,
            partition,
            reason: format!("partition {partition} of rdd {rdd} is too large"),
        }
    }

    #[test]
    fn the_user_is_told_once_an_rdd_that_a_partition_of_it_was_not_cached() {
        let told = NotCachedTold::default();
        let first = [not_cached(3, 0), not_cached(3, 1), not_cached(4, 0)];
        let rdds: Vec<(RddId, u32)> = told
            .to_tell(&first)
            .iter()
            .map(|n| (n.rdd, n.partition))
            .collect();
        assert_eq!(rdds, [(3, 0), (4, 0)]);
        // The next job's tasks over the same RDDs tell nothing new; another RDD's do.
        assert!(
            told.to_tell(&[not_cached(3, 2), not_cached(4, 1)])
                .is_empty()
        );
        assert_eq!(told.to_tell(&[not_cached(5, 0)]).len(), 1);
    }
}
