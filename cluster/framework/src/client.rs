//! [`FrameworkClient`]: a framework's subscription to the master, its event
//! stream, and its calls (accept, decline, kill, reconcile, teardown);
//! [`cluster_status`].
//!
//! With a failover timeout ([`FrameworkInfo::failover_timeout`]) the client
//! survives a master restart or a network cut, as Mesos' scheduler library does:
//! when the subscription breaks it subscribes again with its framework id,
//! retrying with backoff until the failover timeout has passed, then asks the
//! master for the state of all its executors (implicit reconciliation). The
//! framework sees a second [`FrameworkEvent::Registered`] and the answers as
//! status updates; [`FrameworkEvent::Disconnected`] comes only when it gives up.

use std::sync::Arc;
use std::time::Duration;

use tessera_allocator::{Attribute, Extras, Resources};
use tessera_cluster_proto::convert::split;
use tessera_cluster_proto::master as pb;
use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_credentials::{Credential, describe_status};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

use crate::FrameworkError;
use crate::master_call::{CALL_TIMEOUT, call, status_error};
use crate::master_link::MasterLink;

/// Events not yet read by the framework; the master's stream waits beyond this.
const EVENT_BUFFER: usize = 1024;
/// A framework that hears nothing from the master for this many heartbeat intervals takes it
/// for gone.
const MISSED_HEARTBEATS: f64 = 3.0;

