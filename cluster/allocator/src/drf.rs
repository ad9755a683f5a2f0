//! [`DrfAllocator`]: dominant resource fairness (Ghodsi et al., NSDI'11), the
//! default policy of Mesos' hierarchical allocator.
//!
//! Each round, every agent's free resources go, whole, to the active framework
//! with the lowest dominant share that has no decline filter on that agent.
//! Shares are updated as the round proceeds, so a round over several agents
//! spreads them across frameworks. Ties go to the framework that subscribed
//! first.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::{Allocator, OfferDecision, Resources};

#[derive(Debug)]
struct AgentEntry {
    total: Resources,
    /// Sum of what all frameworks hold on this agent.
    allocated: Resources,
}

#[derive(Debug)]
struct FrameworkEntry {
    /// Subscription order, for tie-breaking.
    seq: u64,
    active: bool,
    /// What the framework holds, per agent.
    allocated: BTreeMap<String, Resources>,
    /// Agents the framework declined, and until when.
    filters: BTreeMap<String, Instant>,
}

impl FrameworkEntry {
    fn total_allocated(&self) -> Resources {
        self.allocated
            .values()
            .fold(Resources::ZERO, |acc, r| acc.plus(r))
    }
}

/// Dominant resource fairness. See the [module docs](self).
#[derive(Debug, Default)]
pub struct DrfAllocator {
    agents: BTreeMap<String, AgentEntry>,
    frameworks: BTreeMap<String, FrameworkEntry>,
    next_seq: u64,
}

impl DrfAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    fn share(&self, fw: &FrameworkEntry) -> f64 {
        fw.total_allocated()
            .dominant_share_of(&self.cluster_total())
    }
}

impl Allocator for DrfAllocator {
    fn add_agent(&mut self, agent_id: &str, total: Resources) {
        self.agents.insert(
            agent_id.to_string(),
            AgentEntry {
                total,
                allocated: Resources::ZERO,
            },
        );
    }

    fn remove_agent(&mut self, agent_id: &str) {
        self.agents.remove(agent_id);
        for fw in self.frameworks.values_mut() {
            fw.allocated.remove(agent_id);
            fw.filters.remove(agent_id);
        }
    }

