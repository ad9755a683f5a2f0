//! What an allocator decides, as data: offers to make and resources to ask back, each naming
//! the framework and agent by the master's ids.

use crate::resources::Resources;

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
    /// reserved for `role` (see [`crate::Allocator::add_reserved`]).
    pub agent_id: AgentId,
    /// The CPUs and memory offered.
    pub resources: Resources,
}

/// A request to a framework to give back up to `resources`, so that a framework that has
/// waited below its fair share can be offered some (see [`crate::Allocator::reclaim`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReclaimDecision {
    /// The framework asked to give resources back (one above its fair share).
    pub framework_id: FrameworkId,
    /// At most this much: giving back more would put the framework below its own fair share.
    pub resources: Resources,
    /// The framework that waits.
    pub for_framework: FrameworkId,
}
