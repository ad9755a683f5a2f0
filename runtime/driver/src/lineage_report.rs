//! An RDD's lineage as its debug string shows it (Spark's `toDebugString`): the RDD and those it
//! is computed from, depth first, each with its kind, partitions, partitioner, storage level and
//! how many of its partitions are cached now, and which RDD reads it and whether through a
//! shuffle (a stage boundary). The cell draws the tree from that.

use crate::blocks::BlockMap;
use crate::lineage::Lineage;
use std::collections::HashSet;
use tessera_plan::cell_protocol::LineageEntry;
use tessera_plan::{Partitioner, RddId, RddKind};

/// The lineage of `rdd`, the RDD first. An RDD reached twice (a lineage is a graph: an iterative
/// job joins with the same cached RDD every iteration) is listed again as `repeated`, without its
/// parents, so the list grows with the number of RDDs, not with the number of paths.
pub fn lineage_entries(
    lineage: &Lineage,
    blocks: &BlockMap,
    rdd: RddId,
) -> Result<Vec<LineageEntry>, crate::error::DriverError> {
    let mut entries: Vec<LineageEntry> = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![Listing {
        rdd,
        reader: None,
        last_parent: true,
        shuffle_parent: false,
    }];
    while let Some(next) = pending.pop() {
        let repeated = !seen.insert(next.rdd);
        let (mut entry, parents) = lineage.with(next.rdd, |e| {
            let entry = LineageEntry {
                rdd: next.rdd,
                name: e.node.name.clone(),
                kind: kind_name(&e.node.kind).to_string(),
                element_type: e.node.element_type.clone(),
                partitions: e.node.num_partitions,
                partitioner: e.partitioner.as_ref().map(partitioner_name),
                storage: e.persist,
                cached_partitions: 0,
                reader: next.reader,
                last_parent: next.last_parent,
                shuffle_parent: next.shuffle_parent,
                repeated,
            };
            (entry, parents(&e.node.kind))
        })?;
        if entry.storage.is_some() {
            entry.cached_partitions = blocks.cached_partitions(next.rdd).len() as u32;
        }
        let index = entries.len() as u32;
        entries.push(entry);
        if repeated {
            continue;
        }
        let count = parents.len();
        // Pushed last to first, so that the first parent is listed next (depth first).
        for (position, (parent, wide)) in parents.into_iter().enumerate().rev() {
            pending.push(Listing {
                rdd: parent,
                reader: Some(index),
                last_parent: position + 1 == count,
                shuffle_parent: wide,
            });
        }
    }
    Ok(entries)
}

/// An RDD still to list, and how it is reached.
struct Listing {
    rdd: RddId,
    reader: Option<u32>,
    last_parent: bool,
    shuffle_parent: bool,
}

/// The RDDs `kind` reads, in order, each with whether it reads it through a shuffle.
fn parents(kind: &RddKind<tessera_plan::CodeRef>) -> Vec<(RddId, bool)> {
    let shuffle = matches!(kind, RddKind::Shuffled { .. });
    kind.parents().into_iter().map(|p| (p, shuffle)).collect()
}

fn kind_name<C>(kind: &RddKind<C>) -> &'static str {
    match kind {
        RddKind::Parallelize { .. } => "parallelize",
        RddKind::TextFile { .. } => "text file",
        RddKind::Narrow { .. } => "narrow",
        RddKind::Union { .. } => "union",
        RddKind::PartitionwiseUnion { .. } => "partitionwise union",
        RddKind::Concatenated { .. } => "concatenated",
        RddKind::Checkpoint { .. } => "checkpoint",
        RddKind::Shuffled { .. } => "shuffle",
    }
}

fn partitioner_name(partitioner: &Partitioner) -> String {
    match partitioner {
        Partitioner::Hash { .. } => "hash".to_string(),
        Partitioner::Range { .. } => "range".to_string(),
        Partitioner::RoundRobin { .. } => "round robin".to_string(),
        Partitioner::Custom { name, .. } => name.rsplit("::").next().unwrap_or(name).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::{CodeRef, Operator, RddNode, StorageLevel, StoredBlock};

    fn op() -> Operator<CodeRef> {
        Operator {
            entry: CodeRef {
                library: "0".repeat(64),
                offset: 0,
            },
            env_decoder: None,
            captures: Vec::new(),
            params: Vec::new(),
        }
    }

    fn define(lineage: &Lineage, kind: RddKind<CodeRef>, partitions: u32, name: &str) -> RddId {
        lineage
            .define(RddNode {
                kind,
                num_partitions: partitions,
                element_type: "u64".into(),
                name: name.into(),
            })
            .unwrap()
            .0
    }

    #[test]
    fn a_shuffle_indents_its_parent_and_a_shared_parent_is_listed_once() {
        let lineage = Lineage::default();
        let blocks = BlockMap::default();
        let source = define(
            &lineage,
            RddKind::Parallelize {
                partitions: vec![Vec::new(); 3],
                decoder: op(),
            },
            3,
            "parallelize",
        );
        let mapped = define(
            &lineage,
            RddKind::Narrow {
                parent: source,
                op: op(),
                preserves_partitioning: false,
            },
            0,
            "map",
        );
        lineage
            .set_persist(mapped, Some(StorageLevel::MemoryOnly))
            .unwrap();
        blocks.record(
            "local-0",
            &[StoredBlock {
                rdd: mapped,
                partition: 1,
                bytes: 10,
                level: StorageLevel::MemoryOnly,
                replicas: Vec::new(),
            }],
        );
        let reduced = define(
            &lineage,
            RddKind::Shuffled {
                parent: mapped,
                partitioner: Partitioner::hash(2),
                writer: op(),
                reader: op(),
                merge: None,
            },
            0,
            "reduce_by_key",
        );
        let both = define(
            &lineage,
            RddKind::Union {
                parents: vec![reduced, mapped],
            },
            0,
            "union",
        );

        let entries = lineage_entries(&lineage, &blocks, both).unwrap();
        let listed: Vec<(RddId, Option<u32>, bool, bool, bool)> = entries
            .iter()
            .map(|e| (e.rdd, e.reader, e.last_parent, e.shuffle_parent, e.repeated))
            .collect();
        assert_eq!(
            listed,
            vec![
                (both, None, true, false, false),
                (reduced, Some(0), false, false, false),
                (mapped, Some(1), true, true, false),
                (source, Some(2), true, false, false),
                (mapped, Some(0), true, false, true),
            ]
        );
        assert_eq!(entries[0].partitions, 5);
        assert_eq!(entries[0].kind, "union");
        assert_eq!(entries[1].kind, "shuffle");
        assert_eq!(entries[1].partitioner.as_deref(), Some("hash"));
        assert_eq!(entries[2].storage, Some(StorageLevel::MemoryOnly));
        assert_eq!(entries[2].cached_partitions, 1);
        assert_eq!(entries[3].cached_partitions, 0);
        assert!(lineage_entries(&lineage, &blocks, 99).is_err());
    }
}
