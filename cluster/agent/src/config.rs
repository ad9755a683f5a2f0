//! What an agent offers and where it talks.

use crate::isolation::IsolationConfig;
use crate::recovery::RecoverMode;
use std::path::PathBuf;
use tessera_credentials::Credential;

/// What the agent offers and where it talks.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The master's "host:port", or `zk://HOST:PORT,.../PATH` to follow the masters' leader.
    pub master: String,
    /// CPUs offered to frameworks.
    pub cpus: f64,
    /// Memory offered to frameworks, in MiB.
    pub mem_mb: u64,
    /// Disk, ports and custom scalars offered besides (`--disk-mb`, `--ports`,
    /// `--resources`).
    pub extras: tessera_allocator::Extras,
    /// CPUs and memory reserved for roles, on top of `cpus` and `mem_mb` (`--resources
    /// "cpus(ROLE):N;mem(ROLE):M"`).
    pub reserved: std::collections::BTreeMap<String, tessera_allocator::Resources>,
    /// Shown in offers, for frameworks' constraints (`--attributes rack:r1;zone:z1`).
    pub attributes: Vec<tessera_allocator::Attribute>,
    /// Executors' sandboxes go under `work_dir/frameworks/`.
    pub work_dir: PathBuf,
    /// The host name shown in offers.
    pub hostname: String,
    /// The HOST:PORT the master should dial (default: the bound address, or
    /// the host name when bound to every interface).
    pub advertise_address: Option<String>,
    /// The agent's identity (an agent certificate of the cluster's CA).
    pub credential: Credential,
    /// How to isolate executors.
    pub isolation: IsolationConfig,
    /// What to do with the executors of a checkpoint found at start (`--recover`).
    pub recover: RecoverMode,
    /// Executors of a checkpoint older than this are killed at start (`--recovery-timeout-s`).
    pub recovery_timeout: std::time::Duration,
}
