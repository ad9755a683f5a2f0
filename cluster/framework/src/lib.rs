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
mod error;
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
pub use error::FrameworkError;
pub use local_cluster::{LOCAL_FRAMEWORK, LocalCluster, LocalClusterError, spawn_daemon};
pub use master_url::{DEFAULT_MASTER_PORT, MasterUrl, MasterUrlError, parse_master_url};
/// CPUs (fractional) and memory (MiB); with `contains`, `plus`, `minus`.
pub use tessera_allocator::Resources;
/// Agent attributes, port ranges, and disk/ports/custom scalars.
pub use tessera_allocator::{Attribute, Extras, Ranges};
