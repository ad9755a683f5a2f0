//! The master's gRPC service (`tessera.master.Master`) and its background
//! loops: periodic allocation, agent heartbeat timeouts and framework failover
//! timeouts. Calls to agents run here, outside the state lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_cluster_proto::agent::agent_client::AgentClient;
use tessera_cluster_proto::master as pb;
use tessera_cluster_proto::master::master_server::Master;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

use tessera_credentials::{Principal, caller};

use crate::shared::Shared;
use crate::state::{
    AgentAction, AgentOffering, Subscription, check_extras, check_resources, check_role,
    seconds_up_to_a_year,
};

/// Calls to agents give up after this long.
const AGENT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct MasterService {
    shared: Arc<Shared>,
}

impl MasterService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        MasterService { shared }
    }
}

/// Runs the allocator every allocation interval, or sooner when woken.
pub(crate) async fn allocation_loop(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.allocation_interval) => {}
            _ = shared.wake_allocator.notified() => {}
        }
        shared.lock().allocate(Instant::now());
    }
}

/// Sends every connected framework a Heartbeat each heartbeat interval.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>) {
    let interval = shared.config.framework_heartbeat_interval;
    loop {
        tokio::time::sleep(interval).await;
        shared.lock().heartbeat_frameworks();
    }
}

/// Declares silent agents lost and removes frameworks whose failover timeout
/// passed.
pub(crate) async fn timeout_loop(shared: Arc<Shared>) {
    let config = shared.config.clone();
    let period = (config.agent_timeout / 4)
        .min(Duration::from_millis(500))
        .max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let now = Instant::now();
        let mut actions = Vec::new();
        {
            let mut state = shared.lock();
            for (agent_id, silent) in state.timed_out_agents(now, config.agent_timeout) {
                let reason = format!("no heartbeat for {} ms", silent.as_millis());
                state.remove_agent(&agent_id, &reason);
            }
            for framework_id in state.expired_frameworks(now) {
                actions.extend(state.remove_framework(
                    &framework_id,
                    "it did not subscribe again within its failover timeout",
                ));
            }
        }
        run_actions(&shared, actions);
    }
}

/// Sends the actions to their agents, each in its own task. A launch that
/// cannot reach its agent is reported LOST to the framework.
fn run_actions(shared: &Arc<Shared>, actions: Vec<AgentAction>) {
    for action in actions {
        let shared = shared.clone();
        tokio::spawn(async move {
            match action {
                AgentAction::Launch {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let (fid, eid) = (request.framework_id.clone(), request.executor_id.clone());
                    let Err(error) = agent_call(client.launch_executor(*request)).await else {
                        return;
                    };
                    tracing::warn!(framework_id = %fid, executor_id = %eid, %agent_id, %error, "launch failed");
                    let mut state = shared.lock();
                    // Its resources would only be offered, accepted and fail again, many times a
                    // second, until the agent timeout: offer none until it is heard from.
                    if let AgentCallError::Unreachable(why) = &error {
                        state.agent_unreachable(&agent_id, why);
                    }
                    state.update_executor(
                        &fid,
                        &eid,
                        &agent_id,
                        pb::ExecutorState::Lost,
                        format!("could not launch on agent {agent_id}: {error}"),
                    );
                }
                AgentAction::Kill {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let eid = request.executor_id.clone();
                    if let Err(error) = agent_call(client.kill_executor(request)).await {
                        tracing::warn!(executor_id = %eid, %agent_id, %error, "kill request failed");
                    }
                }
                AgentAction::Acknowledge {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let eid = request.executor_id.clone();
                    // Lost, the agent sends the update again and the framework acknowledges again.
                    if let Err(error) = agent_call(client.acknowledge_status_update(request)).await
                    {
                        tracing::debug!(executor_id = %eid, %agent_id, %error, "acknowledgement not passed on");
                    }
                }
                AgentAction::Message {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let eid = request.executor_id.clone();
                    if let Err(error) = agent_call(client.deliver_message(request)).await {
                        tracing::warn!(executor_id = %eid, %agent_id, %error, "message not delivered");
                    }
                }
                AgentAction::ShutdownFramework {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let fid = request.framework_id.clone();
                    if let Err(error) = agent_call(client.shutdown_framework(request)).await {
                        tracing::warn!(framework_id = %fid, %agent_id, %error, "shutdown of framework executors failed");
                    }
                }
            }
        });
    }
}

/// A call to an agent, given up after [`AGENT_RPC_TIMEOUT`]; the error says why it failed.
/// Why a call to an agent failed.
#[derive(Debug, thiserror::Error)]
enum AgentCallError {
    /// The agent could not be reached (connection refused or broken, no answer in time).
    #[error("{0}")]
    Unreachable(String),
    /// The agent answered with an error.
    #[error("{0}")]
    Refused(String),
}

async fn agent_call<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<(), AgentCallError> {
    match tokio::time::timeout(AGENT_RPC_TIMEOUT, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status))
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) =>
        {
            Err(AgentCallError::Unreachable(status.message().to_string()))
        }
        Ok(Err(status)) => Err(AgentCallError::Refused(status.message().to_string())),
        Err(_) => Err(AgentCallError::Unreachable(
            "the agent did not answer in time".to_string(),
        )),
    }
}

