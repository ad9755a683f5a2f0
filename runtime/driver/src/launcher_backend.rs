//! Acquires the session's executors according to its master URL: started directly for
//! `local[N]`, or launched by agents through resource offers from a master — a real one on
//! loopback for `local-cluster[A,C,M]`, or a running one for `tessera://HOST:PORT`.

use crate::config::{DriverConfig, ShuffleService};
use crate::dynamic_allocation::{DynamicAllocation, ExecutorUse, to_give_back, to_release};
use crate::error::DriverError;
use crate::executor_size::{MIN_EXECUTOR_MEM_MB, executor_size};
use crate::executors::ExecutorHandle;
use crate::launcher::{ExecutorCommand, LocalExecutor};
use crate::state::DriverState;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tessera_credentials::Credential;
use tessera_framework::{
    Constraints, ExecutorLaunch, ExecutorState, FrameworkClient, FrameworkEvent, FrameworkInfo,
    LocalCluster, MasterEndpoint, MasterUrl, Offer, Resources,
};

/// How long a declined offer's resources are not offered again.
const DECLINE_SECONDS: f64 = 5.0;
/// How long an agent outside the session's constraints is not offered again (as Spark's
/// `spark.mesos.rejectOfferDurationForUnmetConstraints`, 120 s): its attributes do not change.
const UNMET_CONSTRAINTS_DECLINE_SECONDS: f64 = 120.0;

/// Offers the session has received and, of those, declined for its constraints: what it says
/// while it waits for executors.
#[derive(Debug, Default)]
pub(crate) struct OfferCounts {
    seen: AtomicU64,
    unmet_constraints: AtomicU64,
    /// The session's constraints, as text (empty: none).
    constraints: String,
}

/// How long the master keeps a session's executors while the session is cut off from it,
/// unless `--failover-timeout-s` says otherwise: long enough for a master to restart, short
/// enough that a session that died does not hold its executors for long.
const SESSION_FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

// One per session, never moved about: the size of its larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// `local[N]`: the driver started one executor itself.
    Local { _executor: LocalExecutor },
    /// Executors launched through offers.
    Cluster {
        client: FrameworkClient,
        /// The master and this session's credential for it, for `:cluster`.
        endpoint: MasterEndpoint,
        /// Handles offers and executor updates; stopped before tearing down.
        events_task: tokio::task::JoinHandle<()>,
        /// Releases idle executors and asks for offers when tasks wait; stopped with it.
        monitor_task: tokio::task::JoinHandle<()>,
        runtime: tokio::runtime::Handle,
        expected: usize,
        /// Offers received so far, to say why the session is still waiting.
        offers_seen: Arc<OfferCounts>,
        /// Keeps the loopback master and agents of `local-cluster` alive with the session.
        _local: Option<LocalCluster>,
    },
}