/// A master, and the credential to talk to it with (a framework principal's, for
/// subscribing; any of the cluster's, for [`cluster_status`]).
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
    /// [`FrameworkClient::acknowledge`]; otherwise (the default, as Mesos' implicit
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
    fn into_pb(self) -> pb::Operation {
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

    fn from_pb(value: i32) -> Option<Self> {
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
    /// An answer to [`FrameworkClient::reconcile`]: the state the master knows.
    Reconciliation,
}

impl ExecutorReason {
    fn from_pb(value: i32) -> Option<Self> {
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
    /// answer to [`FrameworkClient::reconcile`].
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
        /// What to acknowledge it with ([`FrameworkClient::acknowledge`]); empty for answers
        /// to [`FrameworkClient::reconcile`], which are not acknowledged.
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

fn res(r: Option<pb::Resources>) -> Resources {
    split(r.as_ref()).0
}

fn offer_from_pb(o: pb::Offer) -> Offer {
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

struct Inner {
    link: Arc<MasterLink>,
    framework_id: String,
    /// What subscribes again as this framework.
    subscription: pb::SubscribeRequest,
    /// Dropped with the last clone of the client: ends the subscription.
    _alive: oneshot::Sender<()>,
}

/// A framework subscribed to a master. Cheap to clone; the subscription (and,
/// with the master's default zero failover timeout, every executor of the
/// framework) ends when the last clone is dropped or the event receiver is
/// dropped.
#[derive(Clone)]
pub struct FrameworkClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FrameworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameworkClient")
            .field("master", &self.inner.link.address())
            .field("framework_id", &self.inner.framework_id)
            .finish()
    }
}

impl FrameworkClient {
    /// Subscribes to the master at `master` ("HOST:PORT"). The receiver gets
    /// [`FrameworkEvent::Registered`] first, then offers and status updates,
    /// and [`FrameworkEvent::Disconnected`] last if the subscription ends.
    pub async fn subscribe(
        endpoint: &MasterEndpoint,
        info: FrameworkInfo,
    ) -> Result<(FrameworkClient, mpsc::Receiver<FrameworkEvent>), FrameworkError> {
        let link = Arc::new(MasterLink::new(&endpoint.address, &endpoint.credential).await?);
        let user = if info.user.is_empty() {
            std::env::var("USER").unwrap_or_default()
        } else {
            info.user
        };
        let mut request = pb::SubscribeRequest {
            name: info.name,
            user,
            framework_id: info.framework_id.unwrap_or_default(),
            role: info.role,
            failover_timeout_seconds: info.failover_timeout.map(|t| t.as_secs_f64()),
            capabilities: info.capabilities,
            roles: info.roles,
        };
        let (master, client) = link.client().await?;
        let subscribed = subscribe_once(&client, &master, request.clone()).await?;
        let framework_id = subscribed.framework_id.clone();
        tracing::info!(%master, %framework_id, "subscribed to the Tessera master");
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let _ = tx
            .send(FrameworkEvent::Registered {
                framework_id: framework_id.clone(),
            })
            .await;
        let (alive_tx, alive_rx) = oneshot::channel();
        request.framework_id = framework_id.clone();
        let subscription = request.clone();
        let failover = info.failover_timeout.filter(|t| !t.is_zero());
        tokio::spawn(forward_events(
            Resubscriber {
                link: link.clone(),
                request,
                failover,
                acknowledge: !info.explicit_acknowledgements,
            },
            subscribed,
            tx,
            alive_rx,
        ));
        let inner = Inner {
            link,
            framework_id,
            subscription,
            _alive: alive_tx,
        };
        Ok((
            FrameworkClient {
                inner: Arc::new(inner),
            },
            rx,
        ))
    }

    /// The id the master gave this framework.
    pub fn framework_id(&self) -> &str {
        &self.inner.framework_id
    }

    /// The leading master's "HOST:PORT" (the `zk://` URL while none leads).
    pub fn master(&self) -> String {
        self.inner.link.address()
    }

    /// Accepts an offer, launching executors with (part of) its resources.
    /// What the launches do not use goes back to the pool. Status updates for
    /// the executors arrive as events. An empty `launches` releases the offer.
    pub async fn accept(
        &self,
        offer_id: &str,
        launches: Vec<ExecutorLaunch>,
    ) -> Result<(), FrameworkError> {
        let operations = launches.into_iter().map(AcceptOperation::Launch).collect();
        self.accept_operations(offer_id, operations).await
    }

    /// Accepts an offer with operations, done in order: launches, reservations for this
    /// framework's role, unreservations. What they do not use goes back to the pool; if one
    /// does not fit, none is done.
    pub async fn accept_operations(
        &self,
        offer_id: &str,
        operations: Vec<AcceptOperation>,
    ) -> Result<(), FrameworkError> {
        let request = pb::AcceptRequest {
            framework_id: self.inner.framework_id.clone(),
            offer_ids: vec![offer_id.to_string()],
            operations: operations
                .into_iter()
                .map(AcceptOperation::into_pb)
                .collect(),
            ..Default::default()
        };
        self.inner
            .link
            .call("accept the offer", |mut client| {
                let request = request.clone();
                async move { client.accept(request).await }
            })
            .await?;
        Ok(())
    }

    /// Declines an offer. With `refuse_seconds > 0`, this framework is not
    /// offered that agent again for that long.
    pub async fn decline(&self, offer_id: &str, refuse_seconds: f64) -> Result<(), FrameworkError> {
        let request = pb::DeclineRequest {
            framework_id: self.inner.framework_id.clone(),
            offer_ids: vec![offer_id.to_string()],
            refuse_seconds,
        };
        self.inner
            .link
            .call("decline the offer", |mut client| {
                let request = request.clone();
                async move { client.decline(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for no offers until [`revive`](FrameworkClient::revive) (Mesos' SUPPRESS): for a
    /// framework that has all it needs. Offers it holds stay.
    pub async fn suppress(&self) -> Result<(), FrameworkError> {
        self.suppress_roles(&[]).await
    }

    /// Asks for no offers in `roles` (empty: all its roles) until they are revived (Mesos'
    /// SUPPRESS with roles). Naming a role the framework is not in is refused.
    pub async fn suppress_roles(&self, roles: &[&str]) -> Result<(), FrameworkError> {
        let request = pb::SuppressRequest {
            framework_id: self.inner.framework_id.clone(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        self.inner
            .link
            .call("suppress offers", |mut client| {
                let request = request.clone();
                async move { client.suppress(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for offers again, on every agent, dropping earlier decline filters (Mesos'
    /// REVIVE).
    pub async fn revive(&self) -> Result<(), FrameworkError> {
        self.revive_roles(&[]).await
    }

    /// Asks for offers again in `roles` (empty: all its roles), dropping earlier decline
    /// filters (Mesos' REVIVE with roles).
    pub async fn revive_roles(&self, roles: &[&str]) -> Result<(), FrameworkError> {
        let request = pb::ReviveRequest {
            framework_id: self.inner.framework_id.clone(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        self.inner
            .link
            .call("revive offers", |mut client| {
                let request = request.clone();
                async move { client.revive(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for an executor to be killed at once (SIGKILL to its processes); a KILLED status
    /// update follows.
    pub async fn kill_executor(&self, executor_id: &str) -> Result<(), FrameworkError> {
        let request = pb::KillRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
        };
        self.inner
            .link
            .call("kill the executor", |mut client| {
                let request = request.clone();
                async move { client.kill(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for an executor to be shut down gracefully (Mesos' SHUTDOWN): SIGTERM, then SIGKILL
    /// after its agent's grace period; a KILLED status update follows.
    pub async fn shutdown_executor(&self, executor_id: &str) -> Result<(), FrameworkError> {
        let request = pb::ShutdownRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
        };
        self.inner
            .link
            .call("shut down the executor", |mut client| {
                let request = request.clone();
                async move { client.shutdown(request).await }
            })
            .await?;
        Ok(())
    }

    /// Sends bytes to a running executor (Mesos' MESSAGE): its agent puts them in the
    /// executor's sandbox as the file `messages/NNNNNNNNNN`, numbered in the order they reach
    /// it. Best effort: not retried, and two messages may arrive in either order.
    pub async fn send_message(
        &self,
        executor_id: &str,
        data: Vec<u8>,
    ) -> Result<(), FrameworkError> {
        let request = pb::MessageRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
            data,
        };
        self.inner
            .link
            .call("send a message to the executor", |mut client| {
                let request = request.clone();
                async move { client.message(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for the latest state of executors, which comes as
    /// [`FrameworkEvent::ExecutorStatus`] events (Mesos' RECONCILE): of those named —
    /// [`ExecutorState::Lost`] for ones the master does not know — or, with none named, of
    /// every executor of this framework that has not ended (implicit reconciliation).
    pub async fn reconcile(&self, executor_ids: Vec<String>) -> Result<(), FrameworkError> {
        reconcile(&self.inner.link, &self.inner.framework_id, executor_ids).await
    }

    /// Acknowledges a status update ([`FrameworkEvent::ExecutorStatus`]'s `agent_id`,
    /// `executor_id` and `uuid`), with [`FrameworkInfo::explicit_acknowledgements`]: the master
    /// and the agent stop sending it, and the executor's next update comes.
    pub async fn acknowledge(
        &self,
        agent_id: &str,
        executor_id: &str,
        uuid: &str,
    ) -> Result<(), FrameworkError> {
        acknowledge(
            &self.inner.link,
            pb::AcknowledgeRequest {
                framework_id: self.inner.framework_id.clone(),
                agent_id: agent_id.to_string(),
                executor_id: executor_id.to_string(),
                uuid: uuid.to_string(),
            },
        )
        .await
    }

    /// Ends the framework: the master kills all its executors and frees its
    /// resources; the event stream ends.
    pub async fn teardown(&self) -> Result<(), FrameworkError> {
        let request = pb::TeardownRequest {
            framework_id: self.inner.framework_id.clone(),
        };
        let teardown = || {
            self.inner
                .link
                .call("tear down the framework", |mut client| {
                    let request = request.clone();
                    async move { client.teardown(request).await }
                })
        };
        match teardown().await {
            // A master elected since, that has not heard from this framework yet: subscribe to
            // it by id (it then knows whose executors agents bring back), then tear down.
            Err(FrameworkError::NotRegistered { .. }) => {
                let (master, client) = self.inner.link.client().await?;
                let subscribed =
                    subscribe_once(&client, &master, self.inner.subscription.clone()).await?;
                let done = teardown().await;
                drop(subscribed);
                done.map(drop)
            }
            done => done.map(drop),
        }
    }
}

async fn reconcile(
    link: &MasterLink,
    framework_id: &str,
    executor_ids: Vec<String>,
) -> Result<(), FrameworkError> {
    let request = pb::ReconcileRequest {
        framework_id: framework_id.to_string(),
        executor_ids,
    };
    link.call("reconcile executor states", |mut client| {
        let request = request.clone();
        async move { client.reconcile(request).await }
    })
    .await?;
    Ok(())
}

async fn acknowledge(
    link: &MasterLink,
    request: pb::AcknowledgeRequest,
) -> Result<(), FrameworkError> {
    link.call("acknowledge a status update", |mut client| {
        let request = request.clone();
        async move { client.acknowledge(request).await }
    })
    .await?;
    Ok(())
}

/// A subscription stream that has just said Registered.
struct Subscribed {
    stream: tonic::Streaming<pb::Event>,
    framework_id: String,
    /// After this long without a word (several heartbeats missed), the master is taken for
    /// stopped or cut off; `None` from a master that sends no heartbeats.
    silence_limit: Option<Duration>,
}

/// Subscribes with `request` and reads the master's first answer, which must be Registered.
async fn subscribe_once(
    client: &MasterClient<Channel>,
    master: &str,
    request: pb::SubscribeRequest,
) -> Result<Subscribed, FrameworkError> {
    let mut stream = call(master, "subscribe", client.clone().subscribe(request)).await?;
    let first = tokio::time::timeout(CALL_TIMEOUT, stream.message()).await;
    let (framework_id, heartbeat_interval) = match first {
        Ok(Ok(Some(pb::Event {
            event: Some(pb::event::Event::Registered(r)),
        }))) => (r.framework_id, r.heartbeat_interval_seconds),
        Ok(Ok(Some(pb::Event {
            event: Some(pb::event::Event::Error(e)),
        }))) => {
            return Err(FrameworkError::Rejected {
                master: master.to_string(),
                action: "subscribe",
                message: e.message,
            });
        }
        Ok(Ok(other)) => {
            return Err(FrameworkError::Protocol {
                master: master.to_string(),
                detail: format!("expected Registered first, got {other:?}"),
            });
        }
        Ok(Err(status)) => return Err(status_error(master, "subscribe", status)),
        Err(_) => {
            return Err(FrameworkError::Timeout {
                master: master.to_string(),
                action: "subscribe",
                seconds: CALL_TIMEOUT.as_secs(),
            });
        }
    };
    // Several heartbeats missed: the master is stopped or cut off (a master of an older
    // release sends none, and says so with 0).
    let silence_limit = (heartbeat_interval > 0.0).then(|| {
        Duration::from_secs_f64(heartbeat_interval * MISSED_HEARTBEATS).max(Duration::from_secs(1))
    });
    Ok(Subscribed {
        stream,
        framework_id,
        silence_limit,
    })
}

/// What it takes to subscribe again as the same framework.
struct Resubscriber {
    link: Arc<MasterLink>,
    /// Carries the framework id.
    request: pb::SubscribeRequest,
    /// Subscribes again for this long after a disconnect; never when `None`.
    failover: Option<Duration>,
    /// Acknowledges status updates once handed over to the framework.
    acknowledge: bool,
}

/// Waits between attempts to subscribe again: from 100 ms, doubling, at most 2 s.
fn resubscribe_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(5))
        .min(Duration::from_secs(2))
}

impl Resubscriber {
    /// Subscribes again until it works or the failover timeout since `since` has passed; a
    /// master that refuses (e.g. it removed this framework) ends the attempts at once. Then
    /// asks for the states of all the framework's executors.
    async fn resubscribe(&self, since: tokio::time::Instant) -> Result<Subscribed, String> {
        let Some(failover) = self.failover else {
            return Err(String::new());
        };
        let deadline = since + failover;
        let mut attempt = 0;
        loop {
            let subscription = async {
                let (master, client) = self.link.client().await?;
                subscribe_once(&client, &master, self.request.clone()).await
            };
            match subscription.await {
                Ok(subscribed) => {
                    tracing::info!(master = %self.link.address(), framework_id = %subscribed.framework_id, "subscribed again to the Tessera master");
                    if let Err(e) =
                        reconcile(&self.link, &subscribed.framework_id, Vec::new()).await
                    {
                        tracing::warn!("cannot reconcile after subscribing again: {e}");
                    }
                    return Ok(subscribed);
                }
                Err(e @ FrameworkError::Rejected { .. }) => return Err(e.to_string()),
                Err(e) => {
                    let wait = resubscribe_backoff(attempt);
                    if tokio::time::Instant::now() + wait >= deadline {
                        return Err(format!(
                            "gave up subscribing again within the failover timeout of {:.0} s: {e}",
                            failover.as_secs_f64()
                        ));
                    }
                    if attempt == 0 || attempt % 10 == 9 {
                        tracing::warn!("cannot subscribe again yet, retrying: {e}");
                    }
                    attempt += 1;
                    // A newly elected master is tried at once.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.link.leader_changed() => attempt = 0,
                    }
                }
            }
        }
    }
}

fn event_from_pb(event: pb::event::Event) -> Option<FrameworkEvent> {
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

/// How a subscription stream ended.
enum StreamEnd {
    /// The framework's side went away: nothing more to do.
    Dropped,
    /// The master said so (an Error event: e.g. it removed the framework): final.
    Refused(String),
    /// The connection broke, the master closed it or fell silent: worth subscribing again.
    Broken(String),
}

/// Moves events from the master's stream to the framework until either side
/// goes away; when the connection breaks, subscribes again (within the failover
/// timeout) and goes on.
async fn forward_events(
    again: Resubscriber,
    mut subscribed: Subscribed,
    tx: mpsc::Sender<FrameworkEvent>,
    mut alive: oneshot::Receiver<()>,
) {
    loop {
        let why = match forward_stream(&mut subscribed, &tx, &mut alive, &again).await {
            StreamEnd::Dropped => return,
            StreamEnd::Refused(why) => why,
            StreamEnd::Broken(why) => {
                tracing::warn!(master = %again.link.address(), "{why}");
                let since = tokio::time::Instant::now();
                let attempt = tokio::select! {
                    attempt = again.resubscribe(since) => attempt,
                    _ = &mut alive => return,
                    _ = tx.closed() => return,
                };
                match attempt {
                    Ok(next) => {
                        subscribed = next;
                        let registered = FrameworkEvent::Registered {
                            framework_id: subscribed.framework_id.clone(),
                        };
                        if tx.send(registered).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(more) if more.is_empty() => why,
                    Err(more) => format!("{why}; {more}"),
                }
            }
        };
        let _ = tx.send(FrameworkEvent::Disconnected(why)).await;
        return;
    }
}

/// Forwards the events of one subscription stream until it ends.
async fn forward_stream(
    subscribed: &mut Subscribed,
    tx: &mpsc::Sender<FrameworkEvent>,
    alive: &mut oneshot::Receiver<()>,
    again: &Resubscriber,
) -> StreamEnd {
    let master = again.link.address();
    // Without heartbeats, a year: only the connection's end ends the wait.
    let limit = subscribed
        .silence_limit
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(limit, subscribed.stream.message()) => match next {
                Ok(next) => next,
                Err(_) => {
                    return StreamEnd::Broken(format!(
                        "no word from the Tessera master at {master} for {:.0} s (it sends a \
                         heartbeat more often): it is stopped or cannot be reached",
                        limit.as_secs_f64()
                    ));
                }
            },
            _ = &mut *alive => {
                tracing::debug!(%master, "framework client dropped; ending the subscription");
                return StreamEnd::Dropped;
            }
            _ = tx.closed() => {
                tracing::debug!(%master, "framework event receiver dropped; ending the subscription");
                return StreamEnd::Dropped;
            }
        };
        let event = match next {
            Ok(Some(pb::Event {
                event: Some(pb::event::Event::Error(e)),
            })) => return StreamEnd::Refused(e.message),
            Ok(Some(pb::Event { event: Some(e) })) => match event_from_pb(e) {
                Some(e) => e,
                None => continue,
            },
            Ok(Some(pb::Event { event: None })) => continue,
            Ok(None) => {
                return StreamEnd::Broken(format!(
                    "the Tessera master at {master} closed the subscription"
                ));
            }
            Err(status) => {
                return StreamEnd::Broken(format!(
                    "lost the connection to the Tessera master at {master}: {}",
                    describe_status(&status)
                ));
            }
        };
        let ack = match &event {
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                uuid,
                ..
            } if again.acknowledge && !uuid.is_empty() => Some(pb::AcknowledgeRequest {
                framework_id: subscribed.framework_id.clone(),
                agent_id: agent_id.clone(),
                executor_id: executor_id.clone(),
                uuid: uuid.clone(),
            }),
            _ => None,
        };
        if tx.send(event).await.is_err() {
            return StreamEnd::Dropped;
        }
        // Handed over: acknowledged, off this loop (a lost acknowledgement only means the
        // update comes again).
        if let Some(request) = ack {
            let link = again.link.clone();
            tokio::spawn(async move {
                if let Err(e) = acknowledge(&link, request).await {
                    tracing::debug!("cannot acknowledge a status update: {e}");
                }
            });
        }
    }
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
