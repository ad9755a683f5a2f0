//! `tessera cluster status`: a snapshot of the cluster as the master reports it — its agents,
//! frameworks, outstanding offers and executors.

use std::time::Duration;

use tessera_allocator::{Attribute, Extras, Resources};
use tessera_cluster_proto::convert::split;
use tessera_cluster_proto::master as pb;

use crate::api::{ExecutorState, MasterEndpoint, Offer, offer_from_pb, res};
use crate::error::FrameworkError;
use crate::master_link::MasterLink;

/// An agent as `tessera cluster status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSummary {
    /// The agent's id, assigned by the master when it registered.
    pub id: String,
    /// Its host name (its `--hostname`, or the machine's).
    pub hostname: String,
    /// Its gRPC "HOST:PORT".
    pub address: String,
    /// All its CPUs and memory, free or not.
    pub total: Resources,
    /// In use by executors.
    pub allocated: Resources,
    /// In outstanding offers.
    pub offered: Resources,
    /// How it isolates its executors: "cgroups-v2" or "posix".
    pub isolation: String,
    /// Its disk, ports and custom scalars.
    pub extras: Extras,
    /// Its attributes (`--attributes`).
    pub attributes: Vec<Attribute>,
    /// CPUs and memory reserved for roles (`total` includes them).
    pub reservations: Vec<ReservationSummary>,
}

/// CPUs and memory of an agent reserved for a role.
#[derive(Clone, Debug, PartialEq)]
pub struct ReservationSummary {
    /// The role the resources are reserved for.
    pub role: String,
    /// The CPUs and memory reserved.
    pub resources: Resources,
    /// Made by a framework's RESERVE (`false`: by the agent's `--resources`).
    pub dynamic: bool,
}

/// A framework as `tessera cluster status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameworkSummary {
    /// The framework's id, assigned by the master when it first subscribed.
    pub id: String,
    /// The name it subscribed with.
    pub name: String,
    /// The user it runs as (informational).
    pub user: String,
    /// In use by its executors.
    pub allocated: Resources,
    /// In its outstanding offers.
    pub offered: Resources,
    /// DRF dominant share of allocated + offered, in [0, 1].
    pub dominant_share: f64,
    /// False while its subscription is gone (within its failover timeout).
    pub connected: bool,
    /// Its first role.
    pub role: String,
    /// All its roles.
    pub roles: Vec<String>,
    /// Whether it has suppressed offers in all its roles.
    pub suppressed: bool,
    /// The roles in which it has suppressed offers.
    pub suppressed_roles: Vec<String>,
    /// How long the master keeps its executors while it is disconnected.
    pub failover_timeout: Duration,
    /// What it said it can do.
    pub capabilities: Vec<String>,
}

/// An executor as `tessera cluster status` shows it (running ones, and
/// recently ended ones).
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorSummary {
    /// The framework that launched it.
    pub framework_id: String,
    /// Its id, chosen by its framework.
    pub executor_id: String,
    /// The agent it runs (or ran) on.
    pub agent_id: String,
    /// Its latest state.
    pub state: ExecutorState,
    /// The CPUs and memory it was launched with.
    pub resources: Resources,
    /// Its disk, ports and custom scalars.
    pub extras: Extras,
    /// What its latest status update said (e.g. why it failed; may be empty).
    pub message: String,
    /// Memory its processes used at its agent's last heartbeat (0 once ended).
    pub memory_used_bytes: u64,
    /// CPU time its processes used by then, in seconds.
    pub cpu_seconds: f64,
}

/// A snapshot of the cluster, from the master.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterStatus {
    /// The registered agents, by id.
    pub agents: Vec<AgentSummary>,
    /// The frameworks the master knows, connected or within their failover timeout.
    pub frameworks: Vec<FrameworkSummary>,
    /// Outstanding offers, with the framework each was made to.
    pub offers: Vec<(String, Offer)>,
    /// The executors, running and recently ended.
    pub executors: Vec<ExecutorSummary>,
}

/// Asks the master for a snapshot of the cluster.
pub async fn cluster_status(endpoint: &MasterEndpoint) -> Result<ClusterStatus, FrameworkError> {
    let link = MasterLink::new(&endpoint.address, &endpoint.credential).await?;
    let r = link
        .call("report the cluster status", |mut client| async move {
            client.cluster_status(pb::ClusterStatusRequest {}).await
        })
        .await?;
    Ok(ClusterStatus {
        agents: r
            .agents
            .into_iter()
            .map(|a| {
                let (total, extras) = split(a.total.as_ref());
                AgentSummary {
                    id: a.id,
                    hostname: a.hostname,
                    address: a.address,
                    total,
                    allocated: res(a.allocated),
                    offered: res(a.offered),
                    isolation: a.isolation,
                    extras,
                    attributes: a.attributes.into_iter().map(Into::into).collect(),
                    reservations: (a.reservations.into_iter())
                        .map(|r| ReservationSummary {
                            role: r.role,
                            resources: res(r.resources),
                            dynamic: r.dynamic,
                        })
                        .collect(),
                }
            })
            .collect(),
        frameworks: r
            .frameworks
            .into_iter()
            .map(|f| FrameworkSummary {
                id: f.id,
                name: f.name,
                user: f.user,
                allocated: res(f.allocated),
                offered: res(f.offered),
                dominant_share: f.dominant_share,
                connected: f.connected,
                role: f.role,
                roles: f.roles,
                suppressed: f.suppressed,
                suppressed_roles: f.suppressed_roles,
                failover_timeout: Duration::try_from_secs_f64(f.failover_timeout_seconds)
                    .unwrap_or_default(),
                capabilities: f.capabilities,
            })
            .collect(),
        offers: r
            .offers
            .into_iter()
            .map(|o| (o.framework_id.clone(), offer_from_pb(o)))
            .collect(),
        executors: r
            .executors
            .into_iter()
            .filter_map(|e| {
                let (resources, extras) = split(e.resources.as_ref());
                Some(ExecutorSummary {
                    state: ExecutorState::from_pb(e.state)?,
                    framework_id: e.framework_id,
                    executor_id: e.executor_id,
                    agent_id: e.agent_id,
                    resources,
                    extras,
                    message: e.message,
                    memory_used_bytes: e.memory_used_bytes,
                    cpu_seconds: e.cpu_seconds,
                })
            })
            .collect(),
    })
}
