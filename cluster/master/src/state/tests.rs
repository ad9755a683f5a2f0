//! The master's bookkeeping, driven directly: emulated agents and frameworks, no network.

use super::checks::MAX_REFUSE;
use super::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

fn client() -> AgentClient<Channel> {
    // Never called in these tests; connect_lazy does not connect.
    AgentClient::new(tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy())
}

fn config(failover: Duration) -> MasterConfig {
    MasterConfig {
        framework_failover_timeout: failover,
        ..MasterConfig::default()
    }
}

fn drain(rx: &mut UnboundedReceiver<Result<pb::Event, Status>>) -> Vec<pb::event::Event> {
    let mut out = Vec::new();
    while let Ok(Ok(pb::Event { event: Some(e) })) = rx.try_recv() {
        out.push(e);
    }
    out
}

fn offers(events: &[pb::event::Event]) -> Vec<pb::Offer> {
    events
        .iter()
        .filter_map(|e| match e {
            pb::event::Event::Offers(o) => Some(o.offers.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// `alice`'s framework `fw` accepts `offer` with one launch.
fn accept_one(
    m: &mut MasterState,
    fw: &str,
    offer: pb::Offer,
    launch: pb::ExecutorLaunch,
    now: Instant,
) {
    m.accept(
        pb::AcceptRequest {
            framework_id: fw.to_string(),
            offer_ids: vec![offer.id],
            launches: vec![launch],
            refuse_seconds: 0.0,
            ..Default::default()
        },
        "alice",
        now,
    )
    .expect("accept");
}

/// CPUs and memory as the wire has them.
fn wire(cpus: f64, mem_mb: u64) -> Option<pb::Resources> {
    Some(pb::Resources::of_cpus_mem(&Resources::new(cpus, mem_mb)))
}

fn launch(id: &str, cpus: f64, mem_mb: u64) -> pb::ExecutorLaunch {
    pb::ExecutorLaunch {
        executor_id: id.into(),
        command: Some(pb::CommandInfo {
            program: "/bin/true".into(),
            ..Default::default()
        }),
        resources: wire(cpus, mem_mb),
        files_credential: String::new(),
    }
}

/// A master, its agent's id, the framework's id, the framework's events, its offer.
type Setup = (
    MasterState,
    String,
    String,
    UnboundedReceiver<Result<pb::Event, Status>>,
    pb::Offer,
);

/// One agent (2 CPUs, 1 GiB), one framework holding its offer.
fn setup(failover: Duration) -> Setup {
    setup_with(&config(failover), Instant::now())
}

/// As [`setup`], with `config`, the offer made at `now`.
fn setup_with(config: &MasterConfig, now: Instant) -> Setup {
    let mut m = MasterState::new(config);
    let (agent, _) = m
        .register_agent(
            ("h".into(), "127.0.0.1:9".into(), "b".into()),
            Resources::new(2.0, 1024),
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    let (fw, mut rx, _) = subscribe_alice(&mut m, "fw", "", None);
    m.allocate(now);
    let events = drain(&mut rx);
    assert!(matches!(events[0], pb::event::Event::Registered(_)));
    let offer = offers(&events).pop().expect("an offer");
    assert_eq!(offer.agent_id, agent);
    (m, agent, fw, rx, offer)
}

/// Launches executor `e` (1 CPU, 256 MiB) of `fw` with `offer`, and has it run.
fn run_executor(m: &mut MasterState, agent: &str, fw: &str, offer: pb::Offer, now: Instant) {
    let accept = pb::AcceptRequest {
        framework_id: fw.to_string(),
        offer_ids: vec![offer.id],
        launches: vec![launch("e", 1.0, 256)],
        refuse_seconds: 0.0,
        ..Default::default()
    };
    m.accept(accept, "alice", now).unwrap();
    m.update_executor(fw, "e", agent, pb::ExecutorState::Running, String::new());
}

/// Every sample line of the Prometheus text, "name{labels} value", as name{labels} -> value;
/// fails unless each family has its HELP and TYPE lines before its samples.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut described = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            described.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let name = series.split('{').next().unwrap();
        assert!(
            described
                .iter()
                .any(|family| name.starts_with(family.as_str())),
            "{name} has no TYPE line before it"
        );
        samples.insert(series.to_string(), value.parse().expect("a number"));
    }
    samples
}

/// An agent with ports and a static reservation for `analytics`, and two frameworks: `web`
/// (role web) and `an` (role analytics), with their event streams.
fn reserving_setup(
    now: Instant,
) -> (
    MasterState,
    String,
    [(String, UnboundedReceiver<Result<pb::Event, Status>>); 2],
) {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let offering = AgentOffering {
        extras: Extras {
            disk_mb: 100,
            ports: tessera_allocator::Ranges::new([(31000, 31009)]),
            scalars: BTreeMap::new(),
        },
        reserved: [("analytics".to_string(), Resources::new(1.0, 512))].into(),
        attributes: vec![Attribute {
            name: "rack".into(),
            value: "r1".into(),
        }],
    };
    let agent = ("h".into(), "127.0.0.1:9".into(), "b".into());
    let (agent, _) = m
        .register_agent_offering(
            agent,
            Resources::new(2.0, 1024),
            offering,
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    let mut subscribe = |name: &str, role: &str| {
        let (fw, rx, _) = subscribe_alice(&mut m, name, role, None);
        (fw, rx)
    };
    let frameworks = [subscribe("web", "web"), subscribe("an", "analytics")];
    (m, agent, frameworks)
}

#[tokio::test]
async fn reserved_resources_go_to_their_role_and_extras_ride_with_unreserved_offers() {
    let now = Instant::now();
    let (mut m, agent, [(web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
    m.allocate(now);
    let web_offers = offers(&drain(&mut web_rx));
    let an_offers = offers(&drain(&mut an_rx));
    // analytics (lower name, equal shares) takes the unreserved pool first, then its
    // reservation; web gets nothing this round.
    assert!(web_offers.is_empty(), "{web_offers:?}");
    let reserved = an_offers
        .iter()
        .find(|o| o.reservation_role == "analytics")
        .unwrap();
    assert_eq!(reserved.resources.as_ref().unwrap().cpus, 1.0);
    assert!(reserved.resources.as_ref().unwrap().ports.is_empty());
    let unreserved = an_offers
        .iter()
        .find(|o| o.reservation_role.is_empty())
        .unwrap();
    let r = unreserved.resources.as_ref().unwrap();
    assert_eq!((r.cpus, r.disk_mb), (2.0, 100));
    assert_eq!(
        r.ports,
        [pb::Range {
            begin: 31000,
            end: 31009
        }]
    );
    assert_eq!(unreserved.attributes[0].value, "r1");
    // Offers of two pools cannot be pooled in one accept.
    let both = pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![reserved.id.clone(), unreserved.id.clone()],
        ..Default::default()
    };
    let err = m.accept(both, "alice", now).unwrap_err();
    assert!(
        err.message()
            .contains("accept reserved and unreserved offers separately")
    );
    // analytics declines both for a long time: web gets the unreserved pool (with the
    // ports), never the reservation.
    let ids = vec![reserved.id.clone(), unreserved.id.clone()];
    m.decline(&an, "alice", &ids, 3600.0, now).unwrap();
    m.allocate(now);
    let web_offers = offers(&drain(&mut web_rx));
    assert_eq!(web_offers.len(), 1, "{web_offers:?}");
    assert!(web_offers[0].reservation_role.is_empty());
    assert_eq!(web_offers[0].resources.as_ref().unwrap().ports.len(), 1);
    // A launch naming a port outside the offer is refused and changes nothing.
    let mut bad = launch("e", 1.0, 256);
    bad.resources.as_mut().unwrap().ports = vec![pb::Range {
        begin: 8080,
        end: 8080,
    }];
    let req = |l: pb::ExecutorLaunch| pb::AcceptRequest {
        framework_id: web.clone(),
        offer_ids: vec![web_offers[0].id.clone()],
        launches: vec![l],
        ..Default::default()
    };
    let err = m.accept(req(bad), "alice", now).unwrap_err();
    assert!(
        err.message().contains("names ports 8080"),
        "{}",
        err.message()
    );
    assert!(m.offers.contains_key(&web_offers[0].id));
    let mut good = launch("e", 1.0, 256);
    good.resources.as_mut().unwrap().ports = vec![pb::Range {
        begin: 31003,
        end: 31003,
    }];
    m.accept(req(good), "alice", now).unwrap();
    let a = &m.agents[&agent];
    assert_eq!(a.free_extras.ports.to_string(), "31000-31002,31004-31009");
    // The executor ends: its port is free again.
    m.update_executor(
        &web,
        "e",
        &agent,
        pb::ExecutorState::Finished,
        String::new(),
    );
    assert_eq!(
        m.agents[&agent].free_extras.ports.to_string(),
        "31000-31009"
    );
    let json = serde_json::to_value(m.snapshot()).unwrap();
    let shown = &json["agents"][0];
    assert_eq!(shown["attributes"]["rack"], "r1");
    assert_eq!(shown["extras"]["ports"], "31000-31009");
    assert_eq!(shown["reservations"][0]["role"], "analytics");
    assert_eq!(shown["reservations"][0]["dynamic"], false);
    assert_eq!(shown["resources"]["cpus"], 3.0);
}

#[tokio::test]
async fn reserve_then_unreserve_moves_resources_between_the_pools() {
    let now = Instant::now();
    let (mut m, agent, [(_web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
    m.allocate(now);
    drop(drain(&mut web_rx));
    let an_offers = offers(&drain(&mut an_rx));
    let unreserved = an_offers
        .iter()
        .find(|o| o.reservation_role.is_empty())
        .unwrap();
    let reserved = an_offers
        .iter()
        .find(|o| !o.reservation_role.is_empty())
        .unwrap();
    let op = |o: pb::operation::Operation| pb::Operation { operation: Some(o) };
    let amount = |cpus: f64, mem_mb: u64| pb::Resources {
        cpus,
        mem_mb,
        ..Default::default()
    };
    // Nothing was reserved by RESERVE yet: the static reservation cannot be unreserved.
    let unreserve = |offer: &str, cpus, mem_mb| pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![offer.to_string()],
        operations: vec![op(pb::operation::Operation::Unreserve(amount(
            cpus, mem_mb,
        )))],
        ..Default::default()
    };
    let err = m
        .accept(unreserve(&reserved.id, 1.0, 0), "alice", now)
        .unwrap_err();
    assert!(
        err.message().contains("static reservation"),
        "{}",
        err.message()
    );
    let reserve = pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![unreserved.id.clone()],
        operations: vec![op(pb::operation::Operation::Reserve(amount(1.0, 256)))],
        ..Default::default()
    };
    m.accept(reserve, "alice", now).unwrap();
    m.decline(&an, "alice", std::slice::from_ref(&reserved.id), 0.0, now)
        .unwrap();
    assert_eq!(
        m.agents[&agent].dynamic_reserved["analytics"],
        Resources::new(1.0, 256)
    );
    // The next offer of the reservation holds static and dynamic parts.
    m.allocate(now);
    let an_offers = offers(&drain(&mut an_rx));
    let reserved = an_offers
        .iter()
        .find(|o| o.reservation_role == "analytics")
        .unwrap();
    assert_eq!(reserved.resources.as_ref().unwrap().cpus, 2.0);
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, None)),
        Some(Resources::new(1.0, 768))
    );
    let json = serde_json::to_value(m.snapshot()).unwrap();
    assert_eq!(json["agents"][0]["reservations"][1]["dynamic"], true);
    m.accept(unreserve(&reserved.id, 1.0, 256), "alice", now)
        .unwrap();
    assert!(m.agents[&agent].dynamic_reserved.is_empty());
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, None)),
        Some(Resources::new(2.0, 1024))
    );
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, Some("analytics"))),
        Some(Resources::new(1.0, 512))
    );
    assert_eq!(m.allocator.cluster_total(), Resources::new(3.0, 1536));
}

