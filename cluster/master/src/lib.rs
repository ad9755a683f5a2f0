//! The Tessera master: the offer-based cluster manager's coordinator.
//!
//! Agents register with their CPUs and memory and heartbeat; the master pools
//! their resources and, every allocation interval, asks its allocator
//! ([`tessera_allocator::DrfAllocator`]) which framework to offer which agent's
//! free resources. Frameworks subscribe to a stream of events (offers,
//! rescinds, executor status updates), accept offers by launching executors on
//! the offered agent, decline them (optionally filtering the agent for a
//! while), kill executors, or tear down. Agents report executor state changes,
//! which the master forwards to the owning framework.
//!
//! Master state is soft (in memory only): after a restart agents register again
//! under their ids with the executors they run, and frameworks subscribe again by
//! id within their failover timeout and keep those executors.
//!
//! Every connection is mutual TLS with certificates of the cluster's CA
//! ([`tessera_credentials`]): agents register, heartbeat and report only for
//! themselves, frameworks act only as the frameworks their principal subscribed,
//! and the master dials each agent expecting that agent's certificate. Requests
//! are at most [`MAX_REQUEST_BYTES`].
//!
//! Operators see the cluster over HTTPS on a listener of its own (`/state`, `/metrics`,
//! `/health` and a page at `/`; the `http` module).
//!
//! The binary `tessera-master` wraps [`serve`]; see `src/main.rs` for flags.

#![deny(missing_docs)]

mod http;
mod metrics;
mod service;
mod state;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster_proto::master::master_server::MasterServer;
use tessera_credentials::Credential;
use tessera_zookeeper::Standing;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::service::MasterService;
pub use crate::state::{AgentAction, AgentOffering, EventSender, MasterState, Subscription};

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

/// Errors of a running master.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The master's gRPC server failed while serving.
    #[error("the master's gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The address of a listener given to the master cannot be read.
    #[error("cannot read the master's listening address: {0}")]
    LocalAddr(std::io::Error),
    /// The master's credentials cannot serve TLS (its gRPC or HTTPS side).
    #[error("the master's credentials cannot serve TLS: {0}")]
    Credentials(#[from] tessera_credentials::CredentialError),
}

/// Largest request the master decodes; larger ones are refused with
/// `ResourceExhausted` (a registration or an accept is a few hundred bytes).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// How long a shutting-down master waits for open connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Shared {
    pub(crate) state: Mutex<MasterState>,
    /// Wakes the allocation loop early (an agent or framework joined).
    pub(crate) wake_allocator: Notify,
    pub(crate) config: MasterConfig,
    /// The master's identity, presented to agents it dials.
    pub(crate) credential: Credential,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, MasterState> {
        // A panic while holding the lock is a bug; keep serving with the state
        // as it was left rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether this master may serve: always, or while it leads the election it stands in.
#[derive(Clone, Debug)]
pub enum Leadership {
    /// The only master (no `--zk`).
    Sole,
    /// One of several masters in a ZooKeeper election: it answers only while it leads; a
    /// standby answers every call with `Unavailable`, naming the leader.
    Elected(tokio::sync::watch::Receiver<Standing>),
}

impl Leadership {
    /// Lets a call through while this master leads; otherwise says who does.
    fn admit(&self) -> Result<(), tonic::Status> {
        let Leadership::Elected(standing) = self else {
            return Ok(());
        };
        match &*standing.borrow() {
            Standing::Leading => Ok(()),
            Standing::Standby { leader } => Err(tonic::Status::unavailable(match leader {
                Some(leader) => format!(
                    "this master is a standby; the leading master is at {} (give agents and \
                     sessions the zk:// URL to follow the leader)",
                    leader.address
                ),
                None => "this master is a standby and no master leads right now; try again in \
                         a few seconds"
                    .to_string(),
            })),
            Standing::Lost { reason } => Err(tonic::Status::unavailable(format!(
                "this master no longer leads ({reason}); it is stopping"
            ))),
        }
    }
}

/// Serves the master's gRPC service on `listener` and, given `http_listener`, its HTTP
/// endpoints there, as the holder of `credential`, until `shutdown` completes. Calls are
/// answered only while `leadership` allows.
pub async fn serve(
    config: MasterConfig,
    listener: TcpListener,
    http_listener: Option<TcpListener>,
    credential: Credential,
    leadership: Leadership,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MasterError> {
    let addr = listener.local_addr().map_err(MasterError::LocalAddr)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(MasterState::new(&config)),
        wake_allocator: Notify::new(),
        config: config.clone(),
        credential: credential.clone(),
    });
    let mut background = vec![
        tokio::spawn(service::allocation_loop(shared.clone())),
        tokio::spawn(service::timeout_loop(shared.clone())),
        tokio::spawn(service::heartbeat_loop(shared.clone())),
    ];
    if let Some(http_listener) = http_listener {
        let http_addr = http_listener.local_addr().map_err(MasterError::LocalAddr)?;
        tracing::info!(%http_addr, "tessera-master serving HTTPS (/state, /metrics, /health, /)");
        background.push(tokio::spawn(http::serve(
            shared.clone(),
            http_listener,
            credential.https_server()?,
            config.authenticate_http_readonly,
        )));
    }
    tracing::info!(%addr, ?config, "tessera-master listening");
    // On shutdown, end every subscription stream so connections can drain;
    // stop waiting for them after a short grace period.
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown_shared = shared.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("tessera-master shutting down");
        shutdown_shared.lock().close_streams();
        let _ = stopping_tx.send(());
    };
    let tls = credential.server()?;
    let mut authenticator = tls.authenticator();
    let server = tonic::transport::Server::builder().serve_with_incoming_shutdown(
        tonic::service::interceptor::InterceptedService::new(
            MasterServer::new(MasterService::new(shared))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            move |request| {
                leadership.admit()?;
                tonic::service::Interceptor::call(&mut authenticator, request)
            },
        ),
        tls.incoming(listener),
        shutdown,
    );
    let result = tokio::select! {
        result = server => result,
        _ = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => Ok(()),
    };
    for task in background {
        task.abort();
    }
    result.map_err(MasterError::from)
}
