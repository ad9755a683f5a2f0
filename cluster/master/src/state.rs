//! The master's bookkeeping: agents, frameworks, outstanding offers and
//! executors, plus the allocator it consults. Everything here is synchronous
//! and runs under one lock; whatever must reach another process is returned as
//! [`AgentAction`]s (run by the caller after unlocking) or queued on a
//! framework's event channel (unbounded, never blocks).

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

use crate::MasterConfig;
use crate::metrics::Metrics;

pub(crate) mod operations;
pub(crate) mod roles;
pub(crate) mod snapshot;

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
        request: LaunchExecutorRequest,
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

pub(crate) fn is_terminal(state: pb::ExecutorState) -> bool {
    use pb::ExecutorState as S;
    matches!(state, S::Finished | S::Failed | S::Killed | S::Lost)
}

/// Where the allocator keeps an agent's CPUs and memory reserved for `role` (`None`: its
/// unreserved ones, under the agent's own id): `AGENT(ROLE)`, as Mesos writes `cpus(ROLE)`.
pub(crate) fn pool_id(agent_id: &str, role: Option<&str>) -> String {
    match role {
        Some(role) => format!("{agent_id}({role})"),
        None => agent_id.to_string(),
    }
}

/// The agent and reservation of an allocator pool (agent ids the master makes hold no `(`).
pub(crate) fn split_pool(pool: &str) -> (&str, Option<&str>) {
    match pool.split_once('(') {
        Some((agent, role)) => (agent, Some(role.strip_suffix(')').unwrap_or(role))),
        None => (pool, None),
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

/// An offer as its framework sees it: with its agent's host name and attributes.
pub(crate) fn offer_to_pb(offer: &Offer, agent: &Agent) -> pb::Offer {
    pb::Offer {
        id: offer.id.clone(),
        framework_id: offer.framework_id.clone(),
        agent_id: offer.agent_id.clone(),
        hostname: agent.hostname.clone(),
        resources: Some(pb::Resources::of(&offer.resources, &offer.extras)),
        reservation_role: offer.reservation.clone().unwrap_or_default(),
        attributes: agent.attributes.iter().map(pb::Attribute::from).collect(),
        allocation_role: offer.allocation_role.clone(),
    }
}

/// An accept's launches, wherever it names them: in `operations`, then in `launches`.
fn operations_launches(request: pb::AcceptRequest) -> impl Iterator<Item = pb::ExecutorLaunch> {
    let ops = request
        .operations
        .into_iter()
        .filter_map(|o| match o.operation {
            Some(pb::operation::Operation::Launch(l)) => Some(l),
            _ => None,
        });
    ops.chain(request.launches)
}

fn event(e: pb::event::Event) -> pb::Event {
    pb::Event { event: Some(e) }
}

/// Ids longer than this are refused.
const MAX_ID_LEN: usize = 256;
/// The longest a decline filter lasts; longer requests are shortened to it (as
/// Mesos caps its filters).
pub(crate) const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Most CPUs one agent may offer.
const MAX_AGENT_CPUS: f64 = 1e6;
/// Most memory one agent or executor may hold, in MiB (1 EiB): sums of many
/// stay far from overflowing.
const MAX_MEM_MB: u64 = 1 << 40;

/// Fails unless `id` can name a framework or an executor (and so a sandbox
/// directory on an agent).
/// A role name as Mesos allows it: not empty, `.` or `..`, no `/` at its start, no
/// whitespace, control characters or backslash; at most [`MAX_ID_LEN`] bytes.
pub(crate) fn check_role(role: &str) -> Result<(), Status> {
    if role.is_empty()
        || role == "."
        || role == ".."
        || role.starts_with('/')
        || role.len() > MAX_ID_LEN
        || role
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(Status::invalid_argument(format!(
            "{role:?} is not a role name (empty, `.`, `..`, starting with `/`, longer than \
             {MAX_ID_LEN} bytes, or holding whitespace, control characters or `\\`); pick \
             another, e.g. analytics"
        )));
    }
    Ok(())
}

pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > MAX_ID_LEN
        || id.contains('/')
        || id.chars().any(char::is_control)
    {
        return Err(Status::invalid_argument(format!(
            "{what} {id:?} cannot name a sandbox directory (empty, `.`, `..`, longer than \
             {MAX_ID_LEN} bytes, or holding `/` or control characters); pick another"
        )));
    }
    Ok(())
}

/// The decline filter `seconds` asks for: zero for none, at most
/// [`MAX_REFUSE`]; NaN and negative values are refused.
pub(crate) fn refuse_duration(seconds: f64) -> Result<Duration, Status> {
    seconds_up_to_a_year("refuse_seconds", seconds)
}

/// `seconds` of `field` as a duration of at most a year ([`MAX_REFUSE`]); NaN and negative
/// values are refused.
pub(crate) fn seconds_up_to_a_year(field: &str, seconds: f64) -> Result<Duration, Status> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(Status::invalid_argument(format!(
            "{field} must be zero or a positive number of seconds, got {seconds}"
        )));
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_REFUSE)
        .min(MAX_REFUSE))
}

/// The extras of `resources` of `whom`, or an error naming what is wrong: scalars must be
/// finite and non-negative, ports at most 65535.
pub(crate) fn check_extras(
    whom: &str,
    resources: Option<&pb::Resources>,
) -> Result<Extras, Status> {
    let Some(r) = resources else {
        return Ok(Extras::default());
    };
    if let Some((name, v)) = r.scalars.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid amount of {name} ({v}); give a finite number from 0"
        )));
    }
    if let Some(range) = r.ports.iter().find(|p| p.begin > p.end || p.end > 65535) {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid port range {}-{}; give ranges of ports 0 to 65535, the \
             smaller number first",
            range.begin, range.end
        )));
    }
    if r.disk_mb > MAX_MEM_MB {
        return Err(Status::invalid_argument(format!(
            "{whom} has more disk than can be ({} MiB); at most {MAX_MEM_MB} MiB",
            r.disk_mb
        )));
    }
    Ok(r.extras())
}

/// The exit status a Failure event reports for this update: an executor's process that ended
/// FAILED with a non-zero status, or by a signal (128 + the signal).
pub(crate) fn failure_status(update: &pb::StatusUpdate) -> Option<i32> {
    let failed = update.state == pb::ExecutorState::Failed as i32;
    update.exit_code.filter(|&code| failed && code != 0)
}

/// Checks a framework's capabilities. They are recorded and shown (and kept by agents with
/// its executors); only `MULTI_ROLE` changes what this master does (it allows several
/// roles, [`roles::subscription_roles`]), so, as Mesos' master does with capabilities it does
/// not know, other names are accepted.
pub(crate) fn check_capabilities(capabilities: &[String]) -> Result<(), Status> {
    for c in capabilities {
        check_id("capability", c)?;
    }
    Ok(())
}