    fn add_framework(&mut self, framework_id: &str) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.frameworks
            .entry(framework_id.to_string())
            .or_insert(FrameworkEntry {
                seq,
                active: true,
                allocated: BTreeMap::new(),
                filters: BTreeMap::new(),
            });
    }

    fn remove_framework(&mut self, framework_id: &str) {
        if let Some(fw) = self.frameworks.remove(framework_id) {
            for (agent_id, held) in fw.allocated {
                if let Some(agent) = self.agents.get_mut(&agent_id) {
                    agent.allocated = agent.allocated.minus(&held);
                }
            }
        }
    }

    fn deactivate_framework(&mut self, framework_id: &str) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.active = false;
        }
    }

    fn activate_framework(&mut self, framework_id: &str) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.active = true;
        }
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: Resources,
        refuse_until: Option<Instant>,
    ) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(held) = fw.allocated.get_mut(agent_id) {
            // Never give back more than the framework holds.
            let returned = Resources::new(
                resources.cpus.min(held.cpus),
                resources.mem_mb.min(held.mem_mb),
            );
            *held = held.minus(&returned);
            if held.is_zero() {
                fw.allocated.remove(agent_id);
            }
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.allocated = agent.allocated.minus(&returned);
            }
        }
        if let Some(until) = refuse_until
            && self.agents.contains_key(agent_id)
        {
            let entry = fw.filters.entry(agent_id.to_string()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    fn allocate(&mut self, now: Instant) -> Vec<OfferDecision> {
        for fw in self.frameworks.values_mut() {
            fw.filters.retain(|_, until| *until > now);
        }
        let mut decisions = Vec::new();
        let agent_ids: Vec<String> = self.agents.keys().cloned().collect();
        for agent_id in agent_ids {
            let agent = &self.agents[&agent_id];
            let free = agent.total.minus(&agent.allocated);
            if !free.is_offerable() {
                continue;
            }
            let chosen = self
                .frameworks
                .iter()
                .filter(|(_, fw)| fw.active && !fw.filters.contains_key(&agent_id))
                .map(|(id, fw)| (self.share(fw), fw.seq, id))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map(|(_, _, id)| id.clone());
            let Some(framework_id) = chosen else {
                continue;
            };
            let fw = self
                .frameworks
                .get_mut(&framework_id)
                .expect("chosen framework exists");
            let held = fw
                .allocated
                .entry(agent_id.clone())
                .or_insert(Resources::ZERO);
            *held = held.plus(&free);
            let agent = self.agents.get_mut(&agent_id).expect("agent exists");
            agent.allocated = agent.allocated.plus(&free);
            decisions.push(OfferDecision {
                framework_id,
                agent_id,
                resources: free,
            });
        }
        decisions
    }

    fn allocation(&self, framework_id: &str) -> Resources {
        self.frameworks
            .get(framework_id)
            .map(FrameworkEntry::total_allocated)
            .unwrap_or_default()
    }

    fn dominant_share(&self, framework_id: &str) -> f64 {
        self.frameworks
            .get(framework_id)
            .map(|fw| self.share(fw))
            .unwrap_or(0.0)
    }

    fn cluster_total(&self) -> Resources {
        self.agents
            .values()
            .fold(Resources::ZERO, |acc, a| acc.plus(&a.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const GB: u64 = 1024;

    /// The example of the DRF paper (§4.1): 9 CPUs and 18 GB; user A runs tasks
    /// of <1 CPU, 4 GB>, user B tasks of <3 CPUs, 1 GB>. DRF gives A three tasks
    /// and B two, equalising their dominant shares at 2/3.
    ///
    /// Frameworks behave like Mesos schedulers: from each offer they launch one
    /// task if it fits and give the rest back; if nothing fits they decline with
    /// a filter. The loop ends when every framework is filtered.
    #[test]
    fn drf_paper_example() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(9.0, 18 * GB));
        alloc.add_framework("A");
        alloc.add_framework("B");
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
                    alloc.recover_resources(&d.framework_id, &d.agent_id, rest, None);
                } else {
                    alloc.recover_resources(
                        &d.framework_id,
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

    /// With several agents in one round, each goes to whoever has the lowest
    /// share at that point, so two equal frameworks get one agent each.
    #[test]
    fn one_round_spreads_agents_by_share() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_agent("s2", Resources::new(2.0, GB));
        alloc.add_framework("f1");
        alloc.add_framework("f2");
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
        alloc.add_framework("big");
        alloc.add_framework("small");
        let now = Instant::now();
        // "big" gets s1, "small" gets s2.
        let d = alloc.allocate(now);
        assert_eq!(d.len(), 2);
        // big keeps 3 CPUs (share 3/8), small keeps 1 GB (share 1/8).
        alloc.recover_resources("big", "s1", Resources::new(1.0, 4 * GB), None);
        alloc.recover_resources("small", "s2", Resources::new(4.0, 3 * GB), None);
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
        alloc.add_framework("f");
        let t0 = Instant::now();
        let d = alloc.allocate(t0);
        assert_eq!(d.len(), 2);
        // Decline s1 for 5 s; s2's offer is declined without a filter.
        alloc.recover_resources("f", "s1", d[0].resources, Some(t0 + Duration::from_secs(5)));
        alloc.recover_resources("f", "s2", d[1].resources, None);
        let d = alloc.allocate(t0 + Duration::from_secs(1));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].agent_id, "s2");
        alloc.recover_resources("f", "s2", d[0].resources, None);
        // Still filtered just before the deadline, offered again after it.
        let d = alloc.allocate(t0 + Duration::from_millis(4999));
        assert_eq!(
            d.iter().map(|d| d.agent_id.as_str()).collect::<Vec<_>>(),
            ["s2"]
        );
        alloc.recover_resources("f", "s2", d[0].resources, None);
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
        alloc.add_framework("f1");
        alloc.add_framework("f2");
        let now = Instant::now();
        let d = alloc.allocate(now);
        assert_eq!(d[0].framework_id, "f1");
        alloc.recover_resources(
            "f1",
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
        alloc.add_framework("f1");
        alloc.deactivate_framework("f1");
        assert!(alloc.allocate(Instant::now()).is_empty());
        alloc.activate_framework("f1");
        let d = alloc.allocate(Instant::now());
        assert_eq!(d.len(), 1);
        // Removing the framework frees what it held.
        alloc.remove_framework("f1");
        alloc.add_framework("f2");
        let d = alloc.allocate(Instant::now());
        assert_eq!(d[0].framework_id, "f2");
        assert_eq!(d[0].resources, Resources::new(2.0, GB));
    }

    #[test]
    fn removed_agent_leaves_the_pool() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, GB));
        alloc.add_agent("s2", Resources::new(2.0, GB));
        alloc.add_framework("f");
        let _ = alloc.allocate(Instant::now());
        assert_eq!(alloc.allocation("f"), Resources::new(4.0, 2 * GB));
        alloc.remove_agent("s1");
        assert_eq!(alloc.allocation("f"), Resources::new(2.0, GB));
        assert_eq!(alloc.cluster_total(), Resources::new(2.0, GB));
        assert_eq!(alloc.dominant_share("f"), 1.0);
        // Recovering on a removed agent is ignored.
        alloc.recover_resources("f", "s1", Resources::new(2.0, GB), None);
        assert_eq!(alloc.allocation("f"), Resources::new(2.0, GB));
    }

    #[test]
    fn leftovers_below_minimum_are_not_offered() {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(1.0, 100));
        alloc.add_framework("f");
        let d = alloc.allocate(Instant::now());
        // Use all CPUs and all but 16 MB: 16 MB alone is not worth offering.
        alloc.recover_resources("f", "s1", Resources::new(0.0, 16), None);
        assert_eq!(d.len(), 1);
        assert!(alloc.allocate(Instant::now()).is_empty());
    }
}
