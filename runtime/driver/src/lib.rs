//! The Tessera driver. It lives in the session host (never in the evcxr child, so no cell and
//! no interrupt can lose it) and holds the lineage of every RDD, the map of cached blocks, the
//! executors, the compiled code they fetch, and the jobs that run on them.
//!
//! Cells reach it through a local socket ([`cell_server`]); executors through gRPC.

#![deny(missing_docs)]

mod adoption;
mod agent_files;
mod artifacts;
mod blocks;
mod cell_input;
mod cell_server;
mod cleaner;
mod config;
mod copies;
mod dag;
mod displays;
mod dynamic_allocation;
mod error;
mod executor_size;
mod executors;
#[cfg(test)]
mod fake_executor;
mod frame_explain;
mod frame_plan;
mod frame_schemas;
mod frame_sql;
mod frames;
mod jobs;
mod launcher;
mod launcher_backend;
mod lazy_inputs;
mod lineage;
mod lineage_report;
mod locality;
mod map_outputs;
mod remote_executor;
mod replication;
mod scheduler;
#[cfg(test)]
mod scheduling_tests;
mod send_hold;
mod shared_values;
mod side_files;
mod speculation;
mod state;
mod task_plan;
mod task_times;
#[cfg(test)]
mod test_lineage;
mod text_splits;

pub use cell_input::{InputError, InputReader, InputRequest};
pub use config::{ClusterOptions, DriverConfig, ShuffleService};
pub use displays::CellDisplay;
pub use dynamic_allocation::DynamicAllocation;
pub use error::DriverError;
pub use jobs::{FailedJob, JobInfo, JobState, Progress};
pub use locality::DEFAULT_LOCALITY_WAIT;
pub use shared_values::HeldBroadcast;
pub use side_files::side_files_dir;
pub use tessera_credentials::Credential;
pub use tessera_framework::{Constraints, MasterEndpoint, MasterUrl, parse_master_url};

use anyhow::Context as _;
use parking_lot::Mutex;
use state::DriverState;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tessera_plan::{RddId, StorageLevel};

/// What the driver saw of a cell's failure: the message it panicked with, and the last job it
/// ran that did not succeed.
#[derive(Clone, Debug, Default)]
pub struct CellFailure {
    /// The message the cell panicked with, as its panic hook reported it; `None`: no panic.
    pub panic: Option<String>,
    /// The last job that did not succeed since the previous call; `None`: every job did.
    pub failed_job: Option<FailedJob>,
}

/// What [`Driver::drop_unreachable`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Shuffles whose map outputs went.
    pub shuffles: usize,
    /// RDDs whose cached partitions went (they are unpersisted).
    pub cached: usize,
    /// Broadcast join sides released.
    pub broadcasts: usize,
}

/// One cached RDD as `:storage` shows it.
#[derive(Clone, Debug)]
pub struct StorageRow {
    /// The RDD's id in the session.
    pub rdd: RddId,
    /// The operation that made the RDD (`parallelize`, `map`, `text_file(PATH)`, ...).
    pub name: String,
    /// The Rust type name of its records.
    pub element_type: String,
    /// The storage level it was persisted at.
    pub level: StorageLevel,
    /// Partitions the RDD has.
    pub partitions: u32,
    /// Partitions cached on at least one executor.
    pub cached_partitions: u32,
    /// Bytes of executor memory its cached partitions hold, on every executor (copies
    /// included; 0 for those kept on disk).
    pub bytes: u64,
    /// Where the cached partitions are, one entry per executor.
    pub executors: Vec<CachedOn>,
}

/// The part of one cached RDD that one executor holds.
#[derive(Clone, Debug)]
pub struct CachedOn {
    /// The executor's id.
    pub executor: String,
    /// The host the executor runs on.
    pub host: String,
    /// Partitions of the RDD it holds.
    pub partitions: u32,
    /// Bytes of executor memory they hold (0 for those kept on disk).
    pub bytes: u64,
}

