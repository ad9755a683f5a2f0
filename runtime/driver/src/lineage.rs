//! The lineage graph: every RDD a session defined, with its storage level and partitioner, how
//! to turn an RDD's partition into a task (its narrow chain back to a source or a shuffle), and
//! which shuffles a job must run first (the stage boundaries).

use crate::error::DriverError;
use parking_lot::Mutex;
use std::collections::HashMap;
use tessera_plan::fusion::fuse_frame_steps;
use tessera_plan::{
    Chain, CodeRef, Operator, Partitioner, RddId, RddKind, RddNode, ShuffleId, Step, StorageLevel,
    TaskSource,
};

pub struct RddEntry {
    pub node: RddNode<CodeRef>,
    pub persist: Option<StorageLevel>,
    /// Set by a shuffle that places keys, and kept by narrow operations that keep keys.
    pub partitioner: Option<Partitioner>,
}

/// A shuffle dependency: the RDD whose partitions are split (the map side), and the writer
/// that splits them. The DAG scheduler makes a shuffle's map stage of it.
pub struct ShuffleDependency {
    pub parent: RddId,
    pub map_partitions: u32,
    pub writer: Operator<CodeRef>,
}

#[derive(Default)]
pub struct Lineage {
    rdds: Mutex<HashMap<RddId, RddEntry>>,
    next_id: Mutex<RddId>,
}

impl Lineage {
    /// Adds `node`, taking a narrow RDD's partition count from its parent and a union's from
    /// its parents.
    pub fn define(&self, mut node: RddNode<CodeRef>) -> Result<(RddId, u32), DriverError> {
        let mut rdds = self.rdds.lock();
        let mut partitioner = None;
        match &node.kind {
            RddKind::Narrow {
                parent,
                preserves_partitioning,
                ..
            } => {
                let parent = rdds.get(parent).ok_or_else(|| unknown(*parent))?;
                node.num_partitions = parent.node.num_partitions;
                if *preserves_partitioning {
                    partitioner = parent.partitioner.clone();
                }
            }
            RddKind::Shuffled {
                parent,
                partitioner: placed_by,
                ..
            } => {
                rdds.get(parent).ok_or_else(|| unknown(*parent))?;
                node.num_partitions = placed_by.partitions();
                partitioner = placed_by.places_keys().then(|| placed_by.clone());
            }
            RddKind::Union { parents } => {
                node.num_partitions = 0;
                let mut shared = None;
                for (i, parent) in parents.iter().enumerate() {
                    let entry = rdds.get(parent).ok_or_else(|| unknown(*parent))?;
                    if entry.node.element_type != node.element_type {
                        return Err(DriverError::UnionOfTypes {
                            parent: *parent,
                            holds: entry.node.element_type.clone(),
                            wanted: node.element_type.clone(),
                        });
                    }
                    node.num_partitions += entry.node.num_partitions;
                    if i == 0 {
                        shared = entry.partitioner.clone();
                    } else if entry.partitioner != shared {
                        shared = None;
                    }
                }
                // Parents placed alike are united partition by partition (Spark's
                // PartitionerAwareUnionRDD), keeping their partitioner.
                if let Some(p) = shared.filter(|_| parents.len() > 1) {
                    node.num_partitions = p.partitions();
                    node.kind = RddKind::PartitionwiseUnion {
                        parents: parents.clone(),
                    };
                    partitioner = Some(p);
                }
            }
            RddKind::Concatenated { inputs } => {
                for (parent, partition) in inputs.iter().flatten() {
                    let entry = rdds.get(parent).ok_or_else(|| unknown(*parent))?;
                    if *partition >= entry.node.num_partitions {
                        return Err(no_partition(*parent, *partition));
                    }
                }
                node.num_partitions = inputs.len() as u32;
            }
            RddKind::PartitionwiseUnion { .. } | RddKind::Checkpoint { .. } => {
                return Err(DriverError::DriverMadeKind);
            }
            RddKind::Parallelize { .. } | RddKind::TextFile { .. } => {}
        }
        let mut next = self.next_id.lock();
        *next += 1;
        let id = *next;
        let partitions = node.num_partitions;
        rdds.insert(
            id,
            RddEntry {
                node,
                persist: None,
                partitioner,
            },
        );
        Ok((id, partitions))
    }

    pub fn num_partitions(&self, rdd: RddId) -> Result<u32, DriverError> {
        self.with(rdd, |e| e.node.num_partitions)
    }

    /// Replaces how `rdd` is computed (by its checkpoint), keeping its partitions, partitioner
    /// and storage level: the lineage before it is no longer needed.
    pub fn replace_kind(&self, rdd: RddId, kind: RddKind<CodeRef>) -> Result<(), DriverError> {
        let mut rdds = self.rdds.lock();
        let entry = rdds.get_mut(&rdd).ok_or_else(|| unknown(rdd))?;
        entry.node.kind = kind;
        Ok(())
    }

