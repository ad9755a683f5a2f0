//! Tessera on ZooKeeper: masters elect their leader through an ensemble, and agents, sessions
//! and the command line find the leader there (Mesos' `--zk`).
//!
//! * [`ZooKeeper`]: a session with an ensemble (the few operations Tessera needs, spoken in
//!   ZooKeeper's own protocol over TCP), resumed on another server when one dies.
//! * [`contend`]: a master stands for election; the lowest ephemeral sequential node under
//!   the URL's path leads, the others stand by and watch.
//! * [`MasterDetector`]: where the leading master is — a fixed `HOST:PORT`, or what the
//!   ensemble says under a `zk://` URL, followed as leaders change.

#![deny(missing_docs)]

mod detector;
mod election;
mod election_nodes;
mod error;
mod jute;
mod protocol;
mod session;
mod url;

pub use detector::MasterDetector;
pub use election::{Contender, Standing, contend};
pub use election_nodes::{MasterInfo, leader_of};
pub use error::ZkError;
pub use protocol::{CreateMode, WatchedEvent};
pub use session::{SessionEvent, ZooKeeper};
pub use url::ZkUrl;
