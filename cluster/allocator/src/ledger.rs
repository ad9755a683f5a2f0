//! What every policy keeps (Mesos' allocator bookkeeping, apart from policy): each agent's
//! total and what is allocated on it, each framework's roles (Mesos' MULTI_ROLE), its state,
//! and in each of its roles its holdings per agent and whether it suppressed offers there,
//! its decline filters, and each role's weight, quota and holdings.
//!
//! A framework in several roles is a client of each role's order apart (as in Mesos'
//! sorter): what it holds in a role counts in that role's allocation and in its share within
//! the role, and nothing else does.
//!
//! Sums are kept as holdings change rather than added up when asked: a round over 100,000
//! agents asks for shares and role totals at every agent. Each role keeps its clients that
//! may be offered anything (framework active, role not suppressed) in DRF order — dominant
//! share in the role, then subscription order — so that a round finds the framework to offer
//! an agent to without looking at the others (Mesos' sorter). Ids are hashed with FxHash: the master makes them,
//! so no one can choose ids that collide.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::quota::Quota;
use crate::resources::Resources;

/// The role frameworks take when they name none (Mesos' default role).
pub const DEFAULT_ROLE: &str = "*";

#[derive(Debug)]
pub(crate) struct AgentEntry {
    pub id: String,
    pub total: Resources,
    /// Sum of what all frameworks hold on this agent.
    pub allocated: Resources,
    /// The role these resources are reserved for (a reserved pool of an agent): only its
    /// frameworks are offered them. `None`: unreserved, offered to every role.
    pub role: Option<Arc<str>>,
    /// Offered at all: an agent the master cannot reach is not, until it is heard from again.
    pub active: bool,
}

impl AgentEntry {
    pub fn free(&self) -> Resources {
        self.total.minus(&self.allocated)
    }
}

/// The agents in the order they joined (a round goes over them in that order, by position,
/// without looking them up by id), and where each is.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    entries: Vec<AgentEntry>,
    position: FxHashMap<String, usize>,
}

impl Agents {
    fn get_mut(&mut self, agent_id: &str) -> Option<&mut AgentEntry> {
        self.position.get(agent_id).map(|&at| &mut self.entries[at])
    }

    pub fn contains(&self, agent_id: &str) -> bool {
        self.position.contains_key(agent_id)
    }

    /// Where the agent is, if it is here.
    pub fn position_of(&self, agent_id: &str) -> Option<usize> {
        self.position.get(agent_id).copied()
    }

    /// The agent at `position` (from [`Agents::positions_with_free`]).
    pub fn at(&self, position: usize) -> &AgentEntry {
        &self.entries[position]
    }

    /// The positions of active agents with something worth offering.
    pub fn positions_with_free(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&at| self.entries[at].active && self.entries[at].free().is_offerable())
            .collect()
    }

    /// Offers the agent's resources, or stops offering them; false if it is not here.
    pub fn set_active(&mut self, agent_id: &str, active: bool) -> bool {
        self.get_mut(agent_id).map(|a| a.active = active).is_some()
    }

    fn push(&mut self, entry: AgentEntry) {
        self.position.insert(entry.id.clone(), self.entries.len());
        self.entries.push(entry);
    }

    fn remove(&mut self, agent_id: &str) -> Option<AgentEntry> {
        let at = self.position.remove(agent_id)?;
        let removed = self.entries.swap_remove(at);
        if let Some(moved) = self.entries.get(at) {
            self.position.insert(moved.id.clone(), at);
        }
        Some(removed)
    }
}

/// A (framework, role) client's place in the role's DRF order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SortKey {
    share: f64,
    seq: u64,
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SortKey {}
impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.share
            .total_cmp(&other.share)
            .then(self.seq.cmp(&other.seq))
    }
}

