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

mod config;
mod http;
mod metrics;
mod prometheus;
mod service;
mod shared;
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
use crate::shared::Shared;
pub use crate::state::{AgentAction, AgentOffering, EventSender, MasterState, Subscription};
pub use config::{AllocationPolicy, MasterConfig};

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
