//! What a framework and the master say to each other, as plain types: who the framework is
//! ([`FrameworkInfo`]), the offers it gets and what it does with them ([`Offer`],
//! [`AcceptOperation`], [`ExecutorLaunch`]), its executors' states, and the events of its
//! subscription ([`FrameworkEvent`]); with their conversions from and to the wire's messages.

use std::time::Duration;

use tessera_allocator::{Attribute, Extras, Resources};
use tessera_cluster_proto::convert::split;
use tessera_cluster_proto::master as pb;
use tessera_credentials::Credential;

/// A master, and the credential to talk to it with (a framework principal's, for
/// subscribing; any of the cluster's, for [`cluster_status`](crate::cluster_status())).
#[derive(Clone, Debug)]
pub struct MasterEndpoint {
    /// The master's "HOST:PORT".
    pub address: String,
    /// Who this process is to the master.
    pub credential: Credential,
}

/// Who the framework is.
#[derive(Clone, Debug, Default)]
pub struct FrameworkInfo {
    /// Shown in `tessera cluster status`.
    pub name: String,
    /// The user it runs as (informational; `$USER` when empty).
    pub user: String,
    /// The role its resources count against, for the master's fair sharing, weights and
    /// quota (`*` when empty and `roles` is empty).
    pub role: String,
    /// Its roles, when it is in several (Mesos' MULTI_ROLE: claim the `MULTI_ROLE`
    /// capability to name more than one); empty: `role` alone. Each offer says the role it is
    /// allocated to ([`Offer::allocation_role`]).
    pub roles: Vec<String>,
    /// How long the master keeps its executors while it is disconnected, and how long the
    /// client keeps subscribing again after a disconnect (`None`: the master's
    /// `--framework-failover-timeout-ms`, and the client does not subscribe again).
    pub failover_timeout: Option<Duration>,
    /// Capability names (Mesos' `FrameworkInfo.Capability`), recorded by the master.
    pub capabilities: Vec<String>,
    /// Subscribe as this framework again (within its failover timeout), e.g. after the
    /// process restarted; `None`: a new framework.
    pub framework_id: Option<String>,
    /// The framework acknowledges each status update itself with
    /// [`FrameworkClient::acknowledge`](crate::FrameworkClient::acknowledge); otherwise (the default, as Mesos' implicit
    /// acknowledgements) the client acknowledges each once it has handed it over on the event
    /// channel. An update not acknowledged comes again — after a while, and when the framework
    /// subscribes again.
    pub explicit_acknowledgements: bool,
}

/// Resources of one agent offered to this framework: its unreserved CPUs and memory with the
/// disk, ports and custom scalars free on it, or CPUs and memory reserved for one of the
/// framework's roles.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// The offer's id, assigned by the master: what to accept or decline it with.
    pub id: String,
    /// The agent whose resources are offered.
    pub agent_id: String,
    /// That agent's host name.
    pub hostname: String,
    /// The CPUs and memory offered.
    pub resources: Resources,
    /// Disk, port ranges and custom scalars (unreserved offers only).
    pub extras: Extras,
    /// The role the resources are reserved for (`None`: unreserved).
    pub reservation: Option<String>,
    /// The agent's attributes (`--attributes`), for constraints ([`crate::Constraints`]).
    pub attributes: Vec<Attribute>,
    /// The framework's role the offer is allocated to: what is launched from it counts in
    /// that role (one of [`FrameworkInfo::roles`]).
    pub allocation_role: String,
}

/// An executor to launch with (part of) an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorLaunch {
    /// Unique among this framework's running executors; names its sandbox
    /// directory, so no `/`.
    pub executor_id: String,
    /// The program the agent runs (looked up on its `PATH` when it names no directory), in
    /// the executor's sandbox directory.
    pub program: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// Added to the agent's environment. The agent also sets
    /// `TESSERA_AGENT_ID`, `TESSERA_FRAMEWORK_ID`, `TESSERA_EXECUTOR_ID`,
    /// `TESSERA_SANDBOX`, `TESSERA_EXECUTOR_CPUS`, `TESSERA_EXECUTOR_MEM_MB`,
    /// `TESSERA_EXECUTOR_PORTS` (the ports of `extras`, e.g. `31000-31001,31005`) and
    /// `TESSERA_LIBRARY_CACHE` (a directory the framework's executors on the agent share).
    pub env: Vec<(String, String)>,
    /// The CPUs and memory of the offer it takes.
    pub resources: Resources,
    /// Disk, ports (which ports of the offer it takes) and custom scalars.
    pub extras: Extras,
    /// A credential (CA, certificate and key, PEM) with which the agent serves the sandbox
    /// files of this framework's executors (`tessera.files.SandboxFiles`) to holders of
    /// certificates of the same CA, also after an executor ended; the agent tells the executor
    /// where in `TESSERA_SANDBOX_FILES`. `None`: not served.
    pub files_credential: Option<String>,
}

