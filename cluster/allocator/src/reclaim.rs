//! Asking frameworks for resources back when another waits below its fair share
//! ([`crate::Allocator::reclaim`]): who is starved and for how long, each framework's fair
//! share, and what each framework above it holds beyond it — kept in the ledger, decided here.
//!
//! Fair shares are per framework: a framework in several roles counts as a client of each
//! of them (as in the allocator's orders) and its fair share is the sum of its parts of
//! those roles; it is asked to give back what it holds beyond that, in whichever roles (it
//! knows best what costs least to give back).

use std::time::{Duration, Instant};

use crate::decision::ReclaimDecision;
use crate::ledger::Ledger;
use crate::resources::Resources;

/// Shares closer than this are equal.
const SHARE_EPSILON: f64 = 1e-9;

impl Ledger {
    /// See [`crate::Allocator::reclaim`].
    pub fn reclaim(&mut self, now: Instant, patience: Duration) -> Vec<ReclaimDecision> {
        let total = self.cluster_total();
        let fair = self.fair_shares();
        // Something free goes to those who want it in the next round: no one waits on others.
        let nothing_free = !self.unallocated().is_offerable();
        for (id, fw) in self.frameworks.iter_mut() {
            let below = fair
                .get(id)
                .is_some_and(|&fair| fw.total.dominant_share_of(&total) < fair - SHARE_EPSILON);
            let starved = nothing_free && fw.wants_offers() && below;
            fw.starved_since = if starved {
                Some(fw.starved_since.unwrap_or(now))
            } else {
                None
            };
        }
        let Some(waiting) = self
            .frameworks
            .values()
            .filter_map(|fw| fw.starved_since.map(|since| (since, fw.seq, fw.id.clone())))
            .filter(|(since, _, _)| now.saturating_duration_since(*since) >= patience)
            .min()
        else {
            return Vec::new();
        };
        let mut decisions: Vec<(u64, ReclaimDecision)> = Vec::new();
        for (id, fw) in self.frameworks.iter_mut() {
            let Some(&fair) = fair.get(id) else {
                continue;
            };
            let asked_lately = fw
                .reclaim_asked_at
                .is_some_and(|at| now.saturating_duration_since(at) < patience);
            if asked_lately || fw.total.dominant_share_of(&total) <= fair + SHARE_EPSILON {
                continue;
            }
            let fair_amount =
                Resources::new(total.cpus * fair, (total.mem_mb as f64 * fair) as u64);
            let beyond = fw.total.minus(&fair_amount);
            if beyond.is_zero() {
                continue;
            }
            fw.reclaim_asked_at = Some(now);
            decisions.push((
                fw.seq,
                ReclaimDecision {
                    framework_id: id.clone(),
                    resources: beyond,
                    for_framework: waiting.2.to_string(),
                },
            ));
        }
        decisions.sort_by_key(|(seq, _)| *seq);
        decisions.into_iter().map(|(_, d)| d).collect()
    }