#[tokio::test]
async fn metrics_count_offers_launches_losses_and_allocation_runs() {
    let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, now);
    m.allocate(now);
    let rest: Vec<String> = m.offers.keys().cloned().collect();
    m.decline(&fw, "alice", &rest, 0.0, now).unwrap();
    m.allocate(now);
    let before = samples(&crate::metrics::render(&m.metrics, &m.snapshot()));
    assert_eq!(before["tessera_master_agents"], 1.0);
    assert_eq!(before["tessera_master_executors_active"], 1.0);
    assert_eq!(before["tessera_master_offers_outstanding"], 1.0);
    assert_eq!(
        before[r#"tessera_master_resources_total{resource="cpus"}"#],
        2.0
    );
    assert_eq!(
        before[r#"tessera_master_resources_allocated{resource="mem_bytes"}"#],
        256.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        before[r#"tessera_master_frameworks{connected="true"}"#],
        1.0
    );
    m.remove_agent(&agent, "no heartbeat");
    let after = samples(&crate::metrics::render(&m.metrics, &m.snapshot()));
    for (series, value) in [
        ("tessera_master_offers_made_total", 3.0),
        ("tessera_master_offers_accepted_total", 1.0),
        ("tessera_master_offers_declined_total", 1.0),
        ("tessera_master_offers_rescinded_total", 1.0),
        ("tessera_master_executors_launched_total", 1.0),
        (r#"tessera_master_executors_ended_total{state="lost"}"#, 1.0),
        ("tessera_master_agents_registered_total", 1.0),
        ("tessera_master_agents_lost_total", 1.0),
        ("tessera_master_frameworks_subscribed_total", 1.0),
        ("tessera_master_agents", 0.0),
        ("tessera_master_executors_active", 0.0),
        ("tessera_master_allocation_run_seconds_count", 3.0),
    ] {
        assert_eq!(after.get(series), Some(&value), "{series}");
    }
}

#[tokio::test]
async fn the_snapshot_as_json_shows_roles_offers_and_executors() {
    let now = Instant::now();
    let quota = tessera_allocator::Quota {
        guarantee: Resources::new(1.0, 128),
        limit: Some(Resources::new(4.0, 4096)),
    };
    let config = MasterConfig {
        role_weights: vec![("etl".into(), 2.0)],
        role_quotas: vec![("etl".into(), quota)],
        ..MasterConfig::default()
    };
    let (mut m, agent, fw, _rx, offer) = setup_with(&config, now);
    run_executor(&mut m, &agent, &fw, offer, now);
    m.allocate(now);
    let json = serde_json::to_value(m.snapshot()).unwrap();
    let amount = |cpus: f64, mem_mb: u64| serde_json::json!({"cpus": cpus, "mem_mb": mem_mb});
    assert_eq!(json["allocator"], "drf");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json.get("reservations").is_none(), "no reservations yet");
    let a = &json["agents"][0];
    assert_eq!(a["id"], agent.as_str());
    assert_eq!(
        (&a["hostname"], &a["principal"]),
        (&"h".into(), &"b".into())
    );
    assert_eq!(a["resources"], amount(2.0, 1024));
    assert_eq!(a["allocated"], amount(1.0, 256));
    // What is left less the headroom kept for etl's unmet guarantee.
    let left = amount(0.0, 640);
    assert_eq!(a["offered"], left);
    let f = &json["frameworks"][0];
    assert_eq!(
        (&f["id"], &f["name"], &f["role"]),
        (&fw.as_str().into(), &"fw".into(), &"*".into())
    );
    assert_eq!(
        (&f["connected"], &f["suppressed"]),
        (&true.into(), &false.into())
    );
    assert_eq!(f["allocated"], amount(1.0, 256));
    // (256 + 640) MiB of 1024: memory is its dominant resource.
    assert_eq!(f["dominant_share"], 0.875);
    let roles = json["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[0]["name"], "*");
    assert_eq!(roles[0]["frameworks"], serde_json::json!([fw]));
    assert_eq!(roles[0]["offered"], left);
    assert_eq!(roles[0]["quota"]["limit"], serde_json::Value::Null);
    assert_eq!(
        (&roles[1]["name"], &roles[1]["weight"]),
        (&"etl".into(), &2.0.into())
    );
    assert_eq!(roles[1]["quota"]["guarantee"], amount(1.0, 128));
    assert_eq!(roles[1]["quota"]["limit"], amount(4.0, 4096));
    let e = &json["executors"][0];
    assert_eq!(
        (&e["executor_id"], &e["state"]),
        (&"e".into(), &"RUNNING".into())
    );
    assert_eq!(e["resources"], amount(1.0, 256));
    assert_eq!(json["offers"][0]["hostname"], "h");
    assert_eq!(json["offers"][0]["resources"], left);
    // gRPC's ClusterStatus says the same.
    let status = m.cluster_status();
    assert_eq!(status.agents[0].id, agent);
    assert_eq!(status.executors[0].state, pb::ExecutorState::Running as i32);
}

#[tokio::test]
async fn an_offer_not_answered_within_the_offer_timeout_is_rescinded_and_made_again() {
    let now = Instant::now();
    let config = MasterConfig {
        offer_timeout: Some(Duration::from_secs(1)),
        ..MasterConfig::default()
    };
    let (mut m, _agent, _fw, mut rx, first) = setup_with(&config, now);
    m.allocate(now + Duration::from_millis(900));
    assert!(drain(&mut rx).is_empty(), "not yet timed out");
    m.allocate(now + Duration::from_millis(1000));
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == first.id)),
        "{events:?}"
    );
    let again = offers(&events).pop().expect("offered again");
    assert_ne!(again.id, first.id);
    assert_eq!(again.resources, first.resources);
}

