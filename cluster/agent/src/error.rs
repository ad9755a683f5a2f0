//! Why a running agent stopped, and what to check.

use crate::isolation::IsolationError;
use crate::recovery::RecoveryError;
use std::path::PathBuf;

/// Errors of a running agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The gRPC server that serves the Agent service to the master failed.
    #[error("the agent's gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The address the agent's listener is bound to could not be read.
    #[error("cannot read the agent's listening address: {0}")]
    LocalAddr(std::io::Error),
    /// The agent's certificate and key could not be made into a TLS server configuration.
    #[error("the agent's credentials cannot serve TLS: {0}")]
    Credentials(#[from] tessera_credentials::CredentialError),
    /// The master's address (given, or read from ZooKeeper at start) cannot be dialled;
    /// holds that address.
    #[error("the master address {0:?} is not HOST:PORT or zk://HOST:PORT,.../PATH")]
    BadMasterAddress(String),
    /// The `zk://` URL of the masters is malformed or no ZooKeeper server answered at start.
    #[error("cannot follow the leading master: {source}")]
    ZooKeeper {
        /// The ZooKeeper client's error.
        source: tessera_zookeeper::ZkError,
    },
    /// The isolation asked for cannot be set up on this machine.
    #[error("cannot isolate executors: {0}")]
    Isolation(#[from] IsolationError),
    /// The checkpoint of the agent's last run could not be read or its executors recovered.
    #[error("cannot recover the executors of the last run: {0}")]
    Recovery(#[from] RecoveryError),
    /// The agent's work directory, where sandboxes and the checkpoint go, could not be created.
    #[error("cannot create the work directory {path}: {source}")]
    WorkDir {
        /// The work directory (`--work-dir`).
        path: PathBuf,
        /// The I/O error from creating it.
        source: std::io::Error,
    },
}
