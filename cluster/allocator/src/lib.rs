//! The allocation module of Tessera's cluster manager: the policy that decides
//! which framework is offered which agent's free resources.
//!
//! As in Mesos, the master keeps the bookkeeping (agents, frameworks, offers,
//! executors) and asks an [`Allocator`] for decisions; the allocator keeps only
//! what a policy needs: each agent's total, what each framework holds on each
//! agent, which frameworks are active, and decline filters.
//!
//! The contract, in Mesos' terms:
//!
//! * Resources handed out by [`Allocator::allocate`] count as *allocated* to
//!   that framework from then on — while offered and while used by executors.
//! * The master gives them back with [`Allocator::recover_resources`]: when an
//!   offer is declined or rescinded, when part of an accepted offer goes unused,
//!   when an executor ends. A recovery may carry a *filter*: the framework is not
//!   offered that agent again before the filter's deadline.
//! * Removing a framework or agent drops everything allocated to/on it.
//! * A framework may be in several roles (Mesos' MULTI_ROLE): each decision names the role
//!   its resources are allocated to, they count in that role's share, and the master gives
//!   them back in that role.
//!
//! Bookkeeping ([`ledger`]) is apart from policy: [`HierarchicalAllocator`] runs Mesos'
//! allocation round (quota guarantees, then everyone; roles, then frameworks within a role by
//! DRF), and a [`RoleOrder`] decides in which order roles are served: [`WeightedDrf`] (the
//! default, [`DrfAllocator`]) or [`StrictPriority`] ([`PriorityAllocator`]).

#![deny(missing_docs)]

pub mod agent_spec;
mod drf;
pub mod extras;
mod hierarchical;
mod ledger;
mod priority;
mod quota;
mod ranges;
mod reclaim;
mod resources;

pub use agent_spec::Attribute;
pub use drf::{DrfAllocator, WeightedDrf};
pub use extras::Extras;
pub use hierarchical::{HierarchicalAllocator, RoleOrder};
pub use ledger::DEFAULT_ROLE;
pub use priority::{PriorityAllocator, StrictPriority};
pub use quota::Quota;
pub use ranges::{Ranges, RangesError};
pub use resources::Resources;

use std::time::Instant;

/// Identifies an agent (assigned by the master).
pub type AgentId = String;
/// Identifies a framework (assigned by the master).
pub type FrameworkId = String;

/// One allocation decision: offer `resources` of `agent_id` to `framework_id`, allocated to
/// its role `role` (Mesos' `Offer.allocation_info.role`).
#[derive(Clone, Debug, PartialEq)]
pub struct OfferDecision {
    /// The framework the resources are offered to.
    pub framework_id: FrameworkId,
    /// Shared with the allocator's own name of the role (a round makes one decision per
    /// agent: no copy of the name each).
    pub role: std::sync::Arc<str>,
    /// The agent whose free resources are offered, or the reserved pool's id for resources
    /// reserved for `role` (see [`Allocator::add_reserved`]).
    pub agent_id: AgentId,
    /// The CPUs and memory offered.
    pub resources: Resources,
}

/// A request to a framework to give back up to `resources`, so that a framework that has
/// waited below its fair share can be offered some (see [`Allocator::reclaim`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReclaimDecision {
    /// The framework asked to give resources back (one above its fair share).
    pub framework_id: FrameworkId,
    /// At most this much: giving back more would put the framework below its own fair share.
    pub resources: Resources,
    /// The framework that waits.
    pub for_framework: FrameworkId,
}

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
    /// A new framework subscribed in `roles` (none, or only empty names: [`DEFAULT_ROLE`];
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