/// The name of the agent that made `request`, or a refusal: only agents may call it.
fn agent_caller<T>(request: &Request<T>, call: &str) -> Result<String, Status> {
    match caller(request)? {
        Principal::Agent(name) => Ok(name),
        other => Err(Status::permission_denied(format!(
            "{call} is for agents, and the caller's certificate names {other}; agents need a \
             certificate issued for an agent (`tessera cluster init-credentials DIR --agent NAME`)"
        ))),
    }
}

/// The framework principal that made `request`, or a refusal: only frameworks
/// may call it.
fn framework_caller<T>(request: &Request<T>, call: &str) -> Result<String, Status> {
    match caller(request)? {
        Principal::Framework(name) => Ok(name),
        other => Err(Status::permission_denied(format!(
            "{call} is for frameworks, and the caller's certificate names {other}; frameworks \
             need a certificate issued for a framework principal (`tessera cluster \
             init-credentials DIR --framework NAME`)"
        ))),
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is empty")))
    } else {
        Ok(())
    }
}

/// What agent `principal` registers besides its unreserved CPUs and memory, checked: extras,
/// reservations for valid roles (of CPUs and memory only), attributes with names.
fn agent_offering(
    principal: &str,
    req: &pb::RegisterAgentRequest,
) -> Result<AgentOffering, Status> {
    let whom = format!("agent {principal}");
    let mut reserved = std::collections::BTreeMap::new();
    for r in &req.reservations {
        check_role(&r.role)?;
        let amount = check_resources(
            &format!("{whom}'s reservation for {}", r.role),
            r.resources.as_ref(),
        )?;
        if !amount.is_zero() {
            let sum: &mut tessera_allocator::Resources =
                reserved.entry(r.role.clone()).or_default();
            *sum = sum.plus(&amount);
        }
    }
    if let Some(a) = req.attributes.iter().find(|a| a.name.is_empty()) {
        return Err(Status::invalid_argument(format!(
            "{whom} has an attribute without a name (value {:?}); give attributes as NAME:VALUE",
            a.value
        )));
    }
    Ok(AgentOffering {
        extras: check_extras(&whom, req.resources.as_ref())?,
        reserved,
        attributes: req.attributes.iter().cloned().map(Into::into).collect(),
    })
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn register_agent(
        &self,
        request: Request<pb::RegisterAgentRequest>,
    ) -> Result<Response<pb::RegisterAgentResponse>, Status> {
        let principal = agent_caller(&request, "RegisterAgent")?;
        let req = request.into_inner();
        non_empty("address", &req.address)?;
        let total = check_resources(&format!("agent {principal}"), req.resources.as_ref())?;
        if total.cpus <= 0.0 && total.mem_mb == 0 && req.reservations.is_empty() {
            return Err(Status::invalid_argument(format!(
                "agent {principal} offers no resources; give it --cpus and --mem-mb"
            )));
        }
        let endpoint = Endpoint::from_shared(format!("https://{}", req.address))
            .and_then(|e| {
                e.tls_config(
                    self.shared
                        .credential
                        .client_tls(&Principal::Agent(principal.clone())),
                )
            })
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "agent address {:?} is not host:port: {e}",
                    req.address
                ))
            })?;
        let client = AgentClient::new(
            endpoint
                .connect_timeout(Duration::from_secs(5))
                .connect_lazy(),
        );
        let offering = agent_offering(&principal, &req)?;
        let (agent_id, interval, actions) = self.shared.lock().reregister_agent(
            req.agent_id,
            (req.hostname, req.address, principal),
            total,
            offering,
            req.isolation,
            client,
            req.executors,
            Instant::now(),
        )?;
        run_actions(&self.shared, actions);
        self.shared.wake_allocator.notify_one();
        Ok(Response::new(pb::RegisterAgentResponse {
            agent_id,
            heartbeat_interval_ms: interval.as_millis() as u64,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let principal = agent_caller(&request, "Heartbeat")?;
        let req = request.into_inner();
        let mut state = self.shared.lock();
        let known = state.heartbeat(&req.agent_id, &principal, Instant::now())?;
        if known {
            state.record_usage(&req.agent_id, req.usage);
        }
        drop(state);
        Ok(Response::new(pb::HeartbeatResponse { known }))
    }

    async fn update_status(
        &self,
        request: Request<pb::StatusUpdate>,
    ) -> Result<Response<pb::StatusUpdateAck>, Status> {
        let principal = agent_caller(&request, "UpdateStatus")?;
        let actions = self
            .shared
            .lock()
            .agent_update(&principal, request.into_inner())?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::StatusUpdateAck {}))
    }

    async fn send_executor_message(
        &self,
        request: Request<pb::ExecutorMessage>,
    ) -> Result<Response<pb::ExecutorMessageAck>, Status> {
        let principal = agent_caller(&request, "SendExecutorMessage")?;
        self.shared
            .lock()
            .executor_message(&principal, request.into_inner())?;
        Ok(Response::new(pb::ExecutorMessageAck {}))
    }

    type SubscribeStream = UnboundedReceiverStream<Result<pb::Event, Status>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let principal = framework_caller(&request, "Subscribe")?;
        let req = request.into_inner();
        non_empty("framework name", &req.name)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = tx.clone();
        let failover_timeout = req
            .failover_timeout_seconds
            .map(|s| seconds_up_to_a_year("failover_timeout_seconds", s))
            .transpose()?;
        let subscription = Subscription {
            name: req.name,
            user: req.user,
            role: req.role,
            roles: req.roles,
            framework_id: (!req.framework_id.is_empty()).then_some(req.framework_id),
            failover_timeout,
            capabilities: req.capabilities,
        };
        let (framework_id, connection) =
            self.shared
                .lock()
                .subscribe_framework(subscription, principal, tx)?;
        self.shared.wake_allocator.notify_one();
        // Notice when the framework's stream goes away.
        let shared = self.shared.clone();
        tokio::spawn(async move {
            watcher.closed().await;
            let actions =
                shared
                    .lock()
                    .framework_disconnected(&framework_id, connection, Instant::now());
            run_actions(&shared, actions);
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn accept(
        &self,
        request: Request<pb::AcceptRequest>,
    ) -> Result<Response<pb::AcceptResponse>, Status> {
        let principal = framework_caller(&request, "Accept")?;
        let actions =
            self.shared
                .lock()
                .accept(request.into_inner(), &principal, Instant::now())?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::AcceptResponse {}))
    }

    async fn decline(
        &self,
        request: Request<pb::DeclineRequest>,
    ) -> Result<Response<pb::DeclineResponse>, Status> {
        let principal = framework_caller(&request, "Decline")?;
        let req = request.into_inner();
        self.shared.lock().decline(
            &req.framework_id,
            &principal,
            &req.offer_ids,
            req.refuse_seconds,
            Instant::now(),
        )?;
        Ok(Response::new(pb::DeclineResponse {}))
    }

    async fn kill(
        &self,
        request: Request<pb::KillRequest>,
    ) -> Result<Response<pb::KillResponse>, Status> {
        let principal = framework_caller(&request, "Kill")?;
        let req = request.into_inner();
        let actions = self
            .shared
            .lock()
            .kill(&req.framework_id, &principal, &req.executor_id)?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::KillResponse {}))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        let principal = framework_caller(&request, "Shutdown")?;
        let req = request.into_inner();
        let actions = self.shared.lock().shutdown_executor(
            &req.framework_id,
            &principal,
            &req.executor_id,
        )?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn message(
        &self,
        request: Request<pb::MessageRequest>,
    ) -> Result<Response<pb::MessageResponse>, Status> {
        let principal = framework_caller(&request, "Message")?;
        let req = request.into_inner();
        let actions = self.shared.lock().message(
            &req.framework_id,
            &principal,
            &req.executor_id,
            req.data,
        )?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::MessageResponse {}))
    }

    async fn suppress(
        &self,
        request: Request<pb::SuppressRequest>,
    ) -> Result<Response<pb::SuppressResponse>, Status> {
        let principal = framework_caller(&request, "Suppress")?;
        let req = request.into_inner();
        self.shared
            .lock()
            .suppress(&req.framework_id, &principal, &req.roles)?;
        Ok(Response::new(pb::SuppressResponse {}))
    }

    async fn revive(
        &self,
        request: Request<pb::ReviveRequest>,
    ) -> Result<Response<pb::ReviveResponse>, Status> {
        let principal = framework_caller(&request, "Revive")?;
        let req = request.into_inner();
        self.shared
            .lock()
            .revive(&req.framework_id, &principal, &req.roles)?;
        self.shared.wake_allocator.notify_one();
        Ok(Response::new(pb::ReviveResponse {}))
    }

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::ReconcileResponse>, Status> {
        let principal = framework_caller(&request, "Reconcile")?;
        let req = request.into_inner();
        self.shared
            .lock()
            .reconcile(&req.framework_id, &principal, &req.executor_ids)?;
        Ok(Response::new(pb::ReconcileResponse {}))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResponse>, Status> {
        let principal = framework_caller(&request, "Acknowledge")?;
        let actions = self
            .shared
            .lock()
            .acknowledge(&principal, request.into_inner())?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::AcknowledgeResponse {}))
    }

    async fn teardown(
        &self,
        request: Request<pb::TeardownRequest>,
    ) -> Result<Response<pb::TeardownResponse>, Status> {
        let principal = framework_caller(&request, "Teardown")?;
        let req = request.into_inner();
        let actions = {
            let mut state = self.shared.lock();
            state.check_framework(&req.framework_id, &principal)?;
            state.remove_framework(&req.framework_id, "it tore itself down")
        };
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::TeardownResponse {}))
    }

    async fn cluster_status(
        &self,
        request: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        // Any principal of the cluster may look; ids it learns give it nothing, as every
        // call checks who makes it.
        caller(&request)?;
        Ok(Response::new(self.shared.lock().cluster_status()))
    }
}
