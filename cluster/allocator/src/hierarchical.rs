//! [`HierarchicalAllocator`]: the bookkeeping ([`Ledger`]) and the steps of an allocation
//! round, as Mesos' hierarchical allocator has them, with the policy — in which order roles
//! are served — behind [`RoleOrder`].
//!
//! A round goes over the agents twice:
//!
//! 1. **Quota guarantees.** Roles that hold less than their guarantee, in the policy's order,
//!    are offered free resources up to what they lack.
//! 2. **Everyone.** Each agent's free resources go to one framework: the role first, in the
//!    policy's order, then, within the role, the framework with the lowest dominant share in
//!    that role (DRF, counting only what each holds in the role: a framework in several
//!    roles is a client of each; ties to the one that subscribed first). Resources that unmet guarantees need are
//!    kept back from roles past their guarantee, and no role is offered past its limit.
//!
//! Reserved pools (an agent's resources reserved for a role) are offered only to that role's
//! frameworks, in both steps, and are neither kept back for other roles' guarantees nor cut
//! to the role's limit: they are the role's already.
//!
//! Frameworks that are inactive, suppressed, or filtered on the agent are passed over.
//! Shares change as the round proceeds, so one round over several agents spreads them.

use std::sync::Arc;
use std::time::Instant;

use crate::allocator::Allocator;
use crate::decision::{OfferDecision, ReclaimDecision};
use crate::ledger::{DEFAULT_ROLE, FrameworkEntry, Ledger, RoleClient};
use crate::quota::Quota;
use crate::resources::Resources;

/// The policy: the order in which roles are served.
pub trait RoleOrder: Send + std::fmt::Debug + Default {
    /// A role's rank (lower is served first, compared element by element) from what it holds,
    /// its weight, and the cluster's total.
    fn rank(&self, allocation: &Resources, weight: f64, total: &Resources) -> [f64; 2];
}

/// The allocator, with the policy `P`.
#[derive(Debug, Default)]
pub struct HierarchicalAllocator<P: RoleOrder> {
    ledger: Ledger,
    policy: P,
}

impl<P: RoleOrder> HierarchicalAllocator<P> {
    /// An allocator with no agents or frameworks yet, and policy `P` as it is by default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Roles with frameworks that `only` admits, with their rank in the policy's order, into
    /// `ranked` (a buffer kept across agents: a round ranks the roles at every agent), to be
    /// taken in order by [`take_first`] — usually only the first is wanted, so they are not
    /// sorted.
    fn rank_roles(&self, only: impl Fn(&str) -> bool, ranked: &mut Vec<([f64; 2], Arc<str>)>) {
        let total = self.ledger.cluster_total();
        ranked.clear();
        ranked.extend(
            self.ledger
                .members
                .iter()
                .filter(|(role, members)| !members.order.is_empty() && only(role))
                .map(|(role, members)| {
                    let rank = self
                        .policy
                        .rank(&members.allocation, members.weight, &total);
                    (rank, role.clone())
                }),
        );
    }

    fn free_on(&self, agent: usize) -> Resources {
        self.ledger.agents.at(agent).free()
    }

    /// What `role` may be offered of `free`, under its limit.
    fn capped(&self, role: &str, free: Resources) -> Resources {
        let Some(settings) = self.ledger.roles.get(role) else {
            return free;
        };
        match settings
            .quota
            .room_under_limit(&self.ledger.role_allocation(role))
        {
            Some(room) => free.min(&room),
            None => free,
        }
    }

    /// What `role` still lacks of its guarantee.
    fn unmet(&self, role: &str) -> Resources {
        self.ledger.roles.get(role).map_or(Resources::ZERO, |r| {
            r.quota.unmet(&self.ledger.role_allocation(role))
        })
    }

    /// What all unmet guarantees need, over every role with quota.
    fn unmet_guarantees(&self) -> Resources {
        self.ledger
            .roles
            .keys()
            .fold(Resources::ZERO, |acc, role| acc.plus(&self.unmet(role)))
    }

