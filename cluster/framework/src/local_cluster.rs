//! [`LocalCluster`]: a real `tessera-master` and N real `tessera-agent`
//! processes on 127.0.0.1 — what the master URL `local-cluster[A,C,M]` means,
//! and what multi-process tests run against.
//!
//! Each daemon runs in its own process group with its log in the cluster's
//! temporary directory; everything is killed when the [`LocalCluster`] is
//! dropped (agents get SIGTERM first, so they kill their executors).
//!
//! A local cluster makes its own CA and credentials in that directory (as
//! `tessera cluster init-credentials` would): the master's, one per agent
//! (`agent-0`, `agent-1`, ...) and the framework principal `local`, which
//! [`LocalCluster::endpoint`] hands to the session.
//!
//! [`LocalCluster::restart_master`] kills the master (SIGKILL) and starts another on the same
//! port, for tests of what survives a master restart; [`LocalCluster::kill_agent`] and
//! [`LocalCluster::start_agent`] do the same to an agent (its executors outlive it, and the
//! agent started again on its work directory recovers them).
//!
//! The master serves its HTTPS endpoints (`/state`, `/metrics`, `/health`, a page at `/`) on a
//! free port too: [`LocalCluster::http_address`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;
use std::sync::{OnceLock, mpsc};

use tessera_credentials::{
    Authority, Credential, CredentialError, Principal, init_credentials, principal_dir,
};

use crate::api::MasterEndpoint;
use crate::cluster_status::cluster_status;
use crate::error::FrameworkError;

/// The framework principal a local cluster issues for its session.
pub const LOCAL_FRAMEWORK: &str = "local";
/// How long a local cluster's certificates are valid.
const LOCAL_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long to wait for the master to listen and the agents to register.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Allocation interval of a local cluster's master, in milliseconds.
const ALLOCATION_INTERVAL_MS: u64 = 100;
/// Agent heartbeat timeout of a local cluster's master, in milliseconds.
const AGENT_TIMEOUT_MS: u64 = 5000;

/// A local cluster did not come up.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// The `tessera-master` or `tessera-agent` binary is not in the directory given.
    #[error(
        "cannot find {path}; build the cluster binaries with `cargo build -p tessera-master -p tessera-agent` \
         (or `cargo build --workspace --bins`) and pass the directory that holds them"
    )]
    MissingBinary {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The cluster's temporary directory (logs, credentials, work directories) cannot be made.
    #[error("cannot create the local cluster's temporary directory: {0}")]
    TempDir(std::io::Error),
    /// The cluster's CA and credentials cannot be made or read.
    #[error("cannot make the local cluster's credentials: {0}")]
    Credentials(#[from] CredentialError),
    /// A daemon cannot be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The daemon's binary.
        program: PathBuf,
        /// Why: its log file could not be made or its program not run.
        source: std::io::Error,
    },
    /// The master or the agents did not come up: one exited or failed, or was not ready within
    /// the startup timeout (20 s).
    #[error("{what} did not come up within {seconds} s: {detail}")]
    NotUp {
        /// What did not come up, e.g. `tessera-master`, `tessera-agent #0` or `2 agents`.
        what: String,
        /// How long it was waited for, in seconds.
        seconds: u64,
        /// What went wrong, with the last lines of the logs concerned.
        detail: String,
    },
    /// A shape with no agent, no CPUs or no memory.
    #[error(
        "a local cluster needs at least one agent with some CPUs and memory (got {agents} agents, {cpus} CPUs, {mem_mb} MiB)"
    )]
    BadShape {
        /// The number of agents asked for.
        agents: usize,
        /// CPUs per agent asked for.
        cpus: f64,
        /// Memory per agent asked for, in MiB.
        mem_mb: u64,
    },
}

/// A running master and agents on loopback, killed on drop.
pub struct LocalCluster {
    master: Option<Child>,
    /// The master's program and flags (its port once known), to start it again.
    master_command: (PathBuf, Vec<String>),
    /// How many masters were started (each logs to a file of its own).
    master_runs: usize,
    /// Each agent's process while it runs.
    agents: Vec<Option<Child>>,
    /// Each agent's program and flags, to start it again.
    agent_commands: Vec<(PathBuf, Vec<String>)>,
    /// How many times each agent was started (each run logs to a file of its own).
    agent_runs: Vec<usize>,
    master_address: String,
    /// The master's HTTPS side, "HOST:PORT".
    http_address: String,
    /// The framework principal `local`'s credential.
    framework: Credential,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("master_address", &self.master_address)
            .field("agents", &self.agents.len())
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The last lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    if tail.is_empty() {
        format!("(its log {} is empty)", path.display())
    } else {
        format!("last lines of {}:\n{tail}", path.display())
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Forks the daemons from one thread that lives as long as the process: the
/// parent-death signal fires when the *thread* that forked a child exits, so
/// forking from a short-lived thread (e.g. tokio's blocking pool) would kill
/// the daemons early.
fn spawn_from_long_lived_thread(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<std::io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("tessera-local-cluster-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .map(|_| tx)
    });
    let spawner = spawner.as_ref().map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot start the spawner thread: {e}"))
    })?;
    let (reply_tx, reply_rx) = mpsc::channel();
    let gone = || std::io::Error::other("the local cluster's spawner thread is gone");
    spawner.send((command, reply_tx)).map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())?
}