/// One thing to do with an accepted offer (Mesos' offer operations).
#[derive(Clone, Debug, PartialEq)]
pub enum AcceptOperation {
    /// Launch an executor with part of the offer.
    Launch(ExecutorLaunch),
    /// Reserve these unreserved CPUs and memory of the offer for its allocation role: they
    /// come back in offers marked with the role, to the role only, until unreserved.
    Reserve(Resources),
    /// Give these CPUs and memory, reserved for the role by `Reserve`, back to everyone.
    Unreserve(Resources),
}

impl AcceptOperation {
    pub(crate) fn into_pb(self) -> pb::Operation {
        use pb::operation::Operation as Op;
        let op = match self {
            AcceptOperation::Launch(l) => Op::Launch(pb::ExecutorLaunch {
                executor_id: l.executor_id,
                command: Some(pb::CommandInfo {
                    program: l.program,
                    args: l.args,
                    env: l.env.into_iter().collect(),
                }),
                resources: Some(pb::Resources::of(&l.resources, &l.extras)),
                files_credential: l.files_credential.unwrap_or_default(),
            }),
            AcceptOperation::Reserve(r) => Op::Reserve(pb::Resources::of_cpus_mem(&r)),
            AcceptOperation::Unreserve(r) => Op::Unreserve(pb::Resources::of_cpus_mem(&r)),
        };
        pb::Operation {
            operation: Some(op),
        }
    }
}

/// Lifecycle of an executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutorState {
    /// Launched: its agent is making its sandbox and starting its process.
    Starting,
    /// Its process has started.
    Running,
    /// Exited with status 0.
    Finished,
    /// Exited non-zero, died by a signal, or could not start.
    Failed,
    /// Killed on request (kill, teardown, its agent shutting down).
    Killed,
    /// Its agent was lost.
    Lost,
}

impl ExecutorState {
    /// Whether the executor has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finished | Self::Failed | Self::Killed | Self::Lost
        )
    }

    pub(crate) fn from_pb(value: i32) -> Option<Self> {
        use pb::ExecutorState as S;
        Some(match S::try_from(value).ok()? {
            S::Starting => Self::Starting,
            S::Running => Self::Running,
            S::Finished => Self::Finished,
            S::Failed => Self::Failed,
            S::Killed => Self::Killed,
            S::Lost => Self::Lost,
            S::Unspecified => return None,
        })
    }
}

impl std::fmt::Display for ExecutorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
            Self::Lost => "LOST",
        })
    }
}

/// Why an executor ended, when its state does not say it all (Mesos' TaskStatus reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutorReason {
    /// Its agent killed it for using more memory than it was given.
    MemoryLimit,
    /// An answer to [`FrameworkClient::reconcile`](crate::FrameworkClient::reconcile): the state the master knows.
    Reconciliation,
}

impl ExecutorReason {
    pub(crate) fn from_pb(value: i32) -> Option<Self> {
        match pb::ExecutorReason::try_from(value).ok()? {
            pb::ExecutorReason::MemoryLimit => Some(Self::MemoryLimit),
            pb::ExecutorReason::Reconciliation => Some(Self::Reconciliation),
            pb::ExecutorReason::Unspecified => None,
        }
    }
}

