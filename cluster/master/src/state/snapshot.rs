//! [`Snapshot`]: what the master knows at one moment — agents, frameworks, roles, offers and
//! executors, with what each holds — built once under the state lock by
//! [`MasterState::snapshot`]. The gRPC `ClusterStatus` answer is made from it
//! ([`From<&Snapshot>`] for `ClusterStatusResponse`), and so are the HTTP `/state` JSON and the
//! gauges of `/metrics`, so the three always agree.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tessera_allocator::{Extras, Resources};
use tessera_cluster_proto::master as pb;

use super::MasterState;

/// Disk, ports and custom scalars as the JSON shows them: `{"disk_mb": 100, "ports":
/// "31000-32000", "scalars": {"gpus": 2}}`.
fn extras_json<S: serde::Serializer>(e: &Extras, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Json<'a> {
        disk_mb: u64,
        ports: String,
        scalars: &'a BTreeMap<String, f64>,
    }
    Json {
        disk_mb: e.disk_mb,
        ports: e.ports.to_string(),
        scalars: &e.scalars,
    }
    .serialize(s)
}

/// CPUs and memory reserved for a role on an agent.
#[derive(Debug, Serialize)]
pub(crate) struct ReservationView {
    pub role: String,
    pub resources: Amount,
    /// Made by a framework's RESERVE (`false`: by the agent's `--resources`).
    pub dynamic: bool,
}

/// CPUs and memory, as the JSON shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Amount {
    pub cpus: f64,
    pub mem_mb: u64,
}

impl From<Resources> for Amount {
    fn from(r: Resources) -> Self {
        Amount {
            cpus: r.cpus,
            mem_mb: r.mem_mb,
        }
    }
}

impl From<Amount> for Resources {
    fn from(a: Amount) -> Self {
        Resources::new(a.cpus, a.mem_mb)
    }
}

/// Everything the master shows operators.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    /// The master's version (`tessera-master --version`).
    pub version: &'static str,
    /// This master run's id, the prefix of every agent, framework and offer id it gives.
    pub id: String,
    /// When this master started, in seconds since the Unix epoch.
    pub start_time: u64,
    /// The allocation policy (`--allocator`): `drf` or `priority`.
    pub allocator: &'static str,
    pub agents: Vec<AgentView>,
    pub frameworks: Vec<FrameworkView>,
    pub roles: Vec<RoleView>,
    pub offers: Vec<OfferView>,
    /// Running executors and the last ones that ended.
    pub executors: Vec<ExecutorView>,
}

/// One registered agent.
#[derive(Debug, Serialize)]
pub(crate) struct AgentView {
    pub id: String,
    /// The agent principal its certificate names.
    pub principal: String,
    pub hostname: String,
    /// Where the master dials it.
    pub address: String,
    /// Its CPUs and memory, reserved or not.
    pub resources: Amount,
    /// Its disk, ports and custom scalars.
    #[serde(serialize_with = "extras_json")]
    pub extras: Extras,
    /// Of `extras`, what is neither offered nor used.
    #[serde(serialize_with = "extras_json")]
    pub free_extras: Extras,
    /// Its attributes (`--attributes`), by name.
    pub attributes: BTreeMap<String, String>,
    /// CPUs and memory reserved for roles, static ones first.
    pub reservations: Vec<ReservationView>,
    /// In use by executors.
    pub allocated: Amount,
    /// In outstanding offers.
    pub offered: Amount,
    /// How it isolates executors: `cgroups-v2` or `posix`.
    pub isolation: String,
}

/// One subscribed framework.
#[derive(Debug, Serialize)]
pub(crate) struct FrameworkView {
    pub id: String,
    pub name: String,
    pub user: String,
    /// The framework principal that subscribed it.
    pub principal: String,
    /// Its first role (of `roles`).
    pub role: String,
    /// All its roles.
    pub roles: Vec<String>,
    /// False while its subscription stream is gone (its failover timeout running).
    pub connected: bool,
    /// Asked for no offers in any of its roles until it revives.
    pub suppressed: bool,
    /// The roles in which it asked for no offers.
    pub suppressed_roles: Vec<String>,
    /// How long its executors are kept while it is disconnected, in seconds.
    pub failover_timeout_seconds: f64,
    /// What it said it can do.
    pub capabilities: Vec<String>,
    pub allocated: Amount,
    pub offered: Amount,
    /// Its DRF dominant share of allocated and offered resources, in [0, 1].
    pub dominant_share: f64,
}