impl Backend {
    pub(crate) fn start(
        config: &DriverConfig,
        runtime: &tokio::runtime::Handle,
        state: &Arc<DriverState>,
        driver_address: &str,
        executor_credential: &Credential,
    ) -> anyhow::Result<Backend> {
        // What every executor loads before it registers: the toolchain's libstd, by hash (and
        // where it is on this host, for the executor of `local[N]`).
        let libstd = config
            .libstd
            .iter()
            .map(|path| Ok((state.artifacts.add_file(path)?, path.clone())))
            .collect::<Result<Vec<_>, DriverError>>()?;
        let preload: Vec<String> = libstd.iter().map(|(hash, _)| hash.clone()).collect();
        let (master, local, expected) = match &config.master {
            MasterUrl::Local { cores } => {
                let command = ExecutorCommand::new(
                    &config.bin_dir,
                    driver_address,
                    "local-0",
                    *cores as u32,
                    config.executor_memory_mb,
                    None,
                    executor_credential,
                )
                .preloading(&preload);
                let executor =
                    command.spawn_local(&config.work_dir, "executor-local-0", &libstd)?;
                return Ok(Backend::Local {
                    _executor: executor,
                });
            }
            MasterUrl::LocalCluster {
                agents,
                cpus_per_agent,
                mem_mb_per_agent,
            } => {
                let cluster = runtime.block_on(LocalCluster::start(
                    *agents,
                    *cpus_per_agent,
                    *mem_mb_per_agent,
                    &config.bin_dir,
                ))?;
                let expected = config.cluster.executors.unwrap_or(*agents);
                (cluster.endpoint(), Some(cluster), expected)
            }
            MasterUrl::Tessera { address } => {
                let dir = config.cluster.credentials.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "a session on the cluster at {address} needs a framework principal's \
                         credentials: pass --credentials DIR (made by `tessera cluster \
                         init-credentials DIR --framework NAME` as DIR/frameworks/NAME), or set \
                         TESSERA_CREDENTIALS"
                    )
                })?;
                let endpoint = MasterEndpoint {
                    address: address.clone(),
                    credential: Credential::load(dir)?,
                };
                // One executor per agent, unless told how many.
                let expected = match config.cluster.executors {
                    Some(n) => n,
                    None => runtime
                        .block_on(tessera_framework::cluster_status(&endpoint))?
                        .agents
                        .len()
                        .max(1),
                };
                (endpoint, None, expected)
            }
        };
        // With a failover timeout the client subscribes again by itself after a master restart
        // or a network cut, and the master keeps the executors — and the partitions they
        // cache — meanwhile.
        let info = FrameworkInfo {
            name: "tessera-session".into(),
            user: String::new(),
            role: config.cluster.role.clone(),
            roles: Vec::new(),
            failover_timeout: Some(
                config
                    .cluster
                    .failover_timeout
                    .unwrap_or(SESSION_FAILOVER_TIMEOUT),
            ),
            capabilities: Vec::new(),
            framework_id: None,
            // The client acknowledges each status update once the session has it.
            explicit_acknowledgements: false,
        };
        let (client, mut events) = runtime.block_on(FrameworkClient::subscribe(&master, info))?;
        let offers_seen = Arc::new(OfferCounts {
            constraints: config.cluster.executor_constraints.to_string(),
            ..OfferCounts::default()
        });
        let launcher = Arc::new(OfferHandler {
            client: client.clone(),
            state: state.clone(),
            bin_dir: config.bin_dir.clone(),
            driver_address: driver_address.to_string(),
            executor_credential: executor_credential.clone(),
            preload,
            shuffle_service: config.cluster.shuffle_service,
            memory_mb: config.executor_memory_mb,
            cores: config.cluster.executor_cores,
            wanted: expected,
            constraints: config.cluster.executor_constraints.clone(),
            agents_with_executor: Mutex::new(HashSet::new()),
            launched: Default::default(),
            suppressed: Default::default(),
            released: Default::default(),
            draining: Default::default(),
            idle_since: Default::default(),
            sizes: Default::default(),
            ended: Default::default(),
            offers_seen: offers_seen.clone(),
        });
        let handler = launcher.clone();
        let events_task = runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                handler.handle(event).await;
            }
        });
        let monitor = launcher.clone();
        let dynamic = config.cluster.dynamic_allocation.clone();
        let monitor_task = runtime.spawn(async move { monitor.watch(dynamic).await });
        Ok(Backend::Cluster {
            client,
            endpoint: master,
            events_task,
            monitor_task,
            runtime: runtime.clone(),
            expected,
            offers_seen,
            _local: local,
        })
    }

    fn expected_executors(&self) -> usize {
        match self {
            Backend::Local { .. } => 1,
            Backend::Cluster { expected, .. } => *expected,
        }
    }

    /// The count of offers received so far, on a cluster.
    fn offers_seen(&self) -> Option<Arc<OfferCounts>> {
        match self {
            Backend::Local { .. } => None,
            Backend::Cluster { offers_seen, .. } => Some(offers_seen.clone()),
        }
    }

    fn master(&self) -> Option<MasterEndpoint> {
        match self {
            Backend::Local { .. } => None,
            Backend::Cluster { endpoint, .. } => Some(endpoint.clone()),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        match self {
            // The executor stops as its handle drops.
            Backend::Local { .. } => {}
            Backend::Cluster {
                client,
                events_task,
                monitor_task,
                runtime,
                ..
            } => {
                events_task.abort();
                monitor_task.abort();
                // Like a Spark driver stopping: the master kills our executors and frees their
                // resources at once instead of after a failover timeout.
                if let Err(e) = runtime.block_on(client.teardown()) {
                    tracing::warn!(
                        "{e}; the master shuts this session's executors down once its failover \
                         timeout has passed"
                    );
                }
            }
        }
    }
}

