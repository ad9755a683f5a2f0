//! The lineage graph: every RDD a session defined, with its storage level, and how to turn an
//! RDD's partition into a task (its narrow chain back to a source).

use parking_lot::Mutex;
use std::collections::HashMap;
use tessera_plan::{CodeRef, PipelineStep, RddId, RddKind, RddNode, StorageLevel, TaskSource};

pub struct RddEntry {
    pub node: RddNode<CodeRef>,
    pub persist: Option<StorageLevel>,
}

#[derive(Default)]
pub struct Lineage {
    rdds: Mutex<HashMap<RddId, RddEntry>>,
    next_id: Mutex<RddId>,
}

/// What a task of one partition runs: where records start and the steps they go through.
pub struct Pipeline {
    pub source: TaskSource,
    pub steps: Vec<PipelineStep>,
}

impl Lineage {
    /// Adds `node`, taking a narrow RDD's partition count from its parent.
    pub fn define(&self, mut node: RddNode<CodeRef>) -> Result<(RddId, u32), String> {
        let mut rdds = self.rdds.lock();
        if let RddKind::Narrow { parent, .. } = &node.kind {
            let parent = rdds
                .get(parent)
                .ok_or_else(|| format!("rdd {parent} is not defined in this session"))?;
            node.num_partitions = parent.node.num_partitions;
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
            },
        );
        Ok((id, partitions))
    }

    pub fn num_partitions(&self, rdd: RddId) -> Result<u32, String> {
        self.with(rdd, |e| e.node.num_partitions)
    }

    pub fn set_persist(&self, rdd: RddId, level: Option<StorageLevel>) -> Result<(), String> {
        let mut rdds = self.rdds.lock();
        let entry = rdds.get_mut(&rdd).ok_or_else(|| unknown(rdd))?;
        entry.persist = level;
        Ok(())
    }

    pub fn with<R>(&self, rdd: RddId, f: impl FnOnce(&RddEntry) -> R) -> Result<R, String> {
        self.rdds
            .lock()
            .get(&rdd)
            .map(f)
            .ok_or_else(|| unknown(rdd))
    }

    /// The chain of RDDs from `rdd` back to its source, source first.
    pub fn chain(&self, rdd: RddId) -> Result<Vec<RddId>, String> {
        let rdds = self.rdds.lock();
        let mut chain = vec![rdd];
        let mut current = rdds.get(&rdd).ok_or_else(|| unknown(rdd))?;
        while let RddKind::Narrow { parent, .. } = &current.node.kind {
            chain.push(*parent);
            current = rdds.get(parent).ok_or_else(|| unknown(*parent))?;
        }
        chain.reverse();
        Ok(chain)
    }

    /// The task plan for one partition of `rdd`.
    pub fn pipeline(&self, rdd: RddId, partition: u32) -> Result<Pipeline, String> {
        let chain = self.chain(rdd)?;
        let rdds = self.rdds.lock();
        let mut steps = Vec::with_capacity(chain.len());
        let mut source = None;
        for id in &chain {
            let entry = rdds.get(id).ok_or_else(|| unknown(*id))?;
            let op = match &entry.node.kind {
                RddKind::Narrow { op, .. } => Some(op.clone()),
                RddKind::Parallelize {
                    partitions,
                    decoder,
                } => {
                    let bytes = partitions
                        .get(partition as usize)
                        .cloned()
                        .ok_or_else(|| no_partition(*id, partition))?;
                    source = Some(TaskSource::Records {
                        bytes,
                        decoder: decoder.clone(),
                    });
                    None
                }
                RddKind::TextFile { splits, decoder } => {
                    let split = splits
                        .get(partition as usize)
                        .cloned()
                        .ok_or_else(|| no_partition(*id, partition))?;
                    source = Some(TaskSource::TextSplit {
                        split,
                        decoder: decoder.clone(),
                    });
                    None
                }
            };
            steps.push(PipelineStep {
                rdd: *id,
                op,
                persist: entry.persist,
                element_type: entry.node.element_type.clone(),
            });
        }
        Ok(Pipeline {
            source: source.ok_or_else(|| format!("rdd {rdd} has no source"))?,
            steps,
        })
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

fn unknown(rdd: RddId) -> String {
    format!("rdd {rdd} is not defined in this session")
}

fn no_partition(rdd: RddId, partition: u32) -> String {
    format!("rdd {rdd} has no partition {partition}")
}
