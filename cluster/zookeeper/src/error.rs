//! Why a request to ZooKeeper failed, and what to do about it.

/// What went wrong talking to ZooKeeper.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZkError {
    /// No server of the ensemble answered.
    #[error(
        "cannot reach any ZooKeeper server of {servers}: check that the ensemble is running and \
         that the zk:// URL names its client ports"
    )]
    Unreachable {
        /// The servers tried, comma-separated.
        servers: String,
    },
    /// The connection broke while a request was in flight; it may or may not have been done.
    #[error("the connection to ZooKeeper broke during the request; try again")]
    ConnectionLoss,
    /// The session ended: its ephemeral nodes are gone.
    #[error(
        "the ZooKeeper session expired (no server of the ensemble heard from it within its \
         timeout); a new session is needed"
    )]
    SessionExpired,
    /// The node does not exist.
    #[error("ZooKeeper has no node {path}")]
    NoNode {
        /// The node.
        path: String,
    },
    /// The node exists already.
    #[error("ZooKeeper has a node {path} already")]
    NodeExists {
        /// The node.
        path: String,
    },
    /// Another error code from the server (`KeeperException.Code`).
    #[error("ZooKeeper refused the request on {path} with error code {code}")]
    Server {
        /// The server's code.
        code: i32,
        /// The node the request was about.
        path: String,
    },
    /// The server sent something this client cannot read.
    #[error("ZooKeeper sent a malformed reply ({detail}); is this a ZooKeeper server?")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The URL is not `zk://HOST:PORT[,HOST:PORT...]/PATH`.
    #[error(
        "invalid ZooKeeper URL {input:?}: {reason}; expected zk://HOST:PORT[,HOST:PORT...]/PATH, \
         e.g. zk://10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181/tessera"
    )]
    BadUrl {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}
