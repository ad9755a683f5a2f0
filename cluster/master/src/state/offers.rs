//! Offers: running the allocator and sending what it decides, rescinding, declining and
//! accepting (launches and reservations), and reclaiming revocable resources.

use super::*;

/// The agent and reservation of an allocator pool (agent ids the master makes hold no `(`).
fn split_pool(pool: &str) -> (&str, Option<&str>) {
    match pool.split_once('(') {
        Some((agent, role)) => (agent, Some(role.strip_suffix(')').unwrap_or(role))),
        None => (pool, None),
    }
}

/// An offer as its framework sees it: with its agent's host name and attributes.
fn offer_to_pb(offer: &Offer, agent: &Agent) -> pb::Offer {
    pb::Offer {
        id: offer.id.clone(),
        framework_id: offer.framework_id.clone(),
        agent_id: offer.agent_id.clone(),
        hostname: agent.hostname.clone(),
        resources: Some(pb::Resources::of(&offer.resources, &offer.extras)),
        reservation_role: offer.reservation.clone().unwrap_or_default(),
        attributes: agent.attributes.iter().map(pb::Attribute::from).collect(),
        allocation_role: offer.allocation_role.clone(),
    }
}

/// An accept's launches, wherever it names them: in `operations`, then in `launches`.
fn operations_launches(request: pb::AcceptRequest) -> impl Iterator<Item = pb::ExecutorLaunch> {
    let ops = request
        .operations
        .into_iter()
        .filter_map(|o| match o.operation {
            Some(pb::operation::Operation::Launch(l)) => Some(l),
            _ => None,
        });
    ops.chain(request.launches)
}

impl MasterState {
    /// Runs the allocator and sends the resulting offers, after rescinding offers past the
    /// offer timeout (their resources go back to the pool, with no filter, as in Mesos).
    pub fn allocate(&mut self, now: Instant) {
        let started = Instant::now();
        self.rescind_expired_offers(now);
        let decisions = self.allocator.allocate(now);
        self.metrics.allocation_ran(started.elapsed());
        self.send_reclaims(now);
        let mut by_framework: BTreeMap<String, Vec<pb::Offer>> = BTreeMap::new();
        for d in decisions {
            let (agent_id, reservation) = split_pool(&d.agent_id);
            let connected = self
                .frameworks
                .get(&d.framework_id)
                .is_some_and(|f| f.events.is_some());
            let agent = match self.agents.get_mut(agent_id) {
                Some(agent) if connected => agent,
                _ => {
                    self.allocator.recover_resources(
                        &d.framework_id,
                        &d.role,
                        &d.agent_id,
                        d.resources,
                        None,
                    );
                    continue;
                }
            };
            // Extras ride with the agent's unreserved CPUs and memory.
            let extras = match reservation {
                None => std::mem::take(&mut agent.free_extras),
                Some(_) => Extras::default(),
            };
            let id = format!("{}-O{}", self.run_id, self.next_offer);
            self.next_offer += 1;
            self.metrics.offers_made += 1;
            tracing::debug!(offer_id = %id, framework_id = %d.framework_id, pool = %d.agent_id, resources = %d.resources, %extras, "offer");
            let offer = Offer {
                id: id.clone(),
                framework_id: d.framework_id.clone(),
                allocation_role: d.role.to_string(),
                agent_id: agent_id.to_string(),
                reservation: reservation.map(str::to_string),
                resources: d.resources,
                extras,
                made_at: now,
            };
            by_framework
                .entry(d.framework_id)
                .or_default()
                .push(offer_to_pb(&offer, agent));
            self.offers.insert(id, offer);
        }
        for (framework_id, offers) in by_framework {
            self.send(
                &framework_id,
                event(pb::event::Event::Offers(pb::Offers { offers })),
            );
        }
    }