/// `resources` of `whom`, or an error naming what is wrong: CPUs must be a
/// finite, non-negative number and memory below 1 EiB.
pub(crate) fn check_resources(
    whom: &str,
    resources: Option<&pb::Resources>,
) -> Result<Resources, Status> {
    let r = tessera_cluster_proto::convert::split(resources).0;
    if !r.cpus.is_finite() || r.cpus < 0.0 || r.cpus > MAX_AGENT_CPUS {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid number of CPUs ({}); give a number from 0 to {MAX_AGENT_CPUS}",
            r.cpus
        )));
    }
    if r.mem_mb > MAX_MEM_MB {
        return Err(Status::invalid_argument(format!(
            "{whom} has more memory than can be ({} MiB); at most {MAX_MEM_MB} MiB",
            r.mem_mb
        )));
    }
    Ok(r)
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
    roles: snapshot::RoleSettings,
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
            roles: snapshot::RoleSettings::of(config),
            metrics: Metrics::default(),
            default_failover: config.framework_failover_timeout,
        }
    }

    // ---------------------------------------------------------------- agents

    /// Registers an agent that offers CPUs and memory only (see
    /// [`MasterState::register_agent_offering`]).
    pub fn register_agent(
        &mut self,
        hostname: String,
        address: String,
        principal: String,
        total: Resources,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        let agent = (hostname, address, principal);
        let offering = AgentOffering::default();
        self.register_agent_offering(agent, total, offering, isolation, client, now)
    }

    /// Registers an agent — `(hostname, address, principal)` with `unreserved` CPUs and
    /// memory and `offering` besides — and returns its new id and heartbeat interval. An
    /// earlier registration of the same principal on the same host (it restarted before its
    /// timeout) is removed as lost first; an address held by another agent's principal is
    /// refused.
    pub fn register_agent_offering(
        &mut self,
        agent: (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        self.admit_agent(None, agent, unreserved, offering, isolation, client, now)
    }

    /// Registers an agent under `id`, or a new id.
    #[allow(clippy::too_many_arguments)] // An agent's registration, field by field.
    fn admit_agent(
        &mut self,
        id: Option<String>,
        (hostname, address, principal): (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        self.take_address(&address, &principal)?;
        if id.is_none() {
            // The same principal registering anew from the same host, on another port: that
            // agent restarted, and what it ran died with it (an agent that recovers its
            // executors registers again under its id instead).
            let restarted: Vec<String> = (self.agents.values())
                .filter(|a| {
                    a.principal == principal && a.hostname == hostname && a.address != address
                })
                .map(|a| a.id.clone())
                .collect();
            for id in restarted {
                self.remove_agent(
                    &id,
                    "its agent registered again as a new agent (it restarted)",
                );
            }
        }
        let id = id.unwrap_or_else(|| {
            self.next_agent += 1;
            format!("{}-S{}", self.run_id, self.next_agent - 1)
        });
        self.allocator.add_agent(&id, unreserved);
        let mut total = unreserved;
        for (role, reserved) in &offering.reserved {
            self.allocator
                .add_reserved(&pool_id(&id, Some(role)), role, *reserved);
            total = total.plus(reserved);
        }
        self.metrics.agents_registered += 1;
        tracing::info!(agent_id = %id, %address, %hostname, resources = %total, extras = %offering.extras, reserved = ?offering.reserved, "agent registered");
        self.agent_at.insert(address.clone(), id.clone());
        self.agents.insert(
            id.clone(),
            Agent {
                id: id.clone(),
                principal,
                hostname,
                address,
                total,
                free_extras: offering.extras.clone(),
                extras: offering.extras,
                attributes: offering.attributes,
                static_reserved: offering.reserved,
                dynamic_reserved: BTreeMap::new(),
                isolation,
                last_heartbeat: now,
                client,
                reachable: true,
            },
        );
        Ok((id, self.heartbeat_interval))
    }

    /// Refuses `address` if another principal's agent holds it; an earlier registration of
    /// the same principal there (it restarted before its timeout) is removed as lost.
    fn take_address(&mut self, address: &str, principal: &str) -> Result<(), Status> {
        if let Some(other) = self.agent_at.get(address).map(|id| &self.agents[id]) {
            if other.principal != principal {
                return Err(Status::permission_denied(format!(
                    "address {address} is registered to agent {} (id {}); agent {principal} cannot take it over — register with your own --advertise-address",
                    other.principal, other.id
                )));
            }
            let stale = other.id.clone();
            self.remove_agent(
                &stale,
                "a new agent registered at its address (it restarted)",
            );
        }
        Ok(())
    }

    /// Registers an agent again under the id an earlier master gave it, with the executors it
    /// still runs (Mesos' re-registration): after a master restart, the agent keeps its id,
    /// its executors are RUNNING again and held by their frameworks — frameworks this master
    /// does not know are made from what the agent kept of them, disconnected, their failover
    /// timeout running, so that they may subscribe again by id and keep their executors.
    ///
    /// An id this master declared lost (it reported those executors LOST) or one already
    /// registered by this agent (an answer that did not arrive) are treated as Mesos does: the
    /// first gets a new id — the agent must then kill what it runs — and the second is kept
    /// as it is. An empty `agent_id` is a first registration, as
    /// [`MasterState::register_agent_offering`].
    #[allow(clippy::too_many_arguments)] // An agent's registration, field by field.
    pub fn reregister_agent(
        &mut self,
        agent_id: String,
        agent: (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        executors: Vec<pb::RecoveredExecutor>,
        now: Instant,
    ) -> Result<(String, Duration, Vec<AgentAction>), Status> {
        let principal = &agent.2;
        if self.agents.contains_key(&agent_id) {
            self.check_agent(&agent_id, principal)?;
            self.heartbeat(&agent_id, principal, now)?;
            let actions = self.agent_restarted(&agent_id, agent, isolation, client, &executors)?;
            return Ok((agent_id, self.heartbeat_interval, actions));
        }
        let taken_back =
            !self.lost_agents.contains(&agent_id) && check_id("agent id", &agent_id).is_ok();
        if !taken_back && !agent_id.is_empty() {
            tracing::info!(%agent_id, "an agent this master cannot take back re-registers; it gets a new id");
        }
        let id = taken_back.then_some(agent_id);
        let (agent_id, interval) =
            self.admit_agent(id, agent, unreserved, offering, isolation, client, now)?;
        if !taken_back {
            return Ok((agent_id, interval, Vec::new()));
        }
        let mut removed = BTreeSet::new();
        for executor in executors {
            if let Some(framework_id) = self.recover_executor(&agent_id, executor, now) {
                removed.insert(framework_id);
            }
        }
        // Executors of frameworks this master removed: shut down, as Mesos does.
        let client = &self.agents[&agent_id].client;
        let actions = removed
            .into_iter()
            .map(|framework_id| AgentAction::ShutdownFramework {
                client: client.clone(),
                agent_id: agent_id.clone(),
                request: ShutdownFrameworkRequest { framework_id },
            })
            .collect();
        Ok((agent_id, interval, actions))
    }

    /// An agent this master knows registers again under its id: an answer that did not arrive,
    /// or the agent restarted within `--agent-timeout-ms` and recovered its executors from its
    /// checkpoint (Mesos' re-registration of a known agent). It may listen on another address
    /// now, and executors RUNNING here that it no longer reports (neither running nor ended
    /// with updates waiting) ended while it was down without a trace: they are LOST, as Mesos'
    /// master reconciles a re-registering agent's tasks. Executors still STARTING are left: their
    /// launch may be on its way to the agent. Executors it reports of frameworks this master
    /// removed meanwhile (the shutdown could not reach the agent while it was down) are shut
    /// down now: the returned actions.
    fn agent_restarted(
        &mut self,
        agent_id: &str,
        (hostname, address, principal): (String, String, String),
        isolation: String,
        client: AgentClient<Channel>,
        reported: &[pb::RecoveredExecutor],
    ) -> Result<Vec<AgentAction>, Status> {
        let old_address = self.agents[agent_id].address.clone();
        if old_address != address {
            if self.agent_at.get(&address).is_some_and(|id| id != agent_id) {
                self.take_address(&address, &principal)?;
            }
            tracing::info!(%agent_id, from = %old_address, to = %address, "agent registered again from another address");
            self.agent_at.remove(&old_address);
            self.agent_at.insert(address.clone(), agent_id.to_string());
        }
        let agent = self.agents.get_mut(agent_id).expect("checked known");
        agent.address = address;
        agent.hostname = hostname;
        agent.isolation = isolation;
        agent.client = client;
        let listed: BTreeSet<(&str, &str)> = (reported.iter())
            .filter_map(|e| Some((e.framework.as_ref()?.id.as_str(), e.executor_id.as_str())))
            .collect();
        let vanished: Vec<(String, String)> = (self.executors.iter())
            .filter(|(key, e)| {
                e.agent_id == agent_id
                    && e.state == pb::ExecutorState::Running
                    && !listed.contains(&(key.0.as_str(), key.1.as_str()))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for (framework_id, executor_id) in vanished {
            tracing::warn!(%agent_id, %framework_id, %executor_id, "a re-registering agent no longer runs an executor; it is LOST");
            self.update_executor(
                &framework_id,
                &executor_id,
                agent_id,
                pb::ExecutorState::Lost,
                format!(
                    "agent {agent_id} registered again (it restarted) without it: it ended while \
                     the agent was down"
                ),
            );
        }
        let removed: BTreeSet<&str> = (reported.iter())
            .filter(|e| pb::ExecutorState::try_from(e.state).is_ok_and(|s| !is_terminal(s)))
            .filter_map(|e| Some(e.framework.as_ref()?.id.as_str()))
            .filter(|id| self.removed_frameworks.iter().any(|r| r == id))
            .collect();
        let client = &self.agents[agent_id].client;
        Ok(removed
            .into_iter()
            .map(|framework_id| AgentAction::ShutdownFramework {
                client: client.clone(),
                agent_id: agent_id.to_string(),
                request: ShutdownFrameworkRequest {
                    framework_id: framework_id.to_string(),
                },
            })
            .collect())
    }

    /// Takes back an executor a re-registering agent runs; returns its framework's id if this
    /// master removed that framework (its executors are to be shut down).
    fn recover_executor(
        &mut self,
        agent_id: &str,
        executor: pb::RecoveredExecutor,
        now: Instant,
    ) -> Option<String> {
        let info = executor.framework?;
        let executor_id = executor.executor_id;
        if check_id("executor id", &executor_id).is_err()
            || check_id("framework id", &info.id).is_err()
        {
            return None;
        }
        if self.removed_frameworks.contains(&info.id) {
            return Some(info.id);
        }
        let (resources, extras) =
            tessera_cluster_proto::convert::split(executor.resources.as_ref());
        match self.frameworks.get(&info.id) {
            Some(fw) if fw.principal != info.principal => {
                tracing::warn!(framework_id = %info.id, %executor_id, %agent_id, "a re-registering agent runs an executor of a framework of another principal; not taken back");
                return None;
            }
            Some(_) => {}
            None => self.add_placeholder_framework(info.clone(), now),
        }
        // What the agent kept names no allocation role: the framework's first role.
        let allocation_role = self.frameworks[&info.id].roles[0].clone();
        let key = (info.id.clone(), executor_id.clone());
        if self
            .executors
            .get(&key)
            .is_some_and(|e| !is_terminal(e.state))
        {
            return None;
        }
        // Running, or ended with updates its framework has still to acknowledge.
        let state = pb::ExecutorState::try_from(executor.state)
            .ok()
            .filter(|s| is_terminal(*s))
            .unwrap_or(pb::ExecutorState::Running);
        self.completed.retain(|k| k != &key);
        tracing::info!(framework_id = %info.id, %executor_id, %agent_id, %resources, ?state, "executor taken back from a re-registering agent");
        if is_terminal(state) {
            self.completed.push_back(key.clone());
        } else {
            // Taken back as unreserved: what the agent kept of it names no reservation.
            self.allocator
                .add_used(&info.id, &allocation_role, agent_id, resources);
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.free_extras = agent.free_extras.minus(&extras);
            }
        }
        self.executors.insert(
            key,
            Executor {
                framework_id: info.id,
                allocation_role,
                executor_id,
                agent_id: agent_id.to_string(),
                resources,
                state,
                message: "taken back after the master restarted".to_string(),
                usage: pb::ExecutorUsage::default(),
                reservation: None,
                extras,
            },
        );
        None
    }

    /// A framework known only from an agent's executors: disconnected until it subscribes
    /// again with its id, removed (its executors shut down) when its failover timeout passes.
    fn add_placeholder_framework(&mut self, info: pb::FrameworkInfo, now: Instant) {
        let named = if info.roles.is_empty() {
            std::slice::from_ref(&info.role)
        } else {
            &info.roles[..]
        };
        let mut roles: Vec<String> = (named.iter())
            .filter(|r| check_role(r).is_ok())
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            roles.push(tessera_allocator::DEFAULT_ROLE.to_string());
        }
        let failover_timeout =
            seconds_up_to_a_year("failover_timeout", info.failover_timeout_seconds)
                .unwrap_or(self.default_failover);
        tracing::info!(framework_id = %info.id, ?failover_timeout, "framework known from a re-registering agent; waiting for it to subscribe again");
        self.allocator.add_framework(&info.id, &as_strs(&roles));
        self.allocator.deactivate_framework(&info.id);
        self.frameworks.insert(
            info.id.clone(),
            Framework {
                id: info.id,
                principal: info.principal,
                name: info.name,
                user: info.user,
                roles,
                suppressed_roles: BTreeSet::new(),
                events: None,
                connection: 0,
                disconnected_at: Some(now),
                failover_timeout,
                capabilities: info.capabilities,
                unacknowledged: VecDeque::new(),
            },
        );
    }

    /// Fails unless `agent_id` is registered and belongs to `principal`.
    pub fn check_agent(&self, agent_id: &str, principal: &str) -> Result<(), Status> {
        match self.agents.get(agent_id) {
            Some(agent) if agent.principal == principal => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "agent id {agent_id} belongs to another agent; agent {principal} may only speak for its own registration"
            ))),
            None => Err(Status::not_found(format!(
                "agent id {agent_id:?} is not registered with this master; register again"
            ))),
        }
    }

    /// Records a heartbeat; false if the agent is unknown (lost or from a
    /// previous master run) and must register again.
    pub fn heartbeat(
        &mut self,
        agent_id: &str,
        principal: &str,
        now: Instant,
    ) -> Result<bool, Status> {
        if self.agents.contains_key(agent_id) {
            self.check_agent(agent_id, principal)?;
        }
        Ok(match self.agents.get_mut(agent_id) {
            Some(agent) => {
                agent.last_heartbeat = now;
                if !agent.reachable {
                    agent.reachable = true;
                    tracing::info!(%agent_id, "the agent is heard from again; offering its resources");
                    self.set_agent_offered(agent_id, true);
                }
                true
            }
            None => {
                if self.lost_agents.contains(agent_id) {
                    tracing::info!(%agent_id, "heartbeat from an agent declared lost; telling it to register again");
                }
                false
            }
        })
    }

    /// A call to the agent could not connect (`why`): its resources, reserved or not, are not
    /// offered until it heartbeats again (Mesos deactivates an agent whose connection broke).
    /// Its executors stay: it may only be cut off for a moment; the agent timeout decides.
    pub fn agent_unreachable(&mut self, agent_id: &str, why: &str) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if !agent.reachable {
            return;
        }
        agent.reachable = false;
        tracing::warn!(%agent_id, address = %agent.address, %why, "the agent cannot be reached; offering none of its resources until it heartbeats again");
        self.set_agent_offered(agent_id, false);
    }

    /// Offers `agent_id`'s resources and its reserved pools', or stops offering them.
    fn set_agent_offered(&mut self, agent_id: &str, offered: bool) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let roles = agent
            .static_reserved
            .keys()
            .chain(agent.dynamic_reserved.keys());
        let pools: Vec<String> = std::iter::once(agent_id.to_string())
            .chain(roles.map(|role| pool_id(agent_id, Some(role))))
            .collect();
        for pool in pools {
            if offered {
                self.allocator.activate_agent(&pool);
            } else {
                self.allocator.deactivate_agent(&pool);
            }
        }
    }

    /// Keeps what an agent's running executors use, as its heartbeat reports it; reports on
    /// executors it does not run are ignored.
    pub fn record_usage(&mut self, agent_id: &str, usage: Vec<pb::ExecutorUsage>) {
        for u in usage {
            let key = (u.framework_id.clone(), u.executor_id.clone());
            if let Some(e) = self.executors.get_mut(&key)
                && e.agent_id == agent_id
                && !is_terminal(e.state)
            {
                e.usage = u;
            }
        }
    }

    /// Removes an agent: its offers are rescinded, its executors reported
    /// LOST, its resources leave the pool.
    pub fn remove_agent(&mut self, agent_id: &str, reason: &str) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        tracing::warn!(%agent_id, address = %agent.address, %reason, "agent removed");
        let failure = pb::Failure {
            agent_id: agent_id.to_string(),
            executor_id: String::new(),
            status: None,
        };
        for id in self.frameworks.keys() {
            self.send(id, event(pb::event::Event::Failure(failure.clone())));
        }
        self.agent_at.remove(&agent.address);
        self.metrics.agents_lost += 1;
        self.lost_agents.insert(agent_id.to_string());
        self.allocator.remove_agent(agent_id);
        let roles = agent
            .static_reserved
            .keys()
            .chain(agent.dynamic_reserved.keys());
        for role in roles {
            self.allocator.remove_agent(&pool_id(agent_id, Some(role)));
        }
        let offers: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.agent_id == agent_id)
            .map(|o| o.id.clone())
            .collect();
        for offer_id in offers {
            let offer = self.offers.remove(&offer_id).expect("listed offer exists");
            self.metrics.offers_rescinded += 1;
            self.send(
                &offer.framework_id,
                event(pb::event::Event::Rescind(pb::Rescind { offer_id })),
            );
        }
        let lost: Vec<(String, String)> = self
            .executors
            .iter()
            .filter(|(_, e)| e.agent_id == agent_id && !is_terminal(e.state))
            .map(|(k, _)| k.clone())
            .collect();
        let message = format!("agent {agent_id} at {} was lost: {reason}", agent.address);
        for (framework_id, executor_id) in lost {
            // The agent is gone from the allocator already; recovering is a no-op.
            self.update_executor(
                &framework_id,
                &executor_id,
                agent_id,
                pb::ExecutorState::Lost,
                message.clone(),
            );
        }
    }

    /// Agents whose last heartbeat is older than `timeout`.
    pub fn timed_out_agents(&self, now: Instant, timeout: Duration) -> Vec<(String, Duration)> {
        self.agents
            .values()
            .filter_map(|a| {
                let silent = now.saturating_duration_since(a.last_heartbeat);
                (silent > timeout).then(|| (a.id.clone(), silent))
            })
            .collect()
    }

    // ------------------------------------------------------------ frameworks

    /// Subscribes a framework (new, or re-subscribing with its id) with the master's default
    /// failover timeout and no capabilities; see [`MasterState::subscribe_framework`].
    pub fn subscribe(
        &mut self,
        name: String,
        user: String,
        role: String,
        principal: String,
        framework_id: Option<String>,
        events: EventSender,
    ) -> Result<(String, u64), Status> {
        let subscription = Subscription {
            name,
            user,
            role,
            framework_id,
            ..Subscription::default()
        };
        self.subscribe_framework(subscription, principal, events)
    }

    /// Subscribes a framework (new, or re-subscribing with its id: its name, user, failover
    /// timeout and capabilities are updated, as Mesos updates FrameworkInfo) and sends it
    /// `Registered`. An id this master does not know is taken (a framework of a previous
    /// master run, before its agents re-registered).
    pub fn subscribe_framework(
        &mut self,
        subscription: Subscription,
        principal: String,
        events: EventSender,
    ) -> Result<(String, u64), Status> {
        let Subscription {
            name,
            user,
            role,
            roles,
            framework_id,
            failover_timeout,
            capabilities,
        } = subscription;
        check_capabilities(&capabilities)?;
        let failover_timeout = failover_timeout.unwrap_or(self.default_failover);
        let roles = roles::subscription_roles(&role, &roles, &capabilities)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        for role in &roles {
            check_role(role)?;
        }
        if let Some(id) = &framework_id {
            check_id("framework id", id)?;
            if self.removed_frameworks.contains(id) {
                return Err(Status::failed_precondition(format!(
                    "framework {id} was removed (torn down, or not back within its failover \
                     timeout) and its executors shut down; subscribe without a framework id"
                )));
            }
            if let Some(fw) = self.frameworks.get(id) {
                if fw.principal != principal {
                    return Err(Status::permission_denied(format!(
                        "framework {id} belongs to another principal; principal {principal} cannot subscribe as it — subscribe without a framework id to get one of your own"
                    )));
                }
                if fw.roles != roles {
                    return Err(Status::invalid_argument(format!(
                        "framework {id} is in roles {:?}; subscribe again in those roles (a framework cannot change its roles)",
                        fw.roles
                    )));
                }
            }
        }
        let id = match framework_id {
            Some(id) => id,
            None => {
                let id = format!("{}-F{}", self.run_id, self.next_framework);
                self.next_framework += 1;
                id
            }
        };
        match self.frameworks.get_mut(&id) {
            Some(fw) => {
                if let Some(old) = fw.events.take() {
                    let _ = old.send(Ok(event(pb::event::Event::Error(pb::Error {
                        message: format!(
                            "framework {id} subscribed again from another connection; this stream is closed"
                        ),
                    }))));
                }
                fw.events = Some(events);
                fw.connection += 1;
                fw.disconnected_at = None;
                fw.name = name;
                fw.user = user;
                fw.failover_timeout = failover_timeout;
                fw.capabilities = capabilities;
                self.allocator.activate_framework(&id);
                tracing::info!(framework_id = %id, "framework re-subscribed");
            }
            None => {
                tracing::info!(framework_id = %id, %name, %user, "framework subscribed");
                self.metrics.frameworks_subscribed += 1;
                self.allocator.add_framework(&id, &as_strs(&roles));
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        principal,
                        name,
                        user,
                        roles,
                        suppressed_roles: BTreeSet::new(),
                        events: Some(events),
                        connection: 0,
                        disconnected_at: None,
                        failover_timeout,
                        capabilities,
                        unacknowledged: VecDeque::new(),
                    },
                );
            }
        }
        let connection = self.frameworks[&id].connection;
        self.send(
            &id,
            event(pb::event::Event::Registered(pb::Registered {
                framework_id: id.clone(),
                heartbeat_interval_seconds: self.framework_heartbeat_interval.as_secs_f64(),
                failover_timeout_seconds: failover_timeout.as_secs_f64(),
            })),
        );
        // What it has not acknowledged, again (e.g. its executors' ends while it was away).
        let again: Vec<pb::StatusUpdate> = self.frameworks[&id]
            .unacknowledged
            .iter()
            .cloned()
            .collect();
        for update in again {
            self.send(&id, event(pb::event::Event::StatusUpdate(update)));
        }
        Ok((id, connection))
    }

    /// The subscription stream `connection` of the framework closed. Its
    /// offers are rescinded and it gets no more until it subscribes again;
    /// with a zero failover timeout it is removed at once.
    pub fn framework_disconnected(
        &mut self,
        framework_id: &str,
        connection: u64,
        now: Instant,
    ) -> Vec<AgentAction> {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return Vec::new();
        };
        if fw.connection != connection || fw.events.is_none() {
            return Vec::new();
        }
        fw.events = None;
        fw.disconnected_at = Some(now);
        let failover_timeout = fw.failover_timeout;
        self.allocator.deactivate_framework(framework_id);
        self.rescind_offers_of(framework_id);
        if failover_timeout.is_zero() {
            self.remove_framework(framework_id, "its subscription stream closed")
        } else {
            tracing::info!(%framework_id, ?failover_timeout, "framework disconnected; waiting for it to subscribe again");
            Vec::new()
        }
    }

    /// Frameworks disconnected for longer than their failover timeout.
    pub fn expired_frameworks(&self, now: Instant) -> Vec<String> {
        self.frameworks
            .values()
            .filter(|f| {
                f.disconnected_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= f.failover_timeout)
            })
            .map(|f| f.id.clone())
            .collect()
    }

    /// Removes a framework: agents are told to kill its executors, its
    /// resources are recovered, its stream (if any) is closed with an error.
    pub fn remove_framework(&mut self, framework_id: &str, reason: &str) -> Vec<AgentAction> {
        let Some(mut fw) = self.frameworks.remove(framework_id) else {
            return Vec::new();
        };
        tracing::info!(%framework_id, name = %fw.name, %reason, "framework removed");
        self.metrics.frameworks_removed += 1;
        self.removed_frameworks.push_back(framework_id.to_string());
        if self.removed_frameworks.len() > MAX_REMOVED_FRAMEWORKS {
            self.removed_frameworks.pop_front();
        }
        if let Some(events) = fw.events.take() {
            let _ = events.send(Ok(event(pb::event::Event::Error(pb::Error {
                message: format!("framework {framework_id} was removed: {reason}"),
            }))));
        }
        self.offers.retain(|_, o| o.framework_id != framework_id);
        self.allocator.remove_framework(framework_id);
        let agents: BTreeSet<String> = self
            .executors
            .values()
            .filter(|e| e.framework_id == framework_id && !is_terminal(e.state))
            .map(|e| e.agent_id.clone())
            .collect();
        agents
            .into_iter()
            .filter_map(|agent_id| {
                let agent = self.agents.get(&agent_id)?;
                Some(AgentAction::ShutdownFramework {
                    client: agent.client.clone(),
                    agent_id,
                    request: ShutdownFrameworkRequest {
                        framework_id: framework_id.to_string(),
                    },
                })
            })
            .collect()
    }

    /// Rescinds the offers older than the offer timeout.
    fn rescind_expired_offers(&mut self, now: Instant) {
        let Some(timeout) = self.offer_timeout else {
            return;
        };
        let expired: Vec<String> = self
            .offers
            .values()
            .filter(|o| now.saturating_duration_since(o.made_at) >= timeout)
            .map(|o| o.id.clone())
            .collect();
        for offer_id in expired {
            let offer = self.offers.remove(&offer_id).expect("listed offer exists");
            tracing::debug!(%offer_id, framework_id = %offer.framework_id, "offer timed out");
            self.metrics.offers_rescinded += 1;
            let framework_id = offer.framework_id.clone();
            self.release_offer(offer, None);
            self.send(
                &framework_id,
                event(pb::event::Event::Rescind(pb::Rescind { offer_id })),
            );
        }
    }

    /// An offer's resources go back: CPUs and memory to the pool they came from (with the
    /// framework's decline filter, if any), extras to the agent's free ones.
    fn release_offer(&mut self, offer: Offer, refuse_until: Option<Instant>) {
        let pool = pool_id(&offer.agent_id, offer.reservation.as_deref());
        self.allocator.recover_resources(
            &offer.framework_id,
            &offer.allocation_role,
            &pool,
            offer.resources,
            refuse_until,
        );
        if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
            agent.free_extras = agent.free_extras.plus(&offer.extras);
        }
    }

    fn rescind_offers_of(&mut self, framework_id: &str) {
        let ids: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.framework_id == framework_id)
            .map(|o| o.id.clone())
            .collect();
        for id in ids {
            let offer = self.offers.remove(&id).expect("listed offer exists");
            self.release_offer(offer, None);
        }
    }

    fn send(&self, framework_id: &str, e: pb::Event) {
        if let Some(tx) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.events.as_ref())
        {
            let _ = tx.send(Ok(e));
        }
    }

    /// Fails with a status naming the problem unless the framework is
    /// subscribed and bound to `principal`.
    pub fn check_framework(&self, framework_id: &str, principal: &str) -> Result<(), Status> {
        match self.frameworks.get(framework_id) {
            Some(fw) if fw.principal == principal => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "framework {framework_id} is not yours: it belongs to another principal than \
                 {principal}"
            ))),
            None => Err(Status::not_found(format!(
                "framework {framework_id:?} is not registered with this master (it was torn down, \
                 timed out, or the master restarted); subscribe again"
            ))),
        }
    }

    /// Sends a Heartbeat to every connected framework.
    pub fn heartbeat_frameworks(&self) {
        for id in self.frameworks.keys() {
            self.send(id, event(pb::event::Event::Heartbeat(pb::Heartbeat {})));
        }
    }

    /// The framework wants no offers in `roles` (empty: all its roles) until it revives
    /// them (Mesos' SUPPRESS); offers it holds stay.
    pub fn suppress(
        &mut self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<(), Status> {
        let named = self.roles_named(framework_id, principal, roles)?;
        self.allocator
            .suppress_offers(framework_id, &as_strs(&named));
        let fw = self.frameworks.get_mut(framework_id).expect("checked");
        fw.suppressed_roles.extend(named);
        Ok(())
    }

    /// The framework wants offers again in `roles` (empty: all its roles), on every agent
    /// (Mesos' REVIVE: its decline filters are dropped).
    pub fn revive(
        &mut self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<(), Status> {
        let named = self.roles_named(framework_id, principal, roles)?;
        self.allocator.revive_offers(framework_id, &as_strs(&named));
        let fw = self.frameworks.get_mut(framework_id).expect("checked");
        fw.suppressed_roles.retain(|r| !named.contains(r));
        Ok(())
    }

    /// The framework's roles that `roles` names (empty: all of them), once the framework is
    /// checked; a role it is not in is refused.
    fn roles_named(
        &self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<Vec<String>, Status> {
        self.check_framework(framework_id, principal)?;
        let fw = &self.frameworks[framework_id];
        if roles.is_empty() {
            return Ok(fw.roles.clone());
        }
        match roles.iter().find(|r| !fw.roles.contains(r)) {
            Some(r) => Err(Status::invalid_argument(format!(
                "framework {framework_id} is not in role {r:?}; name only its roles {:?} (or                  none, for all of them)",
                fw.roles
            ))),
            None => Ok(roles.to_vec()),
        }
    }

    // ---------------------------------------------------------------- offers

    /// Runs the allocator and sends the resulting offers, after rescinding offers past the
    /// offer timeout (their resources go back to the pool, with no filter, as in Mesos).
    pub fn allocate(&mut self, now: Instant) {
        let started = Instant::now();
        self.rescind_expired_offers(now);
        let decisions = self.allocator.allocate(now);
        self.metrics.allocation_ran(started.elapsed());
        self.send_reclaims(now);
        let mut by_framework: BTreeMap<String, Vec<pb::Offer>> = BTreeMap::new();
        for d in decisions {
            let (agent_id, reservation) = split_pool(&d.agent_id);
            let connected = self
                .frameworks
                .get(&d.framework_id)
                .is_some_and(|f| f.events.is_some());
            let agent = match self.agents.get_mut(agent_id) {
                Some(agent) if connected => agent,
                _ => {
                    self.allocator.recover_resources(
                        &d.framework_id,
                        &d.role,
                        &d.agent_id,
                        d.resources,
                        None,
                    );
                    continue;
                }
            };
            // Extras ride with the agent's unreserved CPUs and memory.
            let extras = match reservation {
                None => std::mem::take(&mut agent.free_extras),
                Some(_) => Extras::default(),
            };
            let id = format!("{}-O{}", self.run_id, self.next_offer);
            self.next_offer += 1;
            self.metrics.offers_made += 1;
            tracing::debug!(offer_id = %id, framework_id = %d.framework_id, pool = %d.agent_id, resources = %d.resources, %extras, "offer");
            let offer = Offer {
                id: id.clone(),
                framework_id: d.framework_id.clone(),
                allocation_role: d.role.to_string(),
                agent_id: agent_id.to_string(),
                reservation: reservation.map(str::to_string),
                resources: d.resources,
                extras,
                made_at: now,
            };
            by_framework
                .entry(d.framework_id)
                .or_default()
                .push(offer_to_pb(&offer, agent));
            self.offers.insert(id, offer);
        }
        for (framework_id, offers) in by_framework {
            self.send(
                &framework_id,
                event(pb::event::Event::Offers(pb::Offers { offers })),
            );
        }
    }

    /// Asks frameworks above their fair share to give back what they hold beyond it, when
    /// another has waited (see [`MasterConfig::reclaim_after`]).
    fn send_reclaims(&mut self, now: Instant) {
        let Some(patience) = self.reclaim_after else {
            return;
        };
        for d in self.allocator.reclaim(now, patience) {
            let waiting = self
                .frameworks
                .get(&d.for_framework)
                .map_or("another framework", |f| f.name.as_str());
            let message = format!(
                "{waiting} ({}) has waited {} s or more below its fair share with nothing free",
                d.for_framework,
                patience.as_secs_f64()
            );
            tracing::info!(framework_id = %d.framework_id, resources = %d.resources, %message, "asking for resources back");
            self.metrics.reclaims += 1;
            self.send(
                &d.framework_id,
                event(pb::event::Event::Reclaim(pb::Reclaim {
                    resources: Some(pb::Resources::of_cpus_mem(&d.resources)),
                    message,
                })),
            );
        }
    }

    /// Declines offers; their resources are not offered to this framework on
    /// those agents for `refuse` (if non-zero). Unknown offers are ignored (an
    /// offer may have been rescinded meanwhile).
    pub fn decline(
        &mut self,
        framework_id: &str,
        principal: &str,
        offer_ids: &[String],
        refuse_seconds: f64,
        now: Instant,
    ) -> Result<(), Status> {
        self.check_framework(framework_id, principal)?;
        let refuse = refuse_duration(refuse_seconds)?;
        let refuse_until = (!refuse.is_zero()).then(|| now + refuse);
        for offer_id in offer_ids {
            let Some(offer) = self.offers.get(offer_id) else {
                tracing::debug!(%offer_id, "decline of an unknown offer ignored");
                continue;
            };
            if offer.framework_id != framework_id {
                return Err(Status::permission_denied(format!(
                    "offer {offer_id} was made to another framework"
                )));
            }
            let offer = self.offers.remove(offer_id).expect("offer exists");
            self.metrics.offers_declined += 1;
            self.release_offer(offer, refuse_until);
        }
        Ok(())
    }

    /// Accepts offers (all on one agent, of one pool) with their operations: launches
    /// executors, reserves and unreserves (see [`operations`]); the rest is recovered.
    /// Nothing changes if the request is invalid.
    pub fn accept(
        &mut self,
        request: pb::AcceptRequest,
        principal: &str,
        now: Instant,
    ) -> Result<Vec<AgentAction>, Status> {
        let framework_id = request.framework_id.clone();
        let framework_id = framework_id.as_str();
        self.check_framework(framework_id, principal)?;
        if request.offer_ids.is_empty() {
            return Err(Status::invalid_argument("accept names no offer"));
        }
        let distinct: BTreeSet<&String> = request.offer_ids.iter().collect();
        if distinct.len() != request.offer_ids.len() {
            return Err(Status::invalid_argument(
                "accept names an offer more than once; name each offer once",
            ));
        }
        let refuse = refuse_duration(request.refuse_seconds)?;
        let mut first: Option<&Offer> = None;
        let mut offered = Resources::ZERO;
        let mut offered_extras = Extras::default();
        for offer_id in &request.offer_ids {
            let offer = self.offers.get(offer_id).ok_or_else(|| {
                Status::failed_precondition(format!(
                    "offer {offer_id} is no longer valid (already accepted, declined or rescinded); \
                     wait for a new offer"
                ))
            })?;
            if offer.framework_id != framework_id {
                return Err(Status::permission_denied(format!(
                    "offer {offer_id} was made to another framework"
                )));
            }
            match first {
                Some(f) if f.agent_id != offer.agent_id => {
                    return Err(Status::invalid_argument(
                        "accepted offers must all be on the same agent",
                    ));
                }
                Some(f) if f.reservation != offer.reservation => {
                    return Err(Status::invalid_argument(
                        "accepted offers must be all unreserved or all of one reservation; \
                         accept reserved and unreserved offers separately",
                    ));
                }
                Some(f) if f.allocation_role != offer.allocation_role => {
                    return Err(Status::invalid_argument(
                        "accepted offers must all be allocated to one role; accept the offers \
                         of each role (`allocation_role`) separately",
                    ));
                }
                _ => first = Some(offer),
            }
            offered = offered.plus(&offer.resources);
            offered_extras = offered_extras.plus(&offer.extras);
        }
        let first = first.expect("at least one offer");
        let (agent_id, reservation) = (first.agent_id.clone(), first.reservation.clone());
        // RESERVE and UNRESERVE act for the role the offers are allocated to.
        let role = first.allocation_role.clone();
        let operations = self.operations_of(framework_id, &request)?;
        let agent = self.agents.get(&agent_id).ok_or_else(|| {
            Status::failed_precondition(format!("agent {agent_id} is gone; wait for a new offer"))
        })?;
        let dynamic = reservation
            .as_ref()
            .and_then(|r| agent.dynamic_reserved.get(r).copied())
            .unwrap_or_default();
        let offers = Offered {
            resources: offered,
            extras: offered_extras,
            reservation: reservation.as_deref(),
            dynamic,
        };
        let plan = operations::plan(&offers, &role, &operations)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let client = agent.client.clone();
        let framework = self.frameworks.get(framework_id).map(Framework::info);
        for offer_id in &request.offer_ids {
            self.offers.remove(offer_id);
        }
        self.metrics.offers_accepted += request.offer_ids.len() as u64;
        self.metrics.executors_launched += plan.launches.len() as u64;
        let pool = pool_id(&agent_id, reservation.as_deref());
        if !plan.reserved.is_zero() {
            self.move_reservation(framework_id, &agent_id, &role, plan.reserved, true);
        }
        if !plan.unreserved.is_zero() {
            self.move_reservation(framework_id, &agent_id, &role, plan.unreserved, false);
        }
        let refuse_until = (!refuse.is_zero()).then(|| now + refuse);
        self.allocator
            .recover_resources(framework_id, &role, &pool, plan.unused, refuse_until);
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.free_extras = agent.free_extras.plus(&plan.unused_extras);
        }
        let mut wire: BTreeMap<String, pb::ExecutorLaunch> = operations_launches(request)
            .map(|l| (l.executor_id.clone(), l))
            .collect();
        let mut actions = Vec::new();
        for (executor_id, resources, extras) in plan.launches {
            let launch = wire.remove(&executor_id).expect("every launch planned");
            let key = (framework_id.to_string(), executor_id.clone());
            if self.executors.contains_key(&key) {
                // The id of an executor that ended is used again.
                self.completed.retain(|k| k != &key);
            }
            tracing::info!(%framework_id, %executor_id, %agent_id, %resources, %extras, "launching executor");
            self.executors.insert(
                key,
                Executor {
                    framework_id: framework_id.to_string(),
                    allocation_role: role.clone(),
                    executor_id: executor_id.clone(),
                    agent_id: agent_id.clone(),
                    reservation: reservation.clone(),
                    resources,
                    extras,
                    state: pb::ExecutorState::Starting,
                    message: String::new(),
                    usage: pb::ExecutorUsage::default(),
                },
            );
            actions.push(AgentAction::Launch {
                client: client.clone(),
                agent_id: agent_id.clone(),
                request: LaunchExecutorRequest {
                    framework_id: framework_id.to_string(),
                    executor_id,
                    command: launch.command,
                    resources: launch.resources,
                    framework: framework.clone(),
                    files_credential: launch.files_credential,
                },
            });
        }
        Ok(actions)
    }

    /// The operations of an accept, checked one by one (ids, programs, amounts): its
    /// `operations`, then its `launches`.
    fn operations_of(
        &self,
        framework_id: &str,
        request: &pb::AcceptRequest,
    ) -> Result<Vec<Operation>, Status> {
        use pb::operation::Operation as Op;
        let mut new_ids = BTreeSet::new();
        let mut out = Vec::new();
        let launches = request.launches.iter().cloned().map(Op::Launch);
        let ops = request
            .operations
            .iter()
            .filter_map(|o| o.operation.clone());
        for op in ops.chain(launches) {
            out.push(match op {
                Op::Launch(launch) => {
                    let id = &launch.executor_id;
                    check_id("executor id", id)?;
                    if launch.command.as_ref().is_none_or(|c| c.program.is_empty()) {
                        return Err(Status::invalid_argument(format!(
                            "executor {id} has no program to run"
                        )));
                    }
                    let key = (framework_id.to_string(), id.clone());
                    let in_use = self
                        .executors
                        .get(&key)
                        .is_some_and(|e| !is_terminal(e.state));
                    if in_use || !new_ids.insert(id.clone()) {
                        return Err(Status::already_exists(format!(
                            "executor id {id} is already in use by this framework; pick another"
                        )));
                    }
                    let whom = format!("executor {id}");
                    Operation::Launch {
                        executor_id: id.clone(),
                        resources: check_resources(&whom, launch.resources.as_ref())?,
                        extras: check_extras(&whom, launch.resources.as_ref())?,
                    }
                }
                Op::Reserve(r) => Operation::Reserve {
                    resources: check_resources("RESERVE", Some(&r))?,
                    extras: check_extras("RESERVE", Some(&r))?,
                },
                Op::Unreserve(r) => Operation::Unreserve {
                    resources: check_resources("UNRESERVE", Some(&r))?,
                    extras: check_extras("UNRESERVE", Some(&r))?,
                },
            });
        }
        Ok(out)
    }

    /// Moves `amount` (held by the framework, as part of an accepted offer) between the
    /// agent's unreserved pool and `role`'s reservation on it: into the reservation when
    /// `reserve`, out of it otherwise. The amount is free in its new pool.
    fn move_reservation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        amount: Resources,
        reserve: bool,
    ) {
        let unreserved = pool_id(agent_id, None);
        let reserved = pool_id(agent_id, Some(role));
        let (from, to) = if reserve {
            (&unreserved, &reserved)
        } else {
            (&reserved, &unreserved)
        };
        // The framework's resources being moved are in `role` (reserving and unreserving act
        // for the offers' allocation role).
        self.allocator
            .recover_resources(framework_id, role, from, amount, None);
        let from_total = self.allocator.total_of(from).unwrap_or_default();
        self.allocator.set_total(from, from_total.minus(&amount));
        match self.allocator.total_of(to) {
            Some(total) => self.allocator.set_total(to, total.plus(&amount)),
            None => self.allocator.add_reserved(to, role, amount),
        }
        if !reserve && from_total.minus(&amount).is_zero() {
            self.allocator.remove_agent(from);
        }
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let dynamic = agent.dynamic_reserved.entry(role.to_string()).or_default();
        *dynamic = if reserve {
            dynamic.plus(&amount)
        } else {
            dynamic.minus(&amount)
        };
        if dynamic.is_zero() {
            agent.dynamic_reserved.remove(role);
        }
        tracing::info!(%framework_id, %agent_id, %role, %amount, reserve, "reservation changed");
    }

    // ------------------------------------------------------------- executors

    /// Asks the executor's agent to kill it at once (SIGKILL).
    pub fn kill(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Vec<AgentAction>, Status> {
        self.stop_executor(framework_id, principal, executor_id, false)
    }

    /// Asks the executor's agent to shut it down gracefully (Mesos' SHUTDOWN): SIGTERM, then
    /// SIGKILL after the agent's grace period.
    pub fn shutdown_executor(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Vec<AgentAction>, Status> {
        self.stop_executor(framework_id, principal, executor_id, true)
    }

    fn stop_executor(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
        graceful: bool,
    ) -> Result<Vec<AgentAction>, Status> {
        let Some(agent) = self.running_agent(framework_id, principal, executor_id)? else {
            return Ok(Vec::new());
        };
        Ok(vec![AgentAction::Kill {
            client: agent.client.clone(),
            agent_id: agent.id.clone(),
            request: KillExecutorRequest {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
                graceful,
            },
        }])
    }

    /// The agent that runs the framework's executor: `None` if it ended or its agent is gone;
    /// an error if the caller is not the framework's principal or the executor is unknown.
    fn running_agent(
        &self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Option<&Agent>, Status> {
        self.check_framework(framework_id, principal)?;
        let key = (framework_id.to_string(), executor_id.to_string());
        let executor = self.executors.get(&key).ok_or_else(|| {
            Status::not_found(format!(
                "framework {framework_id} has no executor {executor_id:?} here (it never ran, or \
                 ended before this master was elected); `reconcile` lists those it knows"
            ))
        })?;
        if is_terminal(executor.state) {
            return Ok(None);
        }
        Ok(self.agents.get(&executor.agent_id))
    }

    /// Sends bytes to a running executor of the framework through its agent (Mesos' MESSAGE).
    pub fn message(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
        data: Vec<u8>,
    ) -> Result<Vec<AgentAction>, Status> {
        let agent = self
            .running_agent(framework_id, principal, executor_id)?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "executor {executor_id} of framework {framework_id} does not run (it ended, or \
                     its agent is gone); send messages to running executors"
                ))
            })?;
        Ok(vec![AgentAction::Message {
            client: agent.client.clone(),
            agent_id: agent.id.clone(),
            request: DeliverMessageRequest {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
                data,
            },
        }])
    }

    /// What Reconcile answers (Mesos' reconciliation): for each executor id asked, its latest
    /// state as this master knows it, or LOST for one it does not know; with no id, the
    /// latest state of every executor of the framework that has not ended. Each carries reason
    /// RECONCILIATION.
    pub fn reconciliation(
        &self,
        framework_id: &str,
        executor_ids: &[String],
    ) -> Vec<pb::StatusUpdate> {
        let known = |e: &Executor| pb::StatusUpdate {
            agent_id: e.agent_id.clone(),
            framework_id: e.framework_id.clone(),
            executor_id: e.executor_id.clone(),
            state: e.state as i32,
            message: e.message.clone(),
            exit_code: None,
            reason: pb::ExecutorReason::Reconciliation as i32,
            // Neither kept nor acknowledged: asked again, it is answered again (as in Mesos).
            uuid: String::new(),
            latest_state: e.state as i32,
        };
        if executor_ids.is_empty() {
            return self
                .executors
                .values()
                .filter(|e| e.framework_id == framework_id && !is_terminal(e.state))
                .map(known)
                .collect();
        }
        executor_ids
            .iter()
            .map(
                |id| match self.executors.get(&(framework_id.to_string(), id.clone())) {
                    Some(e) => known(e),
                    None => pb::StatusUpdate {
                        agent_id: String::new(),
                        framework_id: framework_id.to_string(),
                        executor_id: id.clone(),
                        state: pb::ExecutorState::Lost as i32,
                        message: format!("executor {id} is unknown to the master"),
                        exit_code: None,
                        reason: pb::ExecutorReason::Reconciliation as i32,
                        uuid: String::new(),
                        latest_state: pb::ExecutorState::Lost as i32,
                    },
                },
            )
            .collect()
    }

    /// Sends the framework the [`MasterState::reconciliation`] of `executor_ids` as status
    /// update events.
    pub fn reconcile(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_ids: &[String],
    ) -> Result<(), Status> {
        self.check_framework(framework_id, principal)?;
        for id in executor_ids {
            check_id("executor id", id)?;
        }
        for update in self.reconciliation(framework_id, executor_ids) {
            self.send(framework_id, event(pb::event::Event::StatusUpdate(update)));
        }
        Ok(())
    }

    /// Forwards a message an executor sent its framework, from the agent holding `principal`:
    /// it must be the agent that runs the executor, still running. Dropped, as Mesos drops
    /// it, when the framework is away.
    pub fn executor_message(
        &mut self,
        principal: &str,
        message: pb::ExecutorMessage,
    ) -> Result<(), Status> {
        self.check_agent(&message.agent_id, principal)?;
        let key = (message.framework_id.clone(), message.executor_id.clone());
        match self.executors.get(&key) {
            Some(e) if e.agent_id == message.agent_id && !is_terminal(e.state) => {}
            _ => {
                return Err(Status::permission_denied(format!(
                    "agent {principal} runs no executor {:?} of framework {:?}; only the agent \
                     that runs an executor sends its messages",
                    message.executor_id, message.framework_id
                )));
            }
        }
        let framework_id = message.framework_id.clone();
        self.send(&framework_id, event(pb::event::Event::Message(message)));
        Ok(())
    }

    /// Applies a status update that the agent holding `principal` sent: it
    /// must be the agent `agent_id`, and that agent must run the executor.
    ///
    /// Updates of a framework this master no longer has (it was removed) are acknowledged on
    /// its behalf — no one else will — and the returned action tells the agent so.
    pub fn agent_update(
        &mut self,
        principal: &str,
        update: pb::StatusUpdate,
    ) -> Result<Vec<AgentAction>, Status> {
        let state = pb::ExecutorState::try_from(update.state)
            .ok()
            .filter(|s| *s != pb::ExecutorState::Unspecified)
            .ok_or_else(|| {
                Status::invalid_argument(format!("unknown executor state {}", update.state))
            })?;
        self.check_agent(&update.agent_id, principal)?;
        let key = (update.framework_id.clone(), update.executor_id.clone());
        match self.executors.get(&key) {
            Some(e) if e.agent_id == update.agent_id => {}
            _ => {
                return Err(Status::permission_denied(format!(
                    "agent {principal} does not run executor {:?} of framework {:?}; only the \
                     agent that runs an executor reports its state",
                    update.executor_id, update.framework_id
                )));
            }
        }
        let orphan = !self.frameworks.contains_key(&update.framework_id);
        let ack = pb::AcknowledgeRequest {
            framework_id: update.framework_id.clone(),
            agent_id: update.agent_id.clone(),
            executor_id: update.executor_id.clone(),
            uuid: update.uuid.clone(),
        };
        self.apply_update(update, state);
        Ok(if orphan {
            self.acknowledge_to_agent(ack)
        } else {
            Vec::new()
        })
    }

    /// The framework acknowledges a status update (Mesos' ACKNOWLEDGE): it is not sent to it
    /// again, and its agent is told, so that it stops sending it and sends the executor's next.
    pub fn acknowledge(
        &mut self,
        principal: &str,
        ack: pb::AcknowledgeRequest,
    ) -> Result<Vec<AgentAction>, Status> {
        self.check_framework(&ack.framework_id, principal)?;
        check_id("executor id", &ack.executor_id)?;
        if let Some(fw) = self.frameworks.get_mut(&ack.framework_id) {
            fw.unacknowledged.retain(|u| u.uuid != ack.uuid);
        }
        Ok(self.acknowledge_to_agent(ack))
    }

    /// Tells the agent of an acknowledged update (if it is registered and runs, or ran, the
    /// executor).
    fn acknowledge_to_agent(&self, ack: pb::AcknowledgeRequest) -> Vec<AgentAction> {
        let key = (ack.framework_id.clone(), ack.executor_id.clone());
        let ran_there = self
            .executors
            .get(&key)
            .is_some_and(|e| e.agent_id == ack.agent_id);
        match self.agents.get(&ack.agent_id) {
            Some(agent) if ran_there && !ack.uuid.is_empty() => vec![AgentAction::Acknowledge {
                client: agent.client.clone(),
                agent_id: agent.id.clone(),
                request: AcknowledgeStatusUpdateRequest {
                    framework_id: ack.framework_id,
                    executor_id: ack.executor_id,
                    uuid: ack.uuid,
                },
            }],
            _ => Vec::new(),
        }
    }

    /// Applies an executor state change decided by the master (no exit code, no reason).
    pub fn update_executor(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        agent_id: &str,
        state: pb::ExecutorState,
        message: String,
    ) {
        // An executor that ended already: a late decision of the master's changes nothing.
        let key = (framework_id.to_string(), executor_id.to_string());
        if self
            .executors
            .get(&key)
            .is_none_or(|e| is_terminal(e.state))
        {
            return;
        }
        let update = pb::StatusUpdate {
            agent_id: agent_id.to_string(),
            framework_id: framework_id.to_string(),
            executor_id: executor_id.to_string(),
            state: state as i32,
            message,
            exit_code: None,
            reason: pb::ExecutorReason::Unspecified as i32,
            uuid: tessera_credentials::random_uuid(),
            latest_state: state as i32,
        };
        self.apply_update(update, state);
    }

    /// Applies an executor state change reported by its agent (or decided by the master) and
    /// forwards the update to the framework, which keeps it until acknowledged. The
    /// bookkeeping follows the update's `latest_state` (the agent's newest, which may be past
    /// an update that waited for an earlier one's acknowledgement): an executor's resources
    /// are recovered when it ends. The same update sent again (an agent retrying) is
    /// forwarded again, changing nothing.
    fn apply_update(&mut self, update: pb::StatusUpdate, state: pb::ExecutorState) {
        let latest = pb::ExecutorState::try_from(update.latest_state)
            .ok()
            .filter(|s| *s != pb::ExecutorState::Unspecified)
            .unwrap_or(state);
        let (framework_id, executor_id, agent_id) = (
            update.framework_id.as_str(),
            update.executor_id.as_str(),
            update.agent_id.as_str(),
        );
        let key = (framework_id.to_string(), executor_id.to_string());
        let Some(executor) = self.executors.get_mut(&key) else {
            tracing::debug!(%framework_id, %executor_id, ?state, "status update for an unknown executor ignored");
            return;
        };
        if executor.agent_id != agent_id {
            tracing::debug!(%framework_id, %executor_id, ?state, "status update from another agent ignored");
            return;
        }
        if !is_terminal(executor.state) && executor.state != latest {
            let message = &update.message;
            tracing::info!(%framework_id, %executor_id, %agent_id, ?state, ?latest, %message, "executor status");
            executor.state = latest;
            if latest == state {
                executor.message = message.clone();
            }
            let resources = executor.resources;
            if is_terminal(latest) {
                executor.usage = pb::ExecutorUsage::default();
                let pool = pool_id(agent_id, executor.reservation.as_deref());
                let extras = std::mem::take(&mut executor.extras);
                self.metrics.executor_ended(latest);
                let role = executor.allocation_role.clone();
                self.allocator
                    .recover_resources(framework_id, &role, &pool, resources, None);
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.free_extras = agent.free_extras.plus(&extras);
                }
                self.completed.push_back(key);
                while self.completed.len() > MAX_COMPLETED_EXECUTORS {
                    if let Some(old) = self.completed.pop_front() {
                        self.executors.remove(&old);
                    }
                }
            }
        }
        self.forward(pb::StatusUpdate {
            state: state as i32,
            ..update
        });
    }

    /// Sends a status update to its framework, keeping it until acknowledged. The first time an
    /// executor's end with a non-zero status comes, a Failure event goes with it (Mesos'
    /// FAILURE for an executor).
    fn forward(&mut self, update: pb::StatusUpdate) {
        let framework_id = update.framework_id.clone();
        if let Some(fw) = self.frameworks.get_mut(&framework_id)
            && !update.uuid.is_empty()
            && !fw.unacknowledged.iter().any(|u| u.uuid == update.uuid)
        {
            fw.unacknowledged.push_back(update.clone());
            if fw.unacknowledged.len() > MAX_UNACKNOWLEDGED {
                fw.unacknowledged.pop_front();
            }
            if let Some(status) = failure_status(&update) {
                let failure = pb::Failure {
                    agent_id: update.agent_id.clone(),
                    executor_id: update.executor_id.clone(),
                    status: Some(status),
                };
                self.send(&framework_id, event(pb::event::Event::Failure(failure)));
            }
        }
        self.send(&framework_id, event(pb::event::Event::StatusUpdate(update)));
    }

    // ---------------------------------------------------------------- status

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
mod tests {
    use super::*;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    fn client() -> AgentClient<Channel> {
        // Never called in these tests; connect_lazy does not connect.
        AgentClient::new(
            tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy(),
        )
    }

