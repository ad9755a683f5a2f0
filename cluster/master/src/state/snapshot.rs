//! [`Snapshot`]: what the master knows at one moment — agents, frameworks, roles, offers and
//! executors, with what each holds — built once under the state lock by
//! [`MasterState::snapshot`]. The gRPC `ClusterStatus` answer is made from it
//! ([`From<&Snapshot>`] for `ClusterStatusResponse`), and so are the HTTP `/state` JSON and the
//! gauges of `/metrics`, so the three always agree.
//!
//! Reservations (static or dynamic) are not part of it: the master has none yet.

use std::collections::BTreeMap;

use serde::Serialize;
use tessera_allocator::Resources;
use tessera_cluster_proto::master as pb;

use super::{MasterState, is_terminal, to_pb};

/// CPUs and memory, as the JSON shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Amount {
    pub cpus: f64,
    pub mem_mb: u64,
}

impl From<Resources> for Amount {
    fn from(r: Resources) -> Self {
        Amount {
            cpus: r.cpus,
            mem_mb: r.mem_mb,
        }
    }
}

impl From<Amount> for Resources {
    fn from(a: Amount) -> Self {
        Resources::new(a.cpus, a.mem_mb)
    }
}

/// Everything the master shows operators.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    /// The master's version (`tessera-master --version`).
    pub version: &'static str,
    /// This master run's id, the prefix of every agent, framework and offer id it gives.
    pub id: String,
    /// When this master started, in seconds since the Unix epoch.
    pub start_time: u64,
    /// The allocation policy (`--allocator`): `drf` or `priority`.
    pub allocator: &'static str,
    pub agents: Vec<AgentView>,
    pub frameworks: Vec<FrameworkView>,
    pub roles: Vec<RoleView>,
    pub offers: Vec<OfferView>,
    /// Running executors and the last ones that ended.
    pub executors: Vec<ExecutorView>,
}

/// One registered agent.
#[derive(Debug, Serialize)]
pub(crate) struct AgentView {
    pub id: String,
    /// The agent principal its certificate names.
    pub principal: String,
    pub hostname: String,
    /// Where the master dials it.
    pub address: String,
    pub resources: Amount,
    /// In use by executors.
    pub allocated: Amount,
    /// In outstanding offers.
    pub offered: Amount,
}

/// One subscribed framework.
#[derive(Debug, Serialize)]
pub(crate) struct FrameworkView {
    pub id: String,
    pub name: String,
    pub user: String,
    /// The framework principal that subscribed it.
    pub principal: String,
    pub role: String,
    /// False while its subscription stream is gone (its failover timeout running).
    pub connected: bool,
    /// Asked for no offers until it revives.
    pub suppressed: bool,
    pub allocated: Amount,
    pub offered: Amount,
    /// Its DRF dominant share of allocated and offered resources, in [0, 1].
    pub dominant_share: f64,
}

/// One role: named by a flag (`--role-weight`, `--quota-*`) or by a subscribed framework.
#[derive(Debug, Serialize)]
pub(crate) struct RoleView {
    pub name: String,
    /// Its weight (DRF) or priority (`--allocator priority`); 1 unless set.
    pub weight: f64,
    pub quota: QuotaView,
    /// Ids of its frameworks.
    pub frameworks: Vec<String>,
    pub allocated: Amount,
    pub offered: Amount,
}

/// A role's quota.
#[derive(Debug, Default, Serialize)]
pub(crate) struct QuotaView {
    /// Offered to the role first, and not to others while the role holds less.
    pub guarantee: Amount,
    /// The most the role may hold (`null`: no limit).
    pub limit: Option<Amount>,
}

/// One outstanding offer.
#[derive(Debug, Serialize)]
pub(crate) struct OfferView {
    pub id: String,
    pub framework_id: String,
    pub agent_id: String,
    pub hostname: String,
    pub resources: Amount,
}