    pub fn set_persist(&self, rdd: RddId, level: Option<StorageLevel>) -> Result<(), DriverError> {
        let mut rdds = self.rdds.lock();
        let entry = rdds.get_mut(&rdd).ok_or_else(|| unknown(rdd))?;
        entry.persist = level;
        Ok(())
    }

    pub fn with<R>(&self, rdd: RddId, f: impl FnOnce(&RddEntry) -> R) -> Result<R, DriverError> {
        self.rdds
            .lock()
            .get(&rdd)
            .map(f)
            .ok_or_else(|| unknown(rdd))
    }

    /// What a task of one partition of `rdd` runs: its chain of narrow dependencies back to a
    /// source (always present), following each union to the parent that holds the partition.
    pub fn chain(&self, rdd: RddId, partition: u32) -> Result<Chain, DriverError> {
        chain(&self.rdds.lock(), rdd, partition)
    }

    /// The shuffles that computing `rdd` reads directly (through narrow dependencies and
    /// unions, not through other shuffles): the parent stages of a job on `rdd`. A persisted
    /// RDD whose every partition is cached (`is_cached`) needs nothing below it.
    pub fn parent_shuffles(
        &self,
        rdd: RddId,
        is_cached: impl Fn(RddId, u32) -> bool,
    ) -> Result<Vec<ShuffleId>, DriverError> {
        let rdds = self.rdds.lock();
        let mut shuffles = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut pending = vec![rdd];
        while let Some(id) = pending.pop() {
            if !visited.insert(id) {
                continue;
            }
            let entry = rdds.get(&id).ok_or_else(|| unknown(id))?;
            let partitions = entry.node.num_partitions;
            if entry.persist.is_some() && (0..partitions).all(|p| is_cached(id, p)) {
                continue;
            }
            match &entry.node.kind {
                RddKind::Narrow { parent, .. } => pending.push(*parent),
                RddKind::Union { parents } | RddKind::PartitionwiseUnion { parents } => {
                    pending.extend(parents)
                }
                RddKind::Concatenated { inputs } => {
                    pending.extend(inputs.iter().flatten().map(|(parent, _)| *parent))
                }
                RddKind::Shuffled { .. } => shuffles.push(id),
                RddKind::Parallelize { .. }
                | RddKind::TextFile { .. }
                | RddKind::Checkpoint { .. } => {}
            }
        }
        Ok(shuffles)
    }

    /// `rdd` and every RDD it is computed from, through shuffles too, each once, `rdd` first.
    pub fn reachable_from(&self, rdd: RddId) -> Result<Vec<RddId>, DriverError> {
        let rdds = self.rdds.lock();
        let mut reached = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut pending = std::collections::VecDeque::from([rdd]);
        while let Some(id) = pending.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            let entry = rdds.get(&id).ok_or_else(|| unknown(id))?;
            pending.extend(entry.node.kind.parents());
            reached.push(id);
        }
        Ok(reached)
    }

    /// The dependency whose map stage produces shuffle `shuffle`.
    pub fn shuffle_dependency(&self, shuffle: ShuffleId) -> Result<ShuffleDependency, DriverError> {
        let rdds = self.rdds.lock();
        let entry = rdds.get(&shuffle).ok_or_else(|| unknown(shuffle))?;
        let RddKind::Shuffled { parent, writer, .. } = &entry.node.kind else {
            return Err(DriverError::NotAShuffle(shuffle));
        };
        Ok(ShuffleDependency {
            parent: *parent,
            map_partitions: rdds
                .get(parent)
                .ok_or_else(|| unknown(*parent))?
                .node
                .num_partitions,
            writer: writer.clone(),
        })
    }

    /// Every RDD with the RDDs it is computed from, for the cleaner.
    pub fn nodes(&self) -> Vec<crate::cleaner::LineageNode> {
        self.rdds
            .lock()
            .iter()
            .map(|(id, e)| crate::cleaner::LineageNode {
                rdd: *id,
                parents: e.node.kind.parents(),
                shuffle: matches!(e.node.kind, RddKind::Shuffled { .. }),
                persisted: e.persist.is_some(),
                broadcast: tessera_plan::builtin::BroadcastJoinParams::of(&e.node.kind)
                    .map(|p| p.broadcast),
            })
            .collect()
    }

    /// Every RDD with a storage level: id, name, type, partitions, level.
    pub fn persisted(&self) -> Vec<(RddId, String, String, u32, StorageLevel)> {
        let mut list: Vec<_> = self
            .rdds
            .lock()
            .iter()
            .filter_map(|(id, e)| {
                e.persist.map(|level| {
                    (
                        *id,
                        e.node.name.clone(),
                        e.node.element_type.clone(),
                        e.node.num_partitions,
                        level,
                    )
                })
            })
            .collect();
        list.sort_by_key(|e| e.0);
        list
    }
}