/// Launches one executor per agent, Spark's coarse-grained mode on Mesos.
struct OfferHandler {
    client: FrameworkClient,
    state: Arc<DriverState>,
    bin_dir: std::path::PathBuf,
    driver_address: String,
    executor_credential: Credential,
    /// The libraries each executor loads before it registers, by hash.
    preload: Vec<String>,
    shuffle_service: ShuffleService,
    memory_mb: u64,
    /// CPUs per executor, if limited.
    cores: Option<u32>,
    /// How many executors to hold.
    wanted: usize,
    /// Where executors may run.
    constraints: Constraints,
    agents_with_executor: Mutex<HashSet<String>>,
    offers_seen: Arc<OfferCounts>,
    /// Executors launched so far: each gets a new id, so that what a lost executor held (and
    /// its late status updates) is never taken for its replacement's on the same agent.
    launched: std::sync::atomic::AtomicU32,
    /// Whether the session told the master it wants no offers (it holds all the executors it
    /// wants): other sessions get the cluster's offers meanwhile, as in Mesos.
    suppressed: std::sync::atomic::AtomicBool,
    /// Executors the session released (idle, or given back), whose end is no loss.
    released: Mutex<HashSet<String>>,
    /// Executors given back that still run tasks: ended once those are done.
    draining: Mutex<Vec<ExecutorHandle>>,
    /// Since when each executor has had no task.
    idle_since: Mutex<HashMap<String, Instant>>,
    /// What each executor was launched with.
    sizes: Mutex<HashMap<String, Resources>>,
    /// Executors whose end the session has heard: status updates may come more than once
    /// (until acknowledged), and an end is handled once.
    ended: Mutex<HashSet<String>>,
}

