//! [`WeightedDrf`]: dominant resource fairness (Ghodsi et al., NSDI'11) between roles, with
//! Mesos' role weights — the default policy of Mesos' hierarchical allocator — and
//! [`DrfAllocator`], the hierarchical allocator with it.
//!
//! A role's rank is its dominant share divided by its weight: a role of weight 2 is served
//! until it holds twice the dominant share of a role of weight 1. Within a role, frameworks
//! share by DRF too ([`crate::HierarchicalAllocator`]).

use crate::hierarchical::{HierarchicalAllocator, RoleOrder};
use crate::resources::Resources;

/// Weighted DRF between roles. See the [module docs](self).
#[derive(Debug, Default)]
pub struct WeightedDrf;

impl RoleOrder for WeightedDrf {
    fn rank(&self, allocation: &Resources, weight: f64, total: &Resources) -> [f64; 2] {
        [allocation.dominant_share_of(total) / weight, 0.0]
    }
}

/// Mesos' default allocator: hierarchical, weighted DRF.
pub type DrfAllocator = HierarchicalAllocator<WeightedDrf>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::Allocator;
    use crate::quota::Quota;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    const GB: u64 = 1024;

    /// The example of the DRF paper (§4.1): 9 CPUs and 18 GB; user A runs tasks
    /// of <1 CPU, 4 GB>, user B tasks of <3 CPUs, 1 GB>. DRF gives A three tasks
    /// and B two, equalising their dominant shares at 2/3.
    ///
    /// Frameworks behave like Mesos schedulers: from each offer they launch one
    /// task if it fits and give the rest back; if nothing fits they decline with
    /// a filter. The loop ends when every framework is filtered.
    /// What a re-registering agent's executors use is held by their framework and not
    /// offered again; it comes back when they end.
    #[test]
    fn resources_in_use_on_a_recovered_agent_are_not_offered() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(4.0, 4 * GB));
        alloc.add_framework("A", &["*"]);
        alloc.add_used("A", "*", "s1", Resources::new(3.0, 3 * GB));
        alloc.add_used("A", "*", "unknown-agent", Resources::new(1.0, GB));
        assert_eq!(alloc.allocation("A"), Resources::new(3.0, 3 * GB));
        let offered = alloc.allocate(Instant::now());
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].resources, Resources::new(1.0, GB));
        alloc.recover_resources("A", "*", "s1", Resources::new(3.0, 3 * GB), None);
        assert_eq!(alloc.allocation("A"), Resources::new(1.0, GB));
    }

    #[test]
    fn an_unreachable_agent_is_not_offered_until_heard_from() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, 2 * GB));
        alloc.add_agent("s2", Resources::new(2.0, 2 * GB));
        alloc.add_framework("A", &["*"]);
        alloc.deactivate_agent("s1");
        let offered = alloc.allocate(Instant::now());
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].agent_id, "s2");
        assert_eq!(
            alloc.cluster_total(),
            Resources::new(4.0, 4 * GB),
            "its resources stay counted"
        );
        alloc.activate_agent("s1");
        let offered = alloc.allocate(Instant::now());
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].agent_id, "s1");
    }

    #[test]
    fn drf_paper_example() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(9.0, 18 * GB));
        alloc.add_framework("A", &["*"]);
        alloc.add_framework("B", &["*"]);
        let task = |fw: &str| match fw {
            "A" => Resources::new(1.0, 4 * GB),
            _ => Resources::new(3.0, GB),
        };
        let mut tasks: BTreeMap<String, u32> = BTreeMap::new();
        let mut order = Vec::new();
        let now = Instant::now();
        for _round in 0..100 {
            let decisions = alloc.allocate(now);
            if decisions.is_empty() {
                break;
            }
            for d in decisions {
                let need = task(&d.framework_id);
                if d.resources.contains(&need) {
                    *tasks.entry(d.framework_id.clone()).or_default() += 1;
                    order.push(d.framework_id.clone());
                    let rest = d.resources.minus(&need);
                    alloc.recover_resources(&d.framework_id, &d.role, &d.agent_id, rest, None);
                } else {
                    alloc.recover_resources(
                        &d.framework_id,
                        &d.role,
                        &d.agent_id,
                        d.resources,
                        Some(now + Duration::from_secs(5)),
                    );
                }
            }
        }
        assert_eq!(tasks.get("A"), Some(&3), "tasks: {tasks:?}");
        assert_eq!(tasks.get("B"), Some(&2), "tasks: {tasks:?}");
        // Progressive filling: the framework with the lower share goes next.
        assert_eq!(order, ["A", "B", "A", "B", "A"]);
        assert_eq!(alloc.allocation("A"), Resources::new(3.0, 12 * GB));
        assert_eq!(alloc.allocation("B"), Resources::new(6.0, 2 * GB));
        assert!((alloc.dominant_share("A") - 2.0 / 3.0).abs() < 1e-9);
        assert!((alloc.dominant_share("B") - 2.0 / 3.0).abs() < 1e-9);
    }

    /// Resources reserved for a role go only to that role's frameworks (whatever their
    /// share); unreserved ones are still shared by DRF among every role, reserved holdings
    /// counting in shares. Moving a reservation's total back (unreserve) frees it for all.
    #[test]
    fn reserved_resources_go_only_to_their_role_and_unreserved_ones_by_drf() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, 2 * GB));
        alloc.add_reserved("s1(analytics)", "analytics", Resources::new(2.0, 2 * GB));
        alloc.add_agent("s2", Resources::new(2.0, 2 * GB));
        alloc.add_framework("web", &["web"]);
        alloc.add_framework("an", &["analytics"]);
        assert_eq!(alloc.cluster_total(), Resources::new(6.0, 6 * GB));
        let now = Instant::now();
        let decisions = alloc.allocate(now);
        let got = |fw: &str| -> Vec<String> {
            decisions
                .iter()
                .filter(|d| d.framework_id == fw)
                .map(|d| d.agent_id.clone())
                .collect()
        };
        // Of the unreserved agents each role gets one (both hold nothing at s1: ties go by
        // role name; at s2 analytics holds two thirds); the reservation goes to analytics.
        assert_eq!(got("an"), ["s1", "s1(analytics)"]);
        assert_eq!(got("web"), ["s2"]);
        // web declines everything for a long time and analytics gives its reservation back:
        // the reservation is offered to analytics again, never to web.
        for d in &decisions {
            let filter = (d.framework_id == "web").then(|| now + Duration::from_secs(60));
            alloc.recover_resources(&d.framework_id, &d.role, &d.agent_id, d.resources, filter);
        }
        alloc.remove_framework("an");
        let next = alloc.allocate(now);
        let taken: Vec<(&str, &str)> = next
            .iter()
            .map(|d| (d.framework_id.as_str(), d.agent_id.as_str()))
            .collect();
        assert_eq!(
            taken,
            [("web", "s1")],
            "web, filtered on s2, never gets the reservation"
        );
        alloc.add_framework("an2", &["analytics"]);
        let mut again = alloc.allocate(now);
        again.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        let taken: Vec<(&str, &str)> = again
            .iter()
            .map(|d| (d.framework_id.as_str(), d.agent_id.as_str()))
            .collect();
        assert_eq!(taken, [("an2", "s1(analytics)"), ("an2", "s2")]);
        again.extend(next);
        for d in &again {
            alloc.recover_resources(&d.framework_id, &d.role, &d.agent_id, d.resources, None);
        }
        // Unreserving moves the reservation into the agent's unreserved pool.
        alloc.set_total("s1(analytics)", Resources::ZERO);
        alloc.set_total("s1", Resources::new(4.0, 4 * GB));
        assert_eq!(alloc.total_of("s1"), Some(Resources::new(4.0, 4 * GB)));
        assert_eq!(alloc.cluster_total(), Resources::new(6.0, 6 * GB));
        alloc.revive_offers("web", &[]);
        alloc.remove_framework("an2");
        let after = alloc.allocate(now);
        assert!(
            after.iter().any(|d| d.agent_id == "s1"
                && d.framework_id == "web"
                && d.resources == Resources::new(4.0, 4 * GB)),
            "{after:?}"
        );
        assert!(after.iter().all(|d| d.agent_id != "s1(analytics)"));
    }

    /// With several agents in one round, each goes to whoever has the lowest
    /// share at that point, so two equal frameworks get one agent each.
    #[test]
    fn one_round_spreads_agents_by_share() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_agent("s2", Resources::new(2.0, GB));
        alloc.add_framework("f1", &["*"]);
        alloc.add_framework("f2", &["*"]);
        let decisions = alloc.allocate(Instant::now());
        assert_eq!(decisions.len(), 2);
        assert_eq!(decisions[0].framework_id, "f1");
        assert_eq!(decisions[0].agent_id, "s1");
        assert_eq!(decisions[1].framework_id, "f2");
        assert_eq!(decisions[1].agent_id, "s2");
        // Everything is out: nothing more to offer.
        assert!(alloc.allocate(Instant::now()).is_empty());
    }

    /// A framework already holding a larger dominant share waits behind one
    /// holding less.
    #[test]
    fn lowest_dominant_share_first() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(4.0, 4 * GB));
        alloc.add_agent("s2", Resources::new(4.0, 4 * GB));
        alloc.add_framework("big", &["*"]);
        alloc.add_framework("small", &["*"]);
        let now = Instant::now();
        // "big" gets s1, "small" gets s2.
        let d = alloc.allocate(now);
        assert_eq!(d.len(), 2);
        // big keeps 3 CPUs (share 3/8), small keeps 1 GB (share 1/8).
        alloc.recover_resources("big", "*", "s1", Resources::new(1.0, 4 * GB), None);
        alloc.recover_resources("small", "*", "s2", Resources::new(4.0, 3 * GB), None);
        let d = alloc.allocate(now);
        // Both agents' free resources go to "small", the lower share each time
        // (after s1 its share is max(1/8, 5/8)... still checked per agent).
        assert_eq!(d[0].framework_id, "small");
        assert_eq!(d[0].agent_id, "s1");
        assert_eq!(d[0].resources, Resources::new(1.0, 4 * GB));
        // small now holds <1, 5 GB> = 5/8 > big's 3/8, so s2 goes to big.
        assert_eq!(d[1].framework_id, "big");
        assert_eq!(d[1].agent_id, "s2");
    }

    #[test]
    fn decline_filter_holds_until_deadline() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_agent("s2", Resources::new(2.0, GB));
        alloc.add_framework("f", &["*"]);
        let t0 = Instant::now();
        let d = alloc.allocate(t0);
        assert_eq!(d.len(), 2);
        // Decline s1 for 5 s; s2's offer is declined without a filter.
        alloc.recover_resources(
            "f",
            "*",
            "s1",
            d[0].resources,
            Some(t0 + Duration::from_secs(5)),
        );
        alloc.recover_resources("f", "*", "s2", d[1].resources, None);
        let d = alloc.allocate(t0 + Duration::from_secs(1));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].agent_id, "s2");
        alloc.recover_resources("f", "*", "s2", d[0].resources, None);
        // Still filtered just before the deadline, offered again after it.
        let d = alloc.allocate(t0 + Duration::from_millis(4999));
        assert_eq!(
            d.iter().map(|d| d.agent_id.as_str()).collect::<Vec<_>>(),
            ["s2"]
        );
        alloc.recover_resources("f", "*", "s2", d[0].resources, None);
        let d = alloc.allocate(t0 + Duration::from_secs(5));
        assert_eq!(
            d.iter().map(|d| d.agent_id.as_str()).collect::<Vec<_>>(),
            ["s1", "s2"]
        );
    }

    /// A filter only concerns the framework that declined: another framework
    /// is offered the agent even though its share is higher.
    #[test]
    fn filtered_agent_goes_to_next_framework() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_framework("f1", &["*"]);
        alloc.add_framework("f2", &["*"]);
        let now = Instant::now();
        let d = alloc.allocate(now);
        assert_eq!(d[0].framework_id, "f1");
        alloc.recover_resources(
            "f1",
            "*",
            "s1",
            d[0].resources,
            Some(now + Duration::from_secs(60)),
        );
        let d = alloc.allocate(now);
        assert_eq!(d[0].framework_id, "f2");
    }

    #[test]
    fn inactive_and_removed_frameworks_get_nothing() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_framework("f1", &["*"]);
        alloc.deactivate_framework("f1");
        assert!(alloc.allocate(Instant::now()).is_empty());
        alloc.activate_framework("f1");
        let d = alloc.allocate(Instant::now());
        assert_eq!(d.len(), 1);
        // Removing the framework frees what it held.
        alloc.remove_framework("f1");
        alloc.add_framework("f2", &["*"]);
        let d = alloc.allocate(Instant::now());
        assert_eq!(d[0].framework_id, "f2");
        assert_eq!(d[0].resources, Resources::new(2.0, GB));
    }

    #[test]
    fn removed_agent_leaves_the_pool() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_agent("s2", Resources::new(2.0, GB));
        alloc.add_framework("f", &["*"]);
        let _ = alloc.allocate(Instant::now());
        assert_eq!(alloc.allocation("f"), Resources::new(4.0, 2 * GB));
        alloc.remove_agent("s1");
        assert_eq!(alloc.allocation("f"), Resources::new(2.0, GB));
        assert_eq!(alloc.cluster_total(), Resources::new(2.0, GB));
        assert_eq!(alloc.dominant_share("f"), 1.0);
        // Recovering on a removed agent is ignored.
        alloc.recover_resources("f", "*", "s1", Resources::new(2.0, GB), None);
        assert_eq!(alloc.allocation("f"), Resources::new(2.0, GB));
    }

    #[test]
    fn leftovers_below_minimum_are_not_offered() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(1.0, 100));
        alloc.add_framework("f", &["*"]);
        let d = alloc.allocate(Instant::now());
        // Use all CPUs and all but 16 MB: 16 MB alone is not worth offering.
        alloc.recover_resources("f", "*", "s1", Resources::new(0.0, 16), None);
        assert_eq!(d.len(), 1);
        assert!(alloc.allocate(Instant::now()).is_empty());
    }

    /// Two roles of weights 2 and 1, one framework each, taking agents one at a time: the
    /// heavier role ends with twice the dominant share.
    #[test]
    fn weights_scale_what_a_role_gets() {
        let mut alloc = DrfAllocator::new();
        for i in 0..12 {
            alloc.add_agent(&format!("s{i:02}"), Resources::new(1.0, GB));
        }
        alloc.set_weight("analytics", 2.0);
        alloc.add_framework("a", &["analytics"]);
        alloc.add_framework("b", &["batch"]);
        let decisions = alloc.allocate(Instant::now());
        let count = |fw: &str| decisions.iter().filter(|d| d.framework_id == fw).count();
        assert_eq!((count("a"), count("b")), (8, 4));
        assert!((alloc.dominant_share("a") - 2.0 * alloc.dominant_share("b")).abs() < 1e-9);
    }

    /// Within a role, frameworks share by DRF; across roles, roles do: a role with two
    /// frameworks gets no more than a role with one.
    #[test]
    fn roles_share_first_then_their_frameworks() {
        let mut alloc = DrfAllocator::new();
        for i in 0..8 {
            alloc.add_agent(&format!("s{i}"), Resources::new(1.0, GB));
        }
        alloc.add_framework("x1", &["x"]);
        alloc.add_framework("x2", &["x"]);
        alloc.add_framework("y1", &["y"]);
        let decisions = alloc.allocate(Instant::now());
        let count = |fw: &str| decisions.iter().filter(|d| d.framework_id == fw).count();
        assert_eq!((count("x1"), count("x2"), count("y1")), (2, 2, 4));
    }

    /// A guarantee is served first, and what it still lacks is kept back from others; a limit
    /// caps a role even when it is alone.
    #[test]
    fn quota_guarantees_come_first_and_limits_cap() {
        let mut alloc = DrfAllocator::new();
        for i in 0..4 {
            alloc.add_agent(&format!("s{i}"), Resources::new(4.0, 4 * GB));
        }
        // "greedy" subscribed first and has the lower share, but "reserved" is guaranteed
        // half the cluster.
        alloc.add_framework("greedy", &["web"]);
        alloc.add_framework("reserved", &["etl"]);
        alloc.set_quota(
            "etl",
            Quota {
                guarantee: Resources::new(8.0, 8 * GB),
                limit: None,
            },
        );
        let now = Instant::now();
        let _ = alloc.allocate(now);
        assert_eq!(alloc.allocation("reserved"), Resources::new(8.0, 8 * GB));
        assert_eq!(alloc.allocation("greedy"), Resources::new(8.0, 8 * GB));
        // "reserved" gives back half of its guarantee and declines it: what it lacks is kept
        // back from "greedy" (headroom), not offered.
        for agent in ["s0", "s1"] {
            alloc.recover_resources("reserved", "etl", agent, Resources::new(4.0, 4 * GB), None);
        }
        alloc.suppress_offers("reserved", &[]);
        assert!(alloc.allocate(now).is_empty());
        assert_eq!(alloc.allocation("greedy"), Resources::new(8.0, 8 * GB));

        let mut capped = DrfAllocator::new();
        capped.add_agent("s0", Resources::new(8.0, 8 * GB));
        capped.add_framework("f", &["capped"]);
        capped.set_quota(
            "capped",
            Quota {
                guarantee: Resources::ZERO,
                limit: Some(Resources::new(2.0, 3 * GB)),
            },
        );
        let d = capped.allocate(Instant::now());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].resources, Resources::new(2.0, 3 * GB));
        assert!(
            capped.allocate(Instant::now()).is_empty(),
            "the limit holds"
        );
    }

    /// A suppressed framework gets nothing; reviving it offers again and drops its filters.
    #[test]
    fn suppressed_frameworks_get_nothing_until_they_revive() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_framework("f", &["*"]);
        let now = Instant::now();
        let d = alloc.allocate(now);
        alloc.recover_resources(
            "f",
            "*",
            "s1",
            d[0].resources,
            Some(now + Duration::from_secs(60)),
        );
        alloc.suppress_offers("f", &[]);
        assert!(alloc.allocate(now + Duration::from_secs(61)).is_empty());
        alloc.revive_offers("f", &[]);
        // A new filter, then revive: offered at once.
        let d = alloc.allocate(now + Duration::from_secs(62));
        alloc.recover_resources(
            "f",
            "*",
            "s1",
            d[0].resources,
            Some(now + Duration::from_secs(600)),
        );
        alloc.revive_offers("f", &[]);
        assert_eq!(alloc.allocate(now + Duration::from_secs(63)).len(), 1);
    }
}
