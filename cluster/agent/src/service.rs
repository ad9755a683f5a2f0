//! The agent's gRPC service (`tessera.agent.Agent`), called by the master to
//! launch and kill executors and to pass on frameworks' acknowledgements of status
//! updates.

use std::sync::Arc;

use tessera_cluster_proto::agent as pb;
use tessera_cluster_proto::agent::agent_server::Agent;
use tessera_credentials::{Principal, caller};
use tonic::{Request, Response, Status};

use crate::executors::{Executors, LaunchError, LaunchSpec, MessageError};
use crate::master_link::Registration;
use crate::sandbox_files::SandboxFileServers;
use crate::status_updates::PendingUpdates;

pub(crate) struct AgentService {
    executors: Arc<Executors>,
    registration: Arc<Registration>,
    pending: Arc<PendingUpdates>,
    files: Arc<SandboxFileServers>,
}

impl AgentService {
    pub(crate) fn new(
        executors: Arc<Executors>,
        registration: Arc<Registration>,
        pending: Arc<PendingUpdates>,
        files: Arc<SandboxFileServers>,
    ) -> Self {
        AgentService {
            executors,
            registration,
            pending,
            files,
        }
    }
}

/// Refuses every caller but the master: an agent runs what the master says, and nothing else.
fn require_master<T>(request: &Request<T>, call: &str) -> Result<(), Status> {
    match caller(request)? {
        Principal::Master => Ok(()),
        other => Err(Status::permission_denied(format!(
            "{call} is for the master only, and the caller's certificate names {other}; launch \
             executors by accepting offers through the master"
        ))),
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn launch_executor(
        &self,
        request: Request<pb::LaunchExecutorRequest>,
    ) -> Result<Response<pb::LaunchExecutorResponse>, Status> {
        require_master(&request, "LaunchExecutor")?;
        let req = request.into_inner();
        let agent_id = self.registration.current().ok_or_else(|| {
            Status::unavailable("this agent is not registered with the master right now")
        })?;
        let resources = req.resources.unwrap_or_default();
        let files_address = match req.files_credential.as_str() {
            "" => None,
            bundle => Some(
                self.files
                    .serve(&req.framework_id, bundle)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            ),
        };
        let spec = LaunchSpec {
            agent_id,
            framework_id: req.framework_id,
            executor_id: req.executor_id,
            command: req.command,
            cpus: resources.cpus,
            mem_mb: resources.mem_mb,
            ports: resources.extras().ports.to_string(),
            framework: req.framework,
            files_address,
        };
        self.executors.launch(spec).map_err(|e| match e {
            LaunchError::AlreadyRunning { .. } => Status::already_exists(e.to_string()),
            LaunchError::Sandbox { .. } => Status::internal(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        })?;
        Ok(Response::new(pb::LaunchExecutorResponse {}))
    }

    async fn kill_executor(
        &self,
        request: Request<pb::KillExecutorRequest>,
    ) -> Result<Response<pb::KillExecutorResponse>, Status> {
        require_master(&request, "KillExecutor")?;
        let req = request.into_inner();
        let (fid, eid) = (&req.framework_id, &req.executor_id);
        let running = if req.graceful {
            self.executors
                .kill(fid, eid, "shut down at the framework's request")
        } else {
            self.executors
                .kill_now(fid, eid, "killed at the framework's request")
        };
        if !running {
            tracing::debug!(framework_id = %req.framework_id, executor_id = %req.executor_id, "kill of an executor not running here");
        }
        Ok(Response::new(pb::KillExecutorResponse {}))
    }

    async fn deliver_message(
        &self,
        request: Request<pb::DeliverMessageRequest>,
    ) -> Result<Response<pb::DeliverMessageResponse>, Status> {
        require_master(&request, "DeliverMessage")?;
        let req = request.into_inner();
        let path = self
            .executors
            .deliver_message(&req.framework_id, &req.executor_id, &req.data)
            .map_err(|e| match e {
                MessageError::NotRunning { .. } => Status::failed_precondition(e.to_string()),
                MessageError::Write { .. } => Status::internal(e.to_string()),
            })?;
        tracing::debug!(executor_id = %req.executor_id, path = %path.display(), "message delivered");
        Ok(Response::new(pb::DeliverMessageResponse {}))
    }

    async fn acknowledge_status_update(
        &self,
        request: Request<pb::AcknowledgeStatusUpdateRequest>,
    ) -> Result<Response<pb::AcknowledgeStatusUpdateResponse>, Status> {
        require_master(&request, "AcknowledgeStatusUpdate")?;
        let req = request.into_inner();
        if self
            .pending
            .acknowledge(&(req.framework_id, req.executor_id), &req.uuid)
        {
            self.executors.save_checkpoint();
        }
        Ok(Response::new(pb::AcknowledgeStatusUpdateResponse {}))
    }

    async fn shutdown_framework(
        &self,
        request: Request<pb::ShutdownFrameworkRequest>,
    ) -> Result<Response<pb::ShutdownFrameworkResponse>, Status> {
        require_master(&request, "ShutdownFramework")?;
        let req = request.into_inner();
        let n = self.executors.kill_framework(
            &req.framework_id,
            "the framework was removed from the master (torn down or disconnected)",
        );
        self.files.stop(&req.framework_id);
        tracing::info!(framework_id = %req.framework_id, killed = n, "framework shut down");
        Ok(Response::new(pb::ShutdownFrameworkResponse {}))
    }
}
