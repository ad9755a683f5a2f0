//! A cluster with standby masters on loopback: a ZooKeeper ensemble ([`ZkEnsemble`]), masters
//! started with `--zk` that elect a leader through it, and agents that follow the leader —
//! the real binaries, each killed with SIGKILL when a test says, as a crash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tessera_credentials::{Credential, Principal, init_credentials, principal_dir};
use tessera_framework::{FrameworkError, MasterEndpoint, cluster_status, spawn_daemon};

use crate::bin;
use crate::zookeeper::ZkEnsemble;

/// The election path under the ensemble.
const ZK_PATH: &str = "/tessera";
/// How long the cluster may take to come up.
const START_WAIT: Duration = Duration::from_secs(60);

/// ZooKeeper, masters and agents; every process is stopped on drop.
pub struct HaCluster {
    /// The ensemble the masters elect their leader through.
    pub zk: ZkEnsemble,
    masters: Vec<Option<Child>>,
    agents: Vec<Option<Child>>,
    dir: tempfile::TempDir,
    framework: Credential,
    /// The masters' session timeout with ZooKeeper, in milliseconds.
    zk_session_timeout_ms: u64,
    /// Each agent's CPUs and MiB.
    agent_shape: (f64, u64),
    /// Runs the status polls (one for the cluster's life, not one per poll).
    runtime: tokio::runtime::Runtime,
    /// The masters' logs, one per start, with the master's index.
    logs: Vec<(usize, PathBuf)>,
}