/// One role: named by a flag (`--role-weight`, `--quota-*`) or by a subscribed framework.
#[derive(Debug, Serialize)]
pub(crate) struct RoleView {
    pub name: String,
    /// Its weight (DRF) or priority (`--allocator priority`); 1 unless set.
    pub weight: f64,
    pub quota: QuotaView,
    /// Ids of its frameworks.
    pub frameworks: Vec<String>,
    pub allocated: Amount,
    pub offered: Amount,
}

/// A role's quota.
#[derive(Debug, Default, Serialize)]
pub(crate) struct QuotaView {
    /// Offered to the role first, and not to others while the role holds less.
    pub guarantee: Amount,
    /// The most the role may hold (`null`: no limit).
    pub limit: Option<Amount>,
}

/// One outstanding offer.
#[derive(Debug, Serialize)]
pub(crate) struct OfferView {
    pub id: String,
    pub framework_id: String,
    pub agent_id: String,
    pub hostname: String,
    pub resources: Amount,
    #[serde(serialize_with = "extras_json")]
    pub extras: Extras,
    /// The role its resources are reserved for (`null`: unreserved).
    pub reservation_role: Option<String>,
    /// The framework's role it is allocated to.
    pub allocation_role: String,
}

/// One executor.
#[derive(Debug, Serialize)]
pub(crate) struct ExecutorView {
    pub framework_id: String,
    pub executor_id: String,
    pub agent_id: String,
    /// The framework's role its resources count in.
    pub allocation_role: String,
    /// `STARTING`, `RUNNING`, `FINISHED`, `FAILED`, `KILLED` or `LOST`.
    #[serde(serialize_with = "state_name")]
    pub state: pb::ExecutorState,
    pub resources: Amount,
    #[serde(serialize_with = "extras_json")]
    pub extras: Extras,
    /// The role its resources were reserved for (`null`: unreserved).
    pub reservation_role: Option<String>,
    /// Why it ended, when it did.
    pub message: String,
    /// Memory it uses, as its agent last reported (0 once it ended).
    pub memory_used_bytes: u64,
    /// CPU time it used, as its agent last reported.
    pub cpu_seconds: f64,
}

/// `RUNNING` for `EXECUTOR_STATE_RUNNING`.
pub(crate) fn executor_state_name(state: pb::ExecutorState) -> &'static str {
    let name = state.as_str_name();
    name.strip_prefix("EXECUTOR_STATE_").unwrap_or(name)
}

fn state_name<S: serde::Serializer>(state: &pb::ExecutorState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(executor_state_name(*state))
}

/// What running executors use and outstanding offers hold, per agent and per framework id,
/// added up in one pass over each (a snapshot of 100,000 agents must not go over the
/// executors once per agent).
struct Holdings<'a> {
    used: HashMap<&'a str, Resources>,
    offered: HashMap<&'a str, Resources>,
    /// The same per role (apart: a role may be named as an agent or a framework is).
    role_used: HashMap<&'a str, Resources>,
    role_offered: HashMap<&'a str, Resources>,
}

impl<'a> Holdings<'a> {
    fn of(state: &'a MasterState) -> Self {
        fn add<'a>(sums: &mut HashMap<&'a str, Resources>, key: &'a str, r: &Resources) {
            let sum = sums.entry(key).or_insert(Resources::ZERO);
            *sum = sum.plus(r);
        }
        let (mut used, mut role_used) = (HashMap::new(), HashMap::new());
        for e in state.executors.values().filter(|e| !e.state.is_terminal()) {
            add(&mut used, &e.agent_id, &e.resources);
            add(&mut used, &e.framework_id, &e.resources);
            add(&mut role_used, &e.allocation_role, &e.resources);
        }
        let (mut offered, mut role_offered) = (HashMap::new(), HashMap::new());
        for o in state.offers.values() {
            add(&mut offered, &o.agent_id, &o.resources);
            add(&mut offered, &o.framework_id, &o.resources);
            add(&mut role_offered, &o.allocation_role, &o.resources);
        }
        Holdings {
            used,
            offered,
            role_used,
            role_offered,
        }
    }

    /// What the executors of this agent or framework use.
    fn used(&self, id: &str) -> Amount {
        self.used.get(id).copied().unwrap_or_default().into()
    }

    /// What the offers on this agent or to this framework hold.
    fn offered(&self, id: &str) -> Amount {
        self.offered.get(id).copied().unwrap_or_default().into()
    }
}