#[tokio::test]
async fn accept_is_validated_and_leaves_nothing_changed_when_invalid() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let req = |launches| pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids: vec![offer.id.clone()],
        launches,
        refuse_seconds: 0.0,
        ..Default::default()
    };
    let too_big = m
        .accept(req(vec![launch("e", 3.0, 10)]), "alice", now)
        .unwrap_err();
    assert!(
        too_big.message().contains("offers hold only"),
        "{}",
        too_big.message()
    );
    let bad_id = m
        .accept(req(vec![launch("a/b", 1.0, 10)]), "alice", now)
        .unwrap_err();
    assert!(
        bad_id.message().contains("sandbox directory"),
        "{}",
        bad_id.message()
    );
    let dup = m
        .accept(
            req(vec![launch("e", 1.0, 10), launch("e", 0.5, 10)]),
            "alice",
            now,
        )
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    // Still valid after the refusals:
    let actions = m
        .accept(req(vec![launch("e", 1.0, 256)]), "alice", now)
        .expect("accept");
    assert_eq!(actions.len(), 1);
    let again = m.accept(req(vec![]), "alice", now).unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    // The unused part is offered again.
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    m.allocate(now);
    let status = m.cluster_status();
    assert_eq!(status.offers[0].resources, wire(1.0, 768));
    assert_eq!(status.agents[0].allocated, wire(1.0, 256));
}

