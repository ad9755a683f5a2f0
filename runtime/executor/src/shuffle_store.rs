//! Map outputs this executor wrote: for each (shuffle, map partition), one encoded bucket per
//! reduce partition, kept in memory until the session ends, for reducers to fetch.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_plan::ShuffleId;

/// One map task's buckets, indexed by reduce partition.
pub type MapOutput = Arc<Vec<Vec<u8>>>;

#[derive(Default)]
pub struct ShuffleStore {
    outputs: Mutex<HashMap<(ShuffleId, u32), MapOutput>>,
}

/// A bucket a reducer reads: part of a map output held here, or bytes fetched from a peer.
pub enum Bucket {
    Local(MapOutput, usize),
    Fetched(Vec<u8>),
}

impl Bucket {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Bucket::Local(output, reduce) => &output[*reduce],
            Bucket::Fetched(bytes) => bytes,
        }
    }
}

impl ShuffleStore {
    pub fn put(&self, shuffle: ShuffleId, map_partition: u32, buckets: Vec<Vec<u8>>) {
        self.outputs
            .lock()
            .insert((shuffle, map_partition), Arc::new(buckets));
    }

    /// Bucket `reduce` of the output of `map_partition`, if this executor holds it.
    pub fn bucket(&self, shuffle: ShuffleId, map_partition: u32, reduce: u32) -> Option<Bucket> {
        let output = self.outputs.lock().get(&(shuffle, map_partition))?.clone();
        (reduce < output.len() as u32).then(|| Bucket::Local(output, reduce as usize))
    }
}