    /// Offers `resources` of the agent at position `agent` to the first framework of `role`
    /// that wants them.
    fn offer(
        &mut self,
        role: &Arc<str>,
        agent: usize,
        resources: Resources,
    ) -> Option<OfferDecision> {
        if !resources.is_offerable() {
            return None;
        }
        let agent_id = &self.ledger.agents.at(agent).id;
        let framework_id = self.ledger.first_wanting(role, agent_id)?.to_string();
        let agent_id = agent_id.clone();
        self.ledger.grant(&framework_id, role, agent, &resources);
        Some(OfferDecision {
            framework_id,
            role: role.clone(),
            agent_id,
            resources,
        })
    }
}

/// The framework's clients in `roles` (empty: all of them); roles it is not in are passed
/// over.
fn clients_named<'a>(
    fw: &'a mut FrameworkEntry,
    roles: &'a [&str],
) -> impl Iterator<Item = &'a mut RoleClient> + 'a {
    fw.roles
        .iter_mut()
        .filter(move |(role, _)| roles.is_empty() || roles.contains(&&***role))
        .map(|(_, client)| client)
}

/// Takes the first role of `ranked` in the policy's order (lowest rank, then name).
fn take_first(ranked: &mut Vec<([f64; 2], Arc<str>)>) -> Option<Arc<str>> {
    let first = (0..ranked.len()).min_by(|&a, &b| {
        let (a, b) = (&ranked[a], &ranked[b]);
        a.0[0]
            .total_cmp(&b.0[0])
            .then(a.0[1].total_cmp(&b.0[1]))
            .then(a.1.cmp(&b.1))
    })?;
    Some(ranked.swap_remove(first).1)
}

impl<P: RoleOrder> Allocator for HierarchicalAllocator<P> {
    fn add_agent(&mut self, agent_id: &str, total: Resources) {
        self.ledger.add_agent(agent_id, total, None);
    }

    fn add_reserved(&mut self, pool_id: &str, role: &str, total: Resources) {
        self.ledger.add_agent(pool_id, total, Some(role));
    }

    fn set_total(&mut self, agent_id: &str, total: Resources) {
        self.ledger.set_total(agent_id, total);
    }

    fn total_of(&self, agent_id: &str) -> Option<Resources> {
        self.ledger.total_of(agent_id)
    }

    fn remove_agent(&mut self, agent_id: &str) {
        self.ledger.remove_agent(agent_id);
    }

    fn deactivate_agent(&mut self, agent_id: &str) {
        self.ledger.agents.set_active(agent_id, false);
    }

    fn activate_agent(&mut self, agent_id: &str) {
        self.ledger.agents.set_active(agent_id, true);
    }

    fn add_framework(&mut self, framework_id: &str, roles: &[&str]) {
        let mut named: Vec<&str> = roles.iter().copied().filter(|r| !r.is_empty()).collect();
        if named.is_empty() {
            named.push(DEFAULT_ROLE);
        }
        self.ledger.add_framework(framework_id, &named);
    }

    fn remove_framework(&mut self, framework_id: &str) {
        self.ledger.remove_framework(framework_id);
    }

    fn deactivate_framework(&mut self, framework_id: &str) {
        self.ledger.update(framework_id, |fw| fw.active = false);
    }

    fn activate_framework(&mut self, framework_id: &str) {
        self.ledger.update(framework_id, |fw| fw.active = true);
    }

    fn suppress_offers(&mut self, framework_id: &str, roles: &[&str]) {
        self.ledger.update(framework_id, |fw| {
            for client in clients_named(fw, roles) {
                client.suppressed = true;
            }
        });
    }

    fn revive_offers(&mut self, framework_id: &str, roles: &[&str]) {
        self.ledger.update(framework_id, |fw| {
            for client in clients_named(fw, roles) {
                client.suppressed = false;
            }
            // As Mesos' REVIVE: decline filters are dropped too.
            fw.filters.clear();
        });
    }

    fn set_weight(&mut self, role: &str, weight: f64) {
        let weight = if weight > 0.0 { weight } else { 1.0 };
        self.ledger
            .roles
            .entry(role.to_string())
            .or_default()
            .weight = weight;
        if let Some(members) = self.ledger.members.get_mut(role) {
            members.weight = weight;
        }
    }

