//! Frameworks: subscribing and subscribing again, disconnection and failover timeouts,
//! removal, and the roles in which they suppress or revive offers.

use super::*;

impl MasterState {
    /// Subscribes a framework (new, or re-subscribing with its id) with the master's default
    /// failover timeout and no capabilities; see [`MasterState::subscribe_framework`].
    pub fn subscribe(
        &mut self,
        name: String,
        user: String,
        role: String,
        principal: String,
        framework_id: Option<String>,
        events: EventSender,
    ) -> Result<(String, u64), Status> {
        let subscription = Subscription {
            name,
            user,
            role,
            framework_id,
            ..Subscription::default()
        };
        self.subscribe_framework(subscription, principal, events)
    }

    /// Subscribes a framework (new, or re-subscribing with its id: its name, user, failover
    /// timeout and capabilities are updated, as Mesos updates FrameworkInfo) and sends it
    /// `Registered`. An id this master does not know is taken (a framework of a previous
    /// master run, before its agents re-registered).
    pub fn subscribe_framework(
        &mut self,
        subscription: Subscription,
        principal: String,
        events: EventSender,
    ) -> Result<(String, u64), Status> {
        let Subscription {
            name,
            user,
            role,
            roles,
            framework_id,
            failover_timeout,
            capabilities,
        } = subscription;
        check_capabilities(&capabilities)?;
        let failover_timeout = failover_timeout.unwrap_or(self.default_failover);
        let roles = roles::subscription_roles(&role, &roles, &capabilities)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        for role in &roles {
            check_role(role)?;
        }
        if let Some(id) = &framework_id {
            check_id("framework id", id)?;
            if self.removed_frameworks.contains(id) {
                return Err(Status::failed_precondition(format!(
                    "framework {id} was removed (torn down, or not back within its failover \
                     timeout) and its executors shut down; subscribe without a framework id"
                )));
            }
            if let Some(fw) = self.frameworks.get(id) {
                if fw.principal != principal {
                    return Err(Status::permission_denied(format!(
                        "framework {id} belongs to another principal; principal {principal} cannot subscribe as it — subscribe without a framework id to get one of your own"
                    )));
                }
                if fw.roles != roles {
                    return Err(Status::invalid_argument(format!(
                        "framework {id} is in roles {:?}; subscribe again in those roles (a framework cannot change its roles)",
                        fw.roles
                    )));
                }
            }
        }
        let id = match framework_id {
            Some(id) => id,
            None => {
                let id = format!("{}-F{}", self.run_id, self.next_framework);
                self.next_framework += 1;
                id
            }
        };
        match self.frameworks.get_mut(&id) {
            Some(fw) => {
                if let Some(old) = fw.events.take() {
                    let _ = old.send(Ok(event(pb::event::Event::Error(pb::Error {
                        message: format!(
                            "framework {id} subscribed again from another connection; this stream is closed"
                        ),
                    }))));
                }
                fw.events = Some(events);
                fw.connection += 1;
                fw.disconnected_at = None;
                fw.name = name;
                fw.user = user;
                fw.failover_timeout = failover_timeout;
                fw.capabilities = capabilities;
                self.allocator.activate_framework(&id);
                tracing::info!(framework_id = %id, "framework re-subscribed");
            }
            None => {
                tracing::info!(framework_id = %id, %name, %user, "framework subscribed");
                self.metrics.frameworks_subscribed += 1;
                self.allocator.add_framework(&id, &as_strs(&roles));
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        principal,
                        name,
                        user,
                        roles,
                        suppressed_roles: BTreeSet::new(),
                        events: Some(events),
                        connection: 0,
                        disconnected_at: None,
                        failover_timeout,
                        capabilities,
                        unacknowledged: VecDeque::new(),
                    },
                );
            }
        }
        let connection = self.frameworks[&id].connection;
        self.send(
            &id,
            event(pb::event::Event::Registered(pb::Registered {
                framework_id: id.clone(),
                heartbeat_interval_seconds: self.framework_heartbeat_interval.as_secs_f64(),
                failover_timeout_seconds: failover_timeout.as_secs_f64(),
            })),
        );
        // What it has not acknowledged, again (e.g. its executors' ends while it was away).
        let again: Vec<pb::StatusUpdate> = self.frameworks[&id]
            .unacknowledged
            .iter()
            .cloned()
            .collect();
        for update in again {
            self.send(&id, event(pb::event::Event::StatusUpdate(update)));
        }
        Ok((id, connection))
    }

    /// The subscription stream `connection` of the framework closed. Its
    /// offers are rescinded and it gets no more until it subscribes again;
    /// with a zero failover timeout it is removed at once.
    pub fn framework_disconnected(
        &mut self,
        framework_id: &str,
        connection: u64,
        now: Instant,
    ) -> Vec<AgentAction> {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return Vec::new();
        };
        if fw.connection != connection || fw.events.is_none() {
            return Vec::new();
        }
        fw.events = None;
        fw.disconnected_at = Some(now);
        let failover_timeout = fw.failover_timeout;
        self.allocator.deactivate_framework(framework_id);
        self.rescind_offers_of(framework_id);
        if failover_timeout.is_zero() {
            self.remove_framework(framework_id, "its subscription stream closed")
        } else {
            tracing::info!(%framework_id, ?failover_timeout, "framework disconnected; waiting for it to subscribe again");
            Vec::new()
        }
    }

    /// Frameworks disconnected for longer than their failover timeout.
    pub fn expired_frameworks(&self, now: Instant) -> Vec<String> {
        self.frameworks
            .values()
            .filter(|f| {
                f.disconnected_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= f.failover_timeout)
            })
            .map(|f| f.id.clone())
            .collect()
    }

    /// Removes a framework: agents are told to kill its executors, its
    /// resources are recovered, its stream (if any) is closed with an error.
    pub fn remove_framework(&mut self, framework_id: &str, reason: &str) -> Vec<AgentAction> {
        let Some(mut fw) = self.frameworks.remove(framework_id) else {
            return Vec::new();
        };
        tracing::info!(%framework_id, name = %fw.name, %reason, "framework removed");
        self.metrics.frameworks_removed += 1;
        self.removed_frameworks.push_back(framework_id.to_string());
        if self.removed_frameworks.len() > MAX_REMOVED_FRAMEWORKS {
            self.removed_frameworks.pop_front();
        }
        if let Some(events) = fw.events.take() {
            let _ = events.send(Ok(event(pb::event::Event::Error(pb::Error {
                message: format!("framework {framework_id} was removed: {reason}"),
            }))));
        }
        self.offers.retain(|_, o| o.framework_id != framework_id);
        self.allocator.remove_framework(framework_id);
        let agents: BTreeSet<String> = self
            .executors
            .values()
            .filter(|e| e.framework_id == framework_id && !e.state.is_terminal())
            .map(|e| e.agent_id.clone())
            .collect();
        agents
            .into_iter()
            .filter_map(|agent_id| {
                let agent = self.agents.get(&agent_id)?;
                Some(AgentAction::ShutdownFramework {
                    client: agent.client.clone(),
                    agent_id,
                    request: ShutdownFrameworkRequest {
                        framework_id: framework_id.to_string(),
                    },
                })
            })
            .collect()
    }

    pub(super) fn send(&self, framework_id: &str, e: pb::Event) {
        if let Some(tx) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.events.as_ref())
        {
            let _ = tx.send(Ok(e));
        }
    }

    /// Fails with a status naming the problem unless the framework is
    /// subscribed and bound to `principal`.
    pub fn check_framework(&self, framework_id: &str, principal: &str) -> Result<(), Status> {
        match self.frameworks.get(framework_id) {
            Some(fw) if fw.principal == principal => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "framework {framework_id} is not yours: it belongs to another principal than \
                 {principal}"
            ))),
            None => Err(Status::not_found(format!(
                "framework {framework_id:?} is not registered with this master (it was torn down, \
                 timed out, or the master restarted); subscribe again"
            ))),
        }
    }

    /// Sends a Heartbeat to every connected framework.
    pub fn heartbeat_frameworks(&self) {
        for id in self.frameworks.keys() {
            self.send(id, event(pb::event::Event::Heartbeat(pb::Heartbeat {})));
        }
    }

    /// The framework wants no offers in `roles` (empty: all its roles) until it revives
    /// them (Mesos' SUPPRESS); offers it holds stay.
    pub fn suppress(
        &mut self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<(), Status> {
        let named = self.roles_named(framework_id, principal, roles)?;
        self.allocator
            .suppress_offers(framework_id, &as_strs(&named));
        let fw = self.frameworks.get_mut(framework_id).expect("checked");
        fw.suppressed_roles.extend(named);
        Ok(())
    }

    /// The framework wants offers again in `roles` (empty: all its roles), on every agent
    /// (Mesos' REVIVE: its decline filters are dropped).
    pub fn revive(
        &mut self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<(), Status> {
        let named = self.roles_named(framework_id, principal, roles)?;
        self.allocator.revive_offers(framework_id, &as_strs(&named));
        let fw = self.frameworks.get_mut(framework_id).expect("checked");
        fw.suppressed_roles.retain(|r| !named.contains(r));
        Ok(())
    }

    /// The framework's roles that `roles` names (empty: all of them), once the framework is
    /// checked; a role it is not in is refused.
    fn roles_named(
        &self,
        framework_id: &str,
        principal: &str,
        roles: &[String],
    ) -> Result<Vec<String>, Status> {
        self.check_framework(framework_id, principal)?;
        let fw = &self.frameworks[framework_id];
        if roles.is_empty() {
            return Ok(fw.roles.clone());
        }
        match roles.iter().find(|r| !fw.roles.contains(r)) {
            Some(r) => Err(Status::invalid_argument(format!(
                "framework {framework_id} is not in role {r:?}; name only its roles {:?} (or                  none, for all of them)",
                fw.roles
            ))),
            None => Ok(roles.to_vec()),
        }
    }
}