/// A framework in one of its roles: a client of that role's DRF order.
#[derive(Debug, Default)]
pub(crate) struct RoleClient {
    /// Asked for no offers in this role until it revives it.
    pub suppressed: bool,
    /// What the framework holds in this role, per agent.
    pub allocated: FxHashMap<String, Resources>,
    /// The sum of `allocated`.
    pub total: Resources,
    /// Its key in the role's order, while it is there (active and not suppressed).
    key: Option<SortKey>,
}

#[derive(Debug)]
pub(crate) struct FrameworkEntry {
    pub id: Arc<str>,
    /// Subscription order, for tie-breaking.
    pub seq: u64,
    /// Its roles, each with what it holds there.
    pub roles: BTreeMap<Arc<str>, RoleClient>,
    /// Connected (a disconnected framework keeps what it holds, gets no offers).
    pub active: bool,
    /// The sum of what it holds, over its roles.
    pub total: Resources,
    /// Agents the framework declined, and until when (in all its roles, as Mesos' filters
    /// of a framework).
    pub filters: BTreeMap<String, Instant>,
    /// Since when it has wanted offers below its fair share with nothing free.
    pub starved_since: Option<Instant>,
    /// When it was last asked to give resources back.
    pub reclaim_asked_at: Option<Instant>,
}

impl FrameworkEntry {
    /// Whether it may be offered anything in some role.
    pub fn wants_offers(&self) -> bool {
        self.active && self.roles.values().any(|c| !c.suppressed)
    }
}

/// A role's settings.
#[derive(Clone, Debug)]
pub(crate) struct RoleEntry {
    pub weight: f64,
    pub quota: Quota,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            weight: 1.0,
            quota: Quota::default(),
        }
    }
}

/// What a role's frameworks hold and which of them may be offered anything, in DRF order.
#[derive(Debug, Default)]
pub(crate) struct RoleMembers {
    /// Frameworks in the role.
    pub count: usize,
    /// The role's weight (kept here too: a round asks for it at every agent).
    pub weight: f64,
    /// The sum of what they hold.
    pub allocation: Resources,
    /// Those that are active and not suppressed, lowest dominant share first (the key is
    /// unique: it ends with the subscription order).
    pub order: BTreeMap<SortKey, Arc<str>>,
}

/// The bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub agents: Agents,
    pub frameworks: FxHashMap<String, FrameworkEntry>,
    /// Roles' settings (weights and quota), named or not by frameworks.
    pub roles: BTreeMap<String, RoleEntry>,
    /// Roles that have frameworks.
    pub members: BTreeMap<Arc<str>, RoleMembers>,
    /// The sum of the agents' totals: every share is a fraction of it.
    total: Resources,
    /// The sum of what is allocated, over all agents.
    allocated: Resources,
    /// The total changed since the frameworks were put in order: their shares must be
    /// computed again before the order is used.
    stale_order: bool,
    next_seq: u64,
}

impl Ledger {
    pub fn cluster_total(&self) -> Resources {
        self.total
    }

    /// Not allocated to anyone, over all agents.
    pub fn unallocated(&self) -> Resources {
        self.total.minus(&self.allocated)
    }

    /// Everything the role's frameworks hold.
    pub fn role_allocation(&self, role: &str) -> Resources {
        self.members
            .get(role)
            .map(|m| m.allocation)
            .unwrap_or_default()
    }

    pub fn add_agent(&mut self, agent_id: &str, total: Resources, role: Option<&str>) {
        if self.agents.contains(agent_id) {
            self.remove_agent(agent_id);
        }
        self.agents.push(AgentEntry {
            id: agent_id.to_string(),
            total,
            allocated: Resources::ZERO,
            role: role.map(Arc::from),
            active: true,
        });
        self.total = self.total.plus(&total);
        self.stale_order = true;
    }

