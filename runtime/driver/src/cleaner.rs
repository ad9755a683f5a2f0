//! The cleaner, as Spark's ContextCleaner: shuffle outputs, cached partitions and broadcast
//! join sides of RDDs that no live RDD handle can reach are dropped from the executors, which
//! otherwise keep them until they exit. The session names the roots (the RDDs its variables hold, after each cell); what
//! their lineage does not reach is unreachable for good, since RDD ids are never reused. The
//! lineage itself is kept: an RDD dropped by mistake (a handle the session could not see) is
//! computed again, not lost; so is a released broadcast side, collected again before a job
//! that reads it.

use tessera_plan::{RddId, ShuffleId};

/// One RDD of the lineage, as the cleaner sees it.
#[derive(Clone, Debug)]
pub struct LineageNode {
    pub rdd: RddId,
    /// The RDDs it is computed from (none for a source or a checkpoint).
    pub parents: Vec<RddId>,
    /// It is a shuffle's output: its map outputs are kept on executors.
    pub shuffle: bool,
    /// It has a storage level: its partitions may be cached on executors.
    pub persisted: bool,
    /// The broadcast variable its computation reads (a broadcast join's small side).
    pub broadcast: Option<u64>,
}

/// What no root reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unreachable {
    /// Shuffles whose map outputs can go.
    pub shuffles: Vec<ShuffleId>,
    /// Persisted RDDs whose cached partitions can go (they are unpersisted).
    pub persisted: Vec<RddId>,
    /// Broadcast variables that only unreachable RDDs read.
    pub broadcasts: Vec<u64>,
}

/// The shuffles, persisted RDDs and broadcasts of `nodes` that no RDD of `roots` is computed
/// from.
pub fn unreachable(nodes: &[LineageNode], roots: &[RddId]) -> Unreachable {
    let by_id: std::collections::HashMap<RddId, &LineageNode> =
        nodes.iter().map(|n| (n.rdd, n)).collect();
    let mut reached = std::collections::HashSet::new();
    let mut pending: Vec<RddId> = roots.to_vec();
    while let Some(rdd) = pending.pop() {
        if reached.insert(rdd)
            && let Some(node) = by_id.get(&rdd)
        {
            pending.extend(&node.parents);
        }
    }
    let mut gone = Unreachable::default();
    let read: std::collections::HashSet<u64> = nodes
        .iter()
        .filter(|n| reached.contains(&n.rdd))
        .filter_map(|n| n.broadcast)
        .collect();
    for node in nodes.iter().filter(|n| !reached.contains(&n.rdd)) {
        if node.shuffle {
            gone.shuffles.push(node.rdd);
        }
        if node.persisted {
            gone.persisted.push(node.rdd);
        }
        gone.broadcasts
            .extend(node.broadcast.filter(|b| !read.contains(b)));
    }
    gone.shuffles.sort_unstable();
    gone.persisted.sort_unstable();
    gone.broadcasts.sort_unstable();
    gone.broadcasts.dedup();
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(rdd: RddId, parents: &[RddId], shuffle: bool, persisted: bool) -> LineageNode {
        LineageNode {
            rdd,
            parents: parents.to_vec(),
            shuffle,
            persisted,
            broadcast: None,
        }
    }

    /// PageRank after two iterations: links (1, shuffled, cached), ranks 2 → contributions 3
    /// (a union with the links) → ranks 4 (shuffled) → 5 → 6 (shuffled).
    fn page_rank() -> Vec<LineageNode> {
        vec![
            node(0, &[], false, false),
            node(1, &[0], true, true),
            node(2, &[1], false, false),
            node(3, &[1, 2], false, false),
            node(4, &[3], true, false),
            node(5, &[1, 4], false, false),
            node(6, &[5], true, false),
        ]
    }

    #[test]
    fn the_shuffles_of_earlier_iterations_are_unreachable_from_the_last_ranks() {
        // The variables hold the links and the last ranks: the whole lineage is reachable.
        assert_eq!(unreachable(&page_rank(), &[1, 6]), Unreachable::default());
        // A checkpoint of the ranks cut their lineage: the earlier iterations' shuffle goes,
        // the links' (still held) stay.
        let mut checkpointed = page_rank();
        checkpointed.push(node(7, &[], false, true));
        assert_eq!(
            unreachable(&checkpointed, &[1, 7]),
            Unreachable {
                shuffles: vec![4, 6],
                ..Unreachable::default()
            }
        );
    }

    #[test]
    fn nothing_held_leaves_everything_unreachable() {
        assert_eq!(
            unreachable(&page_rank(), &[]),
            Unreachable {
                shuffles: vec![1, 4, 6],
                persisted: vec![1],
                broadcasts: Vec::new(),
            }
        );
        // A root the lineage does not know (defined since) reaches nothing more.
        assert_eq!(unreachable(&page_rank(), &[99]).shuffles, vec![1, 4, 6]);
    }

    /// A query that joins the orders (1) with the customers (2) broadcast (as 10), then
    /// filters the result (4); the same join planned again (5, reading broadcast 11).
    fn broadcast_joins() -> Vec<LineageNode> {
        let join = |rdd, broadcast| LineageNode {
            broadcast: Some(broadcast),
            ..node(rdd, &[1], false, false)
        };
        vec![
            node(1, &[], false, false),
            node(2, &[], false, false),
            join(3, 10),
            node(4, &[3], false, false),
            join(5, 11),
        ]
    }

    #[test]
    fn a_broadcast_goes_with_the_last_rdd_that_reads_it() {
        // The filtered result is held: its join's side stays; the other query's goes.
        assert_eq!(unreachable(&broadcast_joins(), &[4]).broadcasts, vec![11]);
        assert_eq!(unreachable(&broadcast_joins(), &[5]).broadcasts, vec![10]);
        assert_eq!(
            unreachable(&broadcast_joins(), &[]).broadcasts,
            vec![10, 11]
        );
        // Two RDDs that read one broadcast: it stays while either is reached.
        let mut shared = broadcast_joins();
        shared[4].broadcast = Some(10);
        assert!(unreachable(&shared, &[5]).broadcasts.is_empty());
        assert_eq!(unreachable(&shared, &[1]).broadcasts, vec![10]);
    }
}