impl OfferHandler {
    async fn handle(&self, event: FrameworkEvent) {
        match event {
            FrameworkEvent::Registered { framework_id } => {
                tracing::info!(%framework_id, "registered with the master");
                // After subscribing again (a new master knows nothing of it): still no offers
                // wanted while the session holds the executors it wants.
                if self.suppressed.load(Ordering::SeqCst)
                    && let Err(e) = self.client.suppress().await
                {
                    tracing::warn!("cannot suppress offers after subscribing again: {e}");
                }
            }
            FrameworkEvent::Offers(offers) => {
                self.offers_seen
                    .seen
                    .fetch_add(offers.len() as u64, Ordering::Relaxed);
                for offer in offers {
                    self.consider(offer).await;
                }
            }
            FrameworkEvent::OfferRescinded(_) => {}
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                state,
                message,
                ..
            } => {
                tracing::info!(%executor_id, %agent_id, %state, %message, "executor status");
                if state.is_terminal() && self.ended.lock().insert(executor_id.clone()) {
                    self.agents_with_executor.lock().remove(&agent_id);
                    self.sizes.lock().remove(&executor_id);
                    if self.released.lock().remove(&executor_id) {
                        // Released while idle: offers again only when tasks wait.
                        self.state.forget_executor(&executor_id);
                        return;
                    }
                    if matches!(state, ExecutorState::Failed | ExecutorState::Lost) {
                        // Why it ended is for the user to see: e.g. "memory limit 1024 MiB
                        // exceeded", or the end of its stderr.
                        tracing::warn!(%executor_id, %agent_id, "executor {state}: {message}");
                    }
                    self.state.lose_executor(&executor_id).await;
                    // A replacement is wanted: offers again.
                    self.revive("replace a lost executor").await;
                }
            }
            FrameworkEvent::Reclaim { resources, message } => {
                self.give_back(resources, &message).await
            }
            // A session's executors talk to their driver directly.
            FrameworkEvent::Message { executor_id, .. } => {
                tracing::debug!(%executor_id, "a message from an executor, not used by sessions")
            }
            FrameworkEvent::Failure {
                agent_id,
                executor_id,
                status,
            } => {
                // An executor's failure comes as its status update too; a lost agent's
                // executors as LOST updates.
                tracing::debug!(%agent_id, ?executor_id, ?status, "failure");
            }
            FrameworkEvent::Disconnected(reason) => {
                tracing::warn!(%reason, "disconnected from the master; no new executors can be acquired")
            }
        }
    }

    /// Asks the master for no offers, if the session had not already.
    async fn suppress(&self) {
        if !self.suppressed.swap(true, Ordering::SeqCst)
            && let Err(e) = self.client.suppress().await
        {
            tracing::warn!("cannot suppress offers: {e}");
            self.suppressed.store(false, Ordering::SeqCst);
        }
    }

    /// Asks the master for offers again, if the session had suppressed them.
    async fn revive(&self, why: &str) {
        if self.suppressed.swap(false, Ordering::SeqCst)
            && let Err(e) = self.client.revive().await
        {
            tracing::warn!("cannot revive offers to {why}: {e}");
        }
    }

    /// Ends executors worth at most `amount`, those whose loss costs least
    /// ([`to_give_back`]): the master asked, for a session that waits below its fair share.
    /// No new task goes to them; a busy one ends when its running tasks are done.
    async fn give_back(&self, amount: Resources, why: &str) {
        let sizes = self.sizes.lock().clone();
        let executors: Vec<(ExecutorUse, Resources)> = self
            .state
            .executors
            .list()
            .iter()
            .filter_map(|e| {
                let resources = *sizes.get(&e.id)?;
                let idle_for = self.idle_since.lock().get(&e.id).map(Instant::elapsed);
                let usage = ExecutorUse {
                    id: e.id.clone(),
                    idle_for: idle_for.unwrap_or_default(),
                    holds_cache: self.state.blocks.holds_any(&e.id),
                    holds_shuffle_outputs: self.state.map_outputs.holds_any(&e.id),
                };
                Some((usage, resources))
            })
            .collect();
        let chosen = to_give_back(&executors, amount);
        if chosen.is_empty() {
            tracing::info!(%amount, %why, "asked for resources back; no executor fits within them");
            return;
        }
        tracing::warn!(
            "giving executors back to share the cluster ({}): {why}",
            chosen.join(", ")
        );
        for id in chosen {
            if let Some(handle) = self.state.executors.remove(&id) {
                self.released.lock().insert(id.clone());
                self.draining.lock().push(handle);
            }
        }
        self.end_drained().await;
    }

    /// Notes which of `executors` have no task since when; returns how long each idle one has
    /// been idle.
    fn note_idle(&self, executors: &[ExecutorHandle]) -> HashMap<String, Duration> {
        let now = Instant::now();
        let started = self.state.started.load(Ordering::SeqCst);
        let mut idle_since = self.idle_since.lock();
        idle_since.retain(|id, _| executors.iter().any(|e| &e.id == id));
        executors
            .iter()
            .filter_map(|e| {
                if !started || e.tasks_in_flight() > 0 {
                    idle_since.remove(&e.id);
                    return None;
                }
                let since = *idle_since.entry(e.id.clone()).or_insert(now);
                Some((e.id.clone(), now - since))
            })
            .collect()
    }

    /// Ends the executors given back whose tasks are all done.
    async fn end_drained(&self) {
        let done: Vec<String> = {
            let mut draining = self.draining.lock();
            let (done, busy): (Vec<_>, Vec<_>) =
                draining.drain(..).partition(|e| e.tasks_in_flight() == 0);
            *draining = busy;
            done.into_iter().map(|e| e.id).collect()
        };
        for id in done {
            if let Err(e) = self.client.shutdown_executor(&id).await {
                tracing::warn!(executor = %id, "cannot end an executor given back: {e}");
            }
        }
    }

    /// Every quarter second: revives offers when tasks wait and the session holds fewer
    /// executors than it wants, ends executors given back once their tasks are done, and,
    /// with `dynamic`, releases executors idle past its timeout ([`to_release`]) and
    /// suppresses offers once no task has waited that long (an idle session wants nothing:
    /// it must not count as one waiting for its share).
    async fn watch(&self, dynamic: Option<DynamicAllocation>) {
        let mut last_backlog = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if self.state.executors_wanted.swap(false, Ordering::SeqCst) {
                last_backlog = Instant::now();
                if self.agents_with_executor.lock().len() < self.wanted {
                    self.revive("run tasks that wait").await;
                }
            }
            if let Some(policy) = &dynamic
                && self.launched.load(Ordering::Relaxed) > 0
                && last_backlog.elapsed() >= policy.idle_timeout
            {
                self.suppress().await;
            }
            self.end_drained().await;
            let executors = self.state.executors.list();
            let idle = self.note_idle(&executors);
            let Some(policy) = &dynamic else { continue };
            let uses: Vec<ExecutorUse> = executors
                .iter()
                .filter_map(|e| {
                    let idle_for = *idle.get(&e.id)?;
                    Some(ExecutorUse {
                        id: e.id.clone(),
                        idle_for,
                        holds_cache: self.state.blocks.holds_any(&e.id),
                        holds_shuffle_outputs: self.state.map_outputs.holds_any(&e.id),
                    })
                })
                .collect();
            for id in to_release(policy, &uses) {
                tracing::info!(executor = %id, idle = ?policy.idle_timeout, "releasing an idle executor");
                // No new task goes to it from now on.
                self.state.executors.remove(&id);
                self.released.lock().insert(id.clone());
                self.idle_since.lock().remove(&id);
                // Gracefully, as Spark's executors are stopped.
                if let Err(e) = self.client.shutdown_executor(&id).await {
                    tracing::warn!(executor = %id, "cannot release an idle executor: {e}");
                }
            }
        }
    }

    async fn consider(&self, offer: Offer) {
        if let Some(why) = self.constraints.mismatch(&offer.attributes) {
            tracing::debug!(agent_id = %offer.agent_id, hostname = %offer.hostname, %why, "offer declined: the agent is outside the executor constraints");
            self.offers_seen
                .unmet_constraints
                .fetch_add(1, Ordering::Relaxed);
            let _ = self
                .client
                .decline(&offer.id, UNMET_CONSTRAINTS_DECLINE_SECONDS)
                .await;
            return;
        }
        let mut cpus = offer.resources.cpus.floor();
        if let Some(cores) = self.cores {
            cpus = cpus.min(cores as f64);
        }
        let size = executor_size(offer.resources.mem_mb, self.memory_mb);
        let wanted = cpus >= 1.0 && size.is_some() && {
            let mut held = self.agents_with_executor.lock();
            held.len() < self.wanted && held.insert(offer.agent_id.clone())
        };
        let (true, Some(size)) = (wanted, size) else {
            let _ = self.client.decline(&offer.id, DECLINE_SECONDS).await;
            return;
        };
        let launch = self.launched.fetch_add(1, Ordering::Relaxed);
        let executor_id = format!("exec-{launch}-{}", offer.agent_id);
        let command = ExecutorCommand::new(
            &self.bin_dir,
            &self.driver_address,
            &executor_id,
            cpus as u32,
            size.cache_mb,
            Some(size.container_mb),
            &self.executor_credential,
        )
        .preloading(&self.preload);
        let resources = Resources::new(cpus, size.container_mb);
        self.sizes.lock().insert(executor_id.clone(), resources);
        let launch = ExecutorLaunch {
            executor_id,
            program: command.program.to_string_lossy().into_owned(),
            args: command.args,
            env: command.env,
            resources,
            extras: Default::default(),
            // The agent keeps the executor's map outputs readable after it is gone (Spark's
            // external shuffle service), for the session's processes only.
            files_credential: (self.shuffle_service == ShuffleService::Enabled)
                .then(|| self.executor_credential.to_bundle()),
        };
        if let Err(e) = self.client.accept(&offer.id, vec![launch]).await {
            tracing::warn!("cannot launch an executor on agent {}: {e}", offer.agent_id);
            self.agents_with_executor.lock().remove(&offer.agent_id);
            return;
        }
        if self.agents_with_executor.lock().len() >= self.wanted {
            self.suppress().await;
        }
    }
}

