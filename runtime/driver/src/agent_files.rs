//! The sandbox files services of agents that serve the copies of the session's map outputs
//! (see [`crate::map_outputs`]): once no RDD reads a shuffle, the copies its lost executors
//! left are removed there, as the live executors drop theirs.

use crate::map_outputs::ServedOutputs;
use std::sync::OnceLock;
use tessera_credentials::Credential;
use tessera_plan::ShuffleId;
use tessera_plan::map_output::served_path;
use tessera_wire::sandbox_files::RemoveRequest;

#[derive(Default)]
pub struct AgentFiles {
    /// The driver's credential, set when the driver starts.
    credential: OnceLock<Credential>,
}

impl AgentFiles {
    pub fn set_credential(&self, credential: Credential) {
        let _ = self.credential.set(credential);
    }

    /// Removes the copies of `shuffle`'s map outputs in `copies`. An agent that is gone took
    /// them with it; one that cannot be reached keeps them until its work directory is cleaned,
    /// which is logged.
    pub async fn remove(&self, shuffle: ShuffleId, copies: &ServedOutputs) {
        let Some(credential) = self.credential.get() else {
            return;
        };
        let request = RemoveRequest {
            executor_id: copies.executor_id.clone(),
            paths: copies
                .map_partitions
                .iter()
                .map(|&m| served_path(shuffle, m))
                .collect(),
        };
        let removed = async {
            let mut client = tessera_wire::connect_sandbox_files(&copies.agent_files, credential)
                .await
                .map_err(|e| tessera_credentials::describe_error(&e))?;
            client
                .remove(request)
                .await
                .map_err(|status| status.message().to_string())
        };
        if let Err(e) = removed.await {
            tracing::info!(
                shuffle,
                executor = %copies.executor_id,
                agent = %copies.agent_files,
                "the copies of a dropped shuffle's map outputs stay on the agent: {e}"
            );
        }
    }
}
