//! Lineages for unit tests: sources, narrow steps and shuffles defined as cells define them,
//! with code that is never run.

use crate::lineage::Lineage;
use tessera_plan::{CodeRef, Operator, Partitioner, RddId, RddKind, RddNode, ShuffleId};

/// An operator whose code is never run.
pub fn op() -> Operator<CodeRef> {
    Operator {
        entry: CodeRef {
            library: "cell".into(),
            offset: 0,
        },
        env_decoder: None,
        captures: Vec::new(),
        params: Vec::new(),
    }
}

/// Defines an RDD of `u64`s; the lineage counts the partitions of all but sources.
pub fn define(lineage: &Lineage, kind: RddKind<CodeRef>) -> RddId {
    define_typed(lineage, kind, "u64")
}

/// Defines an RDD of `element_type`.
pub fn define_typed(lineage: &Lineage, kind: RddKind<CodeRef>, element_type: &str) -> RddId {
    let num_partitions = match &kind {
        RddKind::Parallelize { partitions, .. } => partitions.len() as u32,
        _ => 0,
    };
    let node = RddNode {
        kind,
        num_partitions,
        element_type: element_type.into(),
        name: "test".into(),
    };
    lineage.define(node).unwrap().0
}

/// Records shipped from the driver, partition `p` holding the byte `p`.
pub fn parallelize(lineage: &Lineage, partitions: u8) -> RddId {
    define(
        lineage,
        RddKind::Parallelize {
            partitions: (0..partitions).map(|p| vec![p]).collect(),
            decoder: op(),
        },
    )
}

/// A narrow step that drops the parent's partitioner.
pub fn map(lineage: &Lineage, parent: RddId) -> RddId {
    narrow(lineage, parent, false)
}

/// A narrow step; `keeps_keys` keeps the parent's partitioner.
pub fn narrow(lineage: &Lineage, parent: RddId, keeps_keys: bool) -> RddId {
    define(
        lineage,
        RddKind::Narrow {
            parent,
            op: op(),
            preserves_partitioning: keeps_keys,
        },
    )
}

/// `parent` shuffled by key hash into `partitions`.
pub fn shuffle(lineage: &Lineage, parent: RddId, partitions: u32) -> ShuffleId {
    define(
        lineage,
        RddKind::Shuffled {
            parent,
            partitioner: Partitioner::hash(partitions),
            writer: op(),
            reader: op(),
            merge: None,
        },
    )
}