    /// The agent's total is now `total` (what frameworks hold on it stays theirs).
    pub fn set_total(&mut self, agent_id: &str, total: Resources) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        self.total = self.total.minus(&agent.total).plus(&total);
        agent.total = total;
        self.stale_order = true;
    }

    /// The agent's total, if it is known.
    pub fn total_of(&self, agent_id: &str) -> Option<Resources> {
        let at = *self.agents.position.get(agent_id)?;
        Some(self.agents.at(at).total)
    }

    pub fn remove_agent(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.total = self.total.minus(&agent.total);
        self.allocated = self.allocated.minus(&agent.allocated);
        let holders: Vec<String> = self
            .frameworks
            .iter_mut()
            .filter_map(|(id, fw)| {
                fw.filters.remove(agent_id);
                let mut held_any = false;
                for (role, client) in fw.roles.iter_mut() {
                    let Some(held) = client.allocated.remove(agent_id) else {
                        continue;
                    };
                    held_any = true;
                    client.total = client.total.minus(&held);
                    fw.total = fw.total.minus(&held);
                    let role = self.members.get_mut(role).expect("role has members");
                    role.allocation = role.allocation.minus(&held);
                }
                held_any.then(|| id.clone())
            })
            .collect();
        for id in holders {
            self.reposition(&id);
        }
        self.stale_order = true;
    }

    /// Adds the framework in `roles` (not empty, no role twice).
    pub fn add_framework(&mut self, framework_id: &str, roles: &[&str]) {
        if self.frameworks.contains_key(framework_id) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let roles: BTreeMap<Arc<str>, RoleClient> = roles
            .iter()
            .map(|role| (Arc::from(*role), RoleClient::default()))
            .collect();
        for role in roles.keys() {
            let weight = self.roles.get(&**role).map_or(1.0, |r| r.weight);
            let members = self
                .members
                .entry(role.clone())
                .or_insert_with(|| RoleMembers {
                    weight,
                    ..RoleMembers::default()
                });
            members.count += 1;
        }
        self.frameworks.insert(
            framework_id.to_string(),
            FrameworkEntry {
                id: Arc::from(framework_id),
                seq,
                roles,
                active: true,
                total: Resources::ZERO,
                filters: BTreeMap::new(),
                starved_since: None,
                reclaim_asked_at: None,
            },
        );
        self.reposition(framework_id);
    }

    pub fn remove_framework(&mut self, framework_id: &str) {
        let Some(fw) = self.frameworks.remove(framework_id) else {
            return;
        };
        for (role_name, client) in &fw.roles {
            for (agent_id, held) in &client.allocated {
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.allocated = agent.allocated.minus(held);
                }
                self.allocated = self.allocated.minus(held);
            }
            let role = self.members.get_mut(role_name).expect("role has members");
            role.allocation = role.allocation.minus(&client.total);
            if let Some(key) = client.key {
                role.order.remove(&key);
            }
            role.count -= 1;
            if role.count == 0 {
                self.members.remove(role_name);
            }
        }
    }

    /// Changes the framework's entry, if it exists (its state, not its holdings).
    pub fn update(&mut self, framework_id: &str, change: impl FnOnce(&mut FrameworkEntry)) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            change(fw);
            self.reposition(framework_id);
        }
    }

    /// `resources` of the agent at `position` are now the framework's, in `role` (nothing
    /// happens unless the framework is in that role).
    pub fn grant(
        &mut self,
        framework_id: &str,
        role: &str,
        position: usize,
        resources: &Resources,
    ) {
        // One lookup of each: a round grants at every agent.
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let FrameworkEntry {
            id,
            seq,
            roles,
            active,
            total,
            ..
        } = fw;
        let Some(client) = roles.get_mut(role) else {
            return;
        };
        let agent = &mut self.agents.entries[position];
        match client.allocated.get_mut(&agent.id) {
            Some(held) => *held = held.plus(resources),
            None => {
                client.allocated.insert(agent.id.clone(), *resources);
            }
        }
        client.total = client.total.plus(resources);
        *total = total.plus(resources);
        agent.allocated = agent.allocated.plus(resources);
        self.allocated = self.allocated.plus(resources);
        let members = self.members.get_mut(role).expect("role has members");
        members.allocation = members.allocation.plus(resources);
        place(members, client, id, *seq, *active, &self.total);
    }

    /// `resources` the framework held on the agent in `role` are free again.
    pub fn recover(
        &mut self,
        framework_id: &str,
        role: &str,
        agent_id: &str,
        resources: Resources,
        refuse_until: Option<Instant>,
    ) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(client) = fw.roles.get_mut(role)
            && let Some(held) = client.allocated.get_mut(agent_id)
        {
            // Never give back more than the framework holds there.
            let returned = resources.min(held);
            *held = held.minus(&returned);
            if held.is_zero() {
                client.allocated.remove(agent_id);
            }
            client.total = client.total.minus(&returned);
            fw.total = fw.total.minus(&returned);
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.allocated = agent.allocated.minus(&returned);
            }
            self.allocated = self.allocated.minus(&returned);
            let members = self.members.get_mut(role).expect("role has members");
            members.allocation = members.allocation.minus(&returned);
        }
        if let Some(until) = refuse_until
            && self.agents.contains(agent_id)
        {
            let entry = fw.filters.entry(agent_id.to_string()).or_insert(until);
            *entry = (*entry).max(until);
        }
        self.reposition_in(framework_id, role);
    }

    pub fn expire_filters(&mut self, now: Instant) {
        for fw in self.frameworks.values_mut() {
            fw.filters.retain(|_, until| *until > now);
        }
    }

    /// Computes every framework's share again if the cluster's total changed since they
    /// were put in order. Called before a round.
    pub fn refresh_order(&mut self) {
        if !self.stale_order {
            return;
        }
        self.stale_order = false;
        let ids: Vec<String> = self.frameworks.keys().cloned().collect();
        for id in ids {
            self.reposition(&id);
        }
    }

    /// The first framework of `role`, in DRF order, that may be offered `agent_id`.
    pub fn first_wanting(&self, role: &str, agent_id: &str) -> Option<&str> {
        debug_assert!(
            !self.stale_order,
            "refresh_order before asking for an order"
        );
        self.members
            .get(role)?
            .order
            .values()
            .map(|id| &**id)
            .find(|id| !self.frameworks[*id].filters.contains_key(agent_id))
    }

    /// Puts the framework at its place in each of its roles' orders for what it holds there
    /// now (or out of an order, where it may not be offered anything).
    fn reposition(&mut self, framework_id: &str) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let roles: Vec<Arc<str>> = fw.roles.keys().cloned().collect();
        for role in roles {
            self.reposition_in(framework_id, &role);
        }
    }

    /// Puts the framework at its place in `role`'s order (see [`Ledger::reposition`]).
    fn reposition_in(&mut self, framework_id: &str, role: &str) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(client) = fw.roles.get_mut(role) else {
            return;
        };
        let members = self.members.get_mut(role).expect("role has members");
        place(members, client, &fw.id, fw.seq, fw.active, &self.total);
    }
}