#[tokio::test]
async fn executor_end_is_forwarded_and_frees_its_resources() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 2.0, 1024), now);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    m.update_executor(
        &fw,
        "e",
        &agent,
        pb::ExecutorState::Failed,
        "exited with status 3".into(),
    );
    // A late duplicate is ignored.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Killed, String::new());
    let states: Vec<i32> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            pb::ExecutorState::Running as i32,
            pb::ExecutorState::Failed as i32
        ]
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
    m.allocate(now);
    assert_eq!(offers(&drain(&mut rx))[0].resources, wire(2.0, 1024));
}

#[tokio::test]
async fn usage_and_how_an_executor_ended_reach_status_and_the_framework() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 128), now);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    let usage = |framework_id: &str| pb::ExecutorUsage {
        framework_id: framework_id.into(),
        executor_id: "e".into(),
        memory_bytes: 50 << 20,
        cpu_seconds: 1.5,
    };
    // Reports from another agent, or on executors that are not there, change nothing.
    m.record_usage("someone-else", vec![usage(&fw)]);
    m.record_usage(&agent, vec![usage("no-such-framework")]);
    assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
    m.record_usage(&agent, vec![usage(&fw)]);
    let status = m.cluster_status();
    assert_eq!(status.agents[0].isolation, "posix");
    assert_eq!(
        (
            status.executors[0].memory_used_bytes,
            status.executors[0].cpu_seconds
        ),
        (50 << 20, 1.5)
    );

    m.agent_update(
        "b",
        pb::StatusUpdate {
            agent_id: agent.clone(),
            framework_id: fw.clone(),
            executor_id: "e".into(),
            state: pb::ExecutorState::Failed as i32,
            message: "memory limit 128 MiB exceeded".into(),
            exit_code: Some(137),
            reason: pb::ExecutorReason::MemoryLimit as i32,
            ..Default::default()
        },
    )
    .expect("the agent's update");
    let last = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u),
            _ => None,
        })
        .next_back()
        .expect("updates forwarded");
    assert_eq!(
        (last.exit_code, last.reason, last.message.as_str()),
        (
            Some(137),
            pb::ExecutorReason::MemoryLimit as i32,
            "memory limit 128 MiB exceeded"
        )
    );
    assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
}

#[tokio::test]
async fn lost_agent_rescinds_offers_and_loses_executors() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.allocate(t0);
    let rest = offers(&drain(&mut rx)).pop().expect("offer of the rest");
    let timeout = Duration::from_secs(10);
    assert!(
        m.timed_out_agents(t0 + Duration::from_secs(5), timeout)
            .is_empty()
    );
    let late = t0 + Duration::from_secs(11);
    assert_eq!(m.timed_out_agents(late, timeout).len(), 1);
    m.remove_agent(&agent, "no heartbeat");
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == rest.id))
    );
    assert!(events.iter().any(|e| matches!(e,
        pb::event::Event::StatusUpdate(u) if u.executor_id == "e" && u.state == pb::ExecutorState::Lost as i32)));
    assert!(m.cluster_status().agents.is_empty());
    assert!(
        !m.heartbeat(&agent, "b", late).unwrap(),
        "a lost agent must register again"
    );
    assert_eq!(m.allocator.cluster_total(), Resources::ZERO);
}

#[test]
fn masters_started_at_once_give_different_ids() {
    let ids: std::collections::BTreeSet<String> = (0..3)
        .map(|_| MasterState::new(&config(Duration::ZERO)).run_id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

#[tokio::test]
async fn an_unreachable_agent_is_offered_again_only_once_it_heartbeats() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.agent_unreachable(&agent, "tcp connect error");
    m.allocate(t0);
    assert!(
        offers(&drain(&mut rx)).is_empty(),
        "nothing of an agent that cannot be reached is offered"
    );
    assert_eq!(
        m.cluster_status().agents.len(),
        1,
        "it is not declared lost"
    );
    assert!(m.heartbeat(&agent, "b", t0).unwrap());
    m.allocate(t0);
    assert_eq!(
        offers(&drain(&mut rx)).len(),
        1,
        "offered again once heard from"
    );
}

#[tokio::test]
async fn an_agent_registering_anew_from_the_same_host_replaces_its_old_self() {
    let (mut m, agent, _fw, mut rx, _offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let register = |m: &mut MasterState, host: &str, address: &str, principal: &str| {
        m.register_agent(
            (host.into(), address.into(), principal.into()),
            Resources::new(2.0, 1024),
            "posix".into(),
            client(),
            now,
        )
        .unwrap()
        .0
    };
    // Another principal on the same host is another agent.
    register(&mut m, "h", "127.0.0.1:10", "c");
    assert_eq!(m.cluster_status().agents.len(), 2);
    // The same principal from the same host on another port: the first one restarted.
    let again = register(&mut m, "h", "127.0.0.1:11", "b");
    assert_ne!(again, agent);
    let ids: Vec<String> = m
        .cluster_status()
        .agents
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(!ids.contains(&agent), "{ids:?}");
    assert!(
        drain(&mut rx)
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(_))),
        "its offer was rescinded"
    );
}

/// What an agent kept of executor `e` of `fw` (alice's, failover `failover`).
fn recovered(fw: &str, failover: f64) -> pb::RecoveredExecutor {
    pb::RecoveredExecutor {
        executor_id: "e".into(),
        resources: Some(pb::Resources::of_cpus_mem(&Resources::new(1.0, 256))),
        framework: Some(pb::FrameworkInfo {
            id: fw.into(),
            name: "fw".into(),
            role: "*".into(),
            principal: "alice".into(),
            failover_timeout_seconds: failover,
            ..Default::default()
        }),
        state: pb::ExecutorState::Running as i32,
    }
}

