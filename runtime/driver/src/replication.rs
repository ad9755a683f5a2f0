//! Where copies of cached partitions go at a replicated storage level (`MEMORY_ONLY_2` and the
//! others): a task's to executors on other hosts first, as Spark's default replication policy
//! prefers peers off the block's host (a host that fails takes all its executors), and to a
//! different one for each partition, so that the copies spread; and, once an executor is lost,
//! the copies that bring its blocks back to their level.

use crate::executors::ExecutorHandle;
use tessera_plan::{RddId, ReplicaPeer};

/// An executor as the choice sees it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub host: &'a str,
    /// `host:port` of its executor service.
    pub address: &'a str,
}

impl<'a> Candidate<'a> {
    /// A live executor of the session, as the choice sees it.
    pub fn of(executor: &'a ExecutorHandle) -> Candidate<'a> {
        Candidate {
            id: &executor.id,
            host: &executor.host,
            address: &executor.address,
        }
    }
}

/// The `copies` executors of `live` that a task of `partition` running on `running` copies its
/// blocks to: never `running` itself; fewer when there are not enough others.
pub fn replica_peers<'a>(
    running: Candidate<'a>,
    live: &[Candidate<'a>],
    partition: u32,
    copies: usize,
) -> Vec<ReplicaPeer> {
    let mut others: Vec<Candidate> = live
        .iter()
        .copied()
        .filter(|c| c.id != running.id)
        .collect();
    others.sort_by_key(|c| c.id);
    if !others.is_empty() {
        let n = others.len();
        others.rotate_left(partition as usize % n);
    }
    // Stable: within each group the rotation decides.
    others.sort_by_key(|c| c.host == running.host);
    others
        .into_iter()
        .take(copies)
        .map(|c| ReplicaPeer {
            executor_id: c.id.to_string(),
            address: c.address.to_string(),
        })
        .collect()
}

/// A cached partition as the block map knows it: who holds it, and how many copies its level
/// keeps.
#[derive(Clone, Debug)]
pub struct BlockCopies<'a> {
    pub rdd: RddId,
    pub partition: u32,
    pub holders: Vec<&'a str>,
    pub wanted: usize,
}

/// A copy to make: `holder` sends its copy of partition `partition` of `rdd` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub rdd: RddId,
    pub partition: u32,
    pub holder: String,
    pub to: ReplicaPeer,
}

/// The copies that bring every block that lost some (with an executor) back to what its level
/// keeps, each from a holder to live executors that hold none — Spark's proactive replication
/// (`spark.storage.replication.proactive`), which Tessera always does: a replacement executor
/// gets copies, so tasks spread over it again and a second loss costs no recomputation. A
/// block no live executor holds is recomputed from lineage instead, when next read.
pub fn repairs(blocks: &[BlockCopies], live: &[Candidate]) -> Vec<Repair> {
    let mut repairs = Vec::new();
    for block in blocks {
        let Some(holder) = block.holders.first() else {
            continue;
        };
        let missing = block.wanted.saturating_sub(block.holders.len());
        let Some(running) = live.iter().find(|c| c.id == *holder) else {
            continue;
        };
        if missing == 0 {
            continue;
        }
        let others: Vec<Candidate> = live
            .iter()
            .copied()
            .filter(|c| !block.holders.contains(&c.id))
            .collect();
        // `running` is not among `others`: the choice sees it only to prefer other hosts.
        for to in replica_peers(*running, &others, block.partition, missing) {
            repairs.push(Repair {
                rdd: block.rdd,
                partition: block.partition,
                holder: holder.to_string(),
                to,
            });
        }
    }
    repairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_that_lost_a_copy_is_copied_from_its_holder_to_an_executor_without_one() {
        let live = [
            candidate("a", "h1"),
            candidate("c", "h2"),
            candidate("d", "h1"),
        ];
        let block = |partition, holders: Vec<&'static str>| BlockCopies {
            rdd: 4,
            partition,
            holders,
            wanted: 2,
        };
        let blocks = [
            // Lost its copy on `b`: copied from `a` to another host's executor.
            block(0, vec!["a"]),
            // Both copies live: nothing to do.
            block(1, vec!["a", "c"]),
            // Held by no live executor: recomputed when read, not copied.
            block(2, vec![]),
        ];
        let made = repairs(&blocks, &live);
        assert_eq!(
            made,
            [Repair {
                rdd: 4,
                partition: 0,
                holder: "a".into(),
                to: ReplicaPeer {
                    executor_id: "c".into(),
                    address: "c".into(),
                },
            }]
        );
        // A block kept once wants no copy; with no executor free of it, none is made.
        let once = BlockCopies {
            wanted: 1,
            ..block(0, vec!["a"])
        };
        assert!(repairs(&[once], &live).is_empty());
        assert!(repairs(&[block(0, vec!["a"])], &live[..1]).is_empty());
    }

    fn candidate<'a>(id: &'a str, host: &'a str) -> Candidate<'a> {
        Candidate {
            id,
            host,
            address: id,
        }
    }

    fn ids(peers: &[ReplicaPeer]) -> Vec<&str> {
        peers.iter().map(|p| p.executor_id.as_str()).collect()
    }

    #[test]
    fn a_copy_goes_to_another_host_when_there_is_one() {
        let live = [
            candidate("a1", "a"),
            candidate("a2", "a"),
            candidate("b1", "b"),
        ];
        for partition in 0..4 {
            assert_eq!(ids(&replica_peers(live[0], &live, partition, 1)), ["b1"]);
        }
        // Two copies: the other host's executor, then one on the same host.
        assert_eq!(ids(&replica_peers(live[0], &live, 0, 2)), ["b1", "a2"]);
    }

    #[test]
    fn on_one_host_a_copy_goes_to_another_executor_and_never_to_the_one_running() {
        let live = [candidate("a1", "a"), candidate("a2", "a")];
        assert_eq!(ids(&replica_peers(live[1], &live, 3, 1)), ["a1"]);
        assert!(replica_peers(live[0], &live[..1], 0, 1).is_empty());
        assert!(replica_peers(live[0], &live, 0, 0).is_empty());
    }

    #[test]
    fn the_copies_of_different_partitions_spread_over_the_other_hosts_executors() {
        let live = [
            candidate("a1", "a"),
            candidate("b1", "b"),
            candidate("b2", "b"),
        ];
        let chosen: Vec<String> = (0..4)
            .map(|p| replica_peers(live[0], &live, p, 1)[0].executor_id.clone())
            .collect();
        assert_eq!(chosen, ["b1", "b2", "b1", "b2"]);
    }
}
