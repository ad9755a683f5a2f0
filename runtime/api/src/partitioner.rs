//! User-defined partitioners: a type that says which partition each key goes to, as a subclass
//! of Spark's `Partitioner` does. Its value is shipped to the map tasks (so it must be
//! serializable) and is part of the RDD's [`Partitioner`], so that two RDDs placed by equal
//! values of the same type are co-partitioned and join without a shuffle.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_plan::Partitioner;

/// Places keys of type `K` in `num_partitions()` partitions.
///
/// ```ignore
/// #[derive(Serialize, Deserialize)]
/// struct ByDomain { partitions: u32 }
/// impl CustomPartitioner<String> for ByDomain {
///     fn num_partitions(&self) -> u32 { self.partitions }
///     fn partition(&self, url: &String) -> u32 {
///         let domain = url.split('/').nth(2).unwrap_or("");
///         tessera::hash_partition(&domain, self.partitions)
///     }
/// }
/// let links = pairs.partition_by_custom(&ByDomain { partitions: 8 });
/// ```
pub trait CustomPartitioner<K>: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// How many partitions keys are placed in (Spark's `numPartitions`).
    fn num_partitions(&self) -> u32;
    /// The partition of `key`, below `num_partitions()`; the same key must always get the
    /// same partition, in every process.
    fn partition(&self, key: &K) -> u32;
}

/// The plan's description of `partitioner`: its type and value.
pub(crate) fn describe<K, P: CustomPartitioner<K>>(partitioner: &P) -> Partitioner {
    Partitioner::Custom {
        partitions: partitioner.num_partitions().max(1),
        name: std::any::type_name::<P>().to_string(),
        state: crate::encoding::encode_params(partitioner),
    }
}