#[tokio::test]
async fn a_restarted_master_takes_back_a_reregistering_agent_and_its_executors() {
    let (mut old, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut old, &agent, &fw, offer, t0);
    // The launch told the agent whose executor it is.
    assert_eq!(old.frameworks[&fw].info().principal, "alice");

    // A new master: the agent's heartbeat is unknown, it registers again with its id.
    let mut m = MasterState::new(&config(Duration::ZERO));
    assert!(!m.heartbeat(&agent, "b", t0).unwrap());
    let reregister = |m: &mut MasterState, id: &str, principal: &str| {
        m.reregister_agent(
            id.into(),
            ("h".into(), "127.0.0.1:9".into(), principal.into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            vec![recovered(&fw, 30.0)],
            t0,
        )
    };
    let (id, _, actions) = reregister(&mut m, &agent, "b").unwrap();
    assert!(actions.is_empty());
    assert_eq!(id, agent, "the agent keeps its id");
    let e = &m.executors[&(fw.clone(), "e".to_string())];
    assert_eq!(
        (e.state, e.agent_id.as_str()),
        (pb::ExecutorState::Running, agent.as_str())
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // Its framework waits, disconnected, for the framework to come back by id.
    let f = &m.frameworks[&fw];
    assert!(f.events.is_none());
    assert_eq!(f.failover_timeout, Duration::from_secs(30));
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(29))
            .is_empty()
    );
    // Only its agent's principal can register again as it; again by the same one keeps all.
    assert!(reregister(&mut m, &agent, "mallory").is_err());
    assert_eq!(reregister(&mut m, &agent, "b").unwrap().0, agent);
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // Another principal cannot subscribe as the framework; alice can, and keeps it.
    let (tx, _rx2) = unbounded_channel();
    let as_mallory = Subscription {
        name: "fw".into(),
        framework_id: Some(fw.clone()),
        ..Subscription::default()
    };
    assert!(
        m.subscribe_framework(as_mallory.clone(), "mallory".into(), tx.clone())
            .is_err()
    );
    let (tx, mut rx) = unbounded_channel();
    m.subscribe_framework(as_mallory, "alice".into(), tx)
        .unwrap();
    assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(31))
            .is_empty()
    );

    // A master that declared the agent lost gives it a new id instead.
    old.remove_agent(&agent, "no heartbeat");
    let (new_id, _, _) = reregister(&mut old, &agent, "b").unwrap();
    assert_ne!(new_id, agent);
}

#[tokio::test]
async fn an_agent_restarted_within_its_timeout_keeps_its_id_from_a_new_address() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, t0);
    drain(&mut rx);
    let back = |m: &mut MasterState, address: &str, executors| {
        m.reregister_agent(
            agent.clone(),
            ("h".into(), address.into(), "b".into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            executors,
            t0,
        )
    };
    // It recovered its executor and listens on another port now.
    let (id, _, actions) = back(&mut m, "127.0.0.1:10", vec![recovered(&fw, 30.0)]).unwrap();
    assert_eq!((id.as_str(), actions.len()), (agent.as_str(), 0));
    assert_eq!(m.agents[&agent].address, "127.0.0.1:10");
    assert_eq!(m.agent_at.get("127.0.0.1:10"), Some(&agent));
    assert!(!m.agent_at.contains_key("127.0.0.1:9"));
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Running);
    assert!(drain(&mut rx).is_empty(), "the framework sees no loss");
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));

    // Back again without it: it ended while the agent was down, with no trace left.
    back(&mut m, "127.0.0.1:10", Vec::new()).unwrap();
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
    let events = drain(&mut rx);
    assert!(
        events.iter().any(|e| matches!(e,
            pb::event::Event::StatusUpdate(u) if u.executor_id == "e"
                && u.state == pb::ExecutorState::Lost as i32
                && u.message.contains("registered again (it restarted) without it"))),
        "{events:?}"
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);

    // Its framework removed while the agent was down (the shutdown did not reach it): the
    // executor it brings back is shut down.
    let (other, _rx2, _) = subscribe_alice(&mut m, "fw2", "", None);
    m.remove_framework(&other, "torn down");
    let mut kept = recovered(&other, 30.0);
    kept.executor_id = "e2".into();
    let (_, _, actions) = back(&mut m, "127.0.0.1:11", vec![kept]).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == other),
        "the removed framework's executor is shut down"
    );
}

#[tokio::test]
async fn a_placeholder_framework_not_back_within_its_failover_timeout_is_removed() {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let t0 = Instant::now();
    // Agent `id` (principal `name`) comes back with an executor of old-F0.
    let back = |m: &mut MasterState, id: &str, name: &str| {
        m.reregister_agent(
            id.into(),
            ("h".into(), format!("{name}.example:9"), name.into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            vec![recovered("old-F0", 5.0)],
            t0,
        )
        .unwrap()
    };
    back(&mut m, "old-S0", "b");
    assert!(m.expired_frameworks(t0 + Duration::from_secs(4)).is_empty());
    assert_eq!(
        m.expired_frameworks(t0 + Duration::from_secs(5)),
        ["old-F0"]
    );
    let actions = m.remove_framework("old-F0", "failover timeout");
    assert!(matches!(
        actions[..],
        [AgentAction::ShutdownFramework { .. }]
    ));
    // Removed, it cannot come back by id…
    let (tx, _rx) = unbounded_channel();
    let again = Subscription {
        name: "fw".into(),
        framework_id: Some("old-F0".into()),
        ..Subscription::default()
    };
    let err = m
        .subscribe_framework(again, "alice".into(), tx)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    // …and an agent that registers again with an executor of it is told to shut it down.
    m.remove_agent("old-S0", "test");
    let (_, _, actions) = back(&mut m, "old-S1", "c");
    assert!(
        matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == "old-F0")
    );
    assert!(m.executors.values().all(|e| e.agent_id != "old-S1"));
}

#[tokio::test]
async fn reconcile_answers_known_states_and_lost_for_unknown_executors() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, t0);
    drain(&mut rx);
    let states = |updates: Vec<pb::StatusUpdate>| -> Vec<(String, i32, i32)> {
        updates
            .into_iter()
            .map(|u| (u.executor_id, u.state, u.reason))
            .collect()
    };
    let reason = pb::ExecutorReason::Reconciliation as i32;
    let running = pb::ExecutorState::Running as i32;
    let lost = pb::ExecutorState::Lost as i32;
    // Implicit: every executor that has not ended.
    assert_eq!(
        states(m.reconciliation(&fw, &[])),
        [("e".to_string(), running, reason)]
    );
    // Explicit: those asked, LOST for the unknown.
    assert_eq!(
        states(m.reconciliation(&fw, &["e".into(), "ghost".into()])),
        [
            ("e".to_string(), running, reason),
            ("ghost".to_string(), lost, reason)
        ]
    );
    // Ended executors answer their end when asked by name, and are left out otherwise.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
    assert!(m.reconciliation(&fw, &[]).is_empty());
    let finished = pb::ExecutorState::Finished as i32;
    assert_eq!(
        states(m.reconciliation(&fw, &["e".into()])),
        [("e".to_string(), finished, reason)]
    );
    // Reconcile sends them as events, only to the framework's own principal.
    drain(&mut rx);
    assert!(m.reconcile(&fw, "mallory", &[]).is_err());
    m.reconcile(&fw, "alice", &["e".into()]).unwrap();
    assert!(
        matches!(&drain(&mut rx)[..], [pb::event::Event::StatusUpdate(u)] if u.reason == reason)
    );
}