/// Starts `program` with `args` as a daemon of this process: its stderr into `log`, in a
/// process group of its own (a Ctrl-C in the terminal does not reach it), sent SIGTERM if this
/// process dies without stopping it.
pub fn spawn_daemon(
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Child, LocalClusterError> {
    let spawn_err = |source| LocalClusterError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let log_file = File::create(log).map_err(spawn_err)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        // Own process group: a Ctrl-C in the terminal does not reach it; Drop
        // stops it.
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs in the forked child before exec; prctl, getppid and _exit
    // are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // If this process dies without dropping the LocalCluster, the
            // daemons get SIGTERM (agents then kill their executors).
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    spawn_from_long_lived_thread(command).map_err(spawn_err)
}

/// Whether the child has exited (and how), without blocking.
fn exited(child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(status)) => Some(status.to_string()),
        Ok(None) => None,
        Err(e) => Some(format!("cannot be waited for: {e}")),
    }
}

impl LocalCluster {
    /// Starts `tessera-master` (free port) and `agents` × `tessera-agent`, each
    /// offering `cpus_per_agent` CPUs and `mem_mb_per_agent` MiB, from the
    /// binaries in `bin_dir`; returns once every agent is registered.
    pub async fn start(
        agents: usize,
        cpus_per_agent: f64,
        mem_mb_per_agent: u64,
        bin_dir: &Path,
    ) -> Result<LocalCluster, LocalClusterError> {
        Self::start_with(agents, cpus_per_agent, mem_mb_per_agent, bin_dir, &[]).await
    }

    /// As [`LocalCluster::start`], with more flags for the master (`--allocator priority`).
    pub async fn start_with(
        agents: usize,
        cpus_per_agent: f64,
        mem_mb_per_agent: u64,
        bin_dir: &Path,
        master_flags: &[&str],
    ) -> Result<LocalCluster, LocalClusterError> {
        let shape = (agents, cpus_per_agent, mem_mb_per_agent);
        Self::start_with_agent_flags(shape, bin_dir, master_flags, &[]).await
    }

