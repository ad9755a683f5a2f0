//! Where a task copies the blocks it caches at a replicated storage level (`MEMORY_ONLY_2` and
//! the others): to executors on other hosts first, as Spark's default replication policy
//! prefers peers off the block's host (a host that fails takes all its executors), and to a
//! different one for each partition, so that the copies spread.

use tessera_plan::ReplicaPeer;

/// An executor as the choice sees it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub host: &'a str,
    /// `host:port` of its executor service.
    pub address: &'a str,
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

#[cfg(test)]
mod tests {
    use super::*;

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