/// A master with two agents of 2 CPUs and 1 GiB, and `alice`'s framework subscribed
/// in roles `a` and `b` with MULTI_ROLE, with its events.
fn multi_role_setup(
    now: Instant,
) -> (
    MasterState,
    String,
    UnboundedReceiver<Result<pb::Event, Status>>,
) {
    let mut m = MasterState::new(&config(Duration::ZERO));
    for (host, principal) in [("h1", "b1"), ("h2", "b2")] {
        m.register_agent(
            (host.into(), format!("{host}:9"), principal.into()),
            Resources::new(2.0, 1024),
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    }
    let subscription = Subscription {
        name: "fw".into(),
        roles: vec!["b".into(), "a".into()],
        capabilities: vec![roles::MULTI_ROLE.into()],
        ..Subscription::default()
    };
    let (tx, rx) = unbounded_channel();
    let (fw, _) = m
        .subscribe_framework(subscription, "alice".into(), tx)
        .unwrap();
    (m, fw, rx)
}

#[tokio::test]
async fn several_roles_need_multi_role_and_are_shown() {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let subscription = Subscription {
        name: "fw".into(),
        roles: vec!["a".into(), "b".into()],
        ..Subscription::default()
    };
    let (tx, _rx) = unbounded_channel();
    let err = m
        .subscribe_framework(subscription, "alice".into(), tx)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("claim the MULTI_ROLE capability"),
        "{}",
        err.message()
    );
    assert!(m.frameworks.is_empty());

    let (mut m, fw, _rx) = multi_role_setup(Instant::now());
    let shown = m.snapshot();
    assert_eq!(shown.frameworks[0].roles, ["a", "b"]);
    assert_eq!(shown.frameworks[0].role, "a");
    assert_eq!(m.frameworks[&fw].info().roles, ["a", "b"]);
    m.suppress(&fw, "alice", &["a".into()]).unwrap();
    let shown = m.snapshot();
    assert_eq!(shown.frameworks[0].suppressed_roles, ["a"]);
    assert!(!shown.frameworks[0].suppressed, "still wants offers in b");
    let err = m.suppress(&fw, "alice", &["c".into()]).unwrap_err();
    assert!(
        err.message().contains("not in role \"c\""),
        "{}",
        err.message()
    );
    m.revive(&fw, "alice", &[]).unwrap();
    assert!(m.snapshot().frameworks[0].suppressed_roles.is_empty());
}

#[tokio::test]
async fn resources_go_back_to_the_role_they_were_offered_in() {
    let now = Instant::now();
    let (mut m, fw, mut rx) = multi_role_setup(now);
    m.allocate(now);
    let made = offers(&drain(&mut rx));
    let in_role = |role: &str| {
        made.iter()
            .find(|o| o.allocation_role == role)
            .unwrap_or_else(|| panic!("an offer in {role}: {made:?}"))
            .clone()
    };
    let (in_a, in_b) = (in_role("a"), in_role("b"));
    let held = |m: &MasterState, role: &str| m.allocator.allocation_in(&fw, role);
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    assert_eq!(held(&m, "b"), Resources::new(2.0, 1024));
    assert_eq!(m.snapshot().offers.len(), 2);
    // Accept b's offer with one executor: the rest goes back to b, the executor keeps b.
    accept_one(&mut m, &fw, in_b.clone(), launch("e", 1.0, 256), now);
    assert_eq!(held(&m, "b"), Resources::new(1.0, 256));
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].allocation_role, "b");
    m.update_executor(
        &fw,
        "e",
        &in_b.agent_id,
        pb::ExecutorState::Running,
        String::new(),
    );
    m.update_executor(
        &fw,
        "e",
        &in_b.agent_id,
        pb::ExecutorState::Finished,
        String::new(),
    );
    assert_eq!(held(&m, "b"), Resources::ZERO);
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    // Declining a's offer gives it back to a.
    m.decline(&fw, "alice", &[in_a.id], 0.0, now).unwrap();
    assert_eq!(held(&m, "a"), Resources::ZERO);
}

#[tokio::test]
async fn each_framework_has_its_own_failover_timeout() {
    let mut m = MasterState::new(&config(Duration::from_secs(10)));
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for failover in [None, Some(Duration::from_secs(100))] {
        let (tx, _rx) = unbounded_channel();
        let sub = Subscription {
            name: "fw".into(),
            failover_timeout: failover,
            ..Subscription::default()
        };
        let (id, connection) = m.subscribe_framework(sub, "alice".into(), tx).unwrap();
        assert!(m.framework_disconnected(&id, connection, t0).is_empty());
        ids.push(id);
    }
    assert_eq!(
        m.expired_frameworks(t0 + Duration::from_secs(10)),
        [ids[0].clone()]
    );
    assert_eq!(m.expired_frameworks(t0 + Duration::from_secs(100)).len(), 2);
}

/// `alice` subscribes framework `name` in `role` (the default role when empty), anew or
/// again as `id`: its id, its events and its connection number.
fn subscribe_alice(
    m: &mut MasterState,
    name: &str,
    role: &str,
    id: Option<&str>,
) -> (String, UnboundedReceiver<Result<pb::Event, Status>>, u64) {
    let (tx, rx) = unbounded_channel();
    let (fw, connection) = m
        .subscribe(
            name.into(),
            "u".into(),
            role.into(),
            "alice".into(),
            id.map(String::from),
            tx,
        )
        .unwrap();
    (fw, rx, connection)
}

