//! The agent's side of its conversation with the master: registering (retried
//! with backoff while the master is not there, saying how it isolates executors),
//! heartbeating with what its executors use, and forwarding
//! executor status updates in order until the master acknowledges each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_cluster_proto::master::{
    HeartbeatRequest, RegisterAgentRequest, Reservation, Resources, StatusUpdate,
};
use tessera_credentials::{Credential, Principal, describe_status};
use tokio::sync::mpsc::UnboundedReceiver;
use tonic::transport::{Channel, Endpoint};

use crate::executors::Executors;
use crate::isolation::IsolationMode;
use crate::{AgentConfig, AgentError};

const MAX_BACKOFF: Duration = Duration::from_secs(2);
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A (lazily connecting, reconnecting) client of the master.
#[derive(Clone)]
pub(crate) struct MasterLink {
    client: MasterClient<Channel>,
    address: String,
}

impl MasterLink {
    pub(crate) fn new(address: &str, credential: &Credential) -> Result<Self, AgentError> {
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .and_then(|e| e.tls_config(credential.client_tls(&Principal::Master)))
            .map_err(|_| AgentError::BadMasterAddress(address.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(RPC_TIMEOUT);
        Ok(MasterLink {
            client: MasterClient::new(endpoint.connect_lazy()),
            address: address.to_string(),
        })
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

async fn register(
    link: &MasterLink,
    config: &AgentConfig,
    address: &str,
    isolation: IsolationMode,
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
            isolation: isolation.to_string(),
            reservations: (config.reserved.iter())
                .map(|(role, r)| Reservation {
                    role: role.clone(),
                    resources: Some(Resources::of_cpus_mem(r)),
                    dynamic: false,
                })
                .collect(),
            attributes: config.attributes.iter().map(Into::into).collect(),
        };
        match link.client.clone().register_agent(request).await {
            Ok(response) => {
                let r = response.into_inner();
                tracing::info!(agent_id = %r.agent_id, master = %link.address, "registered with the master");
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
                        link.address,
                        describe_status(&status),
                        backoff
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Registers, then heartbeats; registers again whenever the master no longer
/// knows this agent (after killing the executors the master gave up on).
pub(crate) async fn register_and_heartbeat(
    link: MasterLink,
    config: AgentConfig,
    address: String,
    registration: Arc<Registration>,
    executors: Arc<Executors>,
) {
    loop {
        let (agent_id, interval) = register(&link, &config, &address, executors.isolation()).await;
        registration.set(Some(agent_id.clone()));
        let mut failures: u32 = 0;
        loop {
            tokio::time::sleep(interval).await;
            let request = HeartbeatRequest {
                agent_id: agent_id.clone(),
                usage: executors.usage(),
            };
            match link.client.clone().heartbeat(request).await {
                Ok(response) if response.get_ref().known => {
                    if failures > 0 {
                        tracing::info!(master = %link.address, "the master is reachable again");
                    }
                    failures = 0;
                }
                Ok(_) => {
                    registration.set(None);
                    let n = executors.kill_all_now(
                        "the master no longer knows this agent (it restarted or declared the agent lost)",
                    );
                    tracing::warn!(%agent_id, killed = n,
                        "the master no longer knows this agent (it restarted or declared it lost); \
                         killed its executors, registering again");
                    break;
                }
                Err(status) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(
                            "heartbeat to the master at {} failed: {}; executors keep running, still trying",
                            link.address,
                            describe_status(&status)
                        );
                    }
                }
            }
        }
    }
}

/// Sends status updates to the master one at a time, in order, retrying each
/// until acknowledged. Updates made under an earlier registration are dropped:
/// the master already reported those executors LOST.
pub(crate) async fn forward_status_updates(
    link: MasterLink,
    registration: Arc<Registration>,
    mut updates: UnboundedReceiver<StatusUpdate>,
) {
    while let Some(update) = updates.recv().await {
        let mut backoff = Duration::from_millis(50);
        let mut failures: u32 = 0;
        loop {
            if registration.current().as_deref() != Some(update.agent_id.as_str()) {
                tracing::debug!(executor_id = %update.executor_id, "status update from an earlier registration dropped");
                break;
            }
            match link.client.clone().update_status(update.clone()).await {
                Ok(_) => break,
                // The master read it and refused it: sending it again changes nothing.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::PermissionDenied
                            | tonic::Code::InvalidArgument
                            | tonic::Code::NotFound
                    ) =>
                {
                    tracing::warn!(
                        executor_id = %update.executor_id,
                        "the master refused a status update: {}",
                        describe_status(&status)
                    );
                    break;
                }
                Err(status) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(
                            executor_id = %update.executor_id,
                            "cannot send a status update to the master at {}: {}; retrying",
                            link.address,
                            describe_status(&status)
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
