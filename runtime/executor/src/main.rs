//! `tessera-executor`: one long-lived process per session per host. It registers with its
//! driver, loads the cell libraries its tasks need, runs tasks on `--cores` threads, keeps
//! cached partitions in memory between jobs, and serves the shuffle output it wrote to the
//! session's other executors. Under an agent that serves the session's sandbox files
//! (`TESSERA_SANDBOX_FILES`), it keeps a copy of each map output in its sandbox for the agent
//! to serve once it is gone, and tells the driver so. It ends when its driver asks, when its
//! launcher terminates it, or once its driver has not answered its heartbeats for its driver
//! timeout ([`driver_watch`]).

mod allocator;
mod artifacts;
mod bad_record;
mod block_encoding;
mod block_file;
mod blocks;
mod cpu_moves;
mod driver_watch;
mod error;
mod host_copy;
mod host_memory;
mod morsels;
mod open_chain;
mod replication;
mod runs;
mod service;
mod shuffle_fetch;
mod shuffle_store;
mod start_priority;
mod task_env;
mod task_host;
mod task_runner;
mod task_slots;
#[cfg(test)]
mod test_table;
mod text_split;

use anyhow::{Context, bail};
use clap::Parser;
use std::sync::Arc;
use task_slots::TaskSlots;
use tessera_credentials::{Credential, EXECUTOR_CREDENTIAL_ENV, Principal};
use tessera_wire::driver::RegisterExecutorRequest;
use tessera_wire::executor::executor_server::ExecutorServer;
use tessera_wire::{DRIVER_TIMEOUT_ENV, MAX_MESSAGE_BYTES};

/// The `exp` the closures of cell libraries call: tessera-libm's, which the build exports from
/// this binary (build.rs). Naming it here keeps the linker from leaving it out.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
static CLOSURES_EXP: extern "C" fn(f64) -> f64 = tessera_libm::exp;

/// What each operator of a task may hold before it spills, out of the executor's shuffle
/// execution memory shared by its task threads (Spark gives each of N running tasks up to 1/N).
fn task_spill_budget(execution_bytes: u64, cores: u32) -> u64 {
    execution_bytes / u64::from(cores.max(1))
}