    /// Asks frameworks above their fair share to give back what they hold beyond it, when
    /// another has waited (see [`MasterConfig::reclaim_after`]).
    fn send_reclaims(&mut self, now: Instant) {
        let Some(patience) = self.reclaim_after else {
            return;
        };
        for d in self.allocator.reclaim(now, patience) {
            let waiting = self
                .frameworks
                .get(&d.for_framework)
                .map_or("another framework", |f| f.name.as_str());
            let message = format!(
                "{waiting} ({}) has waited {} s or more below its fair share with nothing free",
                d.for_framework,
                patience.as_secs_f64()
            );
            tracing::info!(framework_id = %d.framework_id, resources = %d.resources, %message, "asking for resources back");
            self.metrics.reclaims += 1;
            self.send(
                &d.framework_id,
                event(pb::event::Event::Reclaim(pb::Reclaim {
                    resources: Some(pb::Resources::of_cpus_mem(&d.resources)),
                    message,
                })),
            );
        }
    }

    /// Declines offers; their resources are not offered to this framework on
    /// those agents for `refuse` (if non-zero). Unknown offers are ignored (an
    /// offer may have been rescinded meanwhile).
    pub fn decline(
        &mut self,
        framework_id: &str,
        principal: &str,
        offer_ids: &[String],
        refuse_seconds: f64,
        now: Instant,
    ) -> Result<(), Status> {
        self.check_framework(framework_id, principal)?;
        let refuse = refuse_duration(refuse_seconds)?;
        let refuse_until = (!refuse.is_zero()).then(|| now + refuse);
        for offer_id in offer_ids {
            let Some(offer) = self.offers.get(offer_id) else {
                tracing::debug!(%offer_id, "decline of an unknown offer ignored");
                continue;
            };
            if offer.framework_id != framework_id {
                return Err(Status::permission_denied(format!(
                    "offer {offer_id} was made to another framework"
                )));
            }
            let offer = self.offers.remove(offer_id).expect("offer exists");
            self.metrics.offers_declined += 1;
            self.release_offer(offer, refuse_until);
        }
        Ok(())
    }