/// `alice` subscribes again as `fw`: its events and its connection number.
fn resubscribe(
    m: &mut MasterState,
    fw: &str,
) -> (UnboundedReceiver<Result<pb::Event, Status>>, u64) {
    let (same, rx, connection) = subscribe_alice(m, "fw", "", Some(fw));
    assert_eq!(same, fw);
    (rx, connection)
}

/// An update of executor `e` from agent `agent` with `uuid`.
fn agent_says(agent: &str, fw: &str, state: pb::ExecutorState, uuid: &str) -> pb::StatusUpdate {
    pb::StatusUpdate {
        agent_id: agent.into(),
        framework_id: fw.into(),
        executor_id: "e".into(),
        state: state as i32,
        uuid: uuid.into(),
        ..Default::default()
    }
}

fn forwarded_uuids(events: &[pb::event::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u.uuid.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn updates_are_kept_until_acknowledged_and_sent_again_on_resubscription() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    let running = agent_says(&agent, &fw, pb::ExecutorState::Running, "u1");
    assert!(m.agent_update("b", running.clone()).unwrap().is_empty());
    // The agent sends it again (no acknowledgement yet): forwarded again, kept once.
    m.agent_update("b", running).unwrap();
    assert_eq!(forwarded_uuids(&drain(&mut rx)), ["u1", "u1"]);
    assert_eq!(m.frameworks[&fw].unacknowledged.len(), 1);
    // Away, then back by id: it comes again after Registered.
    drop(rx);
    m.framework_disconnected(&fw, 0, t0);
    let (mut rx, _) = resubscribe(&mut m, &fw);
    let events = drain(&mut rx);
    assert!(matches!(events[0], pb::event::Event::Registered(_)));
    assert_eq!(forwarded_uuids(&events), ["u1"]);
    // Acknowledged: the agent is told, and it does not come again.
    let ack = pb::AcknowledgeRequest {
        framework_id: fw.clone(),
        agent_id: agent.clone(),
        executor_id: "e".into(),
        uuid: "u1".into(),
    };
    assert!(m.acknowledge("mallory", ack.clone()).is_err());
    let actions = m.acknowledge("alice", ack).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u1")
    );
    assert!(m.frameworks[&fw].unacknowledged.is_empty());
}

#[tokio::test]
async fn the_bookkeeping_follows_the_latest_state_and_orphans_are_acknowledged() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // RUNNING waits for its acknowledgement, but the executor has finished meanwhile.
    let update = pb::StatusUpdate {
        latest_state: pb::ExecutorState::Finished as i32,
        ..agent_says(&agent, &fw, pb::ExecutorState::Running, "u1")
    };
    m.agent_update("b", update).unwrap();
    let e = &m.executors[&(fw.clone(), "e".to_string())];
    assert_eq!(e.state, pb::ExecutorState::Finished);
    assert_eq!(
        m.allocator.allocation(&fw),
        Resources::ZERO,
        "its resources are back"
    );
    let forwarded = drain(&mut rx);
    assert!(
        matches!(&forwarded[..], [pb::event::Event::StatusUpdate(u)] if u.state == pb::ExecutorState::Running as i32)
    );
    // Its framework removed, the FINISHED update is acknowledged on its behalf.
    m.remove_framework(&fw, "torn down");
    let finished = agent_says(&agent, &fw, pb::ExecutorState::Finished, "u2");
    let actions = m.agent_update("b", finished).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u2")
    );
}

#[tokio::test]
async fn failures_kill_shutdown_and_messages() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    let graceful = |actions: Vec<AgentAction>| match &actions[..] {
        [AgentAction::Kill { request, .. }] => request.graceful,
        other => panic!("{other:?}"),
    };
    assert!(!graceful(m.kill(&fw, "alice", "e").unwrap()));
    assert!(graceful(m.shutdown_executor(&fw, "alice", "e").unwrap()));
    assert!(m.shutdown_executor(&fw, "mallory", "e").is_err());
    let actions = m.message(&fw, "alice", "e", b"hi".to_vec()).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Message { request, .. }] if request.data == b"hi")
    );
    assert!(m.message(&fw, "mallory", "e", Vec::new()).is_err());
    drain(&mut rx);

    // It fails with status 3: the update, and a Failure once (not for the update again).
    let failed = pb::StatusUpdate {
        exit_code: Some(3),
        ..agent_says(&agent, &fw, pb::ExecutorState::Failed, "u9")
    };
    m.agent_update("b", failed.clone()).unwrap();
    m.agent_update("b", failed).unwrap();
    let failures: Vec<pb::Failure> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::Failure(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].executor_id.as_str(), failures[0].status),
        ("e", Some(3))
    );
    let err = m.message(&fw, "alice", "e", Vec::new()).unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // Its agent lost: a Failure naming the agent.
    m.remove_agent(&agent, "no heartbeat");
    assert!(drain(&mut rx).iter().any(|e| matches!(e,
        pb::event::Event::Failure(f) if f.agent_id == agent && f.executor_id.is_empty())));
}

#[tokio::test]
async fn disconnected_framework_waits_out_its_failover_timeout() {
    let failover = Duration::from_secs(30);
    let (mut m, _agent, fw, rx, offer) = setup(failover);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.allocate(t0);
    drop(rx);
    let actions = m.framework_disconnected(&fw, 0, t0);
    assert!(
        actions.is_empty(),
        "executors survive within the failover timeout"
    );
    assert!(m.offers.is_empty(), "its offers are rescinded");
    assert!(!m.cluster_status().frameworks[0].connected);
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(29))
            .is_empty()
    );
    // Re-subscribing in time keeps it.
    let (mut rx, connection) = resubscribe(&mut m, &fw);
    assert_eq!(connection, 1);
    assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
    // A stale close of the old stream changes nothing.
    assert!(m.framework_disconnected(&fw, 0, t0).is_empty());
    assert!(m.cluster_status().frameworks[0].connected);
    // Disconnect again and let the timeout pass: removed, executors killed.
    drop(rx);
    m.framework_disconnected(&fw, 1, t0);
    let expired = m.expired_frameworks(t0 + failover);
    assert_eq!(expired, std::slice::from_ref(&fw));
    let actions = m.remove_framework(&fw, "failover timeout");
    assert!(matches!(
        actions[..],
        [AgentAction::ShutdownFramework { .. }]
    ));
    assert!(m.frameworks.is_empty());
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
}

