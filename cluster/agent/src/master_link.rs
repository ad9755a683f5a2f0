//! The agent's side of its conversation with the master: registering (retried
//! with backoff while the master is not there, saying how it isolates executors),
//! heartbeating with what its executors use, and sending executor status
//! updates to the master, in order per executor, again and again until their
//! framework acknowledges each ([`crate::status_updates::StatusUpdates`]).
//!
//! When the master no longer knows the agent (it restarted), the agent registers
//! again under its id with the executors it runs, which keep running (Mesos'
//! re-registration); only if the master answers with another id — it declared
//! this agent lost and reported its executors LOST — are they killed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_cluster_proto::master::{
    HeartbeatRequest, RegisterAgentRequest, Reservation, Resources, StatusUpdate,
};
use tessera_credentials::{Credential, Principal, describe_status};
use tessera_zookeeper::MasterDetector;
use tokio::sync::mpsc::UnboundedReceiver;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::executors::Executors;
use crate::status_updates::PendingUpdates;

const MAX_BACKOFF: Duration = Duration::from_secs(2);
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A (lazily connecting, reconnecting) client of the leading master: the one address given,
/// or whichever master leads the election under a `zk://` URL, followed as leaders change.
#[derive(Clone)]
pub(crate) struct MasterLink {
    detector: MasterDetector,
    tls: ClientTlsConfig,
    /// The channel to the leader last used, and its address.
    channel: Arc<Mutex<Option<(String, MasterClient<Channel>)>>>,
}

impl MasterLink {
    pub(crate) async fn new(master: &str, credential: &Credential) -> Result<Self, AgentError> {
        let detector = MasterDetector::new(master)
            .await
            .map_err(|source| AgentError::ZooKeeper { source })?;
        let link = MasterLink {
            detector,
            tls: credential.client_tls(&Principal::Master),
            channel: Arc::default(),
        };
        if let Some(leader) = link.detector.leader() {
            link.channel_to(&leader)?;
        }
        Ok(link)
    }

    fn channel_to(&self, address: &str) -> Result<MasterClient<Channel>, AgentError> {
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .and_then(|e| e.tls_config(self.tls.clone()))
            .map_err(|_| AgentError::BadMasterAddress(address.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(RPC_TIMEOUT);
        let client = MasterClient::new(endpoint.connect_lazy());
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((address.to_string(), client.clone()));
        Ok(client)
    }

    /// A client of the leading master; `Unavailable` while none leads.
    pub(crate) fn client(&self) -> Result<MasterClient<Channel>, tonic::Status> {
        let Some(leader) = self.detector.leader() else {
            return Err(tonic::Status::unavailable(format!(
                "no master leads under {} right now",
                self.detector.describe()
            )));
        };
        let cached = self
            .channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match cached {
            Some((address, client)) if address == leader => Ok(client),
            _ => self
                .channel_to(&leader)
                .map_err(|e| tonic::Status::invalid_argument(e.to_string())),
        }
    }

    /// The leading master's address for messages (or the `zk://` URL while none leads).
    pub(crate) fn address(&self) -> String {
        self.detector.leader_or_url()
    }

    /// Returns when another master is elected (never for a single master).
    pub(crate) async fn leader_changed(&self) {
        self.detector.clone().changed().await
    }
}

/// The agent id the master gave this agent, while registered.
#[derive(Default)]
pub(crate) struct Registration {
    agent_id: Mutex<Option<String>>,
}

impl Registration {
    pub(crate) fn current(&self) -> Option<String> {
        self.agent_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, id: Option<String>) {
        *self.agent_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
    }
}

/// Registers (again, under `previous` with the running executors, when set); retried until
/// the master answers.
async fn register(
    link: &MasterLink,
    config: &AgentConfig,
    address: &str,
    executors: &Executors,
    pending: &PendingUpdates,
    previous: Option<&str>,
) -> (String, Duration) {
    let mut backoff = Duration::from_millis(100);
    let mut attempts: u32 = 0;
    loop {
        let request = RegisterAgentRequest {
            hostname: config.hostname.clone(),
            address: address.to_string(),
            resources: Some(Resources::of(
                &tessera_allocator::Resources::new(config.cpus, config.mem_mb),
                &config.extras,
            )),
            isolation: executors.isolation().to_string(),
            reservations: (config.reserved.iter())
                .map(|(role, r)| Reservation {
                    role: role.clone(),
                    resources: Some(Resources::of_cpus_mem(r)),
                    dynamic: false,
                })
                .collect(),
            attributes: config.attributes.iter().map(Into::into).collect(),
            agent_id: previous.unwrap_or_default().to_string(),
            executors: previous
                .map(|_| executors.recovered(&pending.lock().waiting()))
                .unwrap_or_default(),
        };
        match async { link.client()?.register_agent(request).await }.await {
            Ok(response) => {
                let r = response.into_inner();
                tracing::info!(agent_id = %r.agent_id, master = %link.address(), "registered with the master");
                return (
                    r.agent_id,
                    Duration::from_millis(r.heartbeat_interval_ms.max(10)),
                );
            }
            Err(status) => {
                attempts += 1;
                // Say it clearly the first time, then now and then.
                if attempts == 1 || attempts.is_multiple_of(10) {
                    tracing::warn!(
                        "cannot register with the Tessera master at {}: {} — is tessera-master running there? \
                         retrying (attempt {attempts}, next in {:?})",
                        link.address(),
                        describe_status(&status),
                        backoff
                    );
                }
                // A newly elected master is tried at once.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
                    _ = link.leader_changed() => backoff = Duration::from_millis(100),
                }
            }
        }
    }
}

/// Registers (under `previous`, the id of its checkpoint, when the agent recovered one),
/// then heartbeats; registers again under its id with its executors whenever the master no
/// longer knows this agent, killing them only if the master gave up on them (it answered
/// another id).
pub(crate) async fn register_and_heartbeat(
    link: MasterLink,
    config: AgentConfig,
    address: String,
    registration: Arc<Registration>,
    executors: Arc<Executors>,
    pending: Arc<PendingUpdates>,
    mut previous: Option<String>,
) {
    loop {
        let (agent_id, interval) = register(
            &link,
            &config,
            &address,
            &executors,
            &pending,
            previous.as_deref(),
        )
        .await;
        if let Some(old) = previous.as_deref()
            && old != agent_id
        {
            let n = executors.kill_all_now(
                "the master declared this agent lost and reported its executors LOST",
            );
            tracing::warn!(old_id = %old, new_id = %agent_id, killed = n,
                "the master took this agent back under a new id; killed the executors it had given up on");
        }
        registration.set(Some(agent_id.clone()));
        executors.set_agent_id(&agent_id);
        previous = Some(agent_id.clone());
        // What waits for an acknowledgement goes to this master at once.
        pending.lock().send_all_now();
        pending.wake.notify_one();
        let mut failures: u32 = 0;
        loop {
            // A newly elected master hears from this agent at once (and does not know it yet).
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = link.leader_changed() => {}
            }
            let request = HeartbeatRequest {
                agent_id: agent_id.clone(),
                usage: executors.usage(),
            };
            match async { link.client()?.heartbeat(request).await }.await {
                Ok(response) if response.get_ref().known => {
                    if failures > 0 {
                        tracing::info!(master = %link.address(), "the master is reachable again");
                    }
                    failures = 0;
                }
                Ok(_) => {
                    tracing::warn!(%agent_id, executors = executors.count(),
                        "the master no longer knows this agent (it restarted or declared it lost); \
                         registering again with its id and executors");
                    break;
                }
                Err(status) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(
                            "heartbeat to the master at {} failed: {}; executors keep running, still trying",
                            link.address(),
                            describe_status(&status)
                        );
                    }
                }
            }
        }
    }
}