#[derive(Parser)]
#[command(version, about = "Runs the tasks of one Tessera session on this host")]
struct Args {
    /// The driver's executor endpoint, host:port.
    #[arg(long)]
    driver: String,
    #[arg(long)]
    executor_id: String,
    /// Task threads.
    #[arg(long, default_value_t = 1)]
    cores: u32,
    /// Memory for cached partitions, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u64,
    /// The memory its launcher holds this executor to, in MiB (an agent kills it past that);
    /// near it, memory tasks free goes back to the system at once.
    #[arg(long)]
    memory_limit_mb: Option<u64>,
    /// Memory for shuffle output this executor wrote, in MiB, before the oldest goes to disk
    /// (default: a quarter of --memory-mb, or $TESSERA_SHUFFLE_MEMORY_MB).
    #[arg(long, env = "TESSERA_SHUFFLE_MEMORY_MB")]
    shuffle_memory_mb: Option<u64>,
    /// Execution memory for shuffles, in MiB: what map writers, reduce-side merges, groups and
    /// sorts, and fetched buckets may hold before they spill to disk, shared evenly by the task
    /// threads (default: a quarter of --memory-mb, or $TESSERA_SHUFFLE_SPILL_MB).
    #[arg(long, env = "TESSERA_SHUFFLE_SPILL_MB")]
    shuffle_spill_mb: Option<u64>,
    /// Where side files, spilled blocks and shuffle files are kept, and fetched libraries unless
    /// the agent names a directory the session's executors on this host share for them
    /// (`$TESSERA_LIBRARY_CACHE`). Default: a new directory, removed when the executor ends,
    /// in the directory its launcher gives it (`$TESSERA_SANDBOX`: the agent's sandbox, or the
    /// session's directory under `local[N]`), else in the temporary directory.
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// Address to listen on, and to tell the driver and the other executors (default: the host
    /// the agent that launched this executor advertises, `$TESSERA_AGENT_HOST`, else
    /// 127.0.0.1).
    #[arg(long)]
    bind: Option<String>,
    /// How long the driver may leave heartbeats unanswered, in seconds, before this executor
    /// takes its session for gone and ends (as Spark's executors do after
    /// `spark.executor.heartbeat.maxFailures` heartbeats).
    #[arg(
        long,
        env = DRIVER_TIMEOUT_ENV,
        default_value_t = driver_watch::DEFAULT_DRIVER_TIMEOUT.as_secs()
    )]
    driver_timeout_s: u64,
    /// A library (by hash) this executor fetches from its driver, if its library directory
    /// lacks it, and loads before it registers, for every cell library to link against (the
    /// toolchain's libstd). Repeatable.
    #[arg(long)]
    preload: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    // First, so that every thread this process starts inherits the lowered priority.
    let step = start_priority::step_from_env();
    let lowered = step
        .as_ref()
        .ok()
        .and_then(|step| start_priority::lower(*step));
    tessera_logging::init("info");
    if let Err(e) = step {
        tracing::warn!("{e}");
    }
    let args = Args::parse();
    allocator::set_up(args.memory_limit_mb);
    let bundle = std::env::var(EXECUTOR_CREDENTIAL_ENV).with_context(|| {
        format!(
            "{EXECUTOR_CREDENTIAL_ENV} is not set: an executor runs code only from the driver whose \
             session credential it was launched with"
        )
    })?;
    // SAFETY: no other thread runs yet. Nothing this process starts should inherit the key.
    unsafe { std::env::remove_var(EXECUTOR_CREDENTIAL_ENV) };
    let credential = Credential::from_bundle(&bundle)?;
    if credential.principal()? != Principal::Executor {
        bail!("the credential in {EXECUTOR_CREDENTIAL_ENV} is not an executor's");
    }
    let (work_dir, owned) = match &args.work_dir {
        Some(dir) => (dir.clone(), false),
        // Under an agent, in the sandbox it made for this executor (so each host's data stays
        // in the agent's --work-dir, as Mesos keeps an executor's files in its sandbox); under
        // `local[N]`, in the session's directory, which is swept when it has long ended, so
        // that an executor killed before it could remove its own leaves nothing behind.
        None => (
            std::env::var_os("TESSERA_SANDBOX")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(format!("tessera-executor-{}", std::process::id())),
            true,
        ),
    };
    let files_dir = std::path::absolute(work_dir.join("files"))?;
    std::fs::create_dir_all(&files_dir)
        .with_context(|| format!("cannot create {}", files_dir.display()))?;
    // SAFETY: no other thread runs yet. Cell code reads it in `tessera::files::get`.
    unsafe { std::env::set_var(tessera_plan::FILES_DIR_ENV, &files_dir) };
    // One worker: tasks run on the slots' threads, and the runtime passes them in and their
    // results out; a second worker only woke up to steal that work, two context switches a job
    // (`BENCHMARKS.md`, "One runtime thread"). File reads and copies go to the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_park(allocator::purge_when_due)
        .enable_all()
        .build()?;
    let served_copies = served_copies();
    let served = runtime.block_on(serve(
        args,
        credential,
        &work_dir,
        files_dir,
        served_copies.clone(),
        lowered,
    ));
    // Spilled blocks and shuffle files are worth nothing once the executor is gone; the copies
    // its agent would serve neither, once it ended on its own (the driver forgets its outputs).
    if owned {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    if let Some(copies) = served_copies {
        let _ = std::fs::remove_dir_all(copies.root.join("shuffle"));
    }
    served
}

/// Where the agent that launched this executor serves its sandbox's files, and the sandbox.
#[derive(Clone)]
struct ServedCopies {
    agent_files: String,
    root: std::path::PathBuf,
}

fn served_copies() -> Option<ServedCopies> {
    Some(ServedCopies {
        agent_files: std::env::var("TESSERA_SANDBOX_FILES").ok()?,
        root: std::env::var_os("TESSERA_SANDBOX")?.into(),
    })
}

