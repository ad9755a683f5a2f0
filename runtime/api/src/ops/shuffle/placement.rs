//! Where a shuffle's writers put each key: the hash partitioner, a user's own, or key ranges;
//! and what every writer (and a combine that needs no shuffle) is opened with.

use crate::hash::hash_partition;
use crate::op_error::OpError;
use crate::ops::decode_params;
use crate::partitioner::CustomPartitioner;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use tessera_plan::Partitioner;

/// What every writer is opened with.
#[derive(Serialize, Deserialize)]
pub(crate) struct WriterParams {
    pub partitioner: Partitioner,
    /// The zero value of `fold_by_key` or `aggregate_by_key` (bincode), if any.
    pub zero: Vec<u8>,
}

/// Picks the output partition of a key.
pub(crate) trait Placement<K>: Sized + Send + 'static {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError>;
    fn partitions(&self) -> usize;
    fn place(&self, key: &K) -> usize;
}

/// The hash partitioner.
pub(crate) struct ByHash(u32);
impl<K: Hash> Placement<K> for ByHash {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Hash { partitions } => Ok(ByHash(*partitions)),
            other => Err(OpError::Placement {
                writer: "hash",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.0 as usize
    }
    fn place(&self, key: &K) -> usize {
        hash_partition(key, self.0) as usize
    }
}

/// A user-defined partitioner, rebuilt from its value in the plan.
pub(crate) struct ByCustom<P>(P, u32);
impl<K, P: CustomPartitioner<K>> Placement<K> for ByCustom<P> {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Custom {
                partitions, state, ..
            } => Ok(ByCustom(decode_params(state)?, *partitions)),
            other => Err(OpError::Placement {
                writer: "custom",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.1 as usize
    }
    fn place(&self, key: &K) -> usize {
        let partition = self.0.partition(key);
        if partition >= self.1 {
            // Caught at the ABI boundary: the task fails with this message.
            panic!(
                "the custom partitioner {} placed a key in partition {partition}, but it has \
                 {} partitions; `partition` must return a value below `num_partitions()`",
                std::any::type_name::<P>(),
                self.1
            );
        }
        partition as usize
    }
}

/// The range partitioner: partition `i` holds the keys up to `bounds[i]` (reversed when
/// descending), the last one the rest.
pub(crate) struct ByRange<K> {
    bounds: Vec<K>,
    ascending: bool,
}
impl<K: Ord + DeserializeOwned + Send + 'static> Placement<K> for ByRange<K> {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Range {
                bounds, ascending, ..
            } => Ok(ByRange {
                bounds: decode_params(bounds)?,
                ascending: *ascending,
            }),
            other => Err(OpError::Placement {
                writer: "range",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn place(&self, key: &K) -> usize {
        let below = self.bounds.partition_point(|bound| bound < key);
        if self.ascending {
            below
        } else {
            self.bounds.len() - below
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_placement_puts_each_key_at_or_below_its_bound() {
        let bounds = bincode::serialize(&vec![10u32, 20]).unwrap();
        let partitioner = |ascending| Partitioner::Range {
            partitions: 3,
            bounds: bounds.clone(),
            ascending,
        };
        let up = <ByRange<u32> as Placement<u32>>::new(&partitioner(true)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| up.place(k))
            .collect();
        assert_eq!(placed, vec![0, 0, 1, 1, 2, 2]);
        let down = <ByRange<u32> as Placement<u32>>::new(&partitioner(false)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| down.place(k))
            .collect();
        assert_eq!(placed, vec![2, 2, 1, 1, 0, 0]);
    }
}