/// The chain that computes `partition` of `rdd`: its narrow steps back to a source (a
/// partitionwise union's source concatenates a chain per parent), consecutive DataFrame steps
/// fused into one polars query.
fn chain(
    rdds: &HashMap<RddId, RddEntry>,
    rdd: RddId,
    partition: u32,
) -> Result<Chain, DriverError> {
    let mut steps = Vec::new();
    let (mut id, mut part) = (rdd, partition);
    let source = loop {
        let entry = rdds.get(&id).ok_or_else(|| unknown(id))?;
        let step = |op| Step {
            rdd: id,
            partition: part,
            op,
            persist: entry.persist,
            element_type: entry.node.element_type.clone(),
        };
        match &entry.node.kind {
            RddKind::Narrow { parent, op, .. } => {
                steps.push(step(Some(op.clone())));
                id = *parent;
            }
            RddKind::PartitionwiseUnion { parents } => {
                steps.push(step(None));
                let chains = parents
                    .iter()
                    .map(|parent| chain(rdds, *parent, part))
                    .collect::<Result<_, _>>()?;
                break TaskSource::Concat(chains);
            }
            RddKind::Union { parents } => {
                steps.push(step(None));
                let mut offset = part;
                let mut parents = parents.iter();
                loop {
                    let parent = *parents.next().ok_or_else(|| no_partition(id, part))?;
                    let count = rdds
                        .get(&parent)
                        .ok_or_else(|| unknown(parent))?
                        .node
                        .num_partitions;
                    if offset < count {
                        (id, part) = (parent, offset);
                        break;
                    }
                    offset -= count;
                }
            }
            RddKind::Parallelize {
                partitions,
                decoder,
            } => {
                steps.push(step(None));
                let bytes = nth(partitions, id, part)?;
                break TaskSource::Records {
                    bytes,
                    decoder: decoder.clone(),
                };
            }
            RddKind::TextFile { splits, decoder } => {
                steps.push(step(None));
                let split = nth(splits, id, part)?;
                break TaskSource::TextSplit {
                    split,
                    decoder: decoder.clone(),
                };
            }
            RddKind::Concatenated { inputs } => {
                steps.push(step(None));
                let chains = nth(inputs, id, part)?
                    .iter()
                    .map(|(parent, partition)| chain(rdds, *parent, *partition))
                    .collect::<Result<_, _>>()?;
                break TaskSource::Concat(chains);
            }
            RddKind::Checkpoint { files, decoder } => {
                steps.push(step(None));
                break TaskSource::SavedPartition {
                    path: nth(files, id, part)?,
                    decoder: decoder.clone(),
                };
            }
            RddKind::Shuffled { reader, merge, .. } => {
                steps.push(step(merge.clone()));
                break TaskSource::ShuffleRead {
                    shuffle: id,
                    partition: part,
                    decoder: reader.clone(),
                    locations: Vec::new(),
                };
            }
        }
    };
    steps.reverse();
    Ok(Chain {
        source: Some(source),
        steps: fuse_frame_steps(steps),
    })
}

fn unknown(rdd: RddId) -> DriverError {
    DriverError::UnknownRdd(rdd)
}

/// A source's description of partition `partition` of `rdd`.
fn nth<T: Clone>(parts: &[T], rdd: RddId, partition: u32) -> Result<T, DriverError> {
    parts
        .get(partition as usize)
        .cloned()
        .ok_or_else(|| no_partition(rdd, partition))
}