    /// Accepts offers (all on one agent, of one pool) with their operations: launches
    /// executors, reserves and unreserves (see [`operations`]); the rest is recovered.
    /// Nothing changes if the request is invalid.
    pub fn accept(
        &mut self,
        request: pb::AcceptRequest,
        principal: &str,
        now: Instant,
    ) -> Result<Vec<AgentAction>, Status> {
        let framework_id = request.framework_id.clone();
        let framework_id = framework_id.as_str();
        self.check_framework(framework_id, principal)?;
        if request.offer_ids.is_empty() {
            return Err(Status::invalid_argument("accept names no offer"));
        }
        let distinct: BTreeSet<&String> = request.offer_ids.iter().collect();
        if distinct.len() != request.offer_ids.len() {
            return Err(Status::invalid_argument(
                "accept names an offer more than once; name each offer once",
            ));
        }
        let refuse = refuse_duration(request.refuse_seconds)?;
        let mut first: Option<&Offer> = None;
        let mut offered = Resources::ZERO;
        let mut offered_extras = Extras::default();
        for offer_id in &request.offer_ids {
            let offer = self.offers.get(offer_id).ok_or_else(|| {
                Status::failed_precondition(format!(
                    "offer {offer_id} is no longer valid (already accepted, declined or rescinded); \
                     wait for a new offer"
                ))
            })?;
            if offer.framework_id != framework_id {
                return Err(Status::permission_denied(format!(
                    "offer {offer_id} was made to another framework"
                )));
            }
            match first {
                Some(f) if f.agent_id != offer.agent_id => {
                    return Err(Status::invalid_argument(
                        "accepted offers must all be on the same agent",
                    ));
                }
                Some(f) if f.reservation != offer.reservation => {
                    return Err(Status::invalid_argument(
                        "accepted offers must be all unreserved or all of one reservation; \
                         accept reserved and unreserved offers separately",
                    ));
                }
                Some(f) if f.allocation_role != offer.allocation_role => {
                    return Err(Status::invalid_argument(
                        "accepted offers must all be allocated to one role; accept the offers \
                         of each role (`allocation_role`) separately",
                    ));
                }
                _ => first = Some(offer),
            }
            offered = offered.plus(&offer.resources);
            offered_extras = offered_extras.plus(&offer.extras);
        }
        let first = first.expect("at least one offer");
        let (agent_id, reservation) = (first.agent_id.clone(), first.reservation.clone());
        // RESERVE and UNRESERVE act for the role the offers are allocated to.
        let role = first.allocation_role.clone();
        let operations = self.operations_of(framework_id, &request)?;
        let agent = self.agents.get(&agent_id).ok_or_else(|| {
            Status::failed_precondition(format!("agent {agent_id} is gone; wait for a new offer"))
        })?;
        let dynamic = reservation
            .as_ref()
            .and_then(|r| agent.dynamic_reserved.get(r).copied())
            .unwrap_or_default();
        let offers = Offered {
            resources: offered,
            extras: offered_extras,
            reservation: reservation.as_deref(),
            dynamic,
        };
        let plan = operations::plan(&offers, &role, &operations)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let client = agent.client.clone();
        let framework = self.frameworks.get(framework_id).map(Framework::info);
        for offer_id in &request.offer_ids {
            self.offers.remove(offer_id);
        }
        self.metrics.offers_accepted += request.offer_ids.len() as u64;
        self.metrics.executors_launched += plan.launches.len() as u64;
        let pool = pool_id(&agent_id, reservation.as_deref());
        if !plan.reserved.is_zero() {
            self.move_reservation(framework_id, &agent_id, &role, plan.reserved, true);
        }
        if !plan.unreserved.is_zero() {
            self.move_reservation(framework_id, &agent_id, &role, plan.unreserved, false);
        }
        let refuse_until = (!refuse.is_zero()).then(|| now + refuse);
        self.allocator
            .recover_resources(framework_id, &role, &pool, plan.unused, refuse_until);
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.free_extras = agent.free_extras.plus(&plan.unused_extras);
        }
        let mut wire: BTreeMap<String, pb::ExecutorLaunch> = operations_launches(request)
            .map(|l| (l.executor_id.clone(), l))
            .collect();
        let mut actions = Vec::new();
        for (executor_id, resources, extras) in plan.launches {
            let launch = wire.remove(&executor_id).expect("every launch planned");
            let key = (framework_id.to_string(), executor_id.clone());
            if self.executors.contains_key(&key) {
                // The id of an executor that ended is used again.
                self.completed.retain(|k| k != &key);
            }
            tracing::info!(%framework_id, %executor_id, %agent_id, %resources, %extras, "launching executor");
            self.executors.insert(
                key,
                Executor {
                    framework_id: framework_id.to_string(),
                    allocation_role: role.clone(),
                    executor_id: executor_id.clone(),
                    agent_id: agent_id.clone(),
                    reservation: reservation.clone(),
                    resources,
                    extras,
                    state: pb::ExecutorState::Starting,
                    message: String::new(),
                    usage: pb::ExecutorUsage::default(),
                },
            );
            actions.push(AgentAction::Launch {
                client: client.clone(),
                agent_id: agent_id.clone(),
                request: Box::new(LaunchExecutorRequest {
                    framework_id: framework_id.to_string(),
                    executor_id,
                    command: launch.command,
                    resources: launch.resources,
                    framework: framework.clone(),
                    files_credential: launch.files_credential,
                }),
            });
        }
        Ok(actions)
    }

    /// The operations of an accept, checked one by one (ids, programs, amounts): its
    /// `operations`, then its `launches`.
    fn operations_of(
        &self,
        framework_id: &str,
        request: &pb::AcceptRequest,
    ) -> Result<Vec<Operation>, Status> {
        use pb::operation::Operation as Op;
        let mut new_ids = BTreeSet::new();
        let mut out = Vec::new();
        let launches = request.launches.iter().cloned().map(Op::Launch);
        let ops = request
            .operations
            .iter()
            .filter_map(|o| o.operation.clone());
        for op in ops.chain(launches) {
            out.push(match op {
                Op::Launch(launch) => {
                    let id = &launch.executor_id;
                    check_id("executor id", id)?;
                    if launch.command.as_ref().is_none_or(|c| c.program.is_empty()) {
                        return Err(Status::invalid_argument(format!(
                            "executor {id} has no program to run"
                        )));
                    }
                    let key = (framework_id.to_string(), id.clone());
                    let in_use = self
                        .executors
                        .get(&key)
                        .is_some_and(|e| !e.state.is_terminal());
                    if in_use || !new_ids.insert(id.clone()) {
                        return Err(Status::already_exists(format!(
                            "executor id {id} is already in use by this framework; pick another"
                        )));
                    }
                    let whom = format!("executor {id}");
                    Operation::Launch {
                        executor_id: id.clone(),
                        resources: check_resources(&whom, launch.resources.as_ref())?,
                        extras: check_extras(&whom, launch.resources.as_ref())?,
                    }
                }
                Op::Reserve(r) => Operation::Reserve {
                    resources: check_resources("RESERVE", Some(&r))?,
                    extras: check_extras("RESERVE", Some(&r))?,
                },
                Op::Unreserve(r) => Operation::Unreserve {
                    resources: check_resources("UNRESERVE", Some(&r))?,
                    extras: check_extras("UNRESERVE", Some(&r))?,
                },
            });
        }
        Ok(out)
    }

    /// Moves `amount` (held by the framework, as part of an accepted offer) between the
    /// agent's unreserved pool and `role`'s reservation on it: into the reservation when
    /// `reserve`, out of it otherwise. The amount is free in its new pool.
    fn move_reservation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        amount: Resources,
        reserve: bool,
    ) {
        let unreserved = pool_id(agent_id, None);
        let reserved = pool_id(agent_id, Some(role));
        let (from, to) = if reserve {
            (&unreserved, &reserved)
        } else {
            (&reserved, &unreserved)
        };
        // The framework's resources being moved are in `role` (reserving and unreserving act
        // for the offers' allocation role).
        self.allocator
            .recover_resources(framework_id, role, from, amount, None);
        let from_total = self.allocator.total_of(from).unwrap_or_default();
        self.allocator.set_total(from, from_total.minus(&amount));
        match self.allocator.total_of(to) {
            Some(total) => self.allocator.set_total(to, total.plus(&amount)),
            None => self.allocator.add_reserved(to, role, amount),
        }
        if !reserve && from_total.minus(&amount).is_zero() {
            self.allocator.remove_agent(from);
        }
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let dynamic = agent.dynamic_reserved.entry(role.to_string()).or_default();
        *dynamic = if reserve {
            dynamic.plus(&amount)
        } else {
            dynamic.minus(&amount)
        };
        if dynamic.is_zero() {
            agent.dynamic_reserved.remove(role);
        }
        tracing::info!(%framework_id, %agent_id, %role, %amount, reserve, "reservation changed");
    }

    /// Rescinds the offers older than the offer timeout.
    fn rescind_expired_offers(&mut self, now: Instant) {
        let Some(timeout) = self.offer_timeout else {
            return;
        };
        for offer in self.take_offers(|o| now.saturating_duration_since(o.made_at) >= timeout) {
            let (offer_id, framework_id) = (offer.id.clone(), offer.framework_id.clone());
            tracing::debug!(%offer_id, %framework_id, "offer timed out");
            self.metrics.offers_rescinded += 1;
            self.release_offer(offer, None);
            self.send(
                &framework_id,
                event(pb::event::Event::Rescind(pb::Rescind { offer_id })),
            );
        }
    }

    /// An offer's resources go back: CPUs and memory to the pool they came from (with the
    /// framework's decline filter, if any), extras to the agent's free ones.
    fn release_offer(&mut self, offer: Offer, refuse_until: Option<Instant>) {
        let pool = pool_id(&offer.agent_id, offer.reservation.as_deref());
        self.allocator.recover_resources(
            &offer.framework_id,
            &offer.allocation_role,
            &pool,
            offer.resources,
            refuse_until,
        );
        if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
            agent.free_extras = agent.free_extras.plus(&offer.extras);
        }
    }

    pub(super) fn rescind_offers_of(&mut self, framework_id: &str) {
        for offer in self.take_offers(|o| o.framework_id == framework_id) {
            self.release_offer(offer, None);
        }
    }

    /// Takes out of the outstanding offers every one that `which` picks.
    pub(super) fn take_offers(&mut self, which: impl Fn(&Offer) -> bool) -> Vec<Offer> {
        self.offers
            .extract_if(|_, offer| which(offer))
            .map(|(_, offer)| offer)
            .collect()
    }
}