async fn serve(
    args: Args,
    credential: Credential,
    work_dir: &std::path::Path,
    files_dir: std::path::PathBuf,
    served_copies: Option<ServedCopies>,
    lowered: Option<start_priority::Lowered>,
) -> anyhow::Result<()> {
    let artifacts_dir = std::env::var_os(artifacts::LIBRARY_CACHE_ENV)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| work_dir.join(tessera_plan::EXECUTOR_LIBRARY_DIR));
    std::fs::create_dir_all(&artifacts_dir)
        .with_context(|| format!("cannot create {}", artifacts_dir.display()))?;

    let driver = tessera_wire::connect_driver(&args.driver, &credential)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the driver at {}: {}",
                args.driver,
                tessera_credentials::describe_error(&e)
            )
        })?;
    let artifacts = artifacts::Artifacts::new(artifacts_dir, files_dir, driver.clone());
    // Before registering, so that the driver sends tasks (and adoptions) only to executors that
    // can run them at once: a task sent to one still fetching libstd waited for it while the
    // session's other executors could have taken it.
    for library in &args.preload {
        artifacts.ensure_loaded(library, true).await?;
    }

    let bind = args
        .bind
        .clone()
        .or_else(|| std::env::var("TESSERA_AGENT_HOST").ok())
        .unwrap_or_else(|| "127.0.0.1".into());
    let listener = tokio::net::TcpListener::bind((bind.as_str(), 0))
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = tessera_credentials::advertised_address(listener.local_addr()?);
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let host_memory = host_memory::HostMemory::from_env()?.map(Arc::new);
    let service = service::ExecutorService {
        executor_id: args.executor_id.clone(),
        artifacts: artifacts.clone(),
        blocks: Arc::new(blocks::BlockManager::new(
            args.memory_mb << 20,
            work_dir.join("blocks"),
            host_memory.clone(),
        )),
        shuffles: Arc::new(shuffle_store::ShuffleStore::new(
            args.shuffle_memory_mb.unwrap_or(args.memory_mb / 4) << 20,
            work_dir.join("shuffle"),
            served_copies.as_ref().map(|c| c.root.clone()),
        )),
        peers: Arc::new(shuffle_fetch::Peers::new(credential.clone())),
        broadcasts: Arc::new(task_host::Broadcasts::new(
            driver.clone(),
            tokio::runtime::Handle::current(),
        )),
        spill_dir: work_dir.join("spill"),
        task_spill_budget: task_spill_budget(
            args.shuffle_spill_mb.unwrap_or(args.memory_mb / 4) << 20,
            args.cores,
        ),
        slots: TaskSlots::start(args.cores.max(1) as usize)?,
        cancelled_jobs: Default::default(),
        shutdown: shutdown.clone(),
    };
    let tls = credential.server()?;
    let server = tonic::transport::Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(
            ExecutorServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            tls.authenticator(),
        ))
        .serve_with_incoming_shutdown(tls.incoming(listener), {
            let shutdown = shutdown.clone();
            async move {
                // The driver asks, or the agent (or the local launcher) terminates this process.
                let mut terminate =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = shutdown.notified() => {}
                    _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
                }
            }
        });
    let server = tokio::spawn(server);

    // Started: from its registration on it runs tasks, at the priority it was launched with.
    if let Some(Err(e)) = lowered.map(start_priority::Lowered::restore) {
        tracing::warn!(
            "some threads of this executor stay at the lower priority it started at ({e}); \
             its tasks may run slower than others. Set {}=0 to start executors at their \
             launcher's priority",
            start_priority::START_NICE_ENV
        );
    }
    driver
        .clone()
        .register_executor(RegisterExecutorRequest {
            executor_id: args.executor_id.clone(),
            address: address.clone(),
            cores: args.cores,
            memory_bytes: args.memory_mb << 20,
            pid: std::process::id(),
            host: tessera_wire::hostname(),
            sandbox_files: served_copies.map(|c| c.agent_files).unwrap_or_default(),
            host_memory: host_memory
                .as_ref()
                .map(|m| m.dir().display().to_string())
                .unwrap_or_default(),
        })
        .await
        .with_context(|| format!("the driver at {} refused this executor", args.driver))?;
    tracing::info!(executor = %args.executor_id, %address, "executor registered");

    let timeout = std::time::Duration::from_secs(args.driver_timeout_s.max(1));
    let watch = driver_watch::until_silent(driver, args.executor_id.clone(), timeout);
    // Ended gracefully (not killed), nothing of ours is to outlive us in host memory.
    let _remove_host_memory = host_memory.map(RemoveOnDrop);
    tokio::select! {
        served = server => match served? {
            Ok(()) => Ok(()),
            Err(e) => bail!("executor service failed: {e}"),
        },
        silent = watch => {
            shutdown.notify_one();
            Err(error::ExecutorError::DriverGone {
                driver: args.driver,
                silent_s: silent.as_secs(),
                timeout_s: timeout.as_secs(),
            }
            .into())
        }
    }
}

/// Removes this executor's directory of host memory as it goes.
struct RemoveOnDrop(Arc<host_memory::HostMemory>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.0.remove();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_task_thread_gets_an_even_share_of_execution_memory() {
        assert_eq!(super::task_spill_budget(64 << 20, 4), 16 << 20);
        assert_eq!(super::task_spill_budget(64 << 20, 0), 64 << 20);
    }
}