fn no_partition(rdd: RddId, partition: u32) -> DriverError {
    DriverError::NoPartition { rdd, partition }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_lineage::{define, define_typed, map, narrow, parallelize, shuffle};

    #[test]
    fn partitions_and_partitioners_follow_the_kind_of_dependency() {
        let lineage = Lineage::default();
        let source = parallelize(&lineage, 4);
        let mapped = map(&lineage, source);
        assert_eq!(lineage.num_partitions(mapped).unwrap(), 4);
        let placed = shuffle(&lineage, mapped, 3);
        assert_eq!(lineage.num_partitions(placed).unwrap(), 3);
        let partitioner = |rdd| lineage.with(rdd, |e| e.partitioner.clone()).unwrap();
        assert_eq!(partitioner(placed), Some(Partitioner::hash(3)));
        // Narrow steps that keep keys keep the partitioner; others drop it.
        assert_eq!(
            partitioner(narrow(&lineage, placed, true)),
            Some(Partitioner::hash(3))
        );
        assert_eq!(partitioner(narrow(&lineage, placed, false)), None);
    }

    #[test]
    fn a_union_chains_each_partition_to_the_parent_that_holds_it() {
        let lineage = Lineage::default();
        let (left, right) = (parallelize(&lineage, 2), parallelize(&lineage, 3));
        let both = define(
            &lineage,
            RddKind::Union {
                parents: vec![left, right],
            },
        );
        assert_eq!(lineage.num_partitions(both).unwrap(), 5);
        // Partition 3 of the union is partition 1 of the right side.
        let chain = lineage.chain(both, 3).unwrap();
        let steps: Vec<(RddId, u32)> = chain.steps.iter().map(|s| (s.rdd, s.partition)).collect();
        assert_eq!(steps, [(right, 1), (both, 3)]);
        assert!(matches!(chain.source, Some(TaskSource::Records { bytes, .. }) if bytes == [1]));
    }

    #[test]
    fn a_union_of_co_partitioned_rdds_is_partitionwise_and_keeps_their_partitioner() {
        let lineage = Lineage::default();
        let left = shuffle(&lineage, parallelize(&lineage, 2), 3);
        let right = shuffle(&lineage, parallelize(&lineage, 4), 3);
        let both = define(
            &lineage,
            RddKind::Union {
                parents: vec![left, right],
            },
        );
        assert_eq!(lineage.num_partitions(both).unwrap(), 3);
        let Some(TaskSource::Concat(chains)) = lineage.chain(both, 2).unwrap().source else {
            panic!("a partitionwise union concatenates a chain per parent");
        };
        let reads: Vec<_> = chains
            .iter()
            .map(|c| match &c.source {
                Some(TaskSource::ShuffleRead {
                    shuffle, partition, ..
                }) => (*shuffle, *partition),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reads, [(left, 2), (right, 2)]);
    }

    #[test]
    fn every_rdd_a_job_reaches_is_found_once_through_shuffles_and_unions() {
        let lineage = Lineage::default();
        let source = parallelize(&lineage, 2);
        let placed = shuffle(&lineage, map(&lineage, source), 2);
        let other = map(&lineage, source);
        let both = define(
            &lineage,
            RddKind::Union {
                parents: vec![placed, other],
            },
        );
        let reached = lineage.reachable_from(both).unwrap();
        assert_eq!(reached[0], both);
        // `source` is reached along both sides of the union, and listed once.
        let mut sorted = reached.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), reached.len(), "{reached:?}");
        assert_eq!(reached.len(), 5, "{reached:?}");
        for rdd in [source, placed, other] {
            assert!(reached.contains(&rdd), "{rdd} in {reached:?}");
        }
        assert_eq!(lineage.reachable_from(source).unwrap(), [source]);
    }

    #[test]
    fn a_job_reads_the_shuffles_below_it_but_not_below_a_cached_rdd() {
        let lineage = Lineage::default();
        let first = shuffle(&lineage, parallelize(&lineage, 2), 2);
        let cached = map(&lineage, first);
        lineage
            .set_persist(cached, Some(StorageLevel::MemoryOnly))
            .unwrap();
        let second = shuffle(&lineage, map(&lineage, cached), 2);
        let top = map(&lineage, second);
        assert_eq!(
            lineage.parent_shuffles(top, |_, _| false).unwrap(),
            [second]
        );
        assert_eq!(
            lineage.parent_shuffles(cached, |_, _| false).unwrap(),
            [first]
        );
        // Every partition of `cached` is cached: nothing below it is needed.
        let all_cached = |rdd, _| rdd == cached;
        assert!(
            lineage
                .parent_shuffles(cached, all_cached)
                .unwrap()
                .is_empty()
        );
        let dependency = lineage.shuffle_dependency(second).unwrap();
        assert_eq!(dependency.map_partitions, 2);
    }

    #[test]
    fn errors_name_the_rdd_and_the_partition() {
        let lineage = Lineage::default();
        let numbers = parallelize(&lineage, 2);
        let words = define_typed(
            &lineage,
            RddKind::Parallelize {
                partitions: vec![Vec::new()],
                decoder: crate::test_lineage::op(),
            },
            "alloc::string::String",
        );
        let union = RddNode {
            kind: RddKind::Union {
                parents: vec![numbers, words],
            },
            num_partitions: 0,
            element_type: "u64".into(),
            name: "union".into(),
        };
        assert!(matches!(
            lineage.define(union),
            Err(DriverError::UnionOfTypes { parent, .. }) if parent == words
        ));
        assert!(matches!(
            lineage.chain(numbers, 7),
            Err(DriverError::NoPartition { partition: 7, .. })
        ));
        assert!(matches!(
            lineage.chain(99, 0),
            Err(DriverError::UnknownRdd(99))
        ));
        assert!(matches!(
            lineage.shuffle_dependency(numbers),
            Err(DriverError::NotAShuffle(rdd)) if rdd == numbers
        ));
    }
}
