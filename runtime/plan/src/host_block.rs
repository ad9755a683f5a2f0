//! Cached partitions kept in host memory: an executor keeps a partition of plain-byte records
//! ([`crate::abi::FlatRecords`]) in files of a memory-backed directory its agent gives it, so
//! that they outlive it. Beside each partition's files it writes a *manifest*, with what another
//! executor on the host needs to adopt them once it is gone: which block they hold, how to keep
//! it, the code whose table reads the records, and the files.

use crate::decode::{DecodeError, decode_bincode};
use crate::rdd::{RddId, StorageLevel};
use crate::replica::BatchCode;
use serde::{Deserialize, Serialize};

/// The manifest of a partition kept in host memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBlockManifest {
    /// The RDD whose partition the files hold.
    pub rdd: RddId,
    /// The partition they hold.
    pub partition: u32,
    /// The level it is kept at.
    pub level: StorageLevel,
    /// The code whose batch table the records are of.
    pub code: BatchCode,
    /// Bytes of one record.
    pub record_size: u64,
    /// The files, in the partition's order.
    pub runs: Vec<HostRun>,
}

/// One file of a partition kept in host memory: `records` records, one after another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    /// Its name, in the directory of the manifest.
    pub file: String,
    /// The records it holds.
    pub records: u64,
}

impl HostBlockManifest {
    /// The name of the `n`th manifest an executor wrote, of partition `partition` of `rdd`: a
    /// partition cached again on one executor gets a manifest of its own before the old one
    /// goes with its block.
    pub fn file_name(rdd: RddId, partition: u32, n: u64) -> String {
        format!("rdd-{rdd}-{partition}-{n}.block")
    }

    /// The partition, as (rdd, partition), and the `n` of the manifest `name` names, if it
    /// names one.
    pub fn parse_name(name: &str) -> Option<((RddId, u32), u64)> {
        let mut parts = name
            .strip_prefix("rdd-")?
            .strip_suffix(".block")?
            .split('-');
        let rdd = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let n = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(((rdd, partition), n))
    }
}

/// Decodes a manifest read from a directory of host memory.
pub fn decode_host_block_manifest(bytes: &[u8]) -> Result<HostBlockManifest, DecodeError> {
    decode_bincode(
        "the manifest of a cached partition kept in host memory",
        bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodeRef;
    use crate::decode::damage::{damaged, edits};
    use proptest::prelude::*;

    fn manifest() -> HostBlockManifest {
        HostBlockManifest {
            rdd: 3,
            partition: 1,
            level: StorageLevel::MemoryOnly,
            code: BatchCode::Operator(CodeRef {
                library: "cd".repeat(32),
                offset: 512,
            }),
            record_size: 88,
            runs: vec![
                HostRun {
                    file: "rdd-3-1-7.run".into(),
                    records: 95_325,
                },
                HostRun {
                    file: "rdd-3-1-8.run".into(),
                    records: 4_675,
                },
            ],
        }
    }

    #[test]
    fn a_manifest_s_name_says_which_partition_it_is_of() {
        let name = HostBlockManifest::file_name(3, 2, 17);
        assert_eq!(HostBlockManifest::parse_name(&name), Some(((3, 2), 17)));
        for other in [
            "rdd-3-2-7.run",
            "rdd-3-2.block",
            "rdd-3-2-7-1.block",
            "x-3-2-7.block",
        ] {
            assert_eq!(HostBlockManifest::parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_manifest_decodes_as_it_was_encoded() {
        let bytes = bincode::serialize(&manifest()).unwrap();
        assert_eq!(decode_host_block_manifest(&bytes).unwrap(), manifest());
    }

    proptest! {
        #[test]
        fn damaged_manifests_never_panic(
            edits in edits(8),
            cut in any::<prop::sample::Index>(),
        ) {
            let valid = bincode::serialize(&manifest()).unwrap();
            prop_assert!(decode_host_block_manifest(&valid[..cut.index(valid.len())]).is_err());
            let _ = decode_host_block_manifest(&damaged(valid, &edits));
        }
    }
}