    fn set_quota(&mut self, role: &str, quota: Quota) {
        self.ledger.roles.entry(role.to_string()).or_default().quota = quota;
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        role: &str,
        agent_id: &str,
        resources: Resources,
        refuse_until: Option<Instant>,
    ) {
        self.ledger
            .recover(framework_id, role, agent_id, resources, refuse_until);
    }

    fn add_used(&mut self, framework_id: &str, role: &str, agent_id: &str, resources: Resources) {
        if let Some(at) = self.ledger.agents.position_of(agent_id) {
            self.ledger.grant(framework_id, role, at, &resources);
        }
    }

    fn allocate(&mut self, now: Instant) -> Vec<OfferDecision> {
        self.ledger.expire_filters(now);
        self.ledger.refresh_order();
        let mut decisions = Vec::new();
        let agents = self.ledger.agents.positions_with_free();
        let mut ranked = Vec::new();
        // 1. Quota guarantees.
        if !self.unmet_guarantees().is_zero() {
            for &agent in &agents {
                let reserved_for = self.ledger.agents.at(agent).role.clone();
                let admits = |role: &str| reserved_for.as_deref().is_none_or(|r| r == role);
                self.rank_roles(
                    |role| admits(role) && !self.unmet(role).is_zero(),
                    &mut ranked,
                );
                while let Some(role) = take_first(&mut ranked) {
                    let role = &role;
                    let wanted = self.free_on(agent).min(&self.unmet(role));
                    let offered = self.capped(role, wanted);
                    decisions.extend(self.offer(role, agent, offered));
                }
            }
        }
        // 2. Everyone, keeping back what unmet guarantees need.
        for &agent in &agents {
            if !self.free_on(agent).is_offerable() {
                continue;
            }
            let reserved_for = self.ledger.agents.at(agent).role.clone();
            if let Some(role) = reserved_for {
                let free = self.free_on(agent);
                decisions.extend(self.offer(&role, agent, free));
                continue;
            }
            self.rank_roles(|_| true, &mut ranked);
            while let Some(role) = take_first(&mut ranked) {
                let role = &role;
                let free = self.free_on(agent);
                let others_need = self.unmet_guarantees().minus(&self.unmet(role));
                let offered = if others_need.is_zero() {
                    free
                } else {
                    free.min(&self.ledger.unallocated().minus(&others_need))
                };
                let offered = self.capped(role, offered);
                if let Some(decision) = self.offer(role, agent, offered) {
                    decisions.push(decision);
                    break;
                }
            }
        }
        decisions
    }

    fn reclaim(&mut self, now: Instant, patience: std::time::Duration) -> Vec<ReclaimDecision> {
        self.ledger.reclaim(now, patience)
    }

    fn allocation(&self, framework_id: &str) -> Resources {
        self.ledger
            .frameworks
            .get(framework_id)
            .map(|fw| fw.total)
            .unwrap_or_default()
    }

    fn allocation_in(&self, framework_id: &str, role: &str) -> Resources {
        self.ledger
            .frameworks
            .get(framework_id)
            .and_then(|fw| fw.roles.get(role))
            .map(|client| client.total)
            .unwrap_or_default()
    }

    fn roles_of(&self, framework_id: &str) -> Vec<String> {
        self.ledger
            .frameworks
            .get(framework_id)
            .map(|fw| fw.roles.keys().map(|r| r.to_string()).collect())
            .unwrap_or_default()
    }

    fn dominant_share(&self, framework_id: &str) -> f64 {
        self.allocation(framework_id)
            .dominant_share_of(&self.ledger.cluster_total())
    }

    fn cluster_total(&self) -> Resources {
        self.ledger.cluster_total()
    }
}

#[cfg(test)]
mod tests {
    use crate::allocator::Allocator;
    use crate::decision::OfferDecision;
    use crate::drf::DrfAllocator;
    use crate::resources::Resources;
    use std::time::Instant;

    /// Every test agent's size.
    fn agent() -> Resources {
        Resources::new(1.0, 1024)
    }

    fn with_agents(n: usize) -> DrfAllocator {
        let mut alloc = DrfAllocator::new();
        for i in 0..n {
            alloc.add_agent(&format!("s{i}"), agent());
        }
        alloc
    }

