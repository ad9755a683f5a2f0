//! Copies of cached partitions on a second executor, for the replicated storage levels
//! (`MEMORY_ONLY_2` and the others): where the driver tells a task to copy its blocks, and what
//! a copy carries so that the executor receiving it can decode its records.

use crate::decode::{DecodeError, decode_bincode};
use crate::rdd::{CodeRef, RddId, StorageLevel};
use serde::{Deserialize, Serialize};

/// An executor a task copies the blocks it caches to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPeer {
    /// The id the executor is known by to the driver.
    pub executor_id: String,
    /// `host:port` of its executor service.
    pub address: String,
}

/// The code whose batch table encodes and decodes a block's records: the output table of an
/// operator or of a source. An executor that receives a copy loads it to decode the copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchCode {
    /// The output table of the operator this code's entry returns.
    Operator(CodeRef),
    /// The output table of the source this code's entry returns.
    Source(CodeRef),
}

impl BatchCode {
    /// Where the code is, an operator's or a source's.
    pub fn code(&self) -> &CodeRef {
        match self {
            BatchCode::Operator(code) | BatchCode::Source(code) => code,
        }
    }
}

/// What comes before a copy's bytes: which block it is, how to keep it and how to decode it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaHeader {
    /// The RDD whose partition the block holds.
    pub rdd: RddId,
    /// The partition it holds.
    pub partition: u32,
    /// The level the sender keeps it at, which the receiver keeps its copy at too.
    pub level: StorageLevel,
    /// The code whose batch table decodes the copy.
    pub code: BatchCode,
}

/// Decodes the header of a copy another executor sent.
pub fn decode_replica_header(bytes: &[u8]) -> Result<ReplicaHeader, DecodeError> {
    decode_bincode("the header of a cached partition's copy", bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::damage::{damaged, edits};
    use proptest::prelude::*;

    fn header() -> ReplicaHeader {
        ReplicaHeader {
            rdd: 7,
            partition: 3,
            level: StorageLevel::MemoryOnly2,
            code: BatchCode::Operator(CodeRef {
                library: "ab".repeat(32),
                offset: 4096,
            }),
        }
    }

    #[test]
    fn a_header_decodes_as_it_was_encoded() {
        let bytes = bincode::serialize(&header()).unwrap();
        assert_eq!(decode_replica_header(&bytes).unwrap(), header());
    }

    #[test]
    fn replicated_levels_name_and_count_their_copies() {
        assert_eq!(StorageLevel::MemoryOnly2.to_string(), "MEMORY_ONLY_2");
        assert_eq!(StorageLevel::DiskOnly2.one_copy(), StorageLevel::DiskOnly);
        assert_eq!(StorageLevel::MemoryAndDisk2.replication(), 2);
        assert_eq!(StorageLevel::MemoryOnlySer.replication(), 1);
        assert_eq!(StorageLevel::MemoryOnlySer.to_string(), "MEMORY_ONLY_SER");
    }

    proptest! {
        #[test]
        fn damaged_replica_headers_never_panic(
            edits in edits(8),
            cut in any::<prop::sample::Index>(),
        ) {
            let valid = bincode::serialize(&header()).unwrap();
            prop_assert!(decode_replica_header(&valid[..cut.index(valid.len())]).is_err());
            let _ = decode_replica_header(&damaged(valid, &edits));
        }
    }
}
