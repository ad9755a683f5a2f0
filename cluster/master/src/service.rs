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

use crate::Shared;
use crate::state::{AgentAction, from_pb};

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
            if !config.framework_failover_timeout.is_zero() {
                for framework_id in state.expired_frameworks(now, config.framework_failover_timeout)
                {
                    actions.extend(state.remove_framework(
                        &framework_id,
                        "it did not subscribe again within its failover timeout",
                    ));
                }
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
                    let result =
                        tokio::time::timeout(AGENT_RPC_TIMEOUT, client.launch_executor(request))
                            .await;
                    let error = match result {
                        Ok(Ok(_)) => return,
                        Ok(Err(status)) => status.message().to_string(),
                        Err(_) => "the agent did not answer in time".to_string(),
                    };
                    tracing::warn!(framework_id = %fid, executor_id = %eid, %agent_id, %error, "launch failed");
                    shared.lock().update_executor(
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
                    if let Err(e) =
                        tokio::time::timeout(AGENT_RPC_TIMEOUT, client.kill_executor(request)).await
                    {
                        tracing::warn!(executor_id = %eid, %agent_id, error = %e, "kill request timed out");
                    }
                }
                AgentAction::ShutdownFramework {
                    mut client,
                    agent_id,
                    request,
                } => {
                    let fid = request.framework_id.clone();
                    match tokio::time::timeout(
                        AGENT_RPC_TIMEOUT,
                        client.shutdown_framework(request),
                    )
                    .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(status)) => {
                            tracing::warn!(framework_id = %fid, %agent_id, error = %status.message(), "shutdown of framework executors failed")
                        }
                        Err(_) => {
                            tracing::warn!(framework_id = %fid, %agent_id, "shutdown of framework executors timed out")
                        }
                    }
                }
            }
        });
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is empty")))
    } else {
        Ok(())
    }
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn register_agent(
        &self,
        request: Request<pb::RegisterAgentRequest>,
    ) -> Result<Response<pb::RegisterAgentResponse>, Status> {
        let req = request.into_inner();
        non_empty("address", &req.address)?;
        let total = from_pb(req.resources.as_ref());
        let endpoint = Endpoint::from_shared(format!("http://{}", req.address)).map_err(|e| {
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
        let (agent_id, interval) = self.shared.lock().register_agent(
            req.hostname,
            req.address,
            total,
            client,
            Instant::now(),
        );
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
        let req = request.into_inner();
        let known = self.shared.lock().heartbeat(&req.agent_id, Instant::now());
        Ok(Response::new(pb::HeartbeatResponse { known }))
    }

    async fn update_status(
        &self,
        request: Request<pb::StatusUpdate>,
    ) -> Result<Response<pb::StatusUpdateAck>, Status> {
        let u = request.into_inner();
        let state = pb::ExecutorState::try_from(u.state)
            .map_err(|_| Status::invalid_argument(format!("unknown executor state {}", u.state)))?;
        self.shared.lock().update_executor(
            &u.framework_id,
            &u.executor_id,
            &u.agent_id,
            state,
            u.message,
        );
        Ok(Response::new(pb::StatusUpdateAck {}))
    }

    type SubscribeStream = UnboundedReceiverStream<Result<pb::Event, Status>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = request.into_inner();
        non_empty("framework name", &req.name)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = tx.clone();
        let existing = (!req.framework_id.is_empty()).then_some(req.framework_id);
        let (framework_id, connection) = self
            .shared
            .lock()
            .subscribe(req.name, req.user, existing, tx);
        self.shared.wake_allocator.notify_one();
        // Notice when the framework's stream goes away.
        let shared = self.shared.clone();
        tokio::spawn(async move {
            watcher.closed().await;
            let failover = shared.config.framework_failover_timeout;
            let actions = shared.lock().framework_disconnected(
                &framework_id,
                connection,
                failover,
                Instant::now(),
            );
            run_actions(&shared, actions);
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn accept(
        &self,
        request: Request<pb::AcceptRequest>,
    ) -> Result<Response<pb::AcceptResponse>, Status> {
        let actions = self
            .shared
            .lock()
            .accept(request.into_inner(), Instant::now())?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::AcceptResponse {}))
    }

    async fn decline(
        &self,
        request: Request<pb::DeclineRequest>,
    ) -> Result<Response<pb::DeclineResponse>, Status> {
        let req = request.into_inner();
        let refuse = if req.refuse_seconds.is_finite() && req.refuse_seconds > 0.0 {
            Duration::from_secs_f64(req.refuse_seconds.min(365.0 * 24.0 * 3600.0))
        } else {
            Duration::ZERO
        };
        self.shared
            .lock()
            .decline(&req.framework_id, &req.offer_ids, refuse, Instant::now())?;
        Ok(Response::new(pb::DeclineResponse {}))
    }

    async fn kill(
        &self,
        request: Request<pb::KillRequest>,
    ) -> Result<Response<pb::KillResponse>, Status> {
        let req = request.into_inner();
        let actions = self
            .shared
            .lock()
            .kill(&req.framework_id, &req.executor_id)?;
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::KillResponse {}))
    }

    async fn teardown(
        &self,
        request: Request<pb::TeardownRequest>,
    ) -> Result<Response<pb::TeardownResponse>, Status> {
        let req = request.into_inner();
        let actions = {
            let mut state = self.shared.lock();
            state.check_framework(&req.framework_id)?;
            state.remove_framework(&req.framework_id, "it tore itself down")
        };
        run_actions(&self.shared, actions);
        Ok(Response::new(pb::TeardownResponse {}))
    }

    async fn cluster_status(
        &self,
        _request: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        Ok(Response::new(self.shared.lock().cluster_status()))
    }
}
