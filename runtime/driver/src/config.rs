//! How a driver is started: where its executors come from, and what a session asks of a
//! cluster.

use crate::dynamic_allocation::DynamicAllocation;
use std::path::PathBuf;
use tessera_framework::{Constraints, MasterUrl};

/// How to start a driver.
pub struct DriverConfig {
    /// Where executors come from: `local[N]` on this machine, `local-cluster[...]`, or a
    /// running master (`tessera://`, `zk://`).
    pub master: MasterUrl,
    /// Where `tessera-executor` (and the cluster daemons) are.
    pub bin_dir: PathBuf,
    /// Logs and scratch files of this session.
    pub work_dir: PathBuf,
    /// Memory per executor for cached partitions, in MiB.
    pub executor_memory_mb: u64,
    /// How long a task waits for a slot at each locality level before trying the next.
    pub locality_wait: std::time::Duration,
    /// Append every finished task's metrics here, one JSON object a line.
    pub task_metrics_log: Option<PathBuf>,
    /// How to reach a cluster and what to ask of it.
    pub cluster: ClusterOptions,
    /// The toolchain's `libstd-*.so`, which cell libraries link dynamically: executors load it
    /// before they register (`tessera-executor --preload`).
    pub libstd: Option<PathBuf>,
}

/// Whether, on a cluster, each agent serves the copies of map outputs that the session's
/// executors on it leave in their sandboxes, so that an executor's loss does not lose its map
/// outputs (Spark's `spark.shuffle.service.enabled`). On by default, unlike Spark's: Tessera's
/// agents run it themselves, and the copies cost a write to the page cache per map output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShuffleService {
    /// Agents serve the copies: a lost executor's map outputs stay readable.
    #[default]
    Enabled,
    /// Map outputs live and die with their executor (and are computed again from lineage).
    Disabled,
}

/// How a session reaches a cluster, and the executors it asks for (as spark-submit's
/// `--num-executors`, `--executor-cores`).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// The framework principal's credentials for `tessera://` (a directory `tessera cluster
    /// init-credentials DIR --framework NAME` made as DIR/frameworks/NAME).
    pub credentials: Option<PathBuf>,
    /// Where the driver listens for its executors (default: loopback, or on a running cluster
    /// the address this host uses to reach the master).
    pub bind: Option<std::net::IpAddr>,
    /// The host executors dial to reach the driver, when not the bound address.
    pub advertise_host: Option<String>,
    /// Executors to acquire on a cluster (default: one per agent).
    pub executors: Option<usize>,
    /// CPUs (task threads) per executor on a cluster (default: all an offer holds).
    pub executor_cores: Option<u32>,
    /// Release executors idle this long, on a cluster (default: keep them while the session
    /// lasts), so that other sessions can use their resources.
    pub dynamic_allocation: Option<DynamicAllocation>,
    /// The role the session's resources count against on a cluster (the master's `*` when
    /// empty): its share, weight and quota.
    pub role: String,
    /// Where executors may run on a cluster, over agents' attributes (Spark's
    /// `spark.mesos.constraints`, e.g. `rack:r1,r2;zone:z1`): offers of other agents are
    /// declined.
    pub executor_constraints: Constraints,
    /// Whether agents keep the session's map outputs readable once their executor is gone.
    pub shuffle_service: ShuffleService,
    /// How long the master keeps the session's executors (and so their cached partitions)
    /// while the session is cut off from it — a master restart, a network cut — and how long
    /// the session keeps subscribing again (default: 60 s).
    pub failover_timeout: Option<std::time::Duration>,
}