    fn config(failover: Duration) -> MasterConfig {
        MasterConfig {
            framework_failover_timeout: failover,
            ..MasterConfig::default()
        }
    }

    fn drain(rx: &mut UnboundedReceiver<Result<pb::Event, Status>>) -> Vec<pb::event::Event> {
        let mut out = Vec::new();
        while let Ok(Ok(pb::Event { event: Some(e) })) = rx.try_recv() {
            out.push(e);
        }
        out
    }

    fn offers(events: &[pb::event::Event]) -> Vec<pb::Offer> {
        events
            .iter()
            .filter_map(|e| match e {
                pb::event::Event::Offers(o) => Some(o.offers.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// `alice`'s framework `fw` accepts `offer` with one launch.
    fn accept_one(
        m: &mut MasterState,
        fw: &str,
        offer: pb::Offer,
        launch: pb::ExecutorLaunch,
        now: Instant,
    ) {
        m.accept(
            pb::AcceptRequest {
                framework_id: fw.to_string(),
                offer_ids: vec![offer.id],
                launches: vec![launch],
                refuse_seconds: 0.0,
                ..Default::default()
            },
            "alice",
            now,
        )
        .expect("accept");
    }

    /// CPUs and memory as the wire has them.
    fn wire(cpus: f64, mem_mb: u64) -> Option<pb::Resources> {
        Some(pb::Resources::of_cpus_mem(&Resources::new(cpus, mem_mb)))
    }

    fn launch(id: &str, cpus: f64, mem_mb: u64) -> pb::ExecutorLaunch {
        pb::ExecutorLaunch {
            executor_id: id.into(),
            command: Some(pb::CommandInfo {
                program: "/bin/true".into(),
                ..Default::default()
            }),
            resources: wire(cpus, mem_mb),
            files_credential: String::new(),
        }
    }

    /// A master, its agent's id, the framework's id, the framework's events, its offer.
    type Setup = (
        MasterState,
        String,
        String,
        UnboundedReceiver<Result<pb::Event, Status>>,
        pb::Offer,
    );

    /// One agent (2 CPUs, 1 GiB), one framework holding its offer.
    fn setup(failover: Duration) -> Setup {
        setup_with(&config(failover), Instant::now())
    }

    /// As [`setup`], with `config`, the offer made at `now`.
    fn setup_with(config: &MasterConfig, now: Instant) -> Setup {
        let mut m = MasterState::new(config);
        let (agent, _) = m
            .register_agent(
                "h".into(),
                "127.0.0.1:9".into(),
                "b".into(),
                Resources::new(2.0, 1024),
                "posix".into(),
                client(),
                now,
            )
            .unwrap();
        let (fw, mut rx, _) = subscribe_alice(&mut m, "fw", "", None);
        m.allocate(now);
        let events = drain(&mut rx);
        assert!(matches!(events[0], pb::event::Event::Registered(_)));
        let offer = offers(&events).pop().expect("an offer");
        assert_eq!(offer.agent_id, agent);
        (m, agent, fw, rx, offer)
    }

    /// Launches executor `e` (1 CPU, 256 MiB) of `fw` with `offer`, and has it run.
    fn run_executor(m: &mut MasterState, agent: &str, fw: &str, offer: pb::Offer, now: Instant) {
        let accept = pb::AcceptRequest {
            framework_id: fw.to_string(),
            offer_ids: vec![offer.id],
            launches: vec![launch("e", 1.0, 256)],
            refuse_seconds: 0.0,
            ..Default::default()
        };
        m.accept(accept, "alice", now).unwrap();
        m.update_executor(fw, "e", agent, pb::ExecutorState::Running, String::new());
    }

    /// Every sample line of the Prometheus text, "name{labels} value", as name{labels} -> value;
    /// fails unless each family has its HELP and TYPE lines before its samples.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut described = BTreeSet::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                described.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let name = series.split('{').next().unwrap();
            assert!(
                described
                    .iter()
                    .any(|family| name.starts_with(family.as_str())),
                "{name} has no TYPE line before it"
            );
            samples.insert(series.to_string(), value.parse().expect("a number"));
        }
        samples
    }

    /// An agent with ports and a static reservation for `analytics`, and two frameworks: `web`
    /// (role web) and `an` (role analytics), with their event streams.
    fn reserving_setup(
        now: Instant,
    ) -> (
        MasterState,
        String,
        [(String, UnboundedReceiver<Result<pb::Event, Status>>); 2],
    ) {
        let mut m = MasterState::new(&config(Duration::ZERO));
        let offering = AgentOffering {
            extras: Extras {
                disk_mb: 100,
                ports: tessera_allocator::Ranges::new([(31000, 31009)]),
                scalars: BTreeMap::new(),
            },
            reserved: [("analytics".to_string(), Resources::new(1.0, 512))].into(),
            attributes: vec![Attribute {
                name: "rack".into(),
                value: "r1".into(),
            }],
        };
        let agent = ("h".into(), "127.0.0.1:9".into(), "b".into());
        let (agent, _) = m
            .register_agent_offering(
                agent,
                Resources::new(2.0, 1024),
                offering,
                "posix".into(),
                client(),
                now,
            )
            .unwrap();
        let mut subscribe = |name: &str, role: &str| {
            let (fw, rx, _) = subscribe_alice(&mut m, name, role, None);
            (fw, rx)
        };
        let frameworks = [subscribe("web", "web"), subscribe("an", "analytics")];
        (m, agent, frameworks)
    }

    #[tokio::test]
    async fn reserved_resources_go_to_their_role_and_extras_ride_with_unreserved_offers() {
        let now = Instant::now();
        let (mut m, agent, [(web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
        m.allocate(now);
        let web_offers = offers(&drain(&mut web_rx));
        let an_offers = offers(&drain(&mut an_rx));
        // analytics (lower name, equal shares) takes the unreserved pool first, then its
        // reservation; web gets nothing this round.
        assert!(web_offers.is_empty(), "{web_offers:?}");
        let reserved = an_offers
            .iter()
            .find(|o| o.reservation_role == "analytics")
            .unwrap();
        assert_eq!(reserved.resources.as_ref().unwrap().cpus, 1.0);
        assert!(reserved.resources.as_ref().unwrap().ports.is_empty());
        let unreserved = an_offers
            .iter()
            .find(|o| o.reservation_role.is_empty())
            .unwrap();
        let r = unreserved.resources.as_ref().unwrap();
        assert_eq!((r.cpus, r.disk_mb), (2.0, 100));
        assert_eq!(
            r.ports,
            [pb::Range {
                begin: 31000,
                end: 31009
            }]
        );
        assert_eq!(unreserved.attributes[0].value, "r1");
        // Offers of two pools cannot be pooled in one accept.
        let both = pb::AcceptRequest {
            framework_id: an.clone(),
            offer_ids: vec![reserved.id.clone(), unreserved.id.clone()],
            ..Default::default()
        };
        let err = m.accept(both, "alice", now).unwrap_err();
        assert!(
            err.message()
                .contains("accept reserved and unreserved offers separately")
        );
        // analytics declines both for a long time: web gets the unreserved pool (with the
        // ports), never the reservation.
        let ids = vec![reserved.id.clone(), unreserved.id.clone()];
        m.decline(&an, "alice", &ids, 3600.0, now).unwrap();
        m.allocate(now);
        let web_offers = offers(&drain(&mut web_rx));
        assert_eq!(web_offers.len(), 1, "{web_offers:?}");
        assert!(web_offers[0].reservation_role.is_empty());
        assert_eq!(web_offers[0].resources.as_ref().unwrap().ports.len(), 1);
        // A launch naming a port outside the offer is refused and changes nothing.
        let mut bad = launch("e", 1.0, 256);
        bad.resources.as_mut().unwrap().ports = vec![pb::Range {
            begin: 8080,
            end: 8080,
        }];
        let req = |l: pb::ExecutorLaunch| pb::AcceptRequest {
            framework_id: web.clone(),
            offer_ids: vec![web_offers[0].id.clone()],
            launches: vec![l],
            ..Default::default()
        };
        let err = m.accept(req(bad), "alice", now).unwrap_err();
        assert!(
            err.message().contains("names ports 8080"),
            "{}",
            err.message()
        );
        assert!(m.offers.contains_key(&web_offers[0].id));
        let mut good = launch("e", 1.0, 256);
        good.resources.as_mut().unwrap().ports = vec![pb::Range {
            begin: 31003,
            end: 31003,
        }];
        m.accept(req(good), "alice", now).unwrap();
        let a = &m.agents[&agent];
        assert_eq!(a.free_extras.ports.to_string(), "31000-31002,31004-31009");
        // The executor ends: its port is free again.
        m.update_executor(
            &web,
            "e",
            &agent,
            pb::ExecutorState::Finished,
            String::new(),
        );
        assert_eq!(
            m.agents[&agent].free_extras.ports.to_string(),
            "31000-31009"
        );
        let json = serde_json::to_value(m.snapshot()).unwrap();
        let shown = &json["agents"][0];
        assert_eq!(shown["attributes"]["rack"], "r1");
        assert_eq!(shown["extras"]["ports"], "31000-31009");
        assert_eq!(shown["reservations"][0]["role"], "analytics");
        assert_eq!(shown["reservations"][0]["dynamic"], false);
        assert_eq!(shown["resources"]["cpus"], 3.0);
    }

    #[tokio::test]
    async fn reserve_then_unreserve_moves_resources_between_the_pools() {
        let now = Instant::now();
        let (mut m, agent, [(_web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
        m.allocate(now);
        drop(drain(&mut web_rx));
        let an_offers = offers(&drain(&mut an_rx));
        let unreserved = an_offers
            .iter()
            .find(|o| o.reservation_role.is_empty())
            .unwrap();
        let reserved = an_offers
            .iter()
            .find(|o| !o.reservation_role.is_empty())
            .unwrap();
        let op = |o: pb::operation::Operation| pb::Operation { operation: Some(o) };
        let amount = |cpus: f64, mem_mb: u64| pb::Resources {
            cpus,
            mem_mb,
            ..Default::default()
        };
        // Nothing was reserved by RESERVE yet: the static reservation cannot be unreserved.
        let unreserve = |offer: &str, cpus, mem_mb| pb::AcceptRequest {
            framework_id: an.clone(),
            offer_ids: vec![offer.to_string()],
            operations: vec![op(pb::operation::Operation::Unreserve(amount(
                cpus, mem_mb,
            )))],
            ..Default::default()
        };
        let err = m
            .accept(unreserve(&reserved.id, 1.0, 0), "alice", now)
            .unwrap_err();
        assert!(
            err.message().contains("static reservation"),
            "{}",
            err.message()
        );
        let reserve = pb::AcceptRequest {
            framework_id: an.clone(),
            offer_ids: vec![unreserved.id.clone()],
            operations: vec![op(pb::operation::Operation::Reserve(amount(1.0, 256)))],
            ..Default::default()
        };
        m.accept(reserve, "alice", now).unwrap();
        m.decline(&an, "alice", std::slice::from_ref(&reserved.id), 0.0, now)
            .unwrap();
        assert_eq!(
            m.agents[&agent].dynamic_reserved["analytics"],
            Resources::new(1.0, 256)
        );
        // The next offer of the reservation holds static and dynamic parts.
        m.allocate(now);
        let an_offers = offers(&drain(&mut an_rx));
        let reserved = an_offers
            .iter()
            .find(|o| o.reservation_role == "analytics")
            .unwrap();
        assert_eq!(reserved.resources.as_ref().unwrap().cpus, 2.0);
        assert_eq!(
            m.allocator.total_of(&pool_id(&agent, None)),
            Some(Resources::new(1.0, 768))
        );
        let json = serde_json::to_value(m.snapshot()).unwrap();
        assert_eq!(json["agents"][0]["reservations"][1]["dynamic"], true);
        m.accept(unreserve(&reserved.id, 1.0, 256), "alice", now)
            .unwrap();
        assert!(m.agents[&agent].dynamic_reserved.is_empty());
        assert_eq!(
            m.allocator.total_of(&pool_id(&agent, None)),
            Some(Resources::new(2.0, 1024))
        );
        assert_eq!(
            m.allocator.total_of(&pool_id(&agent, Some("analytics"))),
            Some(Resources::new(1.0, 512))
        );
        assert_eq!(m.allocator.cluster_total(), Resources::new(3.0, 1536));
    }

    #[tokio::test]
    async fn metrics_count_offers_launches_losses_and_allocation_runs() {
        let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        run_executor(&mut m, &agent, &fw, offer, now);
        m.allocate(now);
        let rest: Vec<String> = m.offers.keys().cloned().collect();
        m.decline(&fw, "alice", &rest, 0.0, now).unwrap();
        m.allocate(now);
        let before = samples(&crate::metrics::render(&m.metrics, &m.snapshot()));
        assert_eq!(before["tessera_master_agents"], 1.0);
        assert_eq!(before["tessera_master_executors_active"], 1.0);
        assert_eq!(before["tessera_master_offers_outstanding"], 1.0);
        assert_eq!(
            before[r#"tessera_master_resources_total{resource="cpus"}"#],
            2.0
        );
        assert_eq!(
            before[r#"tessera_master_resources_allocated{resource="mem_bytes"}"#],
            256.0 * 1024.0 * 1024.0
        );
        assert_eq!(
            before[r#"tessera_master_frameworks{connected="true"}"#],
            1.0
        );
        m.remove_agent(&agent, "no heartbeat");
        let after = samples(&crate::metrics::render(&m.metrics, &m.snapshot()));
        for (series, value) in [
            ("tessera_master_offers_made_total", 3.0),
            ("tessera_master_offers_accepted_total", 1.0),
            ("tessera_master_offers_declined_total", 1.0),
            ("tessera_master_offers_rescinded_total", 1.0),
            ("tessera_master_executors_launched_total", 1.0),
            (r#"tessera_master_executors_ended_total{state="lost"}"#, 1.0),
            ("tessera_master_agents_registered_total", 1.0),
            ("tessera_master_agents_lost_total", 1.0),
            ("tessera_master_frameworks_subscribed_total", 1.0),
            ("tessera_master_agents", 0.0),
            ("tessera_master_executors_active", 0.0),
            ("tessera_master_allocation_run_seconds_count", 3.0),
        ] {
            assert_eq!(after.get(series), Some(&value), "{series}");
        }
    }

    #[tokio::test]
    async fn the_snapshot_as_json_shows_roles_offers_and_executors() {
        let now = Instant::now();
        let quota = tessera_allocator::Quota {
            guarantee: Resources::new(1.0, 128),
            limit: Some(Resources::new(4.0, 4096)),
        };
        let config = MasterConfig {
            role_weights: vec![("etl".into(), 2.0)],
            role_quotas: vec![("etl".into(), quota)],
            ..MasterConfig::default()
        };
        let (mut m, agent, fw, _rx, offer) = setup_with(&config, now);
        run_executor(&mut m, &agent, &fw, offer, now);
        m.allocate(now);
        let json = serde_json::to_value(m.snapshot()).unwrap();
        let amount = |cpus: f64, mem_mb: u64| serde_json::json!({"cpus": cpus, "mem_mb": mem_mb});
        assert_eq!(json["allocator"], "drf");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert!(json.get("reservations").is_none(), "no reservations yet");
        let a = &json["agents"][0];
        assert_eq!(a["id"], agent.as_str());
        assert_eq!(
            (&a["hostname"], &a["principal"]),
            (&"h".into(), &"b".into())
        );
        assert_eq!(a["resources"], amount(2.0, 1024));
        assert_eq!(a["allocated"], amount(1.0, 256));
        // What is left less the headroom kept for etl's unmet guarantee.
        let left = amount(0.0, 640);
        assert_eq!(a["offered"], left);
        let f = &json["frameworks"][0];
        assert_eq!(
            (&f["id"], &f["name"], &f["role"]),
            (&fw.as_str().into(), &"fw".into(), &"*".into())
        );
        assert_eq!(
            (&f["connected"], &f["suppressed"]),
            (&true.into(), &false.into())
        );
        assert_eq!(f["allocated"], amount(1.0, 256));
        // (256 + 640) MiB of 1024: memory is its dominant resource.
        assert_eq!(f["dominant_share"], 0.875);
        let roles = json["roles"].as_array().unwrap();
        assert_eq!(roles.len(), 2, "{roles:?}");
        assert_eq!(roles[0]["name"], "*");
        assert_eq!(roles[0]["frameworks"], serde_json::json!([fw]));
        assert_eq!(roles[0]["offered"], left);
        assert_eq!(roles[0]["quota"]["limit"], serde_json::Value::Null);
        assert_eq!(
            (&roles[1]["name"], &roles[1]["weight"]),
            (&"etl".into(), &2.0.into())
        );
        assert_eq!(roles[1]["quota"]["guarantee"], amount(1.0, 128));
        assert_eq!(roles[1]["quota"]["limit"], amount(4.0, 4096));
        let e = &json["executors"][0];
        assert_eq!(
            (&e["executor_id"], &e["state"]),
            (&"e".into(), &"RUNNING".into())
        );
        assert_eq!(e["resources"], amount(1.0, 256));
        assert_eq!(json["offers"][0]["hostname"], "h");
        assert_eq!(json["offers"][0]["resources"], left);
        // gRPC's ClusterStatus says the same.
        let status = m.cluster_status();
        assert_eq!(status.agents[0].id, agent);
        assert_eq!(status.executors[0].state, pb::ExecutorState::Running as i32);
    }

    #[tokio::test]
    async fn an_offer_not_answered_within_the_offer_timeout_is_rescinded_and_made_again() {
        let now = Instant::now();
        let config = MasterConfig {
            offer_timeout: Some(Duration::from_secs(1)),
            ..MasterConfig::default()
        };
        let (mut m, _agent, _fw, mut rx, first) = setup_with(&config, now);
        m.allocate(now + Duration::from_millis(900));
        assert!(drain(&mut rx).is_empty(), "not yet timed out");
        m.allocate(now + Duration::from_millis(1000));
        let events = drain(&mut rx);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == first.id)),
            "{events:?}"
        );
        let again = offers(&events).pop().expect("offered again");
        assert_ne!(again.id, first.id);
        assert_eq!(again.resources, first.resources);
    }

    #[tokio::test]
    async fn accept_is_validated_and_leaves_nothing_changed_when_invalid() {
        let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        let req = |launches| pb::AcceptRequest {
            framework_id: fw.clone(),
            offer_ids: vec![offer.id.clone()],
            launches,
            refuse_seconds: 0.0,
            ..Default::default()
        };
        let too_big = m
            .accept(req(vec![launch("e", 3.0, 10)]), "alice", now)
            .unwrap_err();
        assert!(
            too_big.message().contains("offers hold only"),
            "{}",
            too_big.message()
        );
        let bad_id = m
            .accept(req(vec![launch("a/b", 1.0, 10)]), "alice", now)
            .unwrap_err();
        assert!(
            bad_id.message().contains("sandbox directory"),
            "{}",
            bad_id.message()
        );
        let dup = m
            .accept(
                req(vec![launch("e", 1.0, 10), launch("e", 0.5, 10)]),
                "alice",
                now,
            )
            .unwrap_err();
        assert_eq!(dup.code(), tonic::Code::AlreadyExists);
        // Still valid after the refusals:
        let actions = m
            .accept(req(vec![launch("e", 1.0, 256)]), "alice", now)
            .expect("accept");
        assert_eq!(actions.len(), 1);
        let again = m.accept(req(vec![]), "alice", now).unwrap_err();
        assert_eq!(again.code(), tonic::Code::FailedPrecondition);
        // The unused part is offered again.
        assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
        m.allocate(now);
        let status = m.cluster_status();
        assert_eq!(status.offers[0].resources, wire(1.0, 768));
        assert_eq!(status.agents[0].allocated, wire(1.0, 256));
    }

    #[tokio::test]
    async fn executor_end_is_forwarded_and_frees_its_resources() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 2.0, 1024), now);
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
        m.update_executor(
            &fw,
            "e",
            &agent,
            pb::ExecutorState::Failed,
            "exited with status 3".into(),
        );
        // A late duplicate is ignored.
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Killed, String::new());
        let states: Vec<i32> = drain(&mut rx)
            .into_iter()
            .filter_map(|e| match e {
                pb::event::Event::StatusUpdate(u) => Some(u.state),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            [
                pb::ExecutorState::Running as i32,
                pb::ExecutorState::Failed as i32
            ]
        );
        assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
        m.allocate(now);
        assert_eq!(offers(&drain(&mut rx))[0].resources, wire(2.0, 1024));
    }

    #[tokio::test]
    async fn usage_and_how_an_executor_ended_reach_status_and_the_framework() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 128), now);
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
        let usage = |framework_id: &str| pb::ExecutorUsage {
            framework_id: framework_id.into(),
            executor_id: "e".into(),
            memory_bytes: 50 << 20,
            cpu_seconds: 1.5,
        };
        // Reports from another agent, or on executors that are not there, change nothing.
        m.record_usage("someone-else", vec![usage(&fw)]);
        m.record_usage(&agent, vec![usage("no-such-framework")]);
        assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
        m.record_usage(&agent, vec![usage(&fw)]);
        let status = m.cluster_status();
        assert_eq!(status.agents[0].isolation, "posix");
        assert_eq!(
            (
                status.executors[0].memory_used_bytes,
                status.executors[0].cpu_seconds
            ),
            (50 << 20, 1.5)
        );

        m.agent_update(
            "b",
            pb::StatusUpdate {
                agent_id: agent.clone(),
                framework_id: fw.clone(),
                executor_id: "e".into(),
                state: pb::ExecutorState::Failed as i32,
                message: "memory limit 128 MiB exceeded".into(),
                exit_code: Some(137),
                reason: pb::ExecutorReason::MemoryLimit as i32,
                ..Default::default()
            },
        )
        .expect("the agent's update");
        let last = drain(&mut rx)
            .into_iter()
            .filter_map(|e| match e {
                pb::event::Event::StatusUpdate(u) => Some(u),
                _ => None,
            })
            .next_back()
            .expect("updates forwarded");
        assert_eq!(
            (last.exit_code, last.reason, last.message.as_str()),
            (
                Some(137),
                pb::ExecutorReason::MemoryLimit as i32,
                "memory limit 128 MiB exceeded"
            )
        );
        assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
    }

    #[tokio::test]
    async fn lost_agent_rescinds_offers_and_loses_executors() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        m.allocate(t0);
        let rest = offers(&drain(&mut rx)).pop().expect("offer of the rest");
        let timeout = Duration::from_secs(10);
        assert!(
            m.timed_out_agents(t0 + Duration::from_secs(5), timeout)
                .is_empty()
        );
        let late = t0 + Duration::from_secs(11);
        assert_eq!(m.timed_out_agents(late, timeout).len(), 1);
        m.remove_agent(&agent, "no heartbeat");
        let events = drain(&mut rx);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == rest.id))
        );
        assert!(events.iter().any(|e| matches!(e,
            pb::event::Event::StatusUpdate(u) if u.executor_id == "e" && u.state == pb::ExecutorState::Lost as i32)));
        assert!(m.cluster_status().agents.is_empty());
        assert!(
            !m.heartbeat(&agent, "b", late).unwrap(),
            "a lost agent must register again"
        );
        assert_eq!(m.allocator.cluster_total(), Resources::ZERO);
    }

    #[test]
    fn masters_started_at_once_give_different_ids() {
        let ids: std::collections::BTreeSet<String> = (0..3)
            .map(|_| MasterState::new(&config(Duration::ZERO)).run_id)
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
    }

    #[tokio::test]
    async fn an_unreachable_agent_is_offered_again_only_once_it_heartbeats() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        m.agent_unreachable(&agent, "tcp connect error");
        m.allocate(t0);
        assert!(
            offers(&drain(&mut rx)).is_empty(),
            "nothing of an agent that cannot be reached is offered"
        );
        assert_eq!(
            m.cluster_status().agents.len(),
            1,
            "it is not declared lost"
        );
        assert!(m.heartbeat(&agent, "b", t0).unwrap());
        m.allocate(t0);
        assert_eq!(
            offers(&drain(&mut rx)).len(),
            1,
            "offered again once heard from"
        );
    }

    #[tokio::test]
    async fn an_agent_registering_anew_from_the_same_host_replaces_its_old_self() {
        let (mut m, agent, _fw, mut rx, _offer) = setup(Duration::ZERO);
        let now = Instant::now();
        let register = |m: &mut MasterState, host: &str, address: &str, principal: &str| {
            m.register_agent(
                host.into(),
                address.into(),
                principal.into(),
                Resources::new(2.0, 1024),
                "posix".into(),
                client(),
                now,
            )
            .unwrap()
            .0
        };
        // Another principal on the same host is another agent.
        register(&mut m, "h", "127.0.0.1:10", "c");
        assert_eq!(m.cluster_status().agents.len(), 2);
        // The same principal from the same host on another port: the first one restarted.
        let again = register(&mut m, "h", "127.0.0.1:11", "b");
        assert_ne!(again, agent);
        let ids: Vec<String> = m
            .cluster_status()
            .agents
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(!ids.contains(&agent), "{ids:?}");
        assert!(
            drain(&mut rx)
                .iter()
                .any(|e| matches!(e, pb::event::Event::Rescind(_))),
            "its offer was rescinded"
        );
    }

    /// What an agent kept of executor `e` of `fw` (alice's, failover `failover`).
    fn recovered(fw: &str, failover: f64) -> pb::RecoveredExecutor {
        pb::RecoveredExecutor {
            executor_id: "e".into(),
            resources: Some(pb::Resources::of_cpus_mem(&Resources::new(1.0, 256))),
            framework: Some(pb::FrameworkInfo {
                id: fw.into(),
                name: "fw".into(),
                role: "*".into(),
                principal: "alice".into(),
                failover_timeout_seconds: failover,
                ..Default::default()
            }),
            state: pb::ExecutorState::Running as i32,
        }
    }

    #[tokio::test]
    async fn a_restarted_master_takes_back_a_reregistering_agent_and_its_executors() {
        let (mut old, agent, fw, _rx, offer) = setup(Duration::ZERO);
        let t0 = Instant::now();
        run_executor(&mut old, &agent, &fw, offer, t0);
        // The launch told the agent whose executor it is.
        assert_eq!(old.frameworks[&fw].info().principal, "alice");

        // A new master: the agent's heartbeat is unknown, it registers again with its id.
        let mut m = MasterState::new(&config(Duration::ZERO));
        assert!(!m.heartbeat(&agent, "b", t0).unwrap());
        let reregister = |m: &mut MasterState, id: &str, principal: &str| {
            m.reregister_agent(
                id.into(),
                ("h".into(), "127.0.0.1:9".into(), principal.into()),
                Resources::new(2.0, 1024),
                AgentOffering::default(),
                "posix".into(),
                client(),
                vec![recovered(&fw, 30.0)],
                t0,
            )
        };
        let (id, _, actions) = reregister(&mut m, &agent, "b").unwrap();
        assert!(actions.is_empty());
        assert_eq!(id, agent, "the agent keeps its id");
        let e = &m.executors[&(fw.clone(), "e".to_string())];
        assert_eq!(
            (e.state, e.agent_id.as_str()),
            (pb::ExecutorState::Running, agent.as_str())
        );
        assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
        // Its framework waits, disconnected, for the framework to come back by id.
        let f = &m.frameworks[&fw];
        assert!(f.events.is_none());
        assert_eq!(f.failover_timeout, Duration::from_secs(30));
        assert!(
            m.expired_frameworks(t0 + Duration::from_secs(29))
                .is_empty()
        );
        // Only its agent's principal can register again as it; again by the same one keeps all.
        assert!(reregister(&mut m, &agent, "mallory").is_err());
        assert_eq!(reregister(&mut m, &agent, "b").unwrap().0, agent);
        assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
        // Another principal cannot subscribe as the framework; alice can, and keeps it.
        let (tx, _rx2) = unbounded_channel();
        let as_mallory = Subscription {
            name: "fw".into(),
            framework_id: Some(fw.clone()),
            ..Subscription::default()
        };
        assert!(
            m.subscribe_framework(as_mallory.clone(), "mallory".into(), tx.clone())
                .is_err()
        );
        let (tx, mut rx) = unbounded_channel();
        m.subscribe_framework(as_mallory, "alice".into(), tx)
            .unwrap();
        assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
        assert!(
            m.expired_frameworks(t0 + Duration::from_secs(31))
                .is_empty()
        );

        // A master that declared the agent lost gives it a new id instead.
        old.remove_agent(&agent, "no heartbeat");
        let (new_id, _, _) = reregister(&mut old, &agent, "b").unwrap();
        assert_ne!(new_id, agent);
    }

    #[tokio::test]
    async fn an_agent_restarted_within_its_timeout_keeps_its_id_from_a_new_address() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let t0 = Instant::now();
        run_executor(&mut m, &agent, &fw, offer, t0);
        drain(&mut rx);
        let back = |m: &mut MasterState, address: &str, executors| {
            m.reregister_agent(
                agent.clone(),
                ("h".into(), address.into(), "b".into()),
                Resources::new(2.0, 1024),
                AgentOffering::default(),
                "posix".into(),
                client(),
                executors,
                t0,
            )
        };
        // It recovered its executor and listens on another port now.
        let (id, _, actions) = back(&mut m, "127.0.0.1:10", vec![recovered(&fw, 30.0)]).unwrap();
        assert_eq!((id.as_str(), actions.len()), (agent.as_str(), 0));
        assert_eq!(m.agents[&agent].address, "127.0.0.1:10");
        assert_eq!(m.agent_at.get("127.0.0.1:10"), Some(&agent));
        assert!(!m.agent_at.contains_key("127.0.0.1:9"));
        let key = (fw.clone(), "e".to_string());
        assert_eq!(m.executors[&key].state, pb::ExecutorState::Running);
        assert!(drain(&mut rx).is_empty(), "the framework sees no loss");
        assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));

        // Back again without it: it ended while the agent was down, with no trace left.
        back(&mut m, "127.0.0.1:10", Vec::new()).unwrap();
        assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
        let events = drain(&mut rx);
        assert!(
            events.iter().any(|e| matches!(e,
                pb::event::Event::StatusUpdate(u) if u.executor_id == "e"
                    && u.state == pb::ExecutorState::Lost as i32
                    && u.message.contains("registered again (it restarted) without it"))),
            "{events:?}"
        );
        assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);

        // Its framework removed while the agent was down (the shutdown did not reach it): the
        // executor it brings back is shut down.
        let (other, _rx2, _) = subscribe_alice(&mut m, "fw2", "", None);
        m.remove_framework(&other, "torn down");
        let mut kept = recovered(&other, 30.0);
        kept.executor_id = "e2".into();
        let (_, _, actions) = back(&mut m, "127.0.0.1:11", vec![kept]).unwrap();
        assert!(
            matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == other),
            "the removed framework's executor is shut down"
        );
    }

    #[tokio::test]
    async fn a_placeholder_framework_not_back_within_its_failover_timeout_is_removed() {
        let mut m = MasterState::new(&config(Duration::ZERO));
        let t0 = Instant::now();
        // Agent `id` (principal `name`) comes back with an executor of old-F0.
        let back = |m: &mut MasterState, id: &str, name: &str| {
            m.reregister_agent(
                id.into(),
                ("h".into(), format!("{name}.example:9"), name.into()),
                Resources::new(2.0, 1024),
                AgentOffering::default(),
                "posix".into(),
                client(),
                vec![recovered("old-F0", 5.0)],
                t0,
            )
            .unwrap()
        };
        back(&mut m, "old-S0", "b");
        assert!(m.expired_frameworks(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(
            m.expired_frameworks(t0 + Duration::from_secs(5)),
            ["old-F0"]
        );
        let actions = m.remove_framework("old-F0", "failover timeout");
        assert!(matches!(
            actions[..],
            [AgentAction::ShutdownFramework { .. }]
        ));
        // Removed, it cannot come back by id…
        let (tx, _rx) = unbounded_channel();
        let again = Subscription {
            name: "fw".into(),
            framework_id: Some("old-F0".into()),
            ..Subscription::default()
        };
        let err = m
            .subscribe_framework(again, "alice".into(), tx)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        // …and an agent that registers again with an executor of it is told to shut it down.
        m.remove_agent("old-S0", "test");
        let (_, _, actions) = back(&mut m, "old-S1", "c");
        assert!(
            matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == "old-F0")
        );
        assert!(m.executors.values().all(|e| e.agent_id != "old-S1"));
    }

    #[tokio::test]
    async fn reconcile_answers_known_states_and_lost_for_unknown_executors() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        let t0 = Instant::now();
        run_executor(&mut m, &agent, &fw, offer, t0);
        drain(&mut rx);
        let states = |updates: Vec<pb::StatusUpdate>| -> Vec<(String, i32, i32)> {
            updates
                .into_iter()
                .map(|u| (u.executor_id, u.state, u.reason))
                .collect()
        };
        let reason = pb::ExecutorReason::Reconciliation as i32;
        let running = pb::ExecutorState::Running as i32;
        let lost = pb::ExecutorState::Lost as i32;
        // Implicit: every executor that has not ended.
        assert_eq!(
            states(m.reconciliation(&fw, &[])),
            [("e".to_string(), running, reason)]
        );
        // Explicit: those asked, LOST for the unknown.
        assert_eq!(
            states(m.reconciliation(&fw, &["e".into(), "ghost".into()])),
            [
                ("e".to_string(), running, reason),
                ("ghost".to_string(), lost, reason)
            ]
        );
        // Ended executors answer their end when asked by name, and are left out otherwise.
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
        assert!(m.reconciliation(&fw, &[]).is_empty());
        let finished = pb::ExecutorState::Finished as i32;
        assert_eq!(
            states(m.reconciliation(&fw, &["e".into()])),
            [("e".to_string(), finished, reason)]
        );
        // Reconcile sends them as events, only to the framework's own principal.
        drain(&mut rx);
        assert!(m.reconcile(&fw, "mallory", &[]).is_err());
        m.reconcile(&fw, "alice", &["e".into()]).unwrap();
        assert!(
            matches!(&drain(&mut rx)[..], [pb::event::Event::StatusUpdate(u)] if u.reason == reason)
        );
    }

    #[test]
    fn capabilities_are_recorded_if_they_are_names() {
        assert!(check_capabilities(&["PARTITION_AWARE".into()]).is_ok());
        assert!(check_capabilities(&["MULTI_ROLE".into()]).is_ok());
        assert!(check_capabilities(&["".into()]).is_err());
    }

    /// A master with two agents of 2 CPUs and 1 GiB, and `alice`'s framework subscribed
    /// in roles `a` and `b` with MULTI_ROLE, with its events.
    fn multi_role_setup(
        now: Instant,
    ) -> (
        MasterState,
        String,
        UnboundedReceiver<Result<pb::Event, Status>>,
    ) {
        let mut m = MasterState::new(&config(Duration::ZERO));
        for (host, principal) in [("h1", "b1"), ("h2", "b2")] {
            m.register_agent(
                host.into(),
                format!("{host}:9"),
                principal.into(),
                Resources::new(2.0, 1024),
                "posix".into(),
                client(),
                now,
            )
            .unwrap();
        }
        let subscription = Subscription {
            name: "fw".into(),
            roles: vec!["b".into(), "a".into()],
            capabilities: vec![roles::MULTI_ROLE.into()],
            ..Subscription::default()
        };
        let (tx, rx) = unbounded_channel();
        let (fw, _) = m
            .subscribe_framework(subscription, "alice".into(), tx)
            .unwrap();
        (m, fw, rx)
    }

    #[tokio::test]
    async fn several_roles_need_multi_role_and_are_shown() {
        let mut m = MasterState::new(&config(Duration::ZERO));
        let subscription = Subscription {
            name: "fw".into(),
            roles: vec!["a".into(), "b".into()],
            ..Subscription::default()
        };
        let (tx, _rx) = unbounded_channel();
        let err = m
            .subscribe_framework(subscription, "alice".into(), tx)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("claim the MULTI_ROLE capability"),
            "{}",
            err.message()
        );
        assert!(m.frameworks.is_empty());

        let (mut m, fw, _rx) = multi_role_setup(Instant::now());
        let shown = m.snapshot();
        assert_eq!(shown.frameworks[0].roles, ["a", "b"]);
        assert_eq!(shown.frameworks[0].role, "a");
        assert_eq!(m.frameworks[&fw].info().roles, ["a", "b"]);
        m.suppress(&fw, "alice", &["a".into()]).unwrap();
        let shown = m.snapshot();
        assert_eq!(shown.frameworks[0].suppressed_roles, ["a"]);
        assert!(!shown.frameworks[0].suppressed, "still wants offers in b");
        let err = m.suppress(&fw, "alice", &["c".into()]).unwrap_err();
        assert!(
            err.message().contains("not in role \"c\""),
            "{}",
            err.message()
        );
        m.revive(&fw, "alice", &[]).unwrap();
        assert!(m.snapshot().frameworks[0].suppressed_roles.is_empty());
    }

    #[tokio::test]
    async fn resources_go_back_to_the_role_they_were_offered_in() {
        let now = Instant::now();
        let (mut m, fw, mut rx) = multi_role_setup(now);
        m.allocate(now);
        let made = offers(&drain(&mut rx));
        let in_role = |role: &str| {
            made.iter()
                .find(|o| o.allocation_role == role)
                .unwrap_or_else(|| panic!("an offer in {role}: {made:?}"))
                .clone()
        };
        let (in_a, in_b) = (in_role("a"), in_role("b"));
        let held = |m: &MasterState, role: &str| m.allocator.allocation_in(&fw, role);
        assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
        assert_eq!(held(&m, "b"), Resources::new(2.0, 1024));
        assert_eq!(m.snapshot().offers.len(), 2);
        // Accept b's offer with one executor: the rest goes back to b, the executor keeps b.
        accept_one(&mut m, &fw, in_b.clone(), launch("e", 1.0, 256), now);
        assert_eq!(held(&m, "b"), Resources::new(1.0, 256));
        assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
        let key = (fw.clone(), "e".to_string());
        assert_eq!(m.executors[&key].allocation_role, "b");
        m.update_executor(
            &fw,
            "e",
            &in_b.agent_id,
            pb::ExecutorState::Running,
            String::new(),
        );
        m.update_executor(
            &fw,
            "e",
            &in_b.agent_id,
            pb::ExecutorState::Finished,
            String::new(),
        );
        assert_eq!(held(&m, "b"), Resources::ZERO);
        assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
        // Declining a's offer gives it back to a.
        m.decline(&fw, "alice", &[in_a.id], 0.0, now).unwrap();
        assert_eq!(held(&m, "a"), Resources::ZERO);
    }

    #[tokio::test]
    async fn each_framework_has_its_own_failover_timeout() {
        let mut m = MasterState::new(&config(Duration::from_secs(10)));
        let t0 = Instant::now();
        let mut ids = Vec::new();
        for failover in [None, Some(Duration::from_secs(100))] {
            let (tx, _rx) = unbounded_channel();
            let sub = Subscription {
                name: "fw".into(),
                failover_timeout: failover,
                ..Subscription::default()
            };
            let (id, connection) = m.subscribe_framework(sub, "alice".into(), tx).unwrap();
            assert!(m.framework_disconnected(&id, connection, t0).is_empty());
            ids.push(id);
        }
        assert_eq!(
            m.expired_frameworks(t0 + Duration::from_secs(10)),
            [ids[0].clone()]
        );
        assert_eq!(m.expired_frameworks(t0 + Duration::from_secs(100)).len(), 2);
    }

    /// `alice` subscribes framework `name` in `role` (the default role when empty), anew or
    /// again as `id`: its id, its events and its connection number.
    fn subscribe_alice(
        m: &mut MasterState,
        name: &str,
        role: &str,
        id: Option<&str>,
    ) -> (String, UnboundedReceiver<Result<pb::Event, Status>>, u64) {
        let (tx, rx) = unbounded_channel();
        let (fw, connection) = m
            .subscribe(
                name.into(),
                "u".into(),
                role.into(),
                "alice".into(),
                id.map(String::from),
                tx,
            )
            .unwrap();
        (fw, rx, connection)
    }

    /// `alice` subscribes again as `fw`: its events and its connection number.
    fn resubscribe(
        m: &mut MasterState,
        fw: &str,
    ) -> (UnboundedReceiver<Result<pb::Event, Status>>, u64) {
        let (same, rx, connection) = subscribe_alice(m, "fw", "", Some(fw));
        assert_eq!(same, fw);
        (rx, connection)
    }

    /// An update of executor `e` from agent `agent` with `uuid`.
    fn agent_says(agent: &str, fw: &str, state: pb::ExecutorState, uuid: &str) -> pb::StatusUpdate {
        pb::StatusUpdate {
            agent_id: agent.into(),
            framework_id: fw.into(),
            executor_id: "e".into(),
            state: state as i32,
            uuid: uuid.into(),
            ..Default::default()
        }
    }

    fn forwarded_uuids(events: &[pb::event::Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                pb::event::Event::StatusUpdate(u) => Some(u.uuid.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn updates_are_kept_until_acknowledged_and_sent_again_on_resubscription() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        let running = agent_says(&agent, &fw, pb::ExecutorState::Running, "u1");
        assert!(m.agent_update("b", running.clone()).unwrap().is_empty());
        // The agent sends it again (no acknowledgement yet): forwarded again, kept once.
        m.agent_update("b", running).unwrap();
        assert_eq!(forwarded_uuids(&drain(&mut rx)), ["u1", "u1"]);
        assert_eq!(m.frameworks[&fw].unacknowledged.len(), 1);
        // Away, then back by id: it comes again after Registered.
        drop(rx);
        m.framework_disconnected(&fw, 0, t0);
        let (mut rx, _) = resubscribe(&mut m, &fw);
        let events = drain(&mut rx);
        assert!(matches!(events[0], pb::event::Event::Registered(_)));
        assert_eq!(forwarded_uuids(&events), ["u1"]);
        // Acknowledged: the agent is told, and it does not come again.
        let ack = pb::AcknowledgeRequest {
            framework_id: fw.clone(),
            agent_id: agent.clone(),
            executor_id: "e".into(),
            uuid: "u1".into(),
        };
        assert!(m.acknowledge("mallory", ack.clone()).is_err());
        let actions = m.acknowledge("alice", ack).unwrap();
        assert!(
            matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u1")
        );
        assert!(m.frameworks[&fw].unacknowledged.is_empty());
    }

    #[tokio::test]
    async fn the_bookkeeping_follows_the_latest_state_and_orphans_are_acknowledged() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
        // RUNNING waits for its acknowledgement, but the executor has finished meanwhile.
        let update = pb::StatusUpdate {
            latest_state: pb::ExecutorState::Finished as i32,
            ..agent_says(&agent, &fw, pb::ExecutorState::Running, "u1")
        };
        m.agent_update("b", update).unwrap();
        let e = &m.executors[&(fw.clone(), "e".to_string())];
        assert_eq!(e.state, pb::ExecutorState::Finished);
        assert_eq!(
            m.allocator.allocation(&fw),
            Resources::ZERO,
            "its resources are back"
        );
        let forwarded = drain(&mut rx);
        assert!(
            matches!(&forwarded[..], [pb::event::Event::StatusUpdate(u)] if u.state == pb::ExecutorState::Running as i32)
        );
        // Its framework removed, the FINISHED update is acknowledged on its behalf.
        m.remove_framework(&fw, "torn down");
        let finished = agent_says(&agent, &fw, pb::ExecutorState::Finished, "u2");
        let actions = m.agent_update("b", finished).unwrap();
        assert!(
            matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u2")
        );
    }

    #[test]
    fn a_failure_is_a_failed_end_with_a_non_zero_status() {
        let end = |state: pb::ExecutorState, exit_code| pb::StatusUpdate {
            state: state as i32,
            exit_code,
            ..Default::default()
        };
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Failed, Some(3))),
            Some(3)
        );
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Failed, Some(0))),
            None
        );
        assert_eq!(failure_status(&end(pb::ExecutorState::Failed, None)), None);
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Killed, Some(137))),
            None
        );
    }

    #[tokio::test]
    async fn failures_kill_shutdown_and_messages() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
        let graceful = |actions: Vec<AgentAction>| match &actions[..] {
            [AgentAction::Kill { request, .. }] => request.graceful,
            other => panic!("{other:?}"),
        };
        assert!(!graceful(m.kill(&fw, "alice", "e").unwrap()));
        assert!(graceful(m.shutdown_executor(&fw, "alice", "e").unwrap()));
        assert!(m.shutdown_executor(&fw, "mallory", "e").is_err());
        let actions = m.message(&fw, "alice", "e", b"hi".to_vec()).unwrap();
        assert!(
            matches!(&actions[..], [AgentAction::Message { request, .. }] if request.data == b"hi")
        );
        assert!(m.message(&fw, "mallory", "e", Vec::new()).is_err());
        drain(&mut rx);

        // It fails with status 3: the update, and a Failure once (not for the update again).
        let failed = pb::StatusUpdate {
            exit_code: Some(3),
            ..agent_says(&agent, &fw, pb::ExecutorState::Failed, "u9")
        };
        m.agent_update("b", failed.clone()).unwrap();
        m.agent_update("b", failed).unwrap();
        let failures: Vec<pb::Failure> = drain(&mut rx)
            .into_iter()
            .filter_map(|e| match e {
                pb::event::Event::Failure(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].executor_id.as_str(), failures[0].status),
            ("e", Some(3))
        );
        let err = m.message(&fw, "alice", "e", Vec::new()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);

        // Its agent lost: a Failure naming the agent.
        m.remove_agent(&agent, "no heartbeat");
        assert!(drain(&mut rx).iter().any(|e| matches!(e,
            pb::event::Event::Failure(f) if f.agent_id == agent && f.executor_id.is_empty())));
    }

    #[tokio::test]
    async fn disconnected_framework_waits_out_its_failover_timeout() {
        let failover = Duration::from_secs(30);
        let (mut m, _agent, fw, rx, offer) = setup(failover);
        let t0 = Instant::now();
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
        m.allocate(t0);
        drop(rx);
        let actions = m.framework_disconnected(&fw, 0, t0);
        assert!(
            actions.is_empty(),
            "executors survive within the failover timeout"
        );
        assert!(m.offers.is_empty(), "its offers are rescinded");
        assert!(!m.cluster_status().frameworks[0].connected);
        assert!(
            m.expired_frameworks(t0 + Duration::from_secs(29))
                .is_empty()
        );
        // Re-subscribing in time keeps it.
        let (mut rx, connection) = resubscribe(&mut m, &fw);
        assert_eq!(connection, 1);
        assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
        // A stale close of the old stream changes nothing.
        assert!(m.framework_disconnected(&fw, 0, t0).is_empty());
        assert!(m.cluster_status().frameworks[0].connected);
        // Disconnect again and let the timeout pass: removed, executors killed.
        drop(rx);
        m.framework_disconnected(&fw, 1, t0);
        let expired = m.expired_frameworks(t0 + failover);
        assert_eq!(expired, std::slice::from_ref(&fw));
        let actions = m.remove_framework(&fw, "failover timeout");
        assert!(matches!(
            actions[..],
            [AgentAction::ShutdownFramework { .. }]
        ));
        assert!(m.frameworks.is_empty());
        assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
    }

    #[tokio::test]
    async fn an_executors_message_reaches_its_framework_only_from_its_own_agent() {
        let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
        run_executor(&mut m, &agent, &fw, offer, Instant::now());
        drain(&mut rx);
        let message = |agent_id: &str, executor_id: &str| pb::ExecutorMessage {
            agent_id: agent_id.into(),
            framework_id: fw.clone(),
            executor_id: executor_id.into(),
            data: b"progress 50%".to_vec(),
        };
        let refused = m.executor_message("b", message(&agent, "no-such-executor"));
        assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
        let refused = m.executor_message("someone-else", message(&agent, "e"));
        assert!(
            refused.is_err(),
            "only the agent's own principal speaks for it"
        );
        assert!(
            drain(&mut rx).is_empty(),
            "nothing refused reaches the framework"
        );
        m.executor_message("b", message(&agent, "e")).unwrap();
        let events = drain(&mut rx);
        assert!(
            matches!(events.as_slice(), [pb::event::Event::Message(got)]
                if got.executor_id == "e" && got.data == b"progress 50%"),
            "{events:?}"
        );
        // Once the executor ended, its messages are refused.
        m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
        assert!(m.executor_message("b", message(&agent, "e")).is_err());
    }

    #[tokio::test]
    async fn a_framework_acts_only_for_its_own_principal() {
        let (mut m, _agent, fw, _rx, offer) = setup(Duration::from_secs(30));
        let now = Instant::now();
        let accept = pb::AcceptRequest {
            framework_id: fw.clone(),
            offer_ids: vec![offer.id.clone()],
            launches: vec![launch("e", 1.0, 64)],
            refuse_seconds: 0.0,
            ..Default::default()
        };
        let stolen = m.accept(accept.clone(), "mallory", now).unwrap_err();
        assert_eq!(stolen.code(), tonic::Code::PermissionDenied);
        assert!(
            stolen.message().contains("not yours"),
            "{}",
            stolen.message()
        );
        for err in [
            m.decline(&fw, "mallory", std::slice::from_ref(&offer.id), 0.0, now)
                .unwrap_err(),
            m.kill(&fw, "mallory", "e").unwrap_err(),
            m.check_framework(&fw, "mallory").unwrap_err(),
        ] {
            assert_eq!(err.code(), tonic::Code::PermissionDenied);
        }
        let (tx, _rx2) = unbounded_channel();
        let takeover = m
            .subscribe(
                "x".into(),
                "u".into(),
                String::new(),
                "mallory".into(),
                Some(fw.clone()),
                tx,
            )
            .unwrap_err();
        assert_eq!(takeover.code(), tonic::Code::PermissionDenied);
        // The offer is still alice's, untouched.
        m.accept(accept, "alice", now)
            .expect("alice accepts her offer");
    }

    #[tokio::test]
    async fn an_agent_cannot_take_another_agents_address_or_speak_for_it() {
        let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        let taken = m
            .register_agent(
                "h".into(),
                "127.0.0.1:9".into(),
                "rogue".into(),
                Resources::new(1.0, 64),
                "posix".into(),
                client(),
                now,
            )
            .unwrap_err();
        assert_eq!(taken.code(), tonic::Code::PermissionDenied);
        assert_eq!(m.agents.len(), 1, "the real agent stays registered");
        accept_one(&mut m, &fw, offer, launch("e", 1.0, 64), now);
        let update = |agent_id: &str, executor_id: &str| pb::StatusUpdate {
            agent_id: agent_id.into(),
            framework_id: fw.clone(),
            executor_id: executor_id.into(),
            state: pb::ExecutorState::Lost as i32,
            message: String::new(),
            exit_code: None,
            reason: 0,
            ..Default::default()
        };
        // Another agent's principal with the real agent's id, or the right agent for an
        // executor it does not run: refused, and the executor keeps its state.
        let (other, _) = m
            .register_agent(
                "h2".into(),
                "127.0.0.1:10".into(),
                "c".into(),
                Resources::new(1.0, 64),
                "posix".into(),
                client(),
                now,
            )
            .unwrap();
        assert_eq!(
            m.agent_update("c", update(&agent, "e")).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            m.agent_update("c", update(&other, "e")).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            m.heartbeat(&agent, "c", now).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let key = (fw.clone(), "e".to_string());
        assert_eq!(m.executors[&key].state, pb::ExecutorState::Starting);
        m.agent_update("b", update(&agent, "e")).unwrap();
        assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
    }

    #[tokio::test]
    async fn malformed_values_are_refused_before_anything_changes() {
        let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
        let now = Instant::now();
        let req = |refuse_seconds: f64, offer_ids: Vec<String>| pb::AcceptRequest {
            framework_id: fw.clone(),
            offer_ids,
            launches: vec![launch("e", 1.0, 64)],
            refuse_seconds,
            ..Default::default()
        };
        for bad in [f64::NAN, -1.0] {
            let err = m
                .accept(req(bad, vec![offer.id.clone()]), "alice", now)
                .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
        let twice = m
            .accept(
                req(0.0, vec![offer.id.clone(), offer.id.clone()]),
                "alice",
                now,
            )
            .unwrap_err();
        assert!(
            twice.message().contains("more than once"),
            "{}",
            twice.message()
        );
        let mut nan_cpus = req(0.0, vec![offer.id.clone()]);
        nan_cpus.launches[0].resources = wire(f64::NAN, 1);
        assert!(m.accept(nan_cpus, "alice", now).is_err());
        assert!(m.offers.contains_key(&offer.id), "the offer is still there");
        // A huge filter is capped, not a panic, and the rest is filtered for a year.
        m.accept(req(1e20, vec![offer.id.clone()]), "alice", now)
            .expect("accept with a huge filter");
        m.allocate(now + Duration::from_secs(3600));
        assert!(m.offers.is_empty(), "the unused part is filtered");
        assert_eq!(refuse_duration(1e20).unwrap(), MAX_REFUSE);
        assert_eq!(refuse_duration(f64::INFINITY).unwrap(), MAX_REFUSE);
        assert_eq!(refuse_duration(0.0).unwrap(), Duration::ZERO);
        let amount = |cpus: f64, mem_mb: u64| pb::Resources {
            cpus,
            mem_mb,
            ..Default::default()
        };
        for bad in [amount(f64::NAN, 1), amount(-1.0, 1), amount(1.0, u64::MAX)] {
            assert!(check_resources("agent x", Some(&bad)).is_err(), "{bad:?}");
        }
        let nan_gpus = pb::Resources {
            scalars: [("gpus".to_string(), f64::NAN)].into(),
            ..Default::default()
        };
        let high_port = pb::Resources {
            ports: vec![pb::Range {
                begin: 1,
                end: 70000,
            }],
            ..Default::default()
        };
        for bad in [nan_gpus, high_port] {
            let err = check_extras("agent x", Some(&bad)).unwrap_err();
            assert!(err.message().contains("agent x has an invalid"), "{err}");
        }
        assert!(check_id("framework id", "").is_err());
        assert!(check_id("framework id", &"x".repeat(300)).is_err());
    }
}
