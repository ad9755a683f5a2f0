//! The master's bookkeeping, driven directly: emulated agents and frameworks, no network.

use super::checks::MAX_REFUSE;
use super::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

mod agents;
mod executors;
mod frameworks;
mod observing;
mod reservations;
mod trust;

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

#[test]
fn masters_started_at_once_give_different_ids() {
    let ids: std::collections::BTreeSet<String> = (0..3)
        .map(|_| MasterState::new(&config(Duration::ZERO)).run_id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
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
