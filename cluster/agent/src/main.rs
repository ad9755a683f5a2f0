//! `tessera-agent`: the daemon that offers this machine's CPUs, memory, disk and ports to a
//! Tessera master and runs executors for frameworks. Logs go to stderr
//! (`RUST_LOG` filters them); nothing is printed to stdout.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use tessera_agent::{
    AgentConfig, IsolationChoice, IsolationConfig, RecoverMode, detect_cpus, detect_disk_mb,
    detect_hostname, detect_mem_mb,
};
use tessera_allocator::Ranges;
use tessera_allocator::agent_spec::{flag_or_spec, parse_attributes, parse_resources};

/// The ports an agent offers unless told (Mesos' default).
const DEFAULT_PORTS: (u64, u64) = (31000, 32000);
use tessera_credentials::{Credential, Principal};

/// Tessera's cluster agent: registers this machine with the master and runs
/// executors on its behalf.
#[derive(Parser, Debug)]
#[command(name = "tessera-agent", version)]
struct Args {
    /// The master's HOST:PORT, or zk://HOST:PORT[,HOST:PORT...]/PATH when masters elect
    /// their leader through ZooKeeper (the agent follows the leader).
    #[arg(long)]
    master: String,
    /// Address to listen on (0.0.0.0 for every interface); executors listen on
    /// the advertised host.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The HOST:PORT the master should dial, when it is not the bound address
    /// (default: the bound address, or this host's name when bound to every
    /// interface).
    #[arg(long)]
    advertise_address: Option<String>,
    /// The agent's credentials: the directory `tessera cluster
    /// init-credentials DIR --agent NAME` made as DIR/agents/NAME.
    #[arg(long)]
    credentials: PathBuf,
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// CPUs to offer (default: the machine's).
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory to offer in MiB (default: the machine's, less 1 GiB for the OS).
    #[arg(long)]
    mem_mb: Option<u64>,
    /// Disk to offer in MiB (default: the space free under --work-dir, less 5 GiB).
    #[arg(long)]
    disk_mb: Option<u64>,
    /// Ports to offer, as ranges (default: 31000-32000, as Mesos).
    #[arg(long)]
    ports: Option<String>,
    /// Resources in Mesos' syntax, e.g. "cpus:4;mem:8192;disk:10000;ports:[31000-32000];gpus:2"
    /// (any other name is a custom scalar); NAME(ROLE):N reserves CPUs or memory for a role,
    /// e.g. "cpus(analytics):2;mem(analytics):4096", on top of the unreserved ones. A
    /// resource is given here or by its own flag, not both.
    #[arg(long)]
    resources: Option<String>,
    /// Attributes shown in offers, for frameworks' constraints, e.g. "rack:r1;zone:z1".
    #[arg(long, default_value = "")]
    attributes: String,
    /// Where executors' sandboxes go (default: a new directory under the
    /// system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// A memory-backed directory (tmpfs) where executors keep cached partitions that outlive
    /// them, for another executor on this host to adopt when one is lost; "none" keeps them in
    /// executors' own memory (default: /dev/shm where it exists; or $TESSERA_AGENT_MEMORY_DIR,
    /// which the agents of `local-cluster` take from the session's environment).
    #[arg(long, env = "TESSERA_AGENT_MEMORY_DIR")]
    memory_dir: Option<String>,
    /// Host name shown in offers (default: the machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// How to isolate executors: cgroups (v2: cpu.max, memory.max, pids.max per executor),
    /// posix (rlimits; memory watched from /proc, CPU not limited), or auto (cgroups where
    /// the cpu, memory and pids controllers are available and writable, else posix).
    #[arg(long, default_value = "auto")]
    isolation: IsolationChoice,
    /// The cgroup v2 directory to make the agent's cgroup in (default: the cgroup2 mount).
    #[arg(long)]
    cgroups_root: Option<PathBuf>,
    /// Most processes and threads one executor may have (cgroups mode: pids.max).
    #[arg(long, default_value_t = tessera_agent::isolation::DEFAULT_PIDS_MAX)]
    executor_pids_max: u64,
    /// What to do with the executors a checkpoint in --work-dir names, when the agent starts
    /// after it died: reconnect (adopt those still running, within --recovery-timeout-s) or
    /// cleanup (kill them and report them LOST).
    #[arg(long, default_value = "reconnect")]
    recover: RecoverMode,
    /// How long executors are kept without their agent: an agent restarted later than this
    /// after its last checkpoint kills the executors it finds and reports them LOST (Mesos'
    /// --recovery_timeout, 15 min). The master keeps a silent agent only --agent-timeout-ms
    /// (10 s): back later than that, the agent gets a new id and kills them anyway.
    #[arg(long, default_value_t = tessera_agent::DEFAULT_RECOVERY_TIMEOUT.as_secs_f64())]
    recovery_timeout_s: f64,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tessera_logging::init("info");
    let args = Args::parse();
    let credential = Credential::load(&args.credentials)?;
    if !matches!(credential.principal()?, Principal::Agent(_)) {
        bail!(
            "the credentials in {} are not an agent's (they name {}); pass the directory \
             `tessera cluster init-credentials DIR --agent NAME` made as DIR/agents/NAME",
            args.credentials.display(),
            credential.principal()?
        );
    }
    let spec = parse_resources(args.resources.as_deref().unwrap_or(""))
        .context("cannot read --resources")?;
    let cpus = flag_or_spec("cpus", "cpus", args.cpus, spec.cpus)?.unwrap_or_else(detect_cpus);
    if !(cpus.is_finite() && cpus > 0.0) {
        bail!("--cpus must be a positive number, got {cpus}");
    }
    let mem_mb =
        flag_or_spec("mem", "mem-mb", args.mem_mb, spec.mem_mb)?.unwrap_or_else(detect_mem_mb);
    let work_dir = args.work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tessera-agent-{}", std::process::id()))
    });
    let ports = args
        .ports
        .map(|text| Ranges::parse(&text))
        .transpose()
        .context("cannot read --ports")?;
    let ports = flag_or_spec("ports", "ports", ports, spec.ports.clone())?
        .unwrap_or_else(|| Ranges::new([DEFAULT_PORTS]));
    let disk_mb = flag_or_spec("disk", "disk-mb", args.disk_mb, spec.disk_mb)?
        .unwrap_or_else(|| detect_disk_mb(&work_dir));
    let attributes = parse_attributes(&args.attributes).context("cannot read --attributes")?;
    if !(args.recovery_timeout_s.is_finite() && args.recovery_timeout_s >= 0.0) {
        bail!(
            "--recovery-timeout-s must be a number of seconds, 0 or more, got {}",
            args.recovery_timeout_s
        );
    }
    let config = AgentConfig {
        master: args.master,
        cpus,
        mem_mb,
        extras: tessera_allocator::Extras {
            disk_mb,
            ports,
            scalars: spec.scalars,
        },
        reserved: spec.reserved,
        attributes,
        memory_dir: tessera_agent::memory_dir_from_flag(args.memory_dir.as_deref()),
        work_dir,
        hostname: args.hostname.unwrap_or_else(detect_hostname),
        advertise_address: args.advertise_address,
        credential,
        isolation: IsolationConfig {
            choice: args.isolation,
            cgroups_root: args.cgroups_root,
            pids_max: args.executor_pids_max,
        },
        recover: args.recover,
        recovery_timeout: std::time::Duration::from_secs_f64(args.recovery_timeout_s.min(1e9)),
    };
    let requested = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(requested)
        .await
        .with_context(|| {
            format!("cannot listen on {requested} (pick another --port, or 0 for any free port)")
        })?;
    tessera_agent::run(config, listener, shutdown_signal()).await?;
    Ok(())
}