impl MasterState {
    /// What the master knows now. Agents, offers and executors are listed by id.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let sums = Holdings::of(self);
        let frameworks = self.framework_views(&sums);
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            id: self.run_id.clone(),
            start_time: self.start_time,
            allocator: self.roles.policy.name(),
            roles: self.role_views(&frameworks, &sums),
            agents: self.agent_views(&sums),
            frameworks,
            offers: self.offer_views(),
            executors: self.executor_views(),
        }
    }

    fn agent_views(&self, sums: &Holdings) -> Vec<AgentView> {
        let mut agents: Vec<AgentView> = self
            .agents
            .values()
            .map(|a| AgentView {
                id: a.id.clone(),
                principal: a.principal.clone(),
                hostname: a.hostname.clone(),
                address: a.address.clone(),
                resources: a.total.into(),
                extras: a.extras.clone(),
                free_extras: a.free_extras.clone(),
                attributes: (a.attributes.iter())
                    .map(|at| (at.name.clone(), at.value.clone()))
                    .collect(),
                reservations: (a.static_reserved.iter().map(|r| (r, false)))
                    .chain(a.dynamic_reserved.iter().map(|r| (r, true)))
                    .map(|((role, r), dynamic)| ReservationView {
                        role: role.clone(),
                        resources: (*r).into(),
                        dynamic,
                    })
                    .collect(),
                allocated: sums.used(&a.id),
                offered: sums.offered(&a.id),
                isolation: a.isolation.clone(),
            })
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    fn framework_views(&self, sums: &Holdings) -> Vec<FrameworkView> {
        self.frameworks
            .values()
            .map(|f| FrameworkView {
                id: f.id.clone(),
                name: f.name.clone(),
                user: f.user.clone(),
                principal: f.principal.clone(),
                role: f.roles[0].clone(),
                roles: f.roles.clone(),
                connected: f.events.is_some(),
                suppressed: f.suppressed_roles.len() == f.roles.len(),
                suppressed_roles: f.suppressed_roles.iter().cloned().collect(),
                failover_timeout_seconds: f.failover_timeout.as_secs_f64(),
                capabilities: f.capabilities.clone(),
                allocated: sums.used(&f.id),
                offered: sums.offered(&f.id),
                dominant_share: self.allocator.dominant_share(&f.id),
            })
            .collect()
    }

    fn offer_views(&self) -> Vec<OfferView> {
        let mut offers: Vec<OfferView> = self
            .offers
            .values()
            .map(|o| OfferView {
                id: o.id.clone(),
                framework_id: o.framework_id.clone(),
                agent_id: o.agent_id.clone(),
                hostname: self
                    .agents
                    .get(&o.agent_id)
                    .map(|a| a.hostname.clone())
                    .unwrap_or_default(),
                resources: o.resources.into(),
                extras: o.extras.clone(),
                reservation_role: o.reservation.clone(),
                allocation_role: o.allocation_role.clone(),
            })
            .collect();
        offers.sort_by(|a, b| a.id.cmp(&b.id));
        offers
    }

    fn executor_views(&self) -> Vec<ExecutorView> {
        self.executors
            .values()
            .map(|e| ExecutorView {
                framework_id: e.framework_id.clone(),
                executor_id: e.executor_id.clone(),
                agent_id: e.agent_id.clone(),
                allocation_role: e.allocation_role.clone(),
                state: e.state,
                resources: e.resources.into(),
                extras: e.extras.clone(),
                reservation_role: e.reservation.clone(),
                message: e.message.clone(),
                memory_used_bytes: e.usage.memory_bytes,
                cpu_seconds: e.usage.cpu_seconds,
            })
            .collect()
    }

    /// Every role a flag or a framework names, with what its frameworks hold in it.
    fn role_views(&self, frameworks: &[FrameworkView], sums: &Holdings) -> Vec<RoleView> {
        let mut roles: BTreeMap<&str, RoleView> = BTreeMap::new();
        let names = (self.roles.weights.iter().map(|(role, _)| role))
            .chain(self.roles.quotas.iter().map(|(role, _)| role))
            .chain(frameworks.iter().flat_map(|f| &f.roles));
        let of = |sums: &HashMap<&str, Resources>, role: &str| -> Amount {
            sums.get(role).copied().unwrap_or_default().into()
        };
        for name in names {
            roles.entry(name).or_insert_with(|| RoleView {
                name: name.clone(),
                weight: self.roles.weight(name),
                quota: self
                    .roles
                    .quota(name)
                    .map(|quota| QuotaView {
                        guarantee: quota.guarantee.into(),
                        limit: quota.limit.map(Amount::from),
                    })
                    .unwrap_or_default(),
                frameworks: Vec::new(),
                allocated: of(&sums.role_used, name),
                offered: of(&sums.role_offered, name),
            });
        }
        for f in frameworks {
            for name in &f.roles {
                let role = roles.get_mut(name.as_str()).expect("every role is listed");
                role.frameworks.push(f.id.clone());
            }
        }
        roles.into_values().collect()
    }
}

