//! The scheduler side of Tessera's cluster manager: the library a framework
//! (the Tessera driver is one) uses to subscribe to a `tessera-master`, receive
//! resource offers, launch executors with them, decline them, kill executors
//! and tear down. It knows nothing of RDDs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_framework::FrameworkError> {
//! use tessera_framework::*;
//! let info = FrameworkInfo { name: "demo".into(), ..Default::default() };
//! let credential = tessera_credentials::Credential::load("creds/frameworks/alice".as_ref()).unwrap();
//! let master = MasterEndpoint { address: "127.0.0.1:5050".into(), credential };
//! let (client, mut events) = FrameworkClient::subscribe(&master, info).await?;
//! while let Some(event) = events.recv().await {
//!     if let FrameworkEvent::Offers(offers) = event {
//!         for offer in offers {
//!             client.decline(&offer.id, 5.0).await?;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Also here: [`cluster_status`] (what `tessera cluster status` shows), [`run_command`] (a
//! command run as a task, what `tessera cluster exec` does),
//! [`parse_master_url`] for session master URLs, and [`LocalCluster`], which
//! runs a real master and agents on loopback (`local-cluster[A,C,M]`).

#![deny(missing_docs)]

mod api;
mod client;
mod cluster_status;
mod command_task;
pub mod constraints;
pub mod local_cluster;
mod master_call;
mod master_link;
mod master_url;

pub use api::{
    AcceptOperation, ExecutorLaunch, ExecutorReason, ExecutorState, FrameworkEvent, FrameworkInfo,
    MasterEndpoint, Offer,
};
pub use client::FrameworkClient;
pub use cluster_status::{
    AgentSummary, ClusterStatus, ExecutorSummary, FrameworkSummary, ReservationSummary,
    cluster_status,
};
pub use command_task::{
    CommandOutcome, CommandTask, CommandTaskError, CommandTaskEvent, run_command,
};
pub use constraints::{ConstraintError, Constraints};
pub use local_cluster::{LOCAL_FRAMEWORK, LocalCluster, LocalClusterError, spawn_daemon};
pub use master_url::{DEFAULT_MASTER_PORT, MasterUrl, MasterUrlError, parse_master_url};
/// CPUs (fractional) and memory (MiB); with `contains`, `plus`, `minus`.
pub use tessera_allocator::Resources;
/// Agent attributes, port ranges, and disk/ports/custom scalars.
pub use tessera_allocator::{Attribute, Extras, Ranges};

/// What went wrong talking to the master. Every message says what happened and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    /// The master cannot be reached: it is not running, the address is wrong, or the
    /// connection broke.
    #[error(
        "cannot reach the Tessera master at {master}: {reason} — is tessera-master running? \
         start it with `tessera-master --port {port}`"
    )]
    Unreachable {
        /// The master's "HOST:PORT".
        master: String,
        /// Its port, for the command the message suggests (5050 when the address names none).
        port: String,
        /// Why the connection failed, with its underlying causes.
        reason: String,
    },
    /// The TLS handshake failed: the master and this process do not accept each other's
    /// certificates.
    #[error("the Tessera master at {master} and this process do not trust each other: {reason}")]
    Untrusted {
        /// The master's "HOST:PORT".
        master: String,
        /// The TLS failure and its remedy.
        reason: String,
    },
    /// The master address is not "HOST:PORT" or a `zk://` URL.
    #[error("{master:?} is not a master address; expected HOST:PORT, e.g. 127.0.0.1:5050")]
    BadAddress {
        /// The address as given.
        master: String,
    },
    /// The master refused a call (e.g. an invalid request or a principal not allowed to make it).
    #[error("the Tessera master at {master} refused to {action}: {message}")]
    Rejected {
        /// The master's "HOST:PORT".
        master: String,
        /// What was asked, e.g. "accept the offer".
        action: &'static str,
        /// The master's reason.
        message: String,
    },
    /// The master did not answer a call in time (10 s).
    #[error(
        "the Tessera master at {master} did not answer {action} within {seconds} s; check that it is healthy (its log)"
    )]
    Timeout {
        /// The master's "HOST:PORT".
        master: String,
        /// What was asked, e.g. "subscribe".
        action: &'static str,
        /// How long the client waited, in seconds.
        seconds: u64,
    },
    /// The master does not know this framework (it was torn down or timed out, or the master
    /// restarted; subscribe again) or, in a call about an executor, that executor.
    #[error("the Tessera master at {master} knows no such framework or executor: {message}")]
    NotRegistered {
        /// The master's "HOST:PORT".
        master: String,
        /// The master's reason.
        message: String,
    },
    /// The master answered with something the client does not expect.
    #[error("the Tessera master at {master} sent something unexpected: {detail}")]
    Protocol {
        /// The master's "HOST:PORT".
        master: String,
        /// What was unexpected.
        detail: String,
    },
    /// No master was elected under the `zk://` URL in time.
    #[error(
        "no Tessera master leads under {masters} (waited {seconds} s): start masters with \
         `tessera-master --zk {masters}`, and check that they reach ZooKeeper (their logs)"
    )]
    NoLeader {
        /// The `zk://` URL the masters are elected under.
        masters: String,
        /// How long the client waited, in seconds.
        seconds: u64,
    },
    /// Following the leading master through ZooKeeper failed.
    #[error("cannot follow the leading Tessera master: {source}")]
    ZooKeeper {
        /// What went wrong with ZooKeeper.
        source: tessera_zookeeper::ZkError,
    },
}
