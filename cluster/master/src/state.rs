//! The master's bookkeeping: agents, frameworks, outstanding offers and
//! executors, plus the allocator it consults. Everything here is synchronous
//! and runs under one lock; whatever must reach another process is returned as
//! [`AgentAction`]s (run by the caller after unlocking) or queued on a
//! framework's event channel (unbounded, never blocks).
//!
//! This file holds the records and `MasterState` itself; its methods are in a file per
//! subject: `agents.rs`, `frameworks.rs`, `offers.rs` and `executors.rs`. What a request may name
//! is checked in `checks.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera_allocator::{Allocator, Attribute, Extras, Resources};
use tessera_cluster_proto::agent::agent_client::AgentClient;
use tessera_cluster_proto::agent::{
    AcknowledgeStatusUpdateRequest, DeliverMessageRequest, KillExecutorRequest,
    LaunchExecutorRequest, ShutdownFrameworkRequest,
};
use tessera_cluster_proto::master as pb;
use tokio::sync::mpsc::UnboundedSender;
use tonic::Status;
use tonic::transport::Channel;

use crate::config::MasterConfig;
use crate::metrics::Metrics;

mod agents;
mod checks;
mod executors;
mod frameworks;
mod offers;
pub(crate) mod operations;
pub(crate) mod roles;
pub(crate) mod snapshot;

use checks::{check_capabilities, check_id, refuse_duration};
pub(crate) use checks::{check_extras, check_resources, check_role, seconds_up_to_a_year};
use operations::{Offered, Operation};

/// `names` as the allocator takes them.
fn as_strs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// Executors that ended are kept for `ClusterStatus` up to this many.
const MAX_COMPLETED_EXECUTORS: usize = 1000;
/// A framework's status updates not acknowledged yet are kept (to send again when it subscribes
/// again) up to this many; agents keep theirs until acknowledged regardless.
const MAX_UNACKNOWLEDGED: usize = 10_000;
/// Removed frameworks remembered (Mesos keeps its completed frameworks too).
const MAX_REMOVED_FRAMEWORKS: usize = 1000;

/// Where the master queues a subscribed framework's events (the gRPC service streams them).
pub type EventSender = UnboundedSender<Result<pb::Event, Status>>;

pub(crate) struct Agent {
    pub id: String,
    /// The name in the agent's certificate: only that principal may speak for this agent.
    pub principal: String,
    pub hostname: String,
    pub address: String,
    /// Its CPUs and memory, reserved or not.
    pub total: Resources,
    /// Its disk, ports and custom scalars.
    pub extras: Extras,
    /// Of `extras`, what is neither offered nor used: the next offer of its unreserved
    /// resources carries it.
    pub free_extras: Extras,
    pub attributes: Vec<Attribute>,
    /// CPUs and memory reserved for each role by the agent's flags.
    pub static_reserved: BTreeMap<String, Resources>,
    /// CPUs and memory reserved for each role by frameworks' RESERVE.
    pub dynamic_reserved: BTreeMap<String, Resources>,
    /// How it isolates its executors, as it said when it registered.
    pub isolation: String,
    pub last_heartbeat: Instant,
    pub client: AgentClient<Channel>,
    /// False once a call to it failed to connect: its resources are not offered until it
    /// heartbeats again.
    pub reachable: bool,
}

pub(crate) struct Framework {
    pub id: String,
    /// The framework principal that subscribed it: only it may act as this framework.
    pub principal: String,
    pub name: String,
    pub user: String,
    /// The roles its resources count against (sorted; one unless it claimed MULTI_ROLE).
    pub roles: Vec<String>,
    /// The roles in which it asked for no offers until it revives them.
    pub suppressed_roles: BTreeSet<String>,
    /// The subscription stream, while connected.
    pub events: Option<EventSender>,
    /// Counts subscriptions, so a stale stream's close is told apart.
    pub connection: u64,
    pub disconnected_at: Option<Instant>,
    /// How long it may stay disconnected before it is removed: its own, or the master's
    /// `--framework-failover-timeout-ms`.
    pub failover_timeout: Duration,
    /// What it said it can do (recorded; see [`check_capabilities`]).
    pub capabilities: Vec<String>,
    /// Status updates sent to it and not acknowledged yet, oldest first: sent again when it
    /// subscribes again.
    pub unacknowledged: VecDeque<pb::StatusUpdate>,
}