/// Puts framework `id`'s `client` at its place in its role's order (`members`) for what it
/// holds now, out of it if it may not be offered anything.
fn place(
    members: &mut RoleMembers,
    client: &mut RoleClient,
    id: &Arc<str>,
    seq: u64,
    active: bool,
    cluster_total: &Resources,
) {
    if let Some(old) = client.key.take() {
        members.order.remove(&old);
    }
    if active && !client.suppressed {
        let key = SortKey {
            share: client.total.dominant_share_of(cluster_total),
            seq,
        };
        client.key = Some(key);
        members.order.insert(key, id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic pseudo-random sequence (no dependency for one test).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// The sums and orders the ledger keeps equal what adding up its entries gives.
    fn check(ledger: &Ledger) {
        let add = |it: &mut dyn Iterator<Item = Resources>| {
            it.fold(Resources::ZERO, |acc, r| acc.plus(&r))
        };
        let close =
            |a: Resources, b: Resources| (a.cpus - b.cpus).abs() < 1e-6 && a.mem_mb == b.mem_mb;
        let agents = &ledger.agents.entries;
        assert!(close(
            ledger.total,
            add(&mut agents.iter().map(|a| a.total))
        ));
        assert!(close(
            ledger.allocated,
            add(&mut agents.iter().map(|a| a.allocated))
        ));
        for agent in agents {
            let held = add(&mut ledger
                .frameworks
                .values()
                .flat_map(|fw| fw.roles.values())
                .filter_map(|client| client.allocated.get(&agent.id).copied()));
            assert!(close(agent.allocated, held), "agent {}", agent.id);
        }
        for (role, members) in &ledger.members {
            let of_role = || {
                ledger
                    .frameworks
                    .values()
                    .filter_map(|fw| Some((fw, fw.roles.get(role)?)))
            };
            assert_eq!(members.count, of_role().count());
            assert!(close(
                members.allocation,
                add(&mut of_role().map(|(_, client)| client.total))
            ));
            let mut expected: Vec<(f64, u64)> = of_role()
                .filter(|(fw, client)| fw.active && !client.suppressed)
                .map(|(fw, client)| (client.total.dominant_share_of(&ledger.total), fw.seq))
                .collect();
            expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let order: Vec<(f64, u64)> = members.order.keys().map(|k| (k.share, k.seq)).collect();
            assert_eq!(order, expected, "role {role}");
        }
        for fw in ledger.frameworks.values() {
            assert!(close(
                fw.total,
                add(&mut fw.roles.values().map(|c| c.total))
            ));
            for client in fw.roles.values() {
                assert!(close(
                    client.total,
                    add(&mut client.allocated.values().copied())
                ));
            }
        }
    }

    #[test]
    fn sums_and_orders_kept_as_things_change_equal_those_added_up_again() {
        let mut ledger = Ledger::default();
        let mut rng = Lcg(7);
        let agent = |n: u64| format!("a{n}");
        let framework = |n: u64| format!("f{n}");
        for _ in 0..3000 {
            match rng.below(10) {
                0 => ledger.add_agent(&agent(rng.below(12)), Resources::new(4.0, 4096), None),
                7 => {
                    let total = Resources::new(rng.below(8) as f64, rng.below(8192));
                    ledger.set_total(&agent(rng.below(12)), total);
                }
                1 => ledger.remove_agent(&agent(rng.below(12))),
                2 => {
                    let roles = [&["*"][..], &["a"], &["b"], &["a", "b"], &["*", "b"]];
                    let roles = roles[rng.below(5) as usize];
                    ledger.add_framework(&framework(rng.below(8)), roles);
                }
                3 => ledger.remove_framework(&framework(rng.below(8))),
                4 => {
                    let suppressed = rng.below(2) == 0;
                    let role = ["*", "a", "b"][rng.below(3) as usize];
                    ledger.update(&framework(rng.below(8)), |fw| {
                        if let Some(client) = fw.roles.get_mut(role) {
                            client.suppressed = suppressed;
                        }
                    });
                }
                5 => {
                    let id = agent(rng.below(12));
                    let fw = framework(rng.below(8));
                    let role = ["*", "a", "b"][rng.below(3) as usize];
                    ledger.recover(&fw, role, &id, Resources::new(0.5, 300), None);
                }
                _ => {
                    let id = agent(rng.below(12));
                    if let Some(&at) = ledger.agents.position.get(&id) {
                        let free = ledger.agents.at(at).free();
                        let want = Resources::new(0.5, 256).min(&free);
                        let role = ["*", "a", "b"][rng.below(3) as usize];
                        ledger.grant(&framework(rng.below(8)), role, at, &want);
                    }
                }
            }
            ledger.refresh_order();
            check(&ledger);
        }
        assert!(!ledger.agents.entries.is_empty() && !ledger.frameworks.is_empty());
    }
}
