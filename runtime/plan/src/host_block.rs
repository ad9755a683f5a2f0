//! Cached partitions kept in host memory: an executor keeps a partition of plain-byte records
//! ([`crate::abi::FlatRecords`]) in files of a memory-backed directory its agent gives it, so
//! that they outlive it. Beside each partition's files it writes a *manifest*, with what another
//! executor on the host needs to adopt them once it is gone: which block they hold, how to keep
//! it, the code whose table reads the records, and the files.
//!
//! A partition still being computed from a text split has a *resume manifest* instead, written
//! after each chunk of lines it has taken in whole: the files so far and how far into the split
//! they reach ([`ResumePoint`]). An executor that adopts it carries the task on from there
//! rather than parsing the split again from its start.
//!
//! Records that own memory elsewhere (strings, vectors) cannot be kept in place this way. Of a
//! partition of those, cached at a memory level, the executor keeps an *encoded copy* in host
//! memory beside the records in its own ([`RecordLayout::Encoded`]): the adopter decodes it,
//! which costs a fraction of computing the partition again.

use crate::decode::{DecodeError, decode_bincode};
use crate::rdd::{FileSplit, RddId, StorageLevel};
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
    /// How the records are laid out in the files.
    pub layout: RecordLayout,
    /// The files, in the partition's order.
    pub runs: Vec<HostRun>,
    /// Where a partition still being computed was: `None` for a whole partition.
    pub resume: Option<ResumePoint>,
}

/// How a manifest's files hold the partition's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordLayout {
    /// Plain-byte records ([`crate::abi::FlatRecords`]) of `size` bytes, one after another,
    /// read in place.
    Flat {
        /// Bytes of one record.
        size: u64,
    },
    /// One file of the partition's batches as the code's table encodes them, each preceded by
    /// its length (u64, little-endian), as a `MEMORY_ONLY_SER` block holds them: a copy, to
    /// decode, of a partition whose records own memory elsewhere.
    Encoded {
        /// The file's length.
        bytes: u64,
    },
}

/// How far a partition being computed from a text split had got: its records are those of the
/// split's lines before `consumed_to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The split the task reads.
    pub split: FileSplit,
    /// The offset in the file of the first line not yet taken in (a line's start).
    pub consumed_to: u64,
}

/// What a manifest's name says it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// A whole partition (`.block`).
    Block,
    /// A partition still being computed (`.resume`).
    Resume,
}

impl ManifestKind {
    fn extension(self) -> &'static str {
        match self {
            ManifestKind::Block => "block",
            ManifestKind::Resume => "resume",
        }
    }
}

/// One file of a partition kept in host memory: `records` records.
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
    pub fn file_name(kind: ManifestKind, rdd: RddId, partition: u32, n: u64) -> String {
        format!("rdd-{rdd}-{partition}-{n}.{}", kind.extension())
    }

    /// What the manifest `name` names, if it names one: its kind, the partition as (rdd,
    /// partition), and its `n`.
    pub fn parse_name(name: &str) -> Option<(ManifestKind, (RddId, u32), u64)> {
        let (stem, extension) = name.strip_prefix("rdd-")?.rsplit_once('.')?;
        let kind = [ManifestKind::Block, ManifestKind::Resume]
            .into_iter()
            .find(|kind| kind.extension() == extension)?;
        let mut parts = stem.split('-');
        let rdd = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let n = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some((kind, (rdd, partition), n))
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
            layout: RecordLayout::Flat { size: 88 },
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
            resume: Some(ResumePoint {
                split: FileSplit {
                    path: "/data/points.txt".into(),
                    start: 1 << 20,
                    end: 2 << 20,
                },
                consumed_to: 1_310_720,
            }),
        }
    }

    #[test]
    fn a_manifest_s_name_says_which_partition_it_is_of() {
        for kind in [ManifestKind::Block, ManifestKind::Resume] {
            let name = HostBlockManifest::file_name(kind, 3, 2, 17);
            assert_eq!(
                HostBlockManifest::parse_name(&name),
                Some((kind, (3, 2), 17))
            );
        }
        for other in [
            "rdd-3-2-7.run",
            "rdd-3-2-7.partial",
            "rdd-3-2.block",
            "rdd-3-2-7-1.block",
            "rdd-3-2-7-1.resume",
            "x-3-2-7.block",
        ] {
            assert_eq!(HostBlockManifest::parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_manifest_decodes_as_it_was_encoded() {
        let encoded_copy = HostBlockManifest {
            layout: RecordLayout::Encoded { bytes: 1 << 20 },
            resume: None,
            ..manifest()
        };
        for manifest in [manifest(), encoded_copy] {
            let bytes = bincode::serialize(&manifest).unwrap();
            assert_eq!(decode_host_block_manifest(&bytes).unwrap(), manifest);
        }
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
