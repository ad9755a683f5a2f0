//! Executors: kill and shutdown requests, messages between frameworks and their executors,
//! status updates and their acknowledgements, and reconciliation.

use super::*;

/// The exit status a Failure event reports for this update: an executor's process that ended
/// FAILED with a non-zero status, or by a signal (128 + the signal).
fn failure_status(update: &pb::StatusUpdate) -> Option<i32> {
    let failed = update.state == pb::ExecutorState::Failed as i32;
    update.exit_code.filter(|&code| failed && code != 0)
}

impl MasterState {
    /// Asks the executor's agent to kill it at once (SIGKILL).
    pub fn kill(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Vec<AgentAction>, Status> {
        self.stop_executor(framework_id, principal, executor_id, false)
    }

    /// Asks the executor's agent to shut it down gracefully (Mesos' SHUTDOWN): SIGTERM, then
    /// SIGKILL after the agent's grace period.
    pub fn shutdown_executor(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Vec<AgentAction>, Status> {
        self.stop_executor(framework_id, principal, executor_id, true)
    }

    fn stop_executor(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
        graceful: bool,
    ) -> Result<Vec<AgentAction>, Status> {
        let Some(agent) = self.running_agent(framework_id, principal, executor_id)? else {
            return Ok(Vec::new());
        };
        Ok(vec![AgentAction::Kill {
            client: agent.client.clone(),
            agent_id: agent.id.clone(),
            request: KillExecutorRequest {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
                graceful,
            },
        }])
    }

    /// The agent that runs the framework's executor: `None` if it ended or its agent is gone;
    /// an error if the caller is not the framework's principal or the executor is unknown.
    fn running_agent(
        &self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
    ) -> Result<Option<&Agent>, Status> {
        self.check_framework(framework_id, principal)?;
        let key = (framework_id.to_string(), executor_id.to_string());
        let executor = self.executors.get(&key).ok_or_else(|| {
            Status::not_found(format!(
                "framework {framework_id} has no executor {executor_id:?} here (it never ran, or \
                 ended before this master was elected); `reconcile` lists those it knows"
            ))
        })?;
        if executor.state.is_terminal() {
            return Ok(None);
        }
        Ok(self.agents.get(&executor.agent_id))
    }

    /// Sends bytes to a running executor of the framework through its agent (Mesos' MESSAGE).
    pub fn message(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_id: &str,
        data: Vec<u8>,
    ) -> Result<Vec<AgentAction>, Status> {
        let agent = self
            .running_agent(framework_id, principal, executor_id)?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "executor {executor_id} of framework {framework_id} does not run (it ended, or \
                     its agent is gone); send messages to running executors"
                ))
            })?;
        Ok(vec![AgentAction::Message {
            client: agent.client.clone(),
            agent_id: agent.id.clone(),
            request: DeliverMessageRequest {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
                data,
            },
        }])
    }

    /// What Reconcile answers (Mesos' reconciliation): for each executor id asked, its latest
    /// state as this master knows it, or LOST for one it does not know; with no id, the
    /// latest state of every executor of the framework that has not ended. Each carries reason
    /// RECONCILIATION.
    pub fn reconciliation(
        &self,
        framework_id: &str,
        executor_ids: &[String],
    ) -> Vec<pb::StatusUpdate> {
        let known = |e: &Executor| pb::StatusUpdate {
            agent_id: e.agent_id.clone(),
            framework_id: e.framework_id.clone(),
            executor_id: e.executor_id.clone(),
            state: e.state as i32,
            message: e.message.clone(),
            exit_code: None,
            reason: pb::ExecutorReason::Reconciliation as i32,
            // Neither kept nor acknowledged: asked again, it is answered again (as in Mesos).
            uuid: String::new(),
            latest_state: e.state as i32,
        };
        if executor_ids.is_empty() {
            return self
                .executors
                .values()
                .filter(|e| e.framework_id == framework_id && !e.state.is_terminal())
                .map(known)
                .collect();
        }
        executor_ids
            .iter()
            .map(
                |id| match self.executors.get(&(framework_id.to_string(), id.clone())) {
                    Some(e) => known(e),
                    None => pb::StatusUpdate {
                        agent_id: String::new(),
                        framework_id: framework_id.to_string(),
                        executor_id: id.clone(),
                        state: pb::ExecutorState::Lost as i32,
                        message: format!("executor {id} is unknown to the master"),
                        exit_code: None,
                        reason: pb::ExecutorReason::Reconciliation as i32,
                        uuid: String::new(),
                        latest_state: pb::ExecutorState::Lost as i32,
                    },
                },
            )
            .collect()
    }

    /// Sends the framework the [`MasterState::reconciliation`] of `executor_ids` as status
    /// update events.
    pub fn reconcile(
        &mut self,
        framework_id: &str,
        principal: &str,
        executor_ids: &[String],
    ) -> Result<(), Status> {
        self.check_framework(framework_id, principal)?;
        for id in executor_ids {
            check_id("executor id", id)?;
        }
        for update in self.reconciliation(framework_id, executor_ids) {
            self.send(framework_id, event(pb::event::Event::StatusUpdate(update)));
        }
        Ok(())
    }

    /// Forwards a message an executor sent its framework, from the agent holding `principal`:
    /// it must be the agent that runs the executor, still running. Dropped, as Mesos drops
    /// it, when the framework is away.
    pub fn executor_message(
        &mut self,
        principal: &str,
        message: pb::ExecutorMessage,
    ) -> Result<(), Status> {
        self.check_agent(&message.agent_id, principal)?;
        let key = (message.framework_id.clone(), message.executor_id.clone());
        match self.executors.get(&key) {
            Some(e) if e.agent_id == message.agent_id && !e.state.is_terminal() => {}
            _ => {
                return Err(Status::permission_denied(format!(
                    "agent {principal} runs no executor {:?} of framework {:?}; only the agent \
                     that runs an executor sends its messages",
                    message.executor_id, message.framework_id
                )));
            }
        }
        let framework_id = message.framework_id.clone();
        self.send(&framework_id, event(pb::event::Event::Message(message)));
        Ok(())
    }

    /// Applies a status update that the agent holding `principal` sent: it
    /// must be the agent `agent_id`, and that agent must run the executor.
    ///
    /// Updates of a framework this master no longer has (it was removed) are acknowledged on
    /// its behalf — no one else will — and the returned action tells the agent so.
    pub fn agent_update(
        &mut self,
        principal: &str,
        update: pb::StatusUpdate,
    ) -> Result<Vec<AgentAction>, Status> {
        let state = pb::ExecutorState::try_from(update.state)
            .ok()
            .filter(|s| *s != pb::ExecutorState::Unspecified)
            .ok_or_else(|| {
                Status::invalid_argument(format!("unknown executor state {}", update.state))
            })?;
        self.check_agent(&update.agent_id, principal)?;
        let key = (update.framework_id.clone(), update.executor_id.clone());
        match self.executors.get(&key) {
            Some(e) if e.agent_id == update.agent_id => {}
            _ => {
                return Err(Status::permission_denied(format!(
                    "agent {principal} does not run executor {:?} of framework {:?}; only the \
                     agent that runs an executor reports its state",
                    update.executor_id, update.framework_id
                )));
            }
        }
        let orphan = !self.frameworks.contains_key(&update.framework_id);
        let ack = pb::AcknowledgeRequest {
            framework_id: update.framework_id.clone(),
            agent_id: update.agent_id.clone(),
            executor_id: update.executor_id.clone(),
            uuid: update.uuid.clone(),
        };
        self.apply_update(update, state);
        Ok(if orphan {
            self.acknowledge_to_agent(ack)
        } else {
            Vec::new()
        })
    }

    /// The framework acknowledges a status update (Mesos' ACKNOWLEDGE): it is not sent to it
    /// again, and its agent is told, so that it stops sending it and sends the executor's next.
    pub fn acknowledge(
        &mut self,
        principal: &str,
        ack: pb::AcknowledgeRequest,
    ) -> Result<Vec<AgentAction>, Status> {
        self.check_framework(&ack.framework_id, principal)?;
        check_id("executor id", &ack.executor_id)?;
        if let Some(fw) = self.frameworks.get_mut(&ack.framework_id) {
            fw.unacknowledged.retain(|u| u.uuid != ack.uuid);
        }
        Ok(self.acknowledge_to_agent(ack))
    }

    /// Tells the agent of an acknowledged update (if it is registered and runs, or ran, the
    /// executor).
    fn acknowledge_to_agent(&self, ack: pb::AcknowledgeRequest) -> Vec<AgentAction> {
        let key = (ack.framework_id.clone(), ack.executor_id.clone());
        let ran_there = self
            .executors
            .get(&key)
            .is_some_and(|e| e.agent_id == ack.agent_id);
        match self.agents.get(&ack.agent_id) {
            Some(agent) if ran_there && !ack.uuid.is_empty() => vec![AgentAction::Acknowledge {
                client: agent.client.clone(),
                agent_id: agent.id.clone(),
                request: AcknowledgeStatusUpdateRequest {
                    framework_id: ack.framework_id,
                    executor_id: ack.executor_id,
                    uuid: ack.uuid,
                },
            }],
            _ => Vec::new(),
        }
    }

    /// Applies an executor state change decided by the master (no exit code, no reason).
    pub fn update_executor(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        agent_id: &str,
        state: pb::ExecutorState,
        message: String,
    ) {
        // An executor that ended already: a late decision of the master's changes nothing.
        let key = (framework_id.to_string(), executor_id.to_string());
        if self
            .executors
            .get(&key)
            .is_none_or(|e| e.state.is_terminal())
        {
            return;
        }
        let update = pb::StatusUpdate {
            agent_id: agent_id.to_string(),
            framework_id: framework_id.to_string(),
            executor_id: executor_id.to_string(),
            state: state as i32,
            message,
            exit_code: None,
            reason: pb::ExecutorReason::Unspecified as i32,
            uuid: tessera_credentials::random_uuid(),
            latest_state: state as i32,
        };
        self.apply_update(update, state);
    }

    /// Applies an executor state change reported by its agent (or decided by the master) and
    /// forwards the update to the framework, which keeps it until acknowledged. The
    /// bookkeeping follows the update's `latest_state` (the agent's newest, which may be past
    /// an update that waited for an earlier one's acknowledgement): an executor's resources
    /// are recovered when it ends. The same update sent again (an agent retrying) is
    /// forwarded again, changing nothing.
    fn apply_update(&mut self, update: pb::StatusUpdate, state: pb::ExecutorState) {
        let latest = pb::ExecutorState::try_from(update.latest_state)
            .ok()
            .filter(|s| *s != pb::ExecutorState::Unspecified)
            .unwrap_or(state);
        let (framework_id, executor_id, agent_id) = (
            update.framework_id.as_str(),
            update.executor_id.as_str(),
            update.agent_id.as_str(),
        );
        let key = (framework_id.to_string(), executor_id.to_string());
        let Some(executor) = self.executors.get_mut(&key) else {
            tracing::debug!(%framework_id, %executor_id, ?state, "status update for an unknown executor ignored");
            return;
        };
        if executor.agent_id != agent_id {
            tracing::debug!(%framework_id, %executor_id, ?state, "status update from another agent ignored");
            return;
        }
        if !executor.state.is_terminal() && executor.state != latest {
            let message = &update.message;
            tracing::info!(%framework_id, %executor_id, %agent_id, ?state, ?latest, %message, "executor status");
            executor.state = latest;
            if latest == state {
                executor.message = message.clone();
            }
            let resources = executor.resources;
            if latest.is_terminal() {
                executor.usage = pb::ExecutorUsage::default();
                let pool = pool_id(agent_id, executor.reservation.as_deref());
                let extras = std::mem::take(&mut executor.extras);
                self.metrics.executor_ended(latest);
                let role = executor.allocation_role.clone();
                self.allocator
                    .recover_resources(framework_id, &role, &pool, resources, None);
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.free_extras = agent.free_extras.plus(&extras);
                }
                self.completed.push_back(key);
                while self.completed.len() > MAX_COMPLETED_EXECUTORS {
                    if let Some(old) = self.completed.pop_front() {
                        self.executors.remove(&old);
                    }
                }
            }
        }
        self.forward(pb::StatusUpdate {
            state: state as i32,
            ..update
        });
    }

    /// Sends a status update to its framework, keeping it until acknowledged. The first time an
    /// executor's end with a non-zero status comes, a Failure event goes with it (Mesos'
    /// FAILURE for an executor).
    fn forward(&mut self, update: pb::StatusUpdate) {
        let framework_id = update.framework_id.clone();
        if let Some(fw) = self.frameworks.get_mut(&framework_id)
            && !update.uuid.is_empty()
            && !fw.unacknowledged.iter().any(|u| u.uuid == update.uuid)
        {
            fw.unacknowledged.push_back(update.clone());
            if fw.unacknowledged.len() > MAX_UNACKNOWLEDGED {
                fw.unacknowledged.pop_front();
            }
            if let Some(status) = failure_status(&update) {
                let failure = pb::Failure {
                    agent_id: update.agent_id.clone(),
                    executor_id: update.executor_id.clone(),
                    status: Some(status),
                };
                self.send(&framework_id, event(pb::event::Event::Failure(failure)));
            }
        }
        self.send(&framework_id, event(pb::event::Event::StatusUpdate(update)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_a_failed_end_with_a_non_zero_status() {
        let end = |state: pb::ExecutorState, exit_code| pb::StatusUpdate {
            state: state as i32,
            exit_code,
            ..Default::default()
        };
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Failed, Some(3))),
            Some(3)
        );
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Failed, Some(0))),
            None
        );
        assert_eq!(failure_status(&end(pb::ExecutorState::Failed, None)), None);
        assert_eq!(
            failure_status(&end(pb::ExecutorState::Killed, Some(137))),
            None
        );
    }
}
