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
mod allocator;
mod decision;
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
pub use allocator::Allocator;
pub use decision::{AgentId, FrameworkId, OfferDecision, ReclaimDecision};
pub use drf::{DrfAllocator, WeightedDrf};
pub use extras::Extras;
pub use hierarchical::{HierarchicalAllocator, RoleOrder};
pub use ledger::DEFAULT_ROLE;
pub use priority::{PriorityAllocator, StrictPriority};
pub use quota::Quota;
pub use ranges::{Ranges, RangesError};
pub use resources::Resources;
