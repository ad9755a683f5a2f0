//! What every policy keeps (Mesos' allocator bookkeeping, apart from policy): each agent's
//! total and what is allocated on it, each framework's role, state and holdings per agent,
//! its decline filters, and each role's weight and quota.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::{Quota, Resources};

/// The role frameworks take when they name none (Mesos' default role).
pub const DEFAULT_ROLE: &str = "*";

#[derive(Debug)]
pub(crate) struct AgentEntry {
    pub total: Resources,
    /// Sum of what all frameworks hold on this agent.
    pub allocated: Resources,
}

#[derive(Debug)]
pub(crate) struct FrameworkEntry {
    /// Subscription order, for tie-breaking.
    pub seq: u64,
    pub role: String,
    /// Connected (a disconnected framework keeps what it holds, gets no offers).
    pub active: bool,
    /// Asked for no offers until it revives.
    pub suppressed: bool,
    /// What the framework holds, per agent.
    pub allocated: BTreeMap<String, Resources>,
    /// Agents the framework declined, and until when.
    pub filters: BTreeMap<String, Instant>,
}

impl FrameworkEntry {
    pub fn total_allocated(&self) -> Resources {
        self.allocated
            .values()
            .fold(Resources::ZERO, |acc, r| acc.plus(r))
    }

    /// Whether it may be offered `agent_id` now (filters already expired).
    pub fn wants(&self, agent_id: &str) -> bool {
        self.active && !self.suppressed && !self.filters.contains_key(agent_id)
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

/// The bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub agents: BTreeMap<String, AgentEntry>,
    pub frameworks: BTreeMap<String, FrameworkEntry>,
    pub roles: BTreeMap<String, RoleEntry>,
    /// The sum of the agents' totals, kept as agents come and go: every share is a fraction
    /// of it, asked for per agent and framework in a round.
    total: Resources,
    next_seq: u64,
}

impl Ledger {
    pub fn cluster_total(&self) -> Resources {
        self.total
    }

    pub fn add_agent(&mut self, agent_id: &str, total: Resources) {
        let entry = AgentEntry {
            total,
            allocated: Resources::ZERO,
        };
        if let Some(old) = self.agents.insert(agent_id.to_string(), entry) {
            self.total = self.total.minus(&old.total);
        }
        self.total = self.total.plus(&total);
    }

    /// Not allocated to anyone, over all agents.
    pub fn unallocated(&self) -> Resources {
        self.agents.values().fold(Resources::ZERO, |acc, a| {
            acc.plus(&a.total.minus(&a.allocated))
        })
    }

    pub fn role(&self, role: &str) -> RoleEntry {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    /// Everything the role's frameworks hold.
    pub fn role_allocation(&self, role: &str) -> Resources {
        self.frameworks
            .values()
            .filter(|fw| fw.role == role)
            .fold(Resources::ZERO, |acc, fw| acc.plus(&fw.total_allocated()))
    }

    /// The roles that have frameworks.
    pub fn active_roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = self.frameworks.values().map(|fw| fw.role.clone()).collect();
        roles.sort();
        roles.dedup();
        roles
    }

    pub fn add_framework(&mut self, framework_id: &str, role: &str) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.frameworks
            .entry(framework_id.to_string())
            .or_insert(FrameworkEntry {
                seq,
                role: role.to_string(),
                active: true,
                suppressed: false,
                allocated: BTreeMap::new(),
                filters: BTreeMap::new(),
            });
    }

    /// Changes the framework's entry, if it exists.
    pub fn update(&mut self, framework_id: &str, change: impl FnOnce(&mut FrameworkEntry)) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            change(fw);
        }
    }

    /// `resources` of `agent_id` are now the framework's.
    pub fn grant(&mut self, framework_id: &str, agent_id: &str, resources: &Resources) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            let held = fw
                .allocated
                .entry(agent_id.to_string())
                .or_insert(Resources::ZERO);
            *held = held.plus(resources);
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.allocated = agent.allocated.plus(resources);
        }
    }

    pub fn remove_agent(&mut self, agent_id: &str) {
        if let Some(agent) = self.agents.remove(agent_id) {
            self.total = self.total.minus(&agent.total);
        }
        for fw in self.frameworks.values_mut() {
            fw.allocated.remove(agent_id);
            fw.filters.remove(agent_id);
        }
    }

    pub fn remove_framework(&mut self, framework_id: &str) {
        if let Some(fw) = self.frameworks.remove(framework_id) {
            for (agent_id, held) in fw.allocated {
                if let Some(agent) = self.agents.get_mut(&agent_id) {
                    agent.allocated = agent.allocated.minus(&held);
                }
            }
        }
    }

    pub fn recover(
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
            let returned = resources.min(held);
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

    pub fn expire_filters(&mut self, now: Instant) {
        for fw in self.frameworks.values_mut() {
            fw.filters.retain(|_, until| *until > now);
        }
    }
}