/// One executor.
#[derive(Debug, Serialize)]
pub(crate) struct ExecutorView {
    pub framework_id: String,
    pub executor_id: String,
    pub agent_id: String,
    /// `STARTING`, `RUNNING`, `FINISHED`, `FAILED`, `KILLED` or `LOST`.
    #[serde(serialize_with = "state_name")]
    pub state: pb::ExecutorState,
    pub resources: Amount,
    /// Why it ended, when it did.
    pub message: String,
}

/// `RUNNING` for `EXECUTOR_STATE_RUNNING`.
pub(crate) fn executor_state_name(state: pb::ExecutorState) -> &'static str {
    let name = state.as_str_name();
    name.strip_prefix("EXECUTOR_STATE_").unwrap_or(name)
}

fn state_name<S: serde::Serializer>(state: &pb::ExecutorState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(executor_state_name(*state))
}

fn total(amounts: impl Iterator<Item = Resources>) -> Amount {
    amounts.fold(Resources::ZERO, |acc, r| acc.plus(&r)).into()
}

impl MasterState {
    /// What the master knows now.
    pub fn snapshot(&self) -> Snapshot {
        let frameworks = self.framework_views();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            id: self.run_id.clone(),
            start_time: self.start_time,
            allocator: self.roles.policy.name(),
            roles: self.role_views(&frameworks),
            agents: self.agent_views(),
            frameworks,
            offers: self.offer_views(),
            executors: self.executor_views(),
        }
    }

    fn agent_views(&self) -> Vec<AgentView> {
        self.agents
            .values()
            .map(|a| AgentView {
                id: a.id.clone(),
                principal: a.principal.clone(),
                hostname: a.hostname.clone(),
                address: a.address.clone(),
                resources: a.total.into(),
                allocated: self.allocated_where(|e| e.agent_id == a.id),
                offered: self.offered_where(|o| o.agent_id == a.id),
            })
            .collect()
    }

    fn framework_views(&self) -> Vec<FrameworkView> {
        self.frameworks
            .values()
            .map(|f| FrameworkView {
                id: f.id.clone(),
                name: f.name.clone(),
                user: f.user.clone(),
                principal: f.principal.clone(),
                role: f.role.clone(),
                connected: f.events.is_some(),
                suppressed: f.suppressed,
                allocated: self.allocated_where(|e| e.framework_id == f.id),
                offered: self.offered_where(|o| o.framework_id == f.id),
                dominant_share: self.allocator.dominant_share(&f.id),
            })
            .collect()
    }

    fn offer_views(&self) -> Vec<OfferView> {
        self.offers
            .values()
            .map(|o| OfferView {
                id: o.id.clone(),
                framework_id: o.framework_id.clone(),
                agent_id: o.agent_id.clone(),
                hostname: self
                    .agents
                    .get(&o.agent_id)
                    .map(|a| a.hostname.clone())
                    .unwrap_or_default(),
                resources: o.resources.into(),
            })
            .collect()
    }

    fn executor_views(&self) -> Vec<ExecutorView> {
        self.executors
            .values()
            .map(|e| ExecutorView {
                framework_id: e.framework_id.clone(),
                executor_id: e.executor_id.clone(),
                agent_id: e.agent_id.clone(),
                state: e.state,
                resources: e.resources.into(),
                message: e.message.clone(),
            })
            .collect()
    }

    /// The resources of the executors, starting or running, that `keep` picks.
    fn allocated_where(&self, keep: impl Fn(&super::Executor) -> bool) -> Amount {
        total(
            self.executors
                .values()
                .filter(|e| !is_terminal(e.state) && keep(e))
                .map(|e| e.resources),
        )
    }

    /// The resources of the outstanding offers that `keep` picks.
    fn offered_where(&self, keep: impl Fn(&super::Offer) -> bool) -> Amount {
        total(
            self.offers
                .values()
                .filter(|o| keep(o))
                .map(|o| o.resources),
        )
    }

    /// Every role a flag or a framework names, with what its frameworks hold.
    fn role_views(&self, frameworks: &[FrameworkView]) -> Vec<RoleView> {
        let mut roles: BTreeMap<&str, RoleView> = BTreeMap::new();
        let names = (self.roles.weights.iter().map(|(role, _)| role))
            .chain(self.roles.quotas.iter().map(|(role, _)| role))
            .chain(frameworks.iter().map(|f| &f.role));
        for name in names {
            roles.entry(name).or_insert_with(|| RoleView {
                name: name.clone(),
                weight: self.roles.weight(name),
                quota: self.roles.quota(name),
                frameworks: Vec::new(),
                allocated: Amount::default(),
                offered: Amount::default(),
            });
        }
        for f in frameworks {
            let role = roles
                .get_mut(f.role.as_str())
                .expect("every role is listed");
            role.frameworks.push(f.id.clone());
            role.allocated = Resources::from(role.allocated)
                .plus(&f.allocated.into())
                .into();
            role.offered = Resources::from(role.offered).plus(&f.offered.into()).into();
        }
        roles.into_values().collect()
    }
}