impl From<Amount> for pb::Resources {
    fn from(a: Amount) -> Self {
        pb::Resources::of_cpus_mem(&a.into())
    }
}

impl From<&Snapshot> for pb::ClusterStatusResponse {
    fn from(s: &Snapshot) -> Self {
        pb::ClusterStatusResponse {
            agents: s
                .agents
                .iter()
                .map(|a| pb::AgentStatus {
                    id: a.id.clone(),
                    hostname: a.hostname.clone(),
                    address: a.address.clone(),
                    total: Some(pb::Resources::of(&a.resources.into(), &a.extras)),
                    allocated: Some(a.allocated.into()),
                    offered: Some(a.offered.into()),
                    isolation: a.isolation.clone(),
                    attributes: (a.attributes.iter())
                        .map(|(name, value)| pb::Attribute {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    reservations: (a.reservations.iter())
                        .map(|r| pb::Reservation {
                            role: r.role.clone(),
                            resources: Some(r.resources.into()),
                            dynamic: r.dynamic,
                        })
                        .collect(),
                })
                .collect(),
            frameworks: s
                .frameworks
                .iter()
                .map(|f| pb::FrameworkStatus {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    user: f.user.clone(),
                    allocated: Some(f.allocated.into()),
                    offered: Some(f.offered.into()),
                    dominant_share: f.dominant_share,
                    connected: f.connected,
                    role: f.role.clone(),
                    suppressed: f.suppressed,
                    failover_timeout_seconds: f.failover_timeout_seconds,
                    capabilities: f.capabilities.clone(),
                    roles: f.roles.clone(),
                    suppressed_roles: f.suppressed_roles.clone(),
                })
                .collect(),
            offers: s
                .offers
                .iter()
                .map(|o| pb::Offer {
                    id: o.id.clone(),
                    framework_id: o.framework_id.clone(),
                    agent_id: o.agent_id.clone(),
                    hostname: o.hostname.clone(),
                    resources: Some(pb::Resources::of(&o.resources.into(), &o.extras)),
                    reservation_role: o.reservation_role.clone().unwrap_or_default(),
                    attributes: Vec::new(),
                    allocation_role: o.allocation_role.clone(),
                })
                .collect(),
            executors: s
                .executors
                .iter()
                .map(|e| pb::ExecutorStatus {
                    framework_id: e.framework_id.clone(),
                    executor_id: e.executor_id.clone(),
                    agent_id: e.agent_id.clone(),
                    state: e.state as i32,
                    resources: Some(pb::Resources::of(&e.resources.into(), &e.extras)),
                    message: e.message.clone(),
                    memory_used_bytes: e.memory_used_bytes,
                    cpu_seconds: e.cpu_seconds,
                })
                .collect(),
        }
    }
}
