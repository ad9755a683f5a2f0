//! How a master behaves: its timeouts and intervals, and the allocation policy it runs.

use std::time::Duration;

/// How the master behaves (timeouts and intervals).
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// How often the allocator runs (it also runs when an agent or framework
    /// joins).
    pub allocation_interval: Duration,
    /// An agent that has not heartbeated for this long is declared lost: its
    /// executors are reported LOST and its resources leave the pool.
    pub agent_timeout: Duration,
    /// How long a framework whose subscription stream went away may take to
    /// subscribe again before it is removed (its executors killed, its
    /// resources recovered), for frameworks that name no failover timeout of their own. Zero
    /// removes it at once.
    pub framework_failover_timeout: Duration,
    /// In which order roles are served.
    pub policy: AllocationPolicy,
    /// Roles' weights (1 for any role not named).
    pub role_weights: Vec<(String, f64)>,
    /// Roles' quota (none for any role not named).
    pub role_quotas: Vec<(String, tessera_allocator::Quota)>,
    /// Offers a framework has not answered for this long are rescinded and their resources
    /// offered again (`None`: offers wait, as Mesos' default).
    pub offer_timeout: Option<Duration>,
    /// How often connected frameworks get a Heartbeat event (Mesos: 15 s), so that a framework
    /// can tell a stopped or unreachable master from a quiet one.
    pub framework_heartbeat_interval: Duration,
    /// The HTTP endpoints other than `/health` need a client certificate of the cluster's CA
    /// (Mesos' `--authenticate_http_readonly`); without it they answer anyone.
    pub authenticate_http_readonly: bool,
    /// A framework that has wanted offers below its fair share, with nothing free, for this
    /// long makes the master ask frameworks above their share to give back what they hold
    /// beyond it (`None`: never; see [`tessera_allocator::Allocator::reclaim`]).
    pub reclaim_after: Option<Duration>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            allocation_interval: Duration::from_millis(200),
            agent_timeout: Duration::from_secs(10),
            framework_failover_timeout: Duration::ZERO,
            policy: AllocationPolicy::Drf,
            role_weights: Vec::new(),
            role_quotas: Vec::new(),
            offer_timeout: None,
            framework_heartbeat_interval: Duration::from_secs(15),
            authenticate_http_readonly: false,
            reclaim_after: Some(Duration::from_secs(5)),
        }
    }
}

/// The allocation policy (`--allocator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllocationPolicy {
    /// Weighted dominant resource fairness between roles ([`tessera_allocator::DrfAllocator`]).
    #[default]
    Drf,
    /// Strict priority between roles, a role's weight being its priority
    /// ([`tessera_allocator::PriorityAllocator`]).
    Priority,
}

impl AllocationPolicy {
    /// Its name, as `--allocator` takes it.
    pub fn name(self) -> &'static str {
        match self {
            AllocationPolicy::Drf => "drf",
            AllocationPolicy::Priority => "priority",
        }
    }

    /// An allocator of this policy with `weights` and `quotas`.
    pub fn allocator(
        self,
        weights: &[(String, f64)],
        quotas: &[(String, tessera_allocator::Quota)],
    ) -> Box<dyn tessera_allocator::Allocator> {
        let mut allocator: Box<dyn tessera_allocator::Allocator> = match self {
            AllocationPolicy::Drf => Box::new(tessera_allocator::DrfAllocator::new()),
            AllocationPolicy::Priority => Box::new(tessera_allocator::PriorityAllocator::new()),
        };
        for (role, weight) in weights {
            allocator.set_weight(role, *weight);
        }
        for (role, quota) in quotas {
            allocator.set_quota(role, quota.clone());
        }
        allocator
    }
}

/// The allocation settings a snapshot of the master shows: the policy, and the roles' weights and quotas
/// from the master's flags.
#[derive(Debug)]
pub(crate) struct RoleSettings {
    pub policy: AllocationPolicy,
    pub weights: Vec<(String, f64)>,
    pub quotas: Vec<(String, tessera_allocator::Quota)>,
}

impl RoleSettings {
    /// The settings of `config`.
    pub fn of(config: &MasterConfig) -> Self {
        RoleSettings {
            policy: config.policy,
            weights: config.role_weights.clone(),
            quotas: config.role_quotas.clone(),
        }
    }

    /// `role`'s weight: 1 unless a flag set it (as the allocator's).
    pub fn weight(&self, role: &str) -> f64 {
        self.weights
            .iter()
            .rev()
            .find(|(name, _)| name == role)
            .map_or(1.0, |(_, weight)| *weight)
    }

    /// `role`'s quota: none unless a flag set it.
    pub fn quota(&self, role: &str) -> Option<&tessera_allocator::Quota> {
        self.quotas
            .iter()
            .rev()
            .find(|(name, _)| name == role)
            .map(|(_, quota)| quota)
    }
}