impl From<Amount> for pb::Resources {
    fn from(a: Amount) -> Self {
        to_pb(a.into())
    }
}

impl From<&Snapshot> for pb::ClusterStatusResponse {
    fn from(s: &Snapshot) -> Self {
        pb::ClusterStatusResponse {
            agents: s
                .agents
                .iter()
                .map(|a| pb::AgentStatus {
                    id: a.id.clone(),
                    hostname: a.hostname.clone(),
                    address: a.address.clone(),
                    total: Some(a.resources.into()),
                    allocated: Some(a.allocated.into()),
                    offered: Some(a.offered.into()),
                })
                .collect(),
            frameworks: s
                .frameworks
                .iter()
                .map(|f| pb::FrameworkStatus {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    user: f.user.clone(),
                    allocated: Some(f.allocated.into()),
                    offered: Some(f.offered.into()),
                    dominant_share: f.dominant_share,
                    connected: f.connected,
                    role: f.role.clone(),
                    suppressed: f.suppressed,
                })
                .collect(),
            offers: s
                .offers
                .iter()
                .map(|o| pb::Offer {
                    id: o.id.clone(),
                    framework_id: o.framework_id.clone(),
                    agent_id: o.agent_id.clone(),
                    hostname: o.hostname.clone(),
                    resources: Some(o.resources.into()),
                })
                .collect(),
            executors: s
                .executors
                .iter()
                .map(|e| pb::ExecutorStatus {
                    framework_id: e.framework_id.clone(),
                    executor_id: e.executor_id.clone(),
                    agent_id: e.agent_id.clone(),
                    state: e.state as i32,
                    resources: Some(e.resources.into()),
                    message: e.message.clone(),
                })
                .collect(),
        }
    }
}

/// The allocation settings the snapshot shows: the policy, and the roles' weights and quotas
/// from the master's flags.
#[derive(Debug)]
pub(crate) struct RoleSettings {
    pub policy: crate::AllocationPolicy,
    pub weights: Vec<(String, f64)>,
    pub quotas: Vec<(String, tessera_allocator::Quota)>,
}

impl RoleSettings {
    /// The settings of `config`.
    pub fn of(config: &crate::MasterConfig) -> Self {
        RoleSettings {
            policy: config.policy,
            weights: config.role_weights.clone(),
            quotas: config.role_quotas.clone(),
        }
    }

    /// `role`'s weight: 1 unless a flag set it (as the allocator's).
    fn weight(&self, role: &str) -> f64 {
        self.weights
            .iter()
            .rev()
            .find(|(name, _)| name == role)
            .map_or(1.0, |(_, weight)| *weight)
    }

    /// `role`'s quota: none unless a flag set it.
    fn quota(&self, role: &str) -> QuotaView {
        self.quotas
            .iter()
            .rev()
            .find(|(name, _)| name == role)
            .map(|(_, quota)| QuotaView {
                guarantee: quota.guarantee.into(),
                limit: quota.limit.map(Amount::from),
            })
            .unwrap_or_default()
    }
}