impl HaCluster {
    /// Starts a ZooKeeper ensemble of `zk_servers`, `masters` masters and `agents` agents
    /// offering `cpus` CPUs and `mem_mb` MiB each; returns once a master leads and every agent
    /// has registered with it.
    pub fn start(
        zk_servers: usize,
        masters: usize,
        agents: usize,
        cpus: f64,
        mem_mb: u64,
    ) -> HaCluster {
        let zk = ZkEnsemble::start(zk_servers);
        let dir = tempfile::Builder::new()
            .prefix("tessera-ha-")
            .tempdir()
            .expect("a directory for the cluster");
        let credentials = dir.path().join("credentials");
        let mut principals = vec![Principal::Framework("local".into())];
        principals.extend((0..agents).map(|i| Principal::Agent(format!("agent-{i}"))));
        init_credentials(&credentials, &principals, Duration::from_secs(24 * 3600))
            .expect("credentials for the cluster");
        let framework = Credential::load(&principal_dir(
            &credentials,
            &Principal::Framework("local".into()),
        ))
        .unwrap();
        let mut cluster = HaCluster {
            zk,
            masters: (0..masters).map(|_| None).collect(),
            agents: Vec::new(),
            dir,
            framework,
            zk_session_timeout_ms: 2000,
            agent_shape: (cpus, mem_mb),
            logs: Vec::new(),
            runtime: tokio::runtime::Runtime::new().expect("a runtime for status polls"),
        };
        for i in 0..masters {
            cluster.start_master(i);
        }
        for i in 0..agents {
            cluster.agents.push(None);
            cluster.start_agent(i);
        }
        let deadline = Instant::now() + START_WAIT;
        loop {
            let registered = cluster
                .runtime
                .block_on(cluster_status(&cluster.endpoint()))
                .map(|s| s.agents.len())
                .unwrap_or(0);
            if registered == agents {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "only {registered} of {agents} agents registered within {START_WAIT:?}; {}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts master `i` (again), standing for election.
    pub fn start_master(&mut self, i: usize) {
        let credentials = self.dir.path().join("credentials");
        let args: Vec<String> = [
            "--port",
            "0",
            "--address-file",
            &self
                .dir
                .path()
                .join(format!("master-{i}.address"))
                .display()
                .to_string(),
            "--zk",
            &self.zk_url(),
            "--zk-session-timeout-ms",
            &self.zk_session_timeout_ms.to_string(),
            "--allocation-interval-ms",
            "100",
            "--credentials",
            &principal_dir(&credentials, &Principal::Master)
                .display()
                .to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Each life of a master logs to a file of its own.
        let log = self
            .dir
            .path()
            .join(format!("master-{i}.{}.log", self.logs.len()));
        let child = spawn_daemon(&bin("tessera-master"), &args, &log).unwrap();
        self.logs.push((i, log));
        self.masters[i] = Some(child);
    }

    /// The `zk://` URL agents, sessions and `tessera cluster` are given.
    pub fn zk_url(&self) -> String {
        self.zk.url(ZK_PATH)
    }

    /// The masters through ZooKeeper, with the framework principal `local`'s credential.
    pub fn endpoint(&self) -> MasterEndpoint {
        MasterEndpoint {
            address: self.zk_url(),
            credential: self.framework.clone(),
        }
    }

    /// Master `i` at its own address (not through ZooKeeper).
    pub fn master_endpoint(&self, i: usize) -> MasterEndpoint {
        let address = std::fs::read_to_string(self.dir.path().join(format!("master-{i}.address")))
            .unwrap_or_default();
        MasterEndpoint {
            address: address.trim().to_string(),
            credential: self.framework.clone(),
        }
    }

    /// The index of the master that answers as leader now, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.masters.len()).find(|&i| {
            self.masters[i].is_some()
                && self
                    .runtime
                    .block_on(cluster_status(&self.master_endpoint(i)))
                    .is_ok()
        })
    }

    /// Waits until some master leads; returns its index.
    pub fn wait_leader(&self, patience: Duration) -> usize {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no master leads; {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills master `i` with SIGKILL (no goodbye, no withdrawal from the election).
    pub fn kill_master(&mut self, i: usize) {
        if let Some(mut child) = self.masters[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether master `i`'s process has exited (it stops when it loses its leadership).
    pub fn master_exited(&mut self, i: usize) -> bool {
        match &mut self.masters[i] {
            Some(child) => child.try_wait().map(|s| s.is_some()).unwrap_or(true),
            None => true,
        }
    }

    /// Starts agent `i` (again), following the leader through ZooKeeper.
    pub fn start_agent(&mut self, i: usize) {
        let credentials = self.dir.path().join("credentials");
        let args: Vec<String> = [
            "--master",
            &self.zk_url(),
            "--port",
            "0",
            "--cpus",
            &self.agent_shape.0.to_string(),
            "--mem-mb",
            &self.agent_shape.1.to_string(),
            "--work-dir",
            &self
                .dir
                .path()
                .join(format!("agent-{i}"))
                .display()
                .to_string(),
            "--credentials",
            &principal_dir(&credentials, &Principal::Agent(format!("agent-{i}")))
                .display()
                .to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = self.agent_log(i);
        self.agents[i] = Some(spawn_daemon(&bin("tessera-agent"), &args, &log).unwrap());
    }

    /// Kills agent `i` with SIGKILL.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut agent) = self.agents[i].take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }

    /// How many agents and masters were started.
    pub fn shape(&self) -> (usize, usize) {
        (self.agents.len(), self.masters.len())
    }

    /// `tessera` in `dir`, a session of this cluster through ZooKeeper, colours off.
    pub fn tessera(&self, dir: &Path) -> Command {
        let mut command = Command::new(bin("tessera"));
        command
            .current_dir(dir)
            .args(["--master", &self.zk_url()])
            .arg("--credentials")
            .arg(self.dir.path().join("credentials/frameworks/local"))
            .env("NO_COLOR", "1");
        command
    }

    /// The log of master `i`'s latest start.
    pub fn master_log(&self, i: usize) -> PathBuf {
        let (_, log) = (self.logs.iter().rev())
            .find(|(master, _)| *master == i)
            .expect("master started");
        log.clone()
    }

    /// Agent `i`'s log.
    pub fn agent_log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent-{i}.log"))
    }

    /// Every master's and agent's log, for a failure's message.
    pub fn logs(&self) -> String {
        let agents = (0..self.agents.len()).map(|i| self.agent_log(i));
        (self.logs.iter().map(|(_, log)| log.clone()))
            .chain(agents)
            .map(|log| {
                format!(
                    "--- {}:\n{}",
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether an error from a standby master's address says it is a standby.
pub fn is_standby_answer(error: &FrameworkError) -> bool {
    error.to_string().contains("standby")
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        // Agents stop gracefully (SIGTERM), killing their executors: SIGKILL would leave them
        // running (they outlive a crashed agent, for it to recover them).
        for agent in self.agents.iter().flatten() {
            let _ = Command::new("kill")
                .args(["-TERM", &agent.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for agent in self.agents.iter_mut().flatten() {
            while agent.try_wait().map(|s| s.is_none()).unwrap_or(false)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for i in 0..self.agents.len() {
            self.kill_agent(i);
        }
        for i in 0..self.masters.len() {
            self.kill_master(i);
        }
    }
}