/// One executor as `:executors` shows it.
#[derive(Clone, Debug)]
pub struct ExecutorRow {
    /// The executor's id (`local-0`, or `exec-N-AGENT` on a cluster).
    pub id: String,
    /// `host:port` of its gRPC service.
    pub address: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Its task threads.
    pub cores: u32,
    /// Its memory for cached partitions, in bytes.
    pub memory_bytes: u64,
}

/// The driver of one session: the lineage of its RDDs, its executors and the jobs it runs on
/// them, and the socket its cells reach it through.
pub struct Driver {
    state: Arc<DriverState>,
    socket_name: String,
    // Dropped before the runtime it uses.
    backend: launcher_backend::BackendKeeper,
    runtime: tokio::runtime::Runtime,
}

impl Driver {
    /// Starts the driver: its services, then its executors (locally, or through a master).
    pub fn start(config: DriverConfig) -> anyhow::Result<Driver> {
        std::fs::create_dir_all(&config.work_dir).with_context(|| {
            format!(
                "cannot create the session directory {}",
                config.work_dir.display()
            )
        })?;
        // One worker: the driver's work on a job is hand-offs (a cell's request, the tasks out,
        // their results back), and a second worker only woke up to steal them, about four
        // context switches a job; with one, LR's iterations took about 2% less (`BENCHMARKS.md`,
        // "One runtime thread"). Blocking work goes to tokio's blocking pool.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-driver")
            .enable_all()
            .build()?;
        let session = SessionCredentials::generate()?;
        let artifacts = Arc::new(artifacts::ArtifactStore::default());
        let task_metrics_log = match &config.task_metrics_log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )),
            None => None,
        };
        let mut state = DriverState::new(&config.work_dir, executor_logs(&config))?;
        state.artifacts = artifacts.clone();
        state.locality_wait = config.locality_wait;
        state.task_metrics_log = task_metrics_log;
        let state = Arc::new(state);

        let socket_name = format!(
            "tessera-driver-{}-{:08x}",
            std::process::id(),
            tessera_credentials::random_u64()? as u32
        );
        let bind = driver_bind_address(&config);
        let (listener, rpc_address) = runtime.block_on(async {
            let cells = cell_server::bind(&socket_name)?;
            let rpc = tokio::net::TcpListener::bind((bind, 0))
                .await
                .with_context(|| format!("the driver cannot listen on {bind} (see --bind)"))?;
            anyhow::Ok((cells, rpc))
        })?;
        let bound = rpc_address.local_addr()?;
        let driver_address = match &config.cluster.advertise_host {
            Some(host) => format!("{host}:{}", bound.port()),
            None => tessera_credentials::advertised_address(bound),
        };
        tracing::info!(%bound, advertised = %driver_address, "the driver listens for its executors");
        runtime.spawn(cell_server::serve(listener, state.clone()));
        state.agent_files.set_credential(session.driver.clone());
        let welcomed = state.clone();
        let service = executors::DriverService {
            executors: state.executors.clone(),
            artifacts,
            shared_values: state.shared_values.clone(),
            credential: session.driver.clone(),
            welcome: Arc::new(move |executor| {
                let state = welcomed.clone();
                tokio::spawn(async move { state.welcome_executor(executor).await });
            }),
        };
        let tls = session.driver.server()?;
        let incoming = runtime.block_on(async { tls.incoming(rpc_address) });
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(tonic::service::interceptor::InterceptedService::new(
                    tessera_wire::driver::driver_server::DriverServer::new(service)
                        .max_decoding_message_size(tessera_wire::MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(tessera_wire::MAX_MESSAGE_BYTES),
                    tls.authenticator(),
                ))
                .serve_with_incoming(incoming),
        );

        let backend = launcher_backend::BackendKeeper::start(
            config,
            runtime.handle().clone(),
            state.clone(),
            driver_address,
            session.executor,
        )?;
        Ok(Driver {
            state,
            socket_name,
            runtime,
            backend,
        })
    }

    /// The abstract socket name and token a cell's `Context::connect` needs.
    pub fn cell_endpoint(&self) -> (&str, u64) {
        (&self.socket_name, self.state.token)
    }

    /// Waits until `count` executors have registered — or, once at least one has, until
    /// [`PARTIAL_START_AFTER`] has passed (a shared cluster may have no room for them all yet:
    /// the rest join as it offers them, as Spark's `maxRegisteredResourcesWaitingTime`) —
    /// saying what it waits for every few seconds; fails if none registered by `timeout`.
    pub fn wait_for_executors(&self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        const SAY_EVERY: Duration = Duration::from_secs(5);
        let executors = self.state.executors.clone();
        self.runtime.block_on(async {
            let started = tokio::time::Instant::now();
            let deadline = started + timeout;
            let mut next_word = started + SAY_EVERY;
            while executors.list().len() < count {
                let have = executors.list().len();
                if have > 0 && started.elapsed() >= PARTIAL_START_AFTER {
                    tracing::warn!(
                        "starting with {have} of {count} executors; {}; the rest join when the \
                         cluster has room for them",
                        self.backend.waiting_reason()
                    );
                    break;
                }
                let wake = if have > 0 {
                    next_word.min(deadline).min(started + PARTIAL_START_AFTER)
                } else {
                    next_word.min(deadline)
                };
                if tokio::time::timeout_at(wake, executors.changed.notified())
                    .await
                    .is_ok()
                {
                    continue;
                }
                let why = self.backend.waiting_reason();
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "only {} of {count} executors registered within {}s: {why}; see the \
                         executor logs: {}",
                        executors.list().len(),
                        timeout.as_secs(),
                        self.state.executor_logs
                    );
                }
                if tokio::time::Instant::now() < next_word {
                    continue;
                }
                tracing::warn!(
                    "waiting for resources: {} of {count} executors; {why}",
                    executors.list().len()
                );
                next_word += SAY_EVERY;
            }
            self.state.started.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    /// Drops from the executors the shuffle outputs, cached partitions and broadcast join
    /// sides of every RDD that no RDD of `roots` (the ids the session's variables hold) is
    /// computed from, as Spark's ContextCleaner does for RDDs garbage-collected; returns how
    /// many of each went. Call it between cells: a job running now may read what it drops.
    pub fn drop_unreachable(&self, roots: &[RddId]) -> Dropped {
        let gone = self.runtime.block_on(self.state.drop_unreachable(roots));
        Dropped {
            shuffles: gone.shuffles.len(),
            cached: gone.persisted.len(),
            broadcasts: gone.broadcasts.len(),
        }
    }

    /// The broadcast variables the driver holds (`:storage`), by id.
    pub fn broadcasts(&self) -> Vec<HeldBroadcast> {
        self.state.shared_values.held()
    }

    /// How many executors this driver expects (one per agent, or one for `local[N]`).
    pub fn expected_executors(&self) -> usize {
        self.backend.expected_executors
    }

    /// A handle that cancels this driver's running jobs from another thread (a Ctrl-C handler,
    /// a notebook's interrupt).
    pub fn canceller(&self) -> JobCanceller {
        JobCanceller(self.state.clone())
    }

    /// How the cell that ran since the last call failed, as the driver saw it.
    pub fn take_cell_failure(&self) -> CellFailure {
        CellFailure {
            panic: self.state.cell_panic.lock().take(),
            failed_job: self.state.failed_job.lock().take(),
        }
    }

    /// Every job the session ran or runs, oldest first (`:jobs`).
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.state.jobs.list()
    }

    /// Who answers a cell's `input()` from now on (`None`: nobody; the cell is told so).
    pub fn set_input_reader(&self, reader: Option<InputReader>) {
        self.state.input.set(reader);
    }

    /// What cells ask to show (`display`, `clear_output`) from now on.
    pub fn displays(&self) -> tokio::sync::broadcast::Receiver<CellDisplay> {
        self.state.displays.subscribe()
    }

    /// The progress of every job from now on: an event whenever a job or a stage starts or
    /// ends, or a task finishes.
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<Progress> {
        self.state.jobs.subscribe()
    }

    /// The executors registered now (`:executors`).
    pub fn executors(&self) -> Vec<ExecutorRow> {
        self.state
            .executors
            .list()
            .into_iter()
            .map(|e| ExecutorRow {
                id: e.id,
                address: e.address,
                host: e.host,
                pid: e.pid,
                cores: e.cores,
                memory_bytes: e.memory_bytes,
            })
            .collect()
    }

    /// Every RDD with a storage level, and where its cached partitions are (`:storage`).
    pub fn storage(&self) -> Vec<StorageRow> {
        self.state
            .lineage
            .persisted()
            .into_iter()
            .map(|(rdd, name, element_type, partitions, level)| {
                let shares = self.state.blocks.shares(rdd);
                StorageRow {
                    rdd,
                    name,
                    element_type,
                    level,
                    partitions,
                    cached_partitions: self.state.blocks.cached_partitions(rdd).len() as u32,
                    bytes: shares.values().map(|s| s.bytes).sum(),
                    executors: shares
                        .into_iter()
                        .map(|(id, s)| CachedOn {
                            host: self
                                .state
                                .executors
                                .get(&id)
                                .map_or_else(|| "?".into(), |e| e.host),
                            executor: id,
                            partitions: s.partitions,
                            bytes: s.bytes,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The master this driver registered with, and its credential for it, for `:cluster`.
    pub fn master(&self) -> Option<tessera_framework::MasterEndpoint> {
        self.backend.master.clone()
    }
}

/// Cancels the driver's running jobs from another thread (a Ctrl-C handler, a notebook's
/// interrupt); made by [`Driver::canceller`].
#[derive(Clone)]
pub struct JobCanceller(Arc<DriverState>);

impl JobCanceller {
    /// Cancels every running job; returns how many there were.
    pub fn cancel_all(&self) -> usize {
        self.0.jobs.cancel_all()
    }
}

/// The session's private credentials: a CA made for this session alone, a certificate for its
/// driver and one that every executor of the session receives through its launch.
struct SessionCredentials {
    driver: tessera_credentials::Credential,
    executor: tessera_credentials::Credential,
}

/// How long a session that has some of its executors waits for the rest before it starts.
pub const PARTIAL_START_AFTER: Duration = Duration::from_secs(5);

/// How long a session's certificates are valid: longer than any session lives.
const SESSION_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

impl SessionCredentials {
    fn generate() -> anyhow::Result<SessionCredentials> {
        use tessera_credentials::{Authority, Principal};
        let ca = Authority::generate("Tessera session CA")?;
        Ok(SessionCredentials {
            driver: ca.issue(&Principal::Driver, SESSION_VALIDITY)?,
            executor: ca.issue(&Principal::Executor, SESSION_VALIDITY)?,
        })
    }
}

/// Where a session's executors write their logs.
fn executor_logs(config: &DriverConfig) -> String {
    match config.master {
        MasterUrl::Local { .. } => config
            .work_dir
            .join("executor-local-0.log")
            .display()
            .to_string(),
        MasterUrl::LocalCluster { .. } | MasterUrl::Tessera { .. } => {
            "`stderr` in each executor's sandbox, under its agent's --work-dir (`tessera cluster \
             status` shows which agent runs which executor)"
                .into()
        }
    }
}

/// Where the driver listens for executors: `--bind` if given; on a running cluster, the
/// address this host uses to reach the master (where the cluster's hosts can reach it back);
/// loopback otherwise.
fn driver_bind_address(config: &DriverConfig) -> std::net::IpAddr {
    if let Some(bind) = config.cluster.bind {
        return bind;
    }
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    match &config.master {
        MasterUrl::Tessera { address } => {
            // Masters found through ZooKeeper are on the network its servers are on.
            let towards = match tessera_zookeeper::ZkUrl::parse(address) {
                Ok(zk) => zk.servers[0].clone(),
                Err(_) => address.clone(),
            };
            tessera_credentials::local_address_towards(&towards).unwrap_or(loopback)
        }
        _ => loopback,
    }
}
