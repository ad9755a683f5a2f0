//! [`HierarchicalAllocator`]: the bookkeeping ([`Ledger`]) and the steps of an allocation
//! round, as Mesos' hierarchical allocator has them, with the policy — in which order roles
//! are served — behind [`RoleOrder`].
//!
//! A round goes over the agents twice:
//!
//! 1. **Quota guarantees.** Roles that hold less than their guarantee, in the policy's order,
//!    are offered free resources up to what they lack.
//! 2. **Everyone.** Each agent's free resources go to one framework: the role first, in the
//!    policy's order, then, within the role, the framework with the lowest dominant share
//!    (DRF; ties to the one that subscribed first). Resources that unmet guarantees need are
//!    kept back from roles past their guarantee, and no role is offered past its limit.
//!
//! Frameworks that are inactive, suppressed, or filtered on the agent are passed over.
//! Shares change as the round proceeds, so one round over several agents spreads them.

use std::time::Instant;

use crate::ledger::{DEFAULT_ROLE, Ledger};
use crate::{Allocator, OfferDecision, Quota, Resources};

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
    pub fn new() -> Self {
        Self::default()
    }

    /// Roles with a framework that may be offered `agent_id`, in the policy's order.
    fn roles_for(&self, agent_id: &str, only: impl Fn(&str) -> bool) -> Vec<String> {
        let total = self.ledger.cluster_total();
        let mut ranked: Vec<([f64; 2], String)> = self
            .ledger
            .active_roles()
            .into_iter()
            .filter(|role| only(role))
            .filter(|role| self.framework_for(role, agent_id).is_some())
            .map(|role| {
                let settings = self.ledger.role(&role);
                let allocation = self.ledger.role_allocation(&role);
                (self.policy.rank(&allocation, settings.weight, &total), role)
            })
            .collect();
        ranked.sort_by(|a, b| {
            a.0[0]
                .total_cmp(&b.0[0])
                .then(a.0[1].total_cmp(&b.0[1]))
                .then(a.1.cmp(&b.1))
        });
        ranked.into_iter().map(|(_, role)| role).collect()
    }

    /// The framework of `role` to offer `agent_id` to: the lowest dominant share.
    fn framework_for(&self, role: &str, agent_id: &str) -> Option<String> {
        let total = self.ledger.cluster_total();
        self.ledger
            .frameworks
            .iter()
            .filter(|(_, fw)| fw.role == role && fw.wants(agent_id))
            .map(|(id, fw)| (fw.total_allocated().dominant_share_of(&total), fw.seq, id))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, _, id)| id.clone())
    }

    fn free_on(&self, agent_id: &str) -> Resources {
        self.ledger
            .agents
            .get(agent_id)
            .map(|a| a.total.minus(&a.allocated))
            .unwrap_or_default()
    }

    /// What `role` may be offered of `free`, under its limit.
    fn capped(&self, role: &str, free: Resources) -> Resources {
        let quota = self.ledger.role(role).quota;
        match quota.room_under_limit(&self.ledger.role_allocation(role)) {
            Some(room) => free.min(&room),
            None => free,
        }
    }

    /// What all unmet guarantees need, over every role with quota.
    fn unmet_guarantees(&self) -> Resources {
        self.ledger
            .roles
            .iter()
            .fold(Resources::ZERO, |acc, (role, entry)| {
                acc.plus(&entry.quota.unmet(&self.ledger.role_allocation(role)))
            })
    }

    fn offer(&mut self, role: &str, agent_id: &str, resources: Resources) -> Option<OfferDecision> {
        if !resources.is_offerable() {
            return None;
        }
        let framework_id = self.framework_for(role, agent_id)?;
        self.ledger.grant(&framework_id, agent_id, &resources);
        Some(OfferDecision {
            framework_id,
            agent_id: agent_id.to_string(),
            resources,
        })
    }
}

impl<P: RoleOrder> Allocator for HierarchicalAllocator<P> {
    fn add_agent(&mut self, agent_id: &str, total: Resources) {
        self.ledger.add_agent(agent_id, total);
    }

    fn remove_agent(&mut self, agent_id: &str) {
        self.ledger.remove_agent(agent_id);
    }

    fn add_framework(&mut self, framework_id: &str, role: &str) {
        let role = if role.is_empty() { DEFAULT_ROLE } else { role };
        self.ledger.add_framework(framework_id, role);
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

    fn suppress_offers(&mut self, framework_id: &str) {
        self.ledger.update(framework_id, |fw| fw.suppressed = true);
    }

    fn revive_offers(&mut self, framework_id: &str) {
        self.ledger.update(framework_id, |fw| {
            fw.suppressed = false;
            // As Mesos' REVIVE: decline filters are dropped too.
            fw.filters.clear();
        });
    }

    fn set_weight(&mut self, role: &str, weight: f64) {
        let entry = self.ledger.roles.entry(role.to_string()).or_default();
        entry.weight = if weight > 0.0 { weight } else { 1.0 };
    }

    fn set_quota(&mut self, role: &str, quota: Quota) {
        self.ledger.roles.entry(role.to_string()).or_default().quota = quota;
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: Resources,
        refuse_until: Option<Instant>,
    ) {
        self.ledger
            .recover(framework_id, agent_id, resources, refuse_until);
    }

    fn allocate(&mut self, now: Instant) -> Vec<OfferDecision> {
        self.ledger.expire_filters(now);
        let mut decisions = Vec::new();
        let agent_ids: Vec<String> = self.ledger.agents.keys().cloned().collect();
        // 1. Quota guarantees.
        for agent_id in &agent_ids {
            let lacking = |this: &Self, role: &str| {
                let quota = this.ledger.role(role).quota;
                !quota.unmet(&this.ledger.role_allocation(role)).is_zero()
            };
            for role in self.roles_for(agent_id, |role| lacking(self, role)) {
                let unmet = self
                    .ledger
                    .role(&role)
                    .quota
                    .unmet(&self.ledger.role_allocation(&role));
                let offered = self.capped(&role, self.free_on(agent_id).min(&unmet));
                decisions.extend(self.offer(&role, agent_id, offered));
            }
        }
        // 2. Everyone, keeping back what unmet guarantees need.
        for agent_id in &agent_ids {
            for role in self.roles_for(agent_id, |_| true) {
                let free = self.free_on(agent_id);
                let own_unmet = self
                    .ledger
                    .role(&role)
                    .quota
                    .unmet(&self.ledger.role_allocation(&role));
                let others_need = self.unmet_guarantees().minus(&own_unmet);
                let offered = if others_need.is_zero() {
                    free
                } else {
                    free.min(&self.ledger.unallocated().minus(&others_need))
                };
                let offered = self.capped(&role, offered);
                if let Some(decision) = self.offer(&role, agent_id, offered) {
                    decisions.push(decision);
                    break;
                }
            }
        }
        decisions
    }

    fn allocation(&self, framework_id: &str) -> Resources {
        self.ledger
            .frameworks
            .get(framework_id)
            .map(|fw| fw.total_allocated())
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