/// Sends each executor's oldest unacknowledged status update to the master when it is due
/// ([`crate::status_updates::StatusUpdates::due`]): new updates at once, the same again with a growing backoff until
/// the framework's acknowledgement arrives (through the master and the agent's service), the
/// next when the one before is acknowledged. Updates made under an earlier registration are
/// dropped: the master already reported those executors LOST. An update the master refuses
/// (its executor is not this agent's, it is malformed) is dropped too.
pub(crate) async fn forward_status_updates(
    link: MasterLink,
    registration: Arc<Registration>,
    pending: Arc<PendingUpdates>,
    executors: Arc<Executors>,
    mut updates: UnboundedReceiver<StatusUpdate>,
) {
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let mut failures: u32 = 0;
    loop {
        let mut queued = false;
        tokio::select! {
            update = updates.recv() => match update {
                Some(update) => {
                    pending.lock().push(update);
                    queued = true;
                }
                None => return,
            },
            _ = ticks.tick() => {}
            _ = pending.wake.notified() => {}
        }
        while let Ok(update) = updates.try_recv() {
            pending.lock().push(update);
            queued = true;
        }
        // Checkpointed before it is sent: none is lost to a crash of the agent.
        if queued {
            executors.save_checkpoint();
        }
        let Some(agent_id) = registration.current() else {
            continue;
        };
        let due = {
            let mut pending = pending.lock();
            pending.keep_agent(&agent_id);
            pending.due(Instant::now())
        };
        for update in due {
            match async { link.client()?.update_status(update.clone()).await }.await {
                Ok(_) => failures = 0,
                // The master read it and refused it: sending it again changes nothing.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::PermissionDenied | tonic::Code::InvalidArgument
                    ) =>
                {
                    tracing::warn!(
                        executor_id = %update.executor_id,
                        "the master refused a status update: {}",
                        describe_status(&status)
                    );
                    let key = (update.framework_id.clone(), update.executor_id.clone());
                    if pending.acknowledge(&key, &update.uuid) {
                        executors.save_checkpoint();
                    }
                }
                Err(status) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(
                            executor_id = %update.executor_id,
                            "cannot send a status update to the master at {}: {}; it will be sent again",
                            link.address(),
                            describe_status(&status)
                        );
                    }
                }
            }
        }
    }
}