    /// As [`LocalCluster::start_with`] for `(agents, cpus_per_agent, mem_mb_per_agent)`, with
    /// more flags for agent `i` in `agent_flags[i]` (`--attributes rack:r1`, `--resources
    /// "cpus(analytics):1"`).
    pub async fn start_with_agent_flags(
        (agents, cpus_per_agent, mem_mb_per_agent): (usize, f64, u64),
        bin_dir: &Path,
        master_flags: &[&str],
        agent_flags: &[&[&str]],
    ) -> Result<LocalCluster, LocalClusterError> {
        if agents == 0 || cpus_per_agent.is_nan() || cpus_per_agent <= 0.0 || mem_mb_per_agent == 0
        {
            return Err(LocalClusterError::BadShape {
                agents,
                cpus: cpus_per_agent,
                mem_mb: mem_mb_per_agent,
            });
        }
        let master_bin = bin_dir.join("tessera-master");
        let agent_bin = bin_dir.join("tessera-agent");
        for path in [&master_bin, &agent_bin] {
            if !path.is_file() {
                return Err(LocalClusterError::MissingBinary { path: path.clone() });
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("tessera-local-cluster-")
            .tempdir()
            .map_err(LocalClusterError::TempDir)?;
        let credentials = dir.path().join("credentials");
        let mut principals = vec![Principal::Framework(LOCAL_FRAMEWORK.into())];
        principals.extend((0..agents).map(|i| Principal::Agent(format!("agent-{i}"))));
        init_credentials(&credentials, &principals, LOCAL_VALIDITY)?;
        let framework = Credential::load(&principal_dir(
            &credentials,
            &Principal::Framework(LOCAL_FRAMEWORK.into()),
        ))?;
        let master_args = [
            "--address-file".into(),
            dir.path().join("master.address").display().to_string(),
            "--http-address-file".into(),
            dir.path().join("master.http-address").display().to_string(),
            "--allocation-interval-ms".into(),
            ALLOCATION_INTERVAL_MS.to_string(),
            "--agent-timeout-ms".into(),
            AGENT_TIMEOUT_MS.to_string(),
            "--credentials".into(),
            principal_dir(&credentials, &Principal::Master)
                .display()
                .to_string(),
        ]
        .into_iter()
        .chain(master_flags.iter().map(|flag| flag.to_string()))
        .collect::<Vec<String>>();
        let mut cluster = LocalCluster {
            master: None,
            master_command: (master_bin, master_args),
            master_runs: 0,
            agents: Vec::new(),
            agent_commands: Vec::new(),
            agent_runs: Vec::new(),
            master_address: String::new(),
            http_address: String::new(),
            framework,
            dir,
        };
        cluster.start_master(("0", "0")).await?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let master_log = cluster.master_log();
        let not_up = |what: String, detail: String| LocalClusterError::NotUp {
            what,
            seconds: STARTUP_TIMEOUT.as_secs(),
            detail,
        };

        for i in 0..agents {
            let work_dir = cluster.agent_work_dir(i);
            let args = [
                "--master".into(),
                cluster.master_address.clone(),
                "--port".into(),
                "0".into(),
                "--cpus".into(),
                cpus_per_agent.to_string(),
                "--mem-mb".into(),
                mem_mb_per_agent.to_string(),
                "--work-dir".into(),
                work_dir.display().to_string(),
                "--credentials".into(),
                principal_dir(&credentials, &Principal::Agent(format!("agent-{i}")))
                    .display()
                    .to_string(),
            ]
            .into_iter()
            .chain(
                agent_flags
                    .get(i)
                    .into_iter()
                    .flat_map(|f| f.iter().map(|f| f.to_string())),
            )
            .collect::<Vec<String>>();
            cluster.agent_commands.push((agent_bin.clone(), args));
            cluster.agents.push(None);
            cluster.agent_runs.push(0);
            cluster.start_agent(i)?;
        }

        // Wait for every agent to register.
        loop {
            let registered = match cluster_status(&cluster.endpoint()).await {
                Ok(status) => status.agents.len(),
                Err(FrameworkError::Unreachable { .. }) => 0,
                Err(e) => return Err(not_up("tessera-master".into(), e.to_string())),
            };
            if registered >= agents {
                tracing::info!(master = %cluster.master_address, agents, "local cluster up");
                return Ok(cluster);
            }
            for i in 0..cluster.agents.len() {
                if let Some(status) = cluster.agents[i].as_mut().and_then(exited) {
                    return Err(not_up(
                        format!("tessera-agent #{i}"),
                        format!("it exited ({status}); {}", log_tail(&cluster.agent_log(i))),
                    ));
                }
            }
            if let Some(status) = exited(cluster.master.as_mut().expect("master child")) {
                return Err(not_up(
                    "tessera-master".into(),
                    format!("it exited ({status}); {}", log_tail(&master_log)),
                ));
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..agents)
                    .map(|i| log_tail(&cluster.agent_log(i)))
                    .collect();
                return Err(not_up(
                    format!("{agents} agents"),
                    format!(
                        "only {registered} of {agents} registered with the master at {}; {}\n{}",
                        cluster.master_address,
                        log_tail(&master_log),
                        logs.join("\n")
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the master on `ports` (gRPC, HTTPS; "0" for any free one) and waits until it
    /// listens (it writes its addresses, the HTTPS side's first).
    async fn start_master(&mut self, ports: (&str, &str)) -> Result<(), LocalClusterError> {
        let address_file = self.dir.path().join("master.address");
        let http_address_file = self.dir.path().join("master.http-address");
        for file in [&address_file, &http_address_file] {
            let _ = std::fs::remove_file(file);
        }
        self.master_runs += 1;
        let log = self.master_log();
        let (program, flags) = &self.master_command;
        let args: Vec<String> = ["--port", ports.0, "--http-port", ports.1]
            .into_iter()
            .map(String::from)
            .chain(flags.iter().cloned())
            .collect();
        self.master = Some(spawn_daemon(program, &args, &log)?);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let not_up = |detail: String| LocalClusterError::NotUp {
            what: "tessera-master".into(),
            seconds: STARTUP_TIMEOUT.as_secs(),
            detail,
        };
        loop {
            if let Ok(text) = std::fs::read_to_string(&address_file)
                && !text.trim().is_empty()
            {
                self.master_address = text.trim().to_string();
                self.http_address = std::fs::read_to_string(&http_address_file)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return Ok(());
            }
            let master = self.master.as_mut().expect("master child");
            if let Some(status) = exited(master) {
                return Err(not_up(format!("it exited ({status}); {}", log_tail(&log))));
            }
            if Instant::now() > deadline {
                return Err(not_up(format!(
                    "it wrote no address file; {}",
                    log_tail(&log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the master with SIGKILL — no goodbye to anyone, as a crash — and starts a new one
    /// on the same ports, with the same flags; returns once it listens. It knows nothing:
    /// agents register again with their executors, frameworks subscribe again.
    pub async fn restart_master(&mut self) -> Result<(), LocalClusterError> {
        if let Some(mut old) = self.master.take() {
            // SAFETY: plain syscall on the master's own process group.
            unsafe { libc::kill(-(old.id() as libc::pid_t), libc::SIGKILL) };
            let _ = old.wait();
        }
        let port = |address: &str| address.rsplit_once(':').map(|(_, p)| p.to_string());
        let grpc = port(&self.master_address).unwrap_or_else(|| "0".into());
        let http = port(&self.http_address).unwrap_or_else(|| "0".into());
        self.start_master((&grpc, &http)).await
    }

    /// Kills agent `i` with SIGKILL — a crash: it cannot kill its executors, which run on —
    /// and waits until it is gone. Does nothing if it is not running.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut agent) = self.agents.get_mut(i).and_then(Option::take) {
            // SAFETY: plain syscall on the agent's own process group (its executors have
            // groups of their own).
            unsafe { libc::kill(-(agent.id() as libc::pid_t), libc::SIGKILL) };
            let _ = agent.wait();
        }
    }

    /// Starts agent `i` (again, after [`LocalCluster::kill_agent`]) with the flags and work
    /// directory it had, logging to a file of its own; it recovers the executors its
    /// checkpoint names and registers under its old id. Returns once it runs, not once it
    /// registered.
    pub fn start_agent(&mut self, i: usize) -> Result<(), LocalClusterError> {
        if self.agents[i].is_some() {
            return Ok(());
        }
        self.agent_runs[i] += 1;
        let log = self.agent_log(i);
        let (program, args) = &self.agent_commands[i];
        self.agents[i] = Some(spawn_daemon(program, args, &log)?);
        Ok(())
    }

    /// The master's "HOST:PORT".
    pub fn master_address(&self) -> &str {
        &self.master_address
    }

    /// The master's HTTPS side, "HOST:PORT": `https://HOST:PORT/` shows the cluster, and its
    /// certificate names the principal `master.tessera`.
    pub fn http_address(&self) -> &str {
        &self.http_address
    }

    /// The master, with the credential of the framework principal `local`.
    pub fn endpoint(&self) -> MasterEndpoint {
        MasterEndpoint {
            address: self.master_address.clone(),
            credential: self.framework.clone(),
        }
    }

    /// Where the cluster's CA and credentials are (as `tessera cluster
    /// init-credentials` lays them out).
    pub fn credentials_dir(&self) -> PathBuf {
        self.dir.path().join("credentials")
    }

    /// A new credential from the cluster's CA, e.g. for a second framework
    /// principal.
    pub fn issue(&self, principal: &Principal) -> Result<Credential, CredentialError> {
        Authority::load(&self.credentials_dir().join("ca"))?.issue(principal, LOCAL_VALIDITY)
    }

    /// The cluster's temporary directory (logs, agents' work dirs); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Agent `i`'s work directory (executor sandboxes are under
    /// `frameworks/<framework>/executors/<executor>/`).
    pub fn agent_work_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent-{i}"))
    }

    /// The log file of agent `i`'s run now (`agent-I.log`, then `agent-I-2.log` after a
    /// restart, and so on).
    pub fn agent_log(&self, i: usize) -> PathBuf {
        match self.agent_runs.get(i).copied().unwrap_or(0) {
            0 | 1 => self.dir.path().join(format!("agent-{i}.log")),
            n => self.dir.path().join(format!("agent-{i}-{n}.log")),
        }
    }

    /// The log file of the master now running (`master.log`, then `master-2.log` after a
    /// restart, and so on).
    pub fn master_log(&self) -> PathBuf {
        match self.master_runs {
            0 | 1 => self.dir.path().join("master.log"),
            n => self.dir.path().join(format!("master-{n}.log")),
        }
    }

    /// Process ids of the agents, in start order (0 for one killed and not started again).
    pub fn agent_pids(&self) -> Vec<u32> {
        (self.agents.iter())
            .map(|a| a.as_ref().map_or(0, Child::id))
            .collect()
    }

    /// Process id of the master.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(Child::id)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Agents first, gracefully (they kill their executors), then the master.
        let mut children: Vec<Child> = self.agents.drain(..).flatten().collect();
        children.extend(self.master.take());
        for child in &children {
            // SAFETY: plain syscall; the group is the child's own (process_group(0)).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for child in &mut children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}