    /// Each framework that holds or wants resources, and its fair share of the cluster: in
    /// each of its roles where it holds or wants resources, the role's part by weight among
    /// the roles of such clients, split evenly among the role's clients; summed over its roles.
    fn fair_shares(&self) -> std::collections::HashMap<String, f64> {
        let taking = |fw: &crate::ledger::FrameworkEntry, client: &crate::ledger::RoleClient| {
            fw.active && (!client.suppressed || !client.total.is_zero())
        };
        let mut per_role: std::collections::BTreeMap<&str, usize> = Default::default();
        for fw in self.frameworks.values() {
            for (role, client) in &fw.roles {
                if taking(fw, client) {
                    *per_role.entry(role).or_default() += 1;
                }
            }
        }
        let weight = |role: &str| self.roles.get(role).map_or(1.0, |r| r.weight);
        let weights: f64 = per_role.keys().map(|role| weight(role)).sum();
        self.frameworks
            .iter()
            .filter_map(|(id, fw)| {
                let parts: Vec<f64> = fw
                    .roles
                    .iter()
                    .filter(|(_, client)| taking(fw, client))
                    .map(|(role, _)| weight(role) / weights / per_role[&**role] as f64)
                    .collect();
                (!parts.is_empty()).then(|| (id.clone(), parts.iter().sum()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::allocator::Allocator;
    use crate::drf::DrfAllocator;
    use crate::resources::Resources;
    use std::time::{Duration, Instant};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// Two agents of 2 CPUs and 1 GiB, both held by framework "a".
    fn held_by_a() -> (DrfAllocator, Instant) {
        let mut alloc = DrfAllocator::new();
        alloc.add_agent("s1", Resources::new(2.0, 1024));
        alloc.add_agent("s2", Resources::new(2.0, 1024));
        alloc.add_framework("a", &["*"]);
        let now = Instant::now();
        assert_eq!(alloc.allocate(now).len(), 2);
        alloc.suppress_offers("a", &[]);
        (alloc, now)
    }

    #[test]
    fn a_framework_above_its_share_is_asked_once_another_waited_long_enough() {
        let (mut alloc, t0) = held_by_a();
        alloc.add_framework("b", &["*"]);
        assert!(alloc.allocate(t0).is_empty(), "nothing is free");
        assert!(
            alloc.reclaim(t0, PATIENCE).is_empty(),
            "b has only just come"
        );
        let t1 = t0 + PATIENCE;
        let asked = alloc.reclaim(t1, PATIENCE);
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].framework_id, "a");
        assert_eq!(asked[0].for_framework, "b");
        assert_eq!(
            asked[0].resources,
            Resources::new(2.0, 1024),
            "half the cluster"
        );
        assert!(
            alloc
                .reclaim(t1 + Duration::from_secs(1), PATIENCE)
                .is_empty(),
            "asked once per patience"
        );
        // a gives back one agent: it goes to b, and no one waits any more.
        alloc.recover_resources("a", "*", "s2", Resources::new(2.0, 1024), None);
        let offered = alloc.allocate(t1);
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].framework_id, "b");
        assert!(alloc.reclaim(t1 + PATIENCE * 3, PATIENCE).is_empty());
    }

    #[test]
    fn no_one_is_asked_while_something_is_free_or_the_waiter_wants_nothing() {
        let (mut alloc, t0) = held_by_a();
        alloc.add_framework("b", &["*"]);
        alloc.suppress_offers("b", &[]);
        assert!(alloc.reclaim(t0, PATIENCE).is_empty());
        assert!(
            alloc.reclaim(t0 + PATIENCE * 2, PATIENCE).is_empty(),
            "a suppressed framework does not wait"
        );
        alloc.revive_offers("b", &[]);
        alloc.add_agent("s3", Resources::new(1.0, 512));
        assert!(alloc.reclaim(t0 + PATIENCE * 3, PATIENCE).is_empty());
        assert!(
            alloc.reclaim(t0 + PATIENCE * 5, PATIENCE).is_empty(),
            "s3 is free: b is offered it, not a's"
        );
    }

    #[test]
    fn fair_shares_follow_role_weights() {
        let mut alloc = DrfAllocator::new();
        for s in ["s1", "s2", "s3", "s4"] {
            alloc.add_agent(s, Resources::new(1.0, 1024));
        }
        alloc.set_weight("heavy", 3.0);
        alloc.add_framework("light", &["*"]);
        let t0 = Instant::now();
        assert_eq!(alloc.allocate(t0).len(), 4);
        alloc.add_framework("h", &["heavy"]);
        alloc.reclaim(t0, PATIENCE);
        let asked = alloc.reclaim(t0 + PATIENCE, PATIENCE);
        // "heavy" deserves three quarters: "light" keeps one agent of four.
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].framework_id, "light");
        assert_eq!(asked[0].resources, Resources::new(3.0, 3072));
    }
}