#[tokio::test]
async fn an_executors_message_reaches_its_framework_only_from_its_own_agent() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    run_executor(&mut m, &agent, &fw, offer, Instant::now());
    drain(&mut rx);
    let message = |agent_id: &str, executor_id: &str| pb::ExecutorMessage {
        agent_id: agent_id.into(),
        framework_id: fw.clone(),
        executor_id: executor_id.into(),
        data: b"progress 50%".to_vec(),
    };
    let refused = m.executor_message("b", message(&agent, "no-such-executor"));
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let refused = m.executor_message("someone-else", message(&agent, "e"));
    assert!(
        refused.is_err(),
        "only the agent's own principal speaks for it"
    );
    assert!(
        drain(&mut rx).is_empty(),
        "nothing refused reaches the framework"
    );
    m.executor_message("b", message(&agent, "e")).unwrap();
    let events = drain(&mut rx);
    assert!(
        matches!(events.as_slice(), [pb::event::Event::Message(got)]
            if got.executor_id == "e" && got.data == b"progress 50%"),
        "{events:?}"
    );
    // Once the executor ended, its messages are refused.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
    assert!(m.executor_message("b", message(&agent, "e")).is_err());
}

#[tokio::test]
async fn a_framework_acts_only_for_its_own_principal() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::from_secs(30));
    let now = Instant::now();
    let accept = pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids: vec![offer.id.clone()],
        launches: vec![launch("e", 1.0, 64)],
        refuse_seconds: 0.0,
        ..Default::default()
    };
    let stolen = m.accept(accept.clone(), "mallory", now).unwrap_err();
    assert_eq!(stolen.code(), tonic::Code::PermissionDenied);
    assert!(
        stolen.message().contains("not yours"),
        "{}",
        stolen.message()
    );
    for err in [
        m.decline(&fw, "mallory", std::slice::from_ref(&offer.id), 0.0, now)
            .unwrap_err(),
        m.kill(&fw, "mallory", "e").unwrap_err(),
        m.check_framework(&fw, "mallory").unwrap_err(),
    ] {
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
    }
    let (tx, _rx2) = unbounded_channel();
    let takeover = m
        .subscribe(
            "x".into(),
            "u".into(),
            String::new(),
            "mallory".into(),
            Some(fw.clone()),
            tx,
        )
        .unwrap_err();
    assert_eq!(takeover.code(), tonic::Code::PermissionDenied);
    // The offer is still alice's, untouched.
    m.accept(accept, "alice", now)
        .expect("alice accepts her offer");
}

#[tokio::test]
async fn an_agent_cannot_take_another_agents_address_or_speak_for_it() {
    let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let taken = m
        .register_agent(
            ("h".into(), "127.0.0.1:9".into(), "rogue".into()),
            Resources::new(1.0, 64),
            "posix".into(),
            client(),
            now,
        )
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::PermissionDenied);
    assert_eq!(m.agents.len(), 1, "the real agent stays registered");
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 64), now);
    let update = |agent_id: &str, executor_id: &str| pb::StatusUpdate {
        agent_id: agent_id.into(),
        framework_id: fw.clone(),
        executor_id: executor_id.into(),
        state: pb::ExecutorState::Lost as i32,
        message: String::new(),
        exit_code: None,
        reason: 0,
        ..Default::default()
    };
    // Another agent's principal with the real agent's id, or the right agent for an
    // executor it does not run: refused, and the executor keeps its state.
    let (other, _) = m
        .register_agent(
            ("h2".into(), "127.0.0.1:10".into(), "c".into()),
            Resources::new(1.0, 64),
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    assert_eq!(
        m.agent_update("c", update(&agent, "e")).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        m.agent_update("c", update(&other, "e")).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        m.heartbeat(&agent, "c", now).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Starting);
    m.agent_update("b", update(&agent, "e")).unwrap();
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
}

#[tokio::test]
async fn malformed_values_are_refused_before_anything_changes() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let req = |refuse_seconds: f64, offer_ids: Vec<String>| pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids,
        launches: vec![launch("e", 1.0, 64)],
        refuse_seconds,
        ..Default::default()
    };
    for bad in [f64::NAN, -1.0] {
        let err = m
            .accept(req(bad, vec![offer.id.clone()]), "alice", now)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    let twice = m
        .accept(
            req(0.0, vec![offer.id.clone(), offer.id.clone()]),
            "alice",
            now,
        )
        .unwrap_err();
    assert!(
        twice.message().contains("more than once"),
        "{}",
        twice.message()
    );
    let mut nan_cpus = req(0.0, vec![offer.id.clone()]);
    nan_cpus.launches[0].resources = wire(f64::NAN, 1);
    assert!(m.accept(nan_cpus, "alice", now).is_err());
    assert!(m.offers.contains_key(&offer.id), "the offer is still there");
    // A huge filter is capped, not a panic, and the rest is filtered for a year.
    m.accept(req(1e20, vec![offer.id.clone()]), "alice", now)
        .expect("accept with a huge filter");
    m.allocate(now + Duration::from_secs(3600));
    assert!(m.offers.is_empty(), "the unused part is filtered");
    assert_eq!(refuse_duration(1e20).unwrap(), MAX_REFUSE);
    assert_eq!(refuse_duration(f64::INFINITY).unwrap(), MAX_REFUSE);
    assert_eq!(refuse_duration(0.0).unwrap(), Duration::ZERO);
    let amount = |cpus: f64, mem_mb: u64| pb::Resources {
        cpus,
        mem_mb,
        ..Default::default()
    };
    for bad in [amount(f64::NAN, 1), amount(-1.0, 1), amount(1.0, u64::MAX)] {
        assert!(check_resources("agent x", Some(&bad)).is_err(), "{bad:?}");
    }
    let nan_gpus = pb::Resources {
        scalars: [("gpus".to_string(), f64::NAN)].into(),
        ..Default::default()
    };
    let high_port = pb::Resources {
        ports: vec![pb::Range {
            begin: 1,
            end: 70000,
        }],
        ..Default::default()
    };
    for bad in [nan_gpus, high_port] {
        let err = check_extras("agent x", Some(&bad)).unwrap_err();
        assert!(err.message().contains("agent x has an invalid"), "{err}");
    }
    assert!(check_id("framework id", "").is_err());
    assert!(check_id("framework id", &"x".repeat(300)).is_err());
}