/// What the master tells a framework.
#[derive(Clone, Debug, PartialEq)]
pub enum FrameworkEvent {
    /// Always the first event; again after the client subscribed again with its id (the
    /// master restarted or the connection broke), followed by the states of its executors.
    Registered {
        /// The framework's id, assigned by the master; the same when it subscribes again.
        framework_id: String,
    },
    /// Resources offered to the framework (Mesos' OFFERS): accept or decline each offer.
    Offers(Vec<Offer>),
    /// The offer is gone (its agent was lost); do not accept it.
    OfferRescinded(String),
    /// A status update (Mesos' UPDATE): one of the framework's executors changed state, or an
    /// answer to [`FrameworkClient::reconcile`](crate::FrameworkClient::reconcile).
    ExecutorStatus {
        /// The executor whose state it is.
        executor_id: String,
        /// The agent it runs (or ran) on.
        agent_id: String,
        /// Its new state.
        state: ExecutorState,
        /// What its agent or the master said of the state (e.g. why it failed; may be empty).
        message: String,
        /// Once its process ended: its exit status, or 128 + the signal that ended it.
        exit_code: Option<i32>,
        /// Why it ended, when its state does not say it all.
        reason: Option<ExecutorReason>,
        /// What to acknowledge it with ([`FrameworkClient::acknowledge`](crate::FrameworkClient::acknowledge)); empty for answers
        /// to [`FrameworkClient::reconcile`](crate::FrameworkClient::reconcile), which are not acknowledged.
        uuid: String,
    },
    /// Something failed that no status update tells (Mesos' FAILURE): `agent_id` was lost
    /// (`executor_id` is `None`), or an executor ended with a non-zero `status` (as its
    /// ExecutorStatus says too). Best effort: not sent again.
    Failure {
        /// The agent lost, or the one the executor ran on.
        agent_id: String,
        /// The executor that failed; `None` when the agent was lost.
        executor_id: Option<String>,
        /// The executor's non-zero exit status, or 128 + the signal that ended it; `None` when
        /// the agent was lost.
        status: Option<i32>,
    },
    /// Bytes one of the framework's executors sent it (Mesos' MESSAGE): the executor put a
    /// file in its sandbox's `outbox/`. Best effort: not kept while the framework is away.
    Message {
        /// The agent the executor runs on.
        agent_id: String,
        /// The executor that sent it.
        executor_id: String,
        /// The contents of the file it put in its outbox.
        data: Vec<u8>,
    },
    /// Give back up to `resources` by ending executors: another framework has waited below
    /// its fair share (the master's `--reclaim-after-ms`). A framework may ignore it.
    Reclaim {
        /// How much to give back at most (CPUs and memory).
        resources: Resources,
        /// Who waits, and for how long.
        message: String,
    },
    /// The subscription ended (the master went away, or removed this
    /// framework); the last event.
    Disconnected(String),
}

/// An agent's or framework's CPUs and memory, as the master reports them.
pub(crate) fn res(r: Option<pb::Resources>) -> Resources {
    split(r.as_ref()).0
}

/// An offer as the framework sees it.
pub(crate) fn offer_from_pb(o: pb::Offer) -> Offer {
    let (resources, extras) = split(o.resources.as_ref());
    Offer {
        id: o.id,
        agent_id: o.agent_id,
        hostname: o.hostname,
        resources,
        extras,
        reservation: (!o.reservation_role.is_empty()).then_some(o.reservation_role),
        attributes: o.attributes.into_iter().map(Into::into).collect(),
        allocation_role: o.allocation_role,
    }
}

/// An event of the master's stream as the framework sees it; `None` for a heartbeat.
pub(crate) fn event_from_pb(event: pb::event::Event) -> Option<FrameworkEvent> {
    use pb::event::Event as E;
    Some(match event {
        E::Registered(r) => FrameworkEvent::Registered {
            framework_id: r.framework_id,
        },
        E::Offers(o) => FrameworkEvent::Offers(o.offers.into_iter().map(offer_from_pb).collect()),
        E::Rescind(r) => FrameworkEvent::OfferRescinded(r.offer_id),
        E::StatusUpdate(u) => FrameworkEvent::ExecutorStatus {
            executor_id: u.executor_id,
            agent_id: u.agent_id,
            state: ExecutorState::from_pb(u.state)?,
            message: u.message,
            exit_code: u.exit_code,
            reason: ExecutorReason::from_pb(u.reason),
            uuid: u.uuid,
        },
        E::Error(e) => FrameworkEvent::Disconnected(e.message),
        E::Reclaim(r) => FrameworkEvent::Reclaim {
            resources: res(r.resources),
            message: r.message,
        },
        E::Message(m) => FrameworkEvent::Message {
            agent_id: m.agent_id,
            executor_id: m.executor_id,
            data: m.data,
        },
        E::Failure(f) => FrameworkEvent::Failure {
            agent_id: f.agent_id,
            executor_id: (!f.executor_id.is_empty()).then_some(f.executor_id),
            status: f.status,
        },
        // Only proof of life, which `forward_events` takes in.
        E::Heartbeat(_) => return None,
    })
}
