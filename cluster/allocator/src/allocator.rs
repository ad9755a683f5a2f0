//! The interface every allocation policy implements: the master tells it what changed (agents,
//! frameworks, resources given back) and asks it for decisions.

use crate::decision::{OfferDecision, ReclaimDecision};
use crate::quota::Quota;
use crate::resources::Resources;
use std::time::Instant;

/// An allocation policy. Implementations must be deterministic given the same
/// calls, so that tests can check their decisions.
pub trait Allocator: Send {
    /// A new agent with `total` resources joined; all of it is free.
    fn add_agent(&mut self, agent_id: &str, total: Resources);
    /// Resources of an agent reserved for `role` (Mesos' static and dynamic reservations),
    /// as a pool of their own named `pool_id`: only frameworks of `role` are offered them
    /// (decisions name the pool as their agent). Removed with `remove_agent(pool_id)`.
    fn add_reserved(&mut self, pool_id: &str, role: &str, total: Resources);
    /// The agent's (or reserved pool's) total is now `total`; what frameworks hold on it
    /// stays theirs. Dynamic reservations move resources between an agent's pools.
    fn set_total(&mut self, agent_id: &str, total: Resources);
    /// The agent's (or reserved pool's) total, if it is known.
    fn total_of(&self, agent_id: &str) -> Option<Resources>;
    /// The agent left or was lost; whatever frameworks held on it is dropped.
    fn remove_agent(&mut self, agent_id: &str);

    /// Stops offering the agent's (or pool's) resources, keeping its bookkeeping: the master
    /// cannot reach it (Mesos' `deactivateSlave`).
    fn deactivate_agent(&mut self, agent_id: &str);

    /// Offers the agent's resources again once it is heard from (Mesos' `activateSlave`).
    fn activate_agent(&mut self, agent_id: &str);
    /// A new framework subscribed in `roles` (none, or only empty names: [`crate::DEFAULT_ROLE`];
    /// a role named twice counts once); it is active (receives offers in each).
    fn add_framework(&mut self, framework_id: &str, roles: &[&str]);
    /// The framework is gone; whatever it held is free again.
    fn remove_framework(&mut self, framework_id: &str);
    /// Stop offering to the framework (e.g. its connection dropped) without
    /// freeing what it holds.
    fn deactivate_framework(&mut self, framework_id: &str);
    /// Offer to the framework again.
    fn activate_framework(&mut self, framework_id: &str);
    /// The framework wants no offers in `roles` (empty: in any of its roles; Mesos'
    /// SUPPRESS with `roles`) until it revives them. Roles it is not in are passed over.
    fn suppress_offers(&mut self, framework_id: &str, roles: &[&str]);
    /// The framework wants offers again in `roles` (empty: all its roles), on every agent:
    /// its decline filters are dropped (Mesos' REVIVE; filters are the framework's, not a
    /// role's).
    fn revive_offers(&mut self, framework_id: &str, roles: &[&str]);
    /// `role`'s weight (a positive number; 1 by default).
    fn set_weight(&mut self, role: &str, weight: f64);
    /// `role`'s quota.
    fn set_quota(&mut self, role: &str, quota: Quota);
    /// `resources` the framework held on the agent in `role` (the role they were offered
    /// in) are free again. With `refuse_until`, the framework is not offered this agent
    /// before that instant.
    fn recover_resources(
        &mut self,
        framework_id: &str,
        role: &str,
        agent_id: &str,
        resources: Resources,
        refuse_until: Option<Instant>,
    );
    /// `resources` of the agent are already in use by the framework in `role` (executors a
    /// re-registering agent still runs, as Mesos' `addSlave` with what is used on it).
    fn add_used(&mut self, framework_id: &str, role: &str, agent_id: &str, resources: Resources);
    /// Decide which free resources to offer to whom at `now`. Everything
    /// returned becomes allocated to the chosen framework.
    fn allocate(&mut self, now: Instant) -> Vec<OfferDecision>;
    /// Frameworks to ask for resources back, at `now`: when a framework that wants offers has
    /// held less than its fair share, with nothing free to offer it, for `patience`, each
    /// framework above its fair share is asked to give back what it holds beyond it (at most
    /// once per `patience`). A framework's fair share of the cluster is its role's part by
    /// weight among the roles of frameworks that hold or want resources, split evenly among
    /// those frameworks of the role; a framework in several roles gets the sum of its parts
    /// of each, and what it holds in all its roles is set against it.
    ///
    /// Mesos has no such step (it never takes back what a framework holds, short of
    /// maintenance inverse offers); long-running sessions that hold executors while idle would
    /// keep a newcomer waiting, so Tessera asks, as YARN's fair scheduler preempts after its
    /// fair-share timeout. Frameworks choose what to give back.
    fn reclaim(&mut self, now: Instant, patience: std::time::Duration) -> Vec<ReclaimDecision>;
    /// Everything currently allocated to the framework (offered or in use), in all its roles.
    fn allocation(&self, framework_id: &str) -> Resources;
    /// What is allocated to the framework in `role`.
    fn allocation_in(&self, framework_id: &str, role: &str) -> Resources;
    /// The framework's roles, in name order.
    fn roles_of(&self, framework_id: &str) -> Vec<String>;
    /// The framework's dominant share: the largest fraction, over resource
    /// kinds, of the cluster's total that is allocated to it (in all its roles). In `[0, 1]`.
    fn dominant_share(&self, framework_id: &str) -> f64;
    /// The sum of all agents' totals.
    fn cluster_total(&self) -> Resources;
}