/// Owns the backend on a thread of its own that lives as long as the driver. Executors (and a
/// loopback cluster's daemons) are started with a parent-death signal, which the kernel sends
/// when the *thread* that started them exits: they must be started, and stopped, by a thread
/// that outlives them, whichever thread started the driver.
pub struct BackendKeeper {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub expected_executors: usize,
    pub master: Option<MasterEndpoint>,
    /// Offers received so far, on a cluster: what the session says while it waits.
    offers_seen: Option<Arc<OfferCounts>>,
}

impl BackendKeeper {
    pub(crate) fn start(
        config: DriverConfig,
        runtime: tokio::runtime::Handle,
        state: Arc<DriverState>,
        driver_address: String,
        executor_credential: Credential,
    ) -> anyhow::Result<BackendKeeper> {
        let (started, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tessera-executors".into())
            .spawn(move || {
                match Backend::start(
                    &config,
                    &runtime,
                    &state,
                    &driver_address,
                    &executor_credential,
                ) {
                    Ok(backend) => {
                        let _ = started.send(Ok((
                            backend.expected_executors(),
                            backend.master(),
                            backend.offers_seen(),
                        )));
                        // Until the driver drops its sender.
                        let _ = stopped.recv();
                        drop(backend);
                    }
                    Err(e) => drop(started.send(Err(e))),
                }
            })?;
        let (expected_executors, master, offers_seen) = started_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the executor launcher thread died"))??;
        Ok(BackendKeeper {
            stop: Some(stop),
            thread: Some(thread),
            expected_executors,
            master,
            offers_seen,
        })
    }

    /// Why the session is still short of executors, for a person waiting on it.
    pub fn waiting_reason(&self) -> String {
        let counts = self.offers_seen.as_ref().map(|n| {
            let seen = n.seen.load(Ordering::Relaxed);
            let unmet = n.unmet_constraints.load(Ordering::Relaxed);
            (seen, unmet, n.constraints.as_str())
        });
        waiting_reason(counts)
    }
}

/// Why a session is short of executors, from how many offers it has received and how many of
/// them it declined for its constraints (`None`: it runs its executor itself).
fn waiting_reason(offers: Option<(u64, u64, &str)>) -> String {
    match offers {
        None => "the local executor is starting".into(),
        Some((0, _, _)) => "the cluster offers nothing to this session: other sessions may hold \
                            it all (the master asks them to give back their fair share after a \
                            while) — see `tessera cluster status`"
            .into(),
        Some((seen, unmet, constraints)) if unmet > 0 => format!(
            "{unmet} of the {seen} offers so far came from agents outside the executor \
             constraints ({constraints}), and the others had no room for another executor — \
             see the agents' attributes in `tessera cluster status`, or change \
             --executor-constraint"
        ),
        Some(_) => format!(
            "the offers so far had no room for another executor (at least 1 CPU and \
             {MIN_EXECUTOR_MEM_MB} MiB on an agent without one), and other sessions may hold \
             the rest — see `tessera cluster status`"
        ),
    }
}

impl Drop for BackendKeeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_for_waiting_depends_on_the_offers_seen() {
        assert!(waiting_reason(None).contains("local executor"));
        assert!(waiting_reason(Some((0, 0, ""))).contains("offers nothing to this session"));
        let unmet = waiting_reason(Some((3, 2, "rack:r9")));
        assert!(
            unmet.contains("2 of the 3 offers so far came from agents outside the executor constraints (rack:r9)"),
            "{unmet}"
        );
        let some = waiting_reason(Some((3, 0, "")));
        assert!(some.contains("no room for another executor"), "{some}");
        assert!(
            some.contains(&format!("{MIN_EXECUTOR_MEM_MB} MiB")),
            "{some}"
        );
    }
}