    fn roles_of(decisions: &[OfferDecision]) -> Vec<(&str, &str)> {
        decisions
            .iter()
            .map(|d| (d.framework_id.as_str(), &*d.role))
            .collect()
    }

    #[test]
    fn a_framework_in_two_roles_is_offered_in_both_each_counted_in_its_role() {
        let mut alloc = with_agents(4);
        alloc.add_framework("m", &["a", "b", "a"]);
        assert_eq!(alloc.roles_of("m"), ["a", "b"]);
        let d = alloc.allocate(Instant::now());
        assert_eq!(
            roles_of(&d),
            [("m", "a"), ("m", "b"), ("m", "a"), ("m", "b")],
            "roles served by their shares"
        );
        assert_eq!(alloc.allocation_in("m", "a"), Resources::new(2.0, 2048));
        assert_eq!(alloc.allocation_in("m", "b"), Resources::new(2.0, 2048));
        assert_eq!(alloc.allocation("m"), Resources::new(4.0, 4096));
        // Given back in a role it was not offered in, nothing is freed.
        alloc.recover_resources("m", "b", &d[0].agent_id, d[0].resources, None);
        assert_eq!(alloc.allocation_in("m", "a"), Resources::new(2.0, 2048));
        assert!(alloc.allocate(Instant::now()).is_empty());
        alloc.recover_resources("m", "a", &d[0].agent_id, d[0].resources, None);
        assert_eq!(alloc.allocation_in("m", "a"), Resources::new(1.0, 1024));
        // Role a now holds less than b: the agent goes back to a.
        assert_eq!(roles_of(&alloc.allocate(Instant::now())), [("m", "a")]);
    }

    #[test]
    fn suppressing_one_role_stops_only_its_offers() {
        let mut alloc = with_agents(4);
        alloc.add_framework("m", &["a", "b"]);
        alloc.suppress_offers("m", &["a", "not-mine"]);
        let now = Instant::now();
        let d = alloc.allocate(now);
        assert_eq!(d.len(), 4);
        assert!(d.iter().all(|d| &*d.role == "b"), "{d:?}");
        for d in &d {
            alloc.recover_resources("m", "b", &d.agent_id, d.resources, None);
        }
        alloc.suppress_offers("m", &["b"]);
        assert!(alloc.allocate(now).is_empty(), "both roles suppressed");
        alloc.revive_offers("m", &["a"]);
        let d = alloc.allocate(now);
        assert_eq!(d.len(), 4);
        assert!(d.iter().all(|d| &*d.role == "a"), "{d:?}");
        for d in &d {
            alloc.recover_resources("m", "a", &d.agent_id, d.resources, None);
        }
        alloc.suppress_offers("m", &[]);
        assert!(alloc.allocate(now).is_empty(), "empty: every role");
        alloc.revive_offers("m", &[]);
        assert_eq!(alloc.allocate(now).len(), 4, "empty: every role");
    }

    #[test]
    fn drf_within_a_shared_role_counts_only_what_each_holds_in_it() {
        let mut alloc = with_agents(4);
        alloc.add_framework("m", &["a", "b"]);
        alloc.suppress_offers("m", &["a"]);
        let now = Instant::now();
        assert_eq!(alloc.allocate(now).len(), 4, "m holds four agents in b");
        alloc.add_agent("s4", agent());
        alloc.add_agent("s5", agent());
        alloc.add_framework("x", &["a"]);
        alloc.revive_offers("m", &["a"]);
        alloc.suppress_offers("m", &["b"]);
        // In a, m and x both hold nothing: m (subscribed first) then x, the lower share.
        // Counting m's holdings in b would have given both to x.
        let d = alloc.allocate(now);
        assert_eq!(roles_of(&d), [("m", "a"), ("x", "a")]);
        assert_eq!(alloc.allocation_in("m", "a"), agent());
        assert_eq!(alloc.allocation_in("x", "a"), agent());
    }

    #[test]
    fn reserved_pools_go_to_their_role_of_a_multi_role_framework() {
        let mut alloc = DrfAllocator::new();
        alloc.add_reserved("s0(b)", "b", agent());
        alloc.add_framework("m", &["a", "b"]);
        let d = alloc.allocate(Instant::now());
        assert_eq!(roles_of(&d), [("m", "b")]);
    }
}
