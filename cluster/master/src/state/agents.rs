//! Agents: registering, re-registering after a master failover or an agent restart (with the
//! executors they still run), heartbeats, and removal.

use super::*;

impl MasterState {
    /// Registers an agent — `(hostname, address, principal)` — that offers CPUs and memory only
    /// (see [`MasterState::register_agent_offering`]).
    pub fn register_agent(
        &mut self,
        agent: (String, String, String),
        total: Resources,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        let offering = AgentOffering::default();
        self.register_agent_offering(agent, total, offering, isolation, client, now)
    }

    /// Registers an agent — `(hostname, address, principal)` with `unreserved` CPUs and
    /// memory and `offering` besides — and returns its new id and heartbeat interval. An
    /// earlier registration of the same principal on the same host (it restarted before its
    /// timeout) is removed as lost first; an address held by another agent's principal is
    /// refused.
    pub fn register_agent_offering(
        &mut self,
        agent: (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        self.admit_agent(None, agent, unreserved, offering, isolation, client, now)
    }

    /// Registers an agent under `id`, or a new id.
    #[allow(clippy::too_many_arguments)] // An agent's registration, field by field.
    fn admit_agent(
        &mut self,
        id: Option<String>,
        (hostname, address, principal): (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        now: Instant,
    ) -> Result<(String, Duration), Status> {
        self.take_address(&address, &principal)?;
        if id.is_none() {
            // The same principal registering anew from the same host, on another port: that
            // agent restarted, and what it ran died with it (an agent that recovers its
            // executors registers again under its id instead).
            let restarted: Vec<String> = (self.agents.values())
                .filter(|a| {
                    a.principal == principal && a.hostname == hostname && a.address != address
                })
                .map(|a| a.id.clone())
                .collect();
            for id in restarted {
                self.remove_agent(
                    &id,
                    "its agent registered again as a new agent (it restarted)",
                );
            }
        }
        let id = id.unwrap_or_else(|| {
            self.next_agent += 1;
            format!("{}-S{}", self.run_id, self.next_agent - 1)
        });
        self.allocator.add_agent(&id, unreserved);
        let mut total = unreserved;
        for (role, reserved) in &offering.reserved {
            self.allocator
                .add_reserved(&pool_id(&id, Some(role)), role, *reserved);
            total = total.plus(reserved);
        }
        self.metrics.agents_registered += 1;
        tracing::info!(agent_id = %id, %address, %hostname, resources = %total, extras = %offering.extras, reserved = ?offering.reserved, "agent registered");
        self.agent_at.insert(address.clone(), id.clone());
        self.agents.insert(
            id.clone(),
            Agent {
                id: id.clone(),
                principal,
                hostname,
                address,
                total,
                free_extras: offering.extras.clone(),
                extras: offering.extras,
                attributes: offering.attributes,
                static_reserved: offering.reserved,
                dynamic_reserved: BTreeMap::new(),
                isolation,
                last_heartbeat: now,
                client,
                reachable: true,
            },
        );
        Ok((id, self.heartbeat_interval))
    }

    /// Refuses `address` if another principal's agent holds it; an earlier registration of
    /// the same principal there (it restarted before its timeout) is removed as lost.
    fn take_address(&mut self, address: &str, principal: &str) -> Result<(), Status> {
        if let Some(other) = self.agent_at.get(address).map(|id| &self.agents[id]) {
            if other.principal != principal {
                return Err(Status::permission_denied(format!(
                    "address {address} is registered to agent {} (id {}); agent {principal} cannot take it over — register with your own --advertise-address",
                    other.principal, other.id
                )));
            }
            let stale = other.id.clone();
            self.remove_agent(
                &stale,
                "a new agent registered at its address (it restarted)",
            );
        }
        Ok(())
    }

    /// Registers an agent again under the id an earlier master gave it, with the executors it
    /// still runs (Mesos' re-registration): after a master restart, the agent keeps its id,
    /// its executors are RUNNING again and held by their frameworks — frameworks this master
    /// does not know are made from what the agent kept of them, disconnected, their failover
    /// timeout running, so that they may subscribe again by id and keep their executors.
    ///
    /// An id this master declared lost (it reported those executors LOST) or one already
    /// registered by this agent (an answer that did not arrive) are treated as Mesos does: the
    /// first gets a new id — the agent must then kill what it runs — and the second is kept
    /// as it is. An empty `agent_id` is a first registration, as
    /// [`MasterState::register_agent_offering`].
    #[allow(clippy::too_many_arguments)] // An agent's registration, field by field.
    pub fn reregister_agent(
        &mut self,
        agent_id: String,
        agent: (String, String, String),
        unreserved: Resources,
        offering: AgentOffering,
        isolation: String,
        client: AgentClient<Channel>,
        executors: Vec<pb::RecoveredExecutor>,
        now: Instant,
    ) -> Result<(String, Duration, Vec<AgentAction>), Status> {
        let principal = &agent.2;
        if self.agents.contains_key(&agent_id) {
            self.check_agent(&agent_id, principal)?;
            self.heartbeat(&agent_id, principal, now)?;
            let actions = self.agent_restarted(&agent_id, agent, isolation, client, &executors)?;
            return Ok((agent_id, self.heartbeat_interval, actions));
        }
        let taken_back =
            !self.lost_agents.contains(&agent_id) && check_id("agent id", &agent_id).is_ok();
        if !taken_back && !agent_id.is_empty() {
            tracing::info!(%agent_id, "an agent this master cannot take back re-registers; it gets a new id");
        }
        let id = taken_back.then_some(agent_id);
        let (agent_id, interval) =
            self.admit_agent(id, agent, unreserved, offering, isolation, client, now)?;
        if !taken_back {
            return Ok((agent_id, interval, Vec::new()));
        }
        let mut removed = BTreeSet::new();
        for executor in executors {
            if let Some(framework_id) = self.recover_executor(&agent_id, executor, now) {
                removed.insert(framework_id);
            }
        }
        // Executors of frameworks this master removed: shut down, as Mesos does.
        let client = &self.agents[&agent_id].client;
        let actions = removed
            .into_iter()
            .map(|framework_id| AgentAction::ShutdownFramework {
                client: client.clone(),
                agent_id: agent_id.clone(),
                request: ShutdownFrameworkRequest { framework_id },
            })
            .collect();
        Ok((agent_id, interval, actions))
    }

    /// An agent this master knows registers again under its id: an answer that did not arrive,
    /// or the agent restarted within `--agent-timeout-ms` and recovered its executors from its
    /// checkpoint (Mesos' re-registration of a known agent). It may listen on another address
    /// now, and executors RUNNING here that it no longer reports (neither running nor ended
    /// with updates waiting) ended while it was down without a trace: they are LOST, as Mesos'
    /// master reconciles a re-registering agent's tasks. Executors still STARTING are left: their
    /// launch may be on its way to the agent. Executors it reports of frameworks this master
    /// removed meanwhile (the shutdown could not reach the agent while it was down) are shut
    /// down now: the returned actions.
    fn agent_restarted(
        &mut self,
        agent_id: &str,
        (hostname, address, principal): (String, String, String),
        isolation: String,
        client: AgentClient<Channel>,
        reported: &[pb::RecoveredExecutor],
    ) -> Result<Vec<AgentAction>, Status> {
        let old_address = self.agents[agent_id].address.clone();
        if old_address != address {
            if self.agent_at.get(&address).is_some_and(|id| id != agent_id) {
                self.take_address(&address, &principal)?;
            }
            tracing::info!(%agent_id, from = %old_address, to = %address, "agent registered again from another address");
            self.agent_at.remove(&old_address);
            self.agent_at.insert(address.clone(), agent_id.to_string());
        }
        let agent = self.agents.get_mut(agent_id).expect("checked known");
        agent.address = address;
        agent.hostname = hostname;
        agent.isolation = isolation;
        agent.client = client;
        let listed: BTreeSet<(&str, &str)> = (reported.iter())
            .filter_map(|e| Some((e.framework.as_ref()?.id.as_str(), e.executor_id.as_str())))
            .collect();
        let vanished: Vec<(String, String)> = (self.executors.iter())
            .filter(|(key, e)| {
                e.agent_id == agent_id
                    && e.state == pb::ExecutorState::Running
                    && !listed.contains(&(key.0.as_str(), key.1.as_str()))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for (framework_id, executor_id) in vanished {
            tracing::warn!(%agent_id, %framework_id, %executor_id, "a re-registering agent no longer runs an executor; it is LOST");
            self.update_executor(
                &framework_id,
                &executor_id,
                agent_id,
                pb::ExecutorState::Lost,
                format!(
                    "agent {agent_id} registered again (it restarted) without it: it ended while \
                     the agent was down"
                ),
            );
        }
        let removed: BTreeSet<&str> = (reported.iter())
            .filter(|e| pb::ExecutorState::try_from(e.state).is_ok_and(|s| !s.is_terminal()))
            .filter_map(|e| Some(e.framework.as_ref()?.id.as_str()))
            .filter(|id| self.removed_frameworks.iter().any(|r| r == id))
            .collect();
        let client = &self.agents[agent_id].client;
        Ok(removed
            .into_iter()
            .map(|framework_id| AgentAction::ShutdownFramework {
                client: client.clone(),
                agent_id: agent_id.to_string(),
                request: ShutdownFrameworkRequest {
                    framework_id: framework_id.to_string(),
                },
            })
            .collect())
    }

    /// Takes back an executor a re-registering agent runs; returns its framework's id if this
    /// master removed that framework (its executors are to be shut down).
    fn recover_executor(
        &mut self,
        agent_id: &str,
        executor: pb::RecoveredExecutor,
        now: Instant,
    ) -> Option<String> {
        let info = executor.framework?;
        let executor_id = executor.executor_id;
        if check_id("executor id", &executor_id).is_err()
            || check_id("framework id", &info.id).is_err()
        {
            return None;
        }
        if self.removed_frameworks.contains(&info.id) {
            return Some(info.id);
        }
        let (resources, extras) =
            tessera_cluster_proto::convert::split(executor.resources.as_ref());
        match self.frameworks.get(&info.id) {
            Some(fw) if fw.principal != info.principal => {
                tracing::warn!(framework_id = %info.id, %executor_id, %agent_id, "a re-registering agent runs an executor of a framework of another principal; not taken back");
                return None;
            }
            Some(_) => {}
            None => self.add_placeholder_framework(info.clone(), now),
        }
        // What the agent kept names no allocation role: the framework's first role.
        let allocation_role = self.frameworks[&info.id].roles[0].clone();
        let key = (info.id.clone(), executor_id.clone());
        if self
            .executors
            .get(&key)
            .is_some_and(|e| !e.state.is_terminal())
        {
            return None;
        }
        // Running, or ended with updates its framework has still to acknowledge.
        let state = pb::ExecutorState::try_from(executor.state)
            .ok()
            .filter(|s| s.is_terminal())
            .unwrap_or(pb::ExecutorState::Running);
        self.completed.retain(|k| k != &key);
        tracing::info!(framework_id = %info.id, %executor_id, %agent_id, %resources, ?state, "executor taken back from a re-registering agent");
        if state.is_terminal() {
            self.completed.push_back(key.clone());
        } else {
            // Taken back as unreserved: what the agent kept of it names no reservation.
            self.allocator
                .add_used(&info.id, &allocation_role, agent_id, resources);
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.free_extras = agent.free_extras.minus(&extras);
            }
        }
        self.executors.insert(
            key,
            Executor {
                framework_id: info.id,
                allocation_role,
                executor_id,
                agent_id: agent_id.to_string(),
                resources,
                state,
                message: "taken back after the master restarted".to_string(),
                usage: pb::ExecutorUsage::default(),
                reservation: None,
                extras,
            },
        );
        None
    }

    /// A framework known only from an agent's executors: disconnected until it subscribes
    /// again with its id, removed (its executors shut down) when its failover timeout passes.
    fn add_placeholder_framework(&mut self, info: pb::FrameworkInfo, now: Instant) {
        let named = if info.roles.is_empty() {
            std::slice::from_ref(&info.role)
        } else {
            &info.roles[..]
        };
        let mut roles: Vec<String> = (named.iter())
            .filter(|r| check_role(r).is_ok())
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            roles.push(tessera_allocator::DEFAULT_ROLE.to_string());
        }
        let failover_timeout =
            seconds_up_to_a_year("failover_timeout", info.failover_timeout_seconds)
                .unwrap_or(self.default_failover);
        tracing::info!(framework_id = %info.id, ?failover_timeout, "framework known from a re-registering agent; waiting for it to subscribe again");
        self.allocator.add_framework(&info.id, &as_strs(&roles));
        self.allocator.deactivate_framework(&info.id);
        self.frameworks.insert(
            info.id.clone(),
            Framework {
                id: info.id,
                principal: info.principal,
                name: info.name,
                user: info.user,
                roles,
                suppressed_roles: BTreeSet::new(),
                events: None,
                connection: 0,
                disconnected_at: Some(now),
                failover_timeout,
                capabilities: info.capabilities,
                unacknowledged: VecDeque::new(),
            },
        );
    }

    /// Fails unless `agent_id` is registered and belongs to `principal`.
    pub fn check_agent(&self, agent_id: &str, principal: &str) -> Result<(), Status> {
        match self.agents.get(agent_id) {
            Some(agent) if agent.principal == principal => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "agent id {agent_id} belongs to another agent; agent {principal} may only speak for its own registration"
            ))),
            None => Err(Status::not_found(format!(
                "agent id {agent_id:?} is not registered with this master; register again"
            ))),
        }
    }

    /// Records a heartbeat; false if the agent is unknown (lost or from a
    /// previous master run) and must register again.
    pub fn heartbeat(
        &mut self,
        agent_id: &str,
        principal: &str,
        now: Instant,
    ) -> Result<bool, Status> {
        if self.agents.contains_key(agent_id) {
            self.check_agent(agent_id, principal)?;
        }
        Ok(match self.agents.get_mut(agent_id) {
            Some(agent) => {
                agent.last_heartbeat = now;
                if !agent.reachable {
                    agent.reachable = true;
                    tracing::info!(%agent_id, "the agent is heard from again; offering its resources");
                    self.set_agent_offered(agent_id, true);
                }
                true
            }
            None => {
                if self.lost_agents.contains(agent_id) {
                    tracing::info!(%agent_id, "heartbeat from an agent declared lost; telling it to register again");
                }
                false
            }
        })
    }

    /// A call to the agent could not connect (`why`): its resources, reserved or not, are not
    /// offered until it heartbeats again (Mesos deactivates an agent whose connection broke).
    /// Its executors stay: it may only be cut off for a moment; the agent timeout decides.
    pub fn agent_unreachable(&mut self, agent_id: &str, why: &str) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if !agent.reachable {
            return;
        }
        agent.reachable = false;
        tracing::warn!(%agent_id, address = %agent.address, %why, "the agent cannot be reached; offering none of its resources until it heartbeats again");
        self.set_agent_offered(agent_id, false);
    }

    /// Offers `agent_id`'s resources and its reserved pools', or stops offering them.
    fn set_agent_offered(&mut self, agent_id: &str, offered: bool) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let roles = agent
            .static_reserved
            .keys()
            .chain(agent.dynamic_reserved.keys());
        let pools: Vec<String> = std::iter::once(agent_id.to_string())
            .chain(roles.map(|role| pool_id(agent_id, Some(role))))
            .collect();
        for pool in pools {
            if offered {
                self.allocator.activate_agent(&pool);
            } else {
                self.allocator.deactivate_agent(&pool);
            }
        }
    }

    /// Keeps what an agent's running executors use, as its heartbeat reports it; reports on
    /// executors it does not run are ignored.
    pub fn record_usage(&mut self, agent_id: &str, usage: Vec<pb::ExecutorUsage>) {
        for u in usage {
            let key = (u.framework_id.clone(), u.executor_id.clone());
            if let Some(e) = self.executors.get_mut(&key)
                && e.agent_id == agent_id
                && !e.state.is_terminal()
            {
                e.usage = u;
            }
        }
    }

    /// Removes an agent: its offers are rescinded, its executors reported
    /// LOST, its resources leave the pool.
    pub fn remove_agent(&mut self, agent_id: &str, reason: &str) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        tracing::warn!(%agent_id, address = %agent.address, %reason, "agent removed");
        let failure = pb::Failure {
            agent_id: agent_id.to_string(),
            executor_id: String::new(),
            status: None,
        };
        for id in self.frameworks.keys() {
            self.send(id, event(pb::event::Event::Failure(failure.clone())));
        }
        self.agent_at.remove(&agent.address);
        self.metrics.agents_lost += 1;
        self.lost_agents.insert(agent_id.to_string());
        self.allocator.remove_agent(agent_id);
        let roles = agent
            .static_reserved
            .keys()
            .chain(agent.dynamic_reserved.keys());
        for role in roles {
            self.allocator.remove_agent(&pool_id(agent_id, Some(role)));
        }
        for offer in self.take_offers(|o| o.agent_id == agent_id) {
            self.metrics.offers_rescinded += 1;
            self.send(
                &offer.framework_id,
                event(pb::event::Event::Rescind(pb::Rescind {
                    offer_id: offer.id,
                })),
            );
        }
        let lost: Vec<(String, String)> = self
            .executors
            .iter()
            .filter(|(_, e)| e.agent_id == agent_id && !e.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        let message = format!("agent {agent_id} at {} was lost: {reason}", agent.address);
        for (framework_id, executor_id) in lost {
            // The agent is gone from the allocator already; recovering is a no-op.
            self.update_executor(
                &framework_id,
                &executor_id,
                agent_id,
                pb::ExecutorState::Lost,
                message.clone(),
            );
        }
    }

    /// Agents whose last heartbeat is older than `timeout`.
    pub fn timed_out_agents(&self, now: Instant, timeout: Duration) -> Vec<(String, Duration)> {
        self.agents
            .values()
            .filter_map(|a| {
                let silent = now.saturating_duration_since(a.last_heartbeat);
                (silent > timeout).then(|| (a.id.clone(), silent))
            })
            .collect()
    }
}