impl Framework {
    /// What agents keep of it with its executors, to tell a restarted master.
    pub(crate) fn info(&self) -> pb::FrameworkInfo {
        pb::FrameworkInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            user: self.user.clone(),
            role: self.roles[0].clone(),
            principal: self.principal.clone(),
            failover_timeout_seconds: self.failover_timeout.as_secs_f64(),
            capabilities: self.capabilities.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// What a framework asks for when it subscribes (Mesos' FrameworkInfo, less the principal,
/// which comes from its certificate).
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    /// The framework's name, shown in `tessera cluster status`.
    pub name: String,
    /// The user it runs as (informational).
    pub user: String,
    /// Empty: the default role (or, with `roles`, empty or one of them).
    pub role: String,
    /// Its roles (Mesos' MULTI_ROLE); empty: `[role]`. See [`roles::subscription_roles`].
    pub roles: Vec<String>,
    /// Set to subscribe again as this framework.
    pub framework_id: Option<String>,
    /// Unset: the master's default.
    pub failover_timeout: Option<Duration>,
    /// Capability names (Mesos' `FrameworkInfo.Capability`): recorded and shown; only `MULTI_ROLE`
    /// changes what the master does.
    pub capabilities: Vec<String>,
}

pub(crate) struct Offer {
    pub id: String,
    pub framework_id: String,
    /// The framework's role its resources are allocated to: they go back to it in that role.
    pub allocation_role: String,
    pub agent_id: String,
    /// The role its resources are reserved for (`None`: unreserved).
    pub reservation: Option<String>,
    pub resources: Resources,
    /// Disk, ports and scalars (unreserved offers only).
    pub extras: Extras,
    /// When it was made, for the offer timeout.
    pub made_at: Instant,
}

pub(crate) struct Executor {
    pub framework_id: String,
    /// The framework's role its resources are allocated to (its offer's).
    pub allocation_role: String,
    pub executor_id: String,
    pub agent_id: String,
    /// The reservation its resources came from (`None`: unreserved).
    pub reservation: Option<String>,
    pub resources: Resources,
    pub extras: Extras,
    pub state: pb::ExecutorState,
    pub message: String,
    /// What it used at its agent's last heartbeat.
    pub usage: pb::ExecutorUsage,
}

/// Something to ask an agent, done after the state lock is released.
#[derive(Debug)]
#[allow(missing_docs)] // The fields are the request and whom to send it to.
pub enum AgentAction {
    Launch {
        client: AgentClient<Channel>,
        agent_id: String,
        /// Boxed: a launch is many times the size of the other requests.
        request: Box<LaunchExecutorRequest>,
    },
    Kill {
        client: AgentClient<Channel>,
        agent_id: String,
        request: KillExecutorRequest,
    },
    ShutdownFramework {
        client: AgentClient<Channel>,
        agent_id: String,
        request: ShutdownFrameworkRequest,
    },
    Acknowledge {
        client: AgentClient<Channel>,
        agent_id: String,
        request: AcknowledgeStatusUpdateRequest,
    },
    Message {
        client: AgentClient<Channel>,
        agent_id: String,
        request: DeliverMessageRequest,
    },
}

/// Where the allocator keeps an agent's CPUs and memory reserved for `role` (`None`: its
/// unreserved ones, under the agent's own id): `AGENT(ROLE)`, as Mesos writes `cpus(ROLE)`.
pub(crate) fn pool_id(agent_id: &str, role: Option<&str>) -> String {
    match role {
        Some(role) => format!("{agent_id}({role})"),
        None => agent_id.to_string(),
    }
}

/// What an agent registers besides its unreserved CPUs and memory.
#[derive(Clone, Debug, Default)]
pub struct AgentOffering {
    /// Disk, ports and custom scalars.
    pub extras: Extras,
    /// CPUs and memory reserved for roles (`--resources "cpus(ROLE):N"`).
    pub reserved: BTreeMap<String, Resources>,
    /// The agent's attributes (`--attributes`), passed on with its offers.
    pub attributes: Vec<Attribute>,
}

fn event(e: pb::event::Event) -> pb::Event {
    pb::Event { event: Some(e) }
}

/// The master's state machine: what the gRPC service does under its lock, and what
/// benchmarks drive directly (emulated agents and frameworks, no network).
pub struct MasterState {
    /// Distinguishes this master run's ids from a previous run's.
    run_id: String,
    next_agent: u64,
    next_framework: u64,
    next_offer: u64,
    allocator: Box<dyn Allocator>,
    pub(crate) agents: HashMap<String, Agent>,
    /// Which agent registered at each address.
    agent_at: HashMap<String, String>,
    /// Agents this master declared lost; they must register anew.
    lost_agents: BTreeSet<String>,
    /// Frameworks this master removed, newest last (at most [`MAX_REMOVED_FRAMEWORKS`]): they
    /// may not subscribe again, and agents' executors of theirs are shut down.
    removed_frameworks: VecDeque<String>,
    pub(crate) frameworks: BTreeMap<String, Framework>,
    pub(crate) offers: HashMap<String, Offer>,
    /// Keyed by (framework id, executor id).
    pub(crate) executors: BTreeMap<(String, String), Executor>,
    completed: VecDeque<(String, String)>,
    heartbeat_interval: Duration,
    /// Offers not answered for this long are rescinded (`--offer-timeout-ms`).
    offer_timeout: Option<Duration>,
    /// How often frameworks get a Heartbeat (told them in Registered).
    framework_heartbeat_interval: Duration,
    /// See [`MasterConfig::reclaim_after`].
    reclaim_after: Option<Duration>,
    /// When this master started, in seconds since the Unix epoch.
    start_time: u64,
    /// The policy and the roles' weights and quotas, as the allocator was given them.
    roles: crate::config::RoleSettings,
    /// Counters of what happened since the master started.
    pub(crate) metrics: Metrics,
    /// The failover timeout of frameworks that name none (`--framework-failover-timeout-ms`).
    default_failover: Duration,
}

impl MasterState {
    /// A master with no agents or frameworks yet, its allocator made from `config`'s policy,
    /// weights and quotas; the agent, framework and offer ids it assigns start with a prefix unique
    /// to this run.
    pub fn new(config: &MasterConfig) -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let millis = since_epoch.as_millis();
        // Standby masters start within the same millisecond: random bits keep each master's
        // agent and framework ids apart (agents remember frameworks shut down by id).
        let random = tessera_credentials::random_u64().unwrap_or_default() as u32;
        MasterState {
            run_id: format!("{millis:x}{random:08x}"),
            next_agent: 0,
            next_framework: 0,
            next_offer: 0,
            allocator: config
                .policy
                .allocator(&config.role_weights, &config.role_quotas),
            agents: HashMap::new(),
            agent_at: HashMap::new(),
            lost_agents: BTreeSet::new(),
            removed_frameworks: VecDeque::new(),
            frameworks: BTreeMap::new(),
            offers: HashMap::new(),
            executors: BTreeMap::new(),
            completed: VecDeque::new(),
            heartbeat_interval: (config.agent_timeout / 4).max(Duration::from_millis(20)),
            offer_timeout: config.offer_timeout,
            framework_heartbeat_interval: config.framework_heartbeat_interval,
            reclaim_after: config.reclaim_after,
            start_time: since_epoch.as_secs(),
            roles: crate::config::RoleSettings::of(config),
            metrics: Metrics::default(),
            default_failover: config.framework_failover_timeout,
        }
    }

    /// What `ClusterStatus` answers: the [`MasterState::snapshot`] in protobuf.
    pub fn cluster_status(&self) -> pb::ClusterStatusResponse {
        (&self.snapshot()).into()
    }

    /// Closes every subscription stream (the master is shutting down). The streams just
    /// end, without an Error event, as Mesos' master closes its connections: an Error means
    /// "do not come back", while frameworks with a failover timeout should subscribe again to
    /// the next master.
    pub fn close_streams(&mut self) {
        for fw in self.frameworks.values_mut() {
            fw.events.take();
        }
    }
}

#[cfg(test)]
mod tests;
