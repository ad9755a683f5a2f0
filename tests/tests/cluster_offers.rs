//! End-to-end tests of the offer-based cluster manager: a real `tessera-master`
//! and real `tessera-agent` processes on 127.0.0.1 (through
//! `tessera_framework::LocalCluster`), a framework subscribed with
//! `FrameworkClient`, and real executor processes.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tessera_e2e::alive;
use tessera_framework::{
    ExecutorLaunch, ExecutorState, FrameworkClient, FrameworkEvent, FrameworkInfo, LocalCluster,
    MasterEndpoint, Offer, Resources, cluster_status,
};
use tokio::sync::mpsc::Receiver;

/// Every wait in these tests gives up after this long.
const WAIT: Duration = Duration::from_secs(5);

/// target/debug/, where cargo puts the workspace's binaries (this test runs
/// from target/debug/deps/).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps/")
        .to_path_buf();
    for bin in ["tessera-master", "tessera-agent"] {
        // A concurrent cargo build relinks binaries: allow a moment.
        for _ in 0..100 {
            if dir.join(bin).is_file() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: run `cargo build --workspace --bins` before these tests",
            dir.join(bin).display()
        );
    }
    dir
}

/// `address` with a framework credential of a CA of its own (for masters that are not there).
fn stranger(address: &str) -> MasterEndpoint {
    let ca = tessera_credentials::Authority::generate("stranger").unwrap();
    MasterEndpoint {
        address: address.into(),
        credential: ca
            .issue(
                &tessera_credentials::Principal::Framework("x".into()),
                Duration::from_secs(600),
            )
            .unwrap(),
    }
}

/// A subscribed framework plus the offers it holds, kept up to date as events
/// go by.
struct Framework {
    client: FrameworkClient,
    events: Receiver<FrameworkEvent>,
    /// Outstanding offers by agent id.
    offers: BTreeMap<String, Vec<Offer>>,
    /// Every executor status update so far: (executor, agent, state, message).
    updates: Vec<(String, String, ExecutorState, String)>,
    seen: Vec<String>,
}

impl Framework {
    async fn subscribe(master: &MasterEndpoint, name: &str) -> Framework {
        Framework::subscribe_in(master, name, "").await
    }

    async fn subscribe_in(master: &MasterEndpoint, name: &str, role: &str) -> Framework {
        let info = FrameworkInfo {
            name: name.into(),
            user: "tester".into(),
            role: role.into(),
            ..Default::default()
        };
        Framework::subscribe_as(master, info).await
    }

    async fn subscribe_as(master: &MasterEndpoint, info: FrameworkInfo) -> Framework {
        let (client, events) = tokio::time::timeout(WAIT, FrameworkClient::subscribe(master, info))
            .await
            .expect("subscribe timed out")
            .expect("subscribe");
        let mut fw = Framework {
            client,
            events,
            offers: BTreeMap::new(),
            updates: Vec::new(),
            seen: Vec::new(),
        };
        let id = fw
            .wait_for("Registered", |e| match e {
                FrameworkEvent::Registered { framework_id } => Some(framework_id.clone()),
                _ => None,
            })
            .await;
        assert_eq!(id, fw.client.framework_id());
        fw
    }

    /// Reads events until `pick` returns something, recording offers on the
    /// way. Panics (with the events seen) after `WAIT` or on disconnection.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        pick: impl FnMut(&FrameworkEvent) -> Option<T>,
    ) -> T {
        self.wait_for_within(what, WAIT, pick).await
    }

    async fn wait_for_within<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&FrameworkEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => panic!(
                    "event stream ended while waiting for {what}; events: {:#?}",
                    self.seen
                ),
                Err(_) => panic!("no {what} within {within:?}; events: {:#?}", self.seen),
            };
            self.seen.push(format!("{event:?}"));
            self.record(&event);
            if let FrameworkEvent::Disconnected(why) = &event {
                panic!("disconnected while waiting for {what}: {why}");
            }
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    fn record(&mut self, event: &FrameworkEvent) {
        match event {
            FrameworkEvent::Offers(offers) => {
                for o in offers {
                    self.offers
                        .entry(o.agent_id.clone())
                        .or_default()
                        .push(o.clone());
                }
            }
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                state,
                message,
                ..
            } => {
                self.updates.push((
                    executor_id.clone(),
                    agent_id.clone(),
                    *state,
                    message.clone(),
                ));
            }
            FrameworkEvent::OfferRescinded(id) => {
                for list in self.offers.values_mut() {
                    list.retain(|o| &o.id != id);
                }
            }
            _ => {}
        }
    }

    /// Collects events for `period`, recording offers; returns the offers seen.
    async fn offers_during(&mut self, period: Duration) -> Vec<Offer> {
        let deadline = tokio::time::Instant::now() + period;
        let mut got = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            self.seen.push(format!("{event:?}"));
            self.record(&event);
            if let FrameworkEvent::Offers(offers) = &event {
                got.extend(offers.iter().cloned());
            }
        }
        got
    }

    /// Waits until it holds offers from `n` distinct agents.
    async fn wait_offers_from(&mut self, n: usize) {
        while self.offers.values().filter(|l| !l.is_empty()).count() < n {
            self.wait_for("offers", |e| {
                matches!(e, FrameworkEvent::Offers(_)).then_some(())
            })
            .await;
        }
    }

    fn take_offer(&mut self, agent_id: &str) -> Option<Offer> {
        self.offers.get_mut(agent_id).and_then(|l| l.pop())
    }

    /// Declines one held offer of each agent, filtering the agent for `refuse_seconds`.
    async fn decline_held(&mut self, refuse_seconds: f64) {
        for agent in self.offers.keys().cloned().collect::<Vec<_>>() {
            let offer = self.take_offer(&agent).unwrap();
            self.client
                .decline(&offer.id, refuse_seconds)
                .await
                .unwrap();
        }
    }

    /// Waits for the executor to reach `state`; returns (agent id, message).
    async fn wait_state(&mut self, executor: &str, state: ExecutorState) -> (String, String) {
        self.wait_state_within(executor, state, WAIT).await
    }

    async fn wait_state_within(
        &mut self,
        executor: &str,
        state: ExecutorState,
        within: Duration,
    ) -> (String, String) {
        // It may have gone by while waiting for something else.
        if let Some((_, agent, _, message)) = self
            .updates
            .iter()
            .find(|(e, _, s, _)| e == executor && *s == state)
        {
            return (agent.clone(), message.clone());
        }
        self.wait_for_within(&format!("{executor} {state}"), within, |e| match e {
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                state: s,
                message,
                ..
            } if executor_id == executor && *s == state => {
                Some((agent_id.clone(), message.clone()))
            }
            FrameworkEvent::ExecutorStatus {
                executor_id,
                state: s,
                message,
                ..
            } if executor_id == executor && s.is_terminal() => {
                panic!("{executor} ended {s} while waiting for {state}: {message}")
            }
            _ => None,
        })
        .await
    }
}

fn shell(executor_id: &str, script: &str, resources: Resources) -> ExecutorLaunch {
    ExecutorLaunch {
        executor_id: executor_id.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("TESSERA_TEST".into(), "1".into())],
        resources,
        extras: Default::default(),
        files_credential: None,
    }
}

/// The pid an executor wrote into `pid` in its sandbox, on whichever agent.
async fn executor_pid(
    cluster: &LocalCluster,
    agents: usize,
    framework_id: &str,
    executor_id: &str,
) -> u32 {
    let deadline = Instant::now() + WAIT;
    loop {
        for i in 0..agents {
            let file = cluster
                .agent_work_dir(i)
                .join("frameworks")
                .join(framework_id)
                .join("executors")
                .join(executor_id)
                .join("pid");
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{executor_id} wrote no pid file in its sandbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) is still running after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_cluster(agents: usize, cpus: f64, mem_mb: u64) -> LocalCluster {
    tokio::time::timeout(
        Duration::from_secs(30),
        LocalCluster::start(agents, cpus, mem_mb, &bin_dir()),
    )
    .await
    .expect("local cluster start timed out")
    .expect("local cluster")
}

/// Strict priority between roles, through the real master: the high-priority role is offered
/// everything; while it suppresses and declines, the other role is offered what it let go;
/// once it revives and the other declines, it is offered again. `cluster status` shows each
/// framework's role and whether it suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_served_by_priority_and_suppress_and_revive_hand_offers_over() {
    let cluster = tokio::time::timeout(
        Duration::from_secs(30),
        LocalCluster::start_with(
            2,
            2.0,
            1024,
            &bin_dir(),
            &["--allocator", "priority", "--role-weight", "prod=10"],
        ),
    )
    .await
    .expect("local cluster start timed out")
    .expect("local cluster");
    let master = cluster.endpoint();
    // Offers out are not taken back for a higher priority (as in Mesos): prod comes first.
    let mut prod = Framework::subscribe_in(&master, "prod", "prod").await;
    prod.wait_offers_from(2).await;
    let mut batch = Framework::subscribe_in(&master, "batch", "").await;
    let status = cluster_status(&master).await.unwrap();
    let role_of = |name: &str| {
        let f = status.frameworks.iter().find(|f| f.name == name).unwrap();
        (f.role.clone(), f.suppressed)
    };
    assert_eq!(role_of("prod"), ("prod".to_string(), false));
    assert_eq!(role_of("batch"), ("*".to_string(), false));
    assert!(
        batch
            .offers_during(Duration::from_millis(600))
            .await
            .is_empty(),
        "the low-priority role is offered nothing while the high one holds it all"
    );
    // prod gives one agent back without a filter: though it holds the larger share (DRF
    // would offer the agent to batch), its priority brings the agent back to it.
    let given_back = prod.offers.keys().next().cloned().unwrap();
    let offer = prod.take_offer(&given_back).unwrap();
    prod.client.decline(&offer.id, 0.0).await.unwrap();
    prod.wait_offers_from(2).await;
    assert!(prod.offers.contains_key(&given_back));
    assert!(
        batch
            .offers_during(Duration::from_millis(300))
            .await
            .is_empty()
    );

    prod.client.suppress().await.unwrap();
    prod.decline_held(0.0).await;
    batch.wait_offers_from(2).await;
    let status = cluster_status(&master).await.unwrap();
    assert!(
        status
            .frameworks
            .iter()
            .any(|f| f.name == "prod" && f.suppressed),
        "{status:?}"
    );
    assert!(
        prod.offers_during(Duration::from_millis(600))
            .await
            .is_empty(),
        "a suppressed framework is offered nothing"
    );

    prod.client.revive().await.unwrap();
    batch.decline_held(30.0).await;
    prod.wait_offers_from(2).await;
    let status = cluster_status(&master).await.unwrap();
    assert!(
        status
            .frameworks
            .iter()
            .any(|f| f.name == "prod" && !f.suppressed),
        "{status:?}"
    );
}

/// A framework in roles a and b (MULTI_ROLE) is offered in each, the offers marked with their
/// role; once it suppresses a, only b's offers come. Without the capability, two roles are
/// refused with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_role_framework_gets_offers_per_role_and_suppresses_one() {
    let cluster = start_cluster(2, 2.0, 1024).await;
    let master = cluster.endpoint();
    let info = FrameworkInfo {
        name: "multi".into(),
        user: "tester".into(),
        roles: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let refused = FrameworkClient::subscribe(&master, info.clone()).await;
    let err = refused
        .expect_err("two roles without MULTI_ROLE")
        .to_string();
    assert!(err.contains("MULTI_ROLE"), "{err}");

    let info = FrameworkInfo {
        capabilities: vec!["MULTI_ROLE".into()],
        ..info
    };
    let mut fw = Framework::subscribe_as(&master, info).await;
    fw.wait_offers_from(2).await;
    let mut roles: Vec<String> = (fw.offers.values().flatten())
        .map(|o| o.allocation_role.clone())
        .collect();
    roles.sort();
    assert_eq!(roles, ["a", "b"], "one agent offered in each role");
    let status = cluster_status(&master).await.unwrap();
    let shown = status
        .frameworks
        .iter()
        .find(|f| f.name == "multi")
        .unwrap();
    assert_eq!(shown.roles, ["a", "b"]);
    assert!(
        status.offers.iter().any(|(_, o)| o.allocation_role == "a"),
        "{status:?}"
    );

    fw.client.suppress_roles(&["a"]).await.unwrap();
    for agent in fw.offers.keys().cloned().collect::<Vec<_>>() {
        let offer = fw.take_offer(&agent).unwrap();
        fw.client.decline(&offer.id, 0.0).await.unwrap();
    }
    fw.wait_offers_from(2).await;
    let mut later: Vec<Offer> = fw.offers.values().flatten().cloned().collect();
    later.extend(fw.offers_during(Duration::from_millis(600)).await);
    assert!(
        later.iter().all(|o| o.allocation_role == "b"),
        "only b is offered once a is suppressed: {later:?}"
    );
    let status = cluster_status(&master).await.unwrap();
    let shown = status
        .frameworks
        .iter()
        .find(|f| f.name == "multi")
        .unwrap();
    assert_eq!(shown.suppressed_roles, ["a"]);
    assert!(!shown.suppressed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_launch_kill_decline_and_teardown_on_two_agents() {
    let cluster = start_cluster(2, 2.0, 1024).await;
    let master = cluster.endpoint();
    let mut fw = Framework::subscribe(&master, "offers-e2e").await;
    let framework_id = fw.client.framework_id().to_string();

    // Offers from both agents, each for the agent's whole resources.
    fw.wait_offers_from(2).await;
    let agents: Vec<String> = fw.offers.keys().cloned().collect();
    assert_eq!(agents.len(), 2, "offers: {:?}", fw.offers);
    for agent in &agents {
        let offer = &fw.offers[agent][0];
        assert_eq!(offer.resources, Resources::new(2.0, 1024), "{offer:?}");
    }

    // One executor per agent.
    let per_executor = Resources::new(1.0, 256);
    for (i, agent) in agents.iter().enumerate() {
        let offer = fw.take_offer(agent).expect("an offer for the agent");
        let script = "echo $$ > pid; exec sleep 30";
        fw.client
            .accept(
                &offer.id,
                vec![shell(&format!("exec-{i}"), script, per_executor)],
            )
            .await
            .expect("accept");
    }
    let (agent0, _) = fw.wait_state("exec-0", ExecutorState::Running).await;
    let (agent1, _) = fw.wait_state("exec-1", ExecutorState::Running).await;
    assert_ne!(agent0, agent1, "the executors must run on different agents");
    assert_eq!(agent0, agents[0]);
    assert_eq!(agent1, agents[1]);
    let pid0 = executor_pid(&cluster, 2, &framework_id, "exec-0").await;
    let pid1 = executor_pid(&cluster, 2, &framework_id, "exec-1").await;
    assert!(alive(pid0) && alive(pid1));

    // The master accounts for both executors.
    let status = cluster_status(&master).await.expect("cluster status");
    assert_eq!(status.agents.len(), 2);
    for agent in &status.agents {
        assert_eq!(agent.total, Resources::new(2.0, 1024), "{agent:?}");
        assert_eq!(agent.allocated, per_executor, "{agent:?}");
    }
    let me = status
        .frameworks
        .iter()
        .find(|f| f.id == framework_id)
        .expect("framework listed");
    assert_eq!(me.name, "offers-e2e");
    assert_eq!(me.allocated, Resources::new(2.0, 512));
    assert!(me.connected);
    assert!(
        me.dominant_share >= 0.5 - 1e-9,
        "dominant share {}",
        me.dominant_share
    );
    let running: Vec<_> = status
        .executors
        .iter()
        .filter(|e| e.framework_id == framework_id && e.state == ExecutorState::Running)
        .map(|e| (e.executor_id.as_str(), e.agent_id.as_str()))
        .collect();
    assert_eq!(
        running,
        [("exec-0", agent0.as_str()), ("exec-1", agent1.as_str())]
    );

    // Kill one: KILLED, process gone, its agent's resources free again.
    fw.client.kill_executor("exec-0").await.expect("kill");
    let (_, message) = fw.wait_state("exec-0", ExecutorState::Killed).await;
    assert!(!message.is_empty());
    wait_gone(pid0, "killed executor exec-0").await;
    assert!(alive(pid1), "exec-1 must keep running");

    // Decline every offer for agent 1 with a long filter: no more offers for
    // it, while agent 0 (now entirely free) is offered again.
    if fw.offers.get(&agent1).is_none_or(|l| l.is_empty()) {
        fw.wait_for("an offer for agent 1", |e| match e {
            FrameworkEvent::Offers(o) if o.iter().any(|o| o.agent_id == agent1) => Some(()),
            _ => None,
        })
        .await;
    }
    while let Some(offer) = fw.take_offer(&agent1) {
        assert_eq!(
            offer.resources,
            Resources::new(1.0, 768),
            "the rest of agent 1: {offer:?}"
        );
        fw.client.decline(&offer.id, 60.0).await.expect("decline");
    }
    // Agent 0's offers are declined without a filter, so they return; once
    // all its pieces are back it is offered in full. Meanwhile agent 1 must
    // not be offered at all.
    let full = Resources::new(2.0, 1024);
    let mut later = Vec::new();
    let mut agent0_full = false;
    let watch_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch_until || !agent0_full {
        assert!(
            Instant::now() < watch_until + WAIT,
            "agent 0 was not offered in full again: {later:?}"
        );
        while let Some(offer) = fw.take_offer(&agent0) {
            if offer.resources == full {
                agent0_full = true;
            }
            later.push(offer.clone());
            fw.client.decline(&offer.id, 0.0).await.expect("decline");
        }
        let _ = fw.offers_during(Duration::from_millis(100)).await;
        assert!(
            fw.offers.get(&agent1).is_none_or(|l| l.is_empty()),
            "agent 1 was offered again despite the refuse filter: {:?}",
            fw.offers
        );
    }
    let status = cluster_status(&master).await.expect("cluster status");
    assert!(
        status.offers.iter().all(|(_, o)| o.agent_id != agent1),
        "{:?}",
        status.offers
    );

    // Dropping the framework ends its subscription; the master removes it
    // (failover timeout 0) and its agents kill its remaining executor.
    let Framework { client, events, .. } = fw;
    drop(client);
    drop(events);
    wait_gone(pid1, "exec-1 after its framework went away").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let status = cluster_status(&master).await.expect("cluster status");
        let gone = status.frameworks.iter().all(|f| f.id != framework_id);
        let freed = status.agents.iter().all(|a| a.allocated == Resources::ZERO);
        let exec1 = status
            .executors
            .iter()
            .find(|e| e.executor_id == "exec-1")
            .map(|e| e.state);
        if gone && freed && exec1 == Some(ExecutorState::Killed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "framework not cleaned up: frameworks {:?}, agents {:?}, exec-1 {exec1:?}",
            status.frameworks,
            status.agents
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commands_are_reported_failed_with_their_exit_status() {
    let cluster = start_cluster(1, 1.0, 512).await;
    let mut fw = Framework::subscribe(&cluster.endpoint(), "failures-e2e").await;
    fw.wait_offers_from(1).await;
    let agent = fw.offers.keys().next().cloned().expect("an agent");
    let offer = fw.take_offer(&agent).expect("an offer");
    let half = Resources::new(0.5, 128);
    let missing = ExecutorLaunch {
        executor_id: "missing".into(),
        program: "/nonexistent/tessera-no-such-program".into(),
        args: vec![],
        env: vec![],
        resources: half,
        extras: Default::default(),
        files_credential: None,
    };
    fw.client
        .accept(
            &offer.id,
            vec![
                shell("exit-3", "echo 'bad input on line 7' >&2; exit 3", half),
                missing,
            ],
        )
        .await
        .expect("accept");

    let (_, message) = fw.wait_state("exit-3", ExecutorState::Failed).await;
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(
        message.contains("bad input on line 7"),
        "stderr tail missing: {message}"
    );
    let (_, message) = fw.wait_state("missing", ExecutorState::Failed).await;
    assert!(message.contains("cannot start"), "{message}");
    assert!(
        message.contains("/nonexistent/tessera-no-such-program"),
        "{message}"
    );

    // Their resources come back: the whole agent is offered again.
    let deadline = Instant::now() + WAIT;
    while !fw
        .offers
        .get(&agent)
        .is_some_and(|l| l.iter().any(|o| o.resources == Resources::new(1.0, 512)))
    {
        assert!(
            Instant::now() < deadline,
            "agent not offered in full again: {:?}",
            fw.offers
        );
        let _ = fw.offers_during(Duration::from_millis(200)).await;
        let taken: Vec<Offer> = fw.offers.values_mut().flat_map(std::mem::take).collect();
        for o in &taken {
            if o.resources == Resources::new(1.0, 512) {
                fw.offers
                    .entry(o.agent_id.clone())
                    .or_default()
                    .push(o.clone());
            } else {
                fw.client.decline(&o.id, 0.0).await.expect("decline");
            }
        }
    }
    let status = cluster_status(&cluster.endpoint())
        .await
        .expect("cluster status");
    let states: BTreeMap<_, _> = status
        .executors
        .iter()
        .map(|e| (e.executor_id.as_str(), e.state))
        .collect();
    assert_eq!(states.get("exit-3"), Some(&ExecutorState::Failed));
    assert_eq!(states.get("missing"), Some(&ExecutorState::Failed));

    // Teardown ends the subscription.
    fw.client.teardown().await.expect("teardown");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, fw.events.recv()).await {
            Ok(Some(FrameworkEvent::Disconnected(why))) => {
                assert!(why.contains("removed"), "{why}");
                break;
            }
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => panic!("the subscription did not end after teardown"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_is_a_clear_error() {
    // Nothing listens on port 1.
    let err = cluster_status(&stranger("127.0.0.1:1"))
        .await
        .expect_err("no master there");
    let text = err.to_string();
    eprintln!("the error a person sees: {text}");
    assert!(
        text.contains("cannot reach the Tessera master at 127.0.0.1:1"),
        "{text}"
    );
    assert!(text.contains("tessera-master --port 1"), "{text}");
    let info = FrameworkInfo {
        name: "x".into(),
        user: String::new(),
        role: String::new(),
        ..Default::default()
    };
    let err = FrameworkClient::subscribe(&stranger("127.0.0.1:1"), info)
        .await
        .expect_err("no master there");
    assert!(
        err.to_string().contains("is tessera-master running?"),
        "{err}"
    );
    let err = cluster_status(&stranger("not-an-address"))
        .await
        .expect_err("bad address");
    assert!(err.to_string().contains("HOST:PORT"), "{err}");
}

/// An agent killed with SIGKILL leaves its executors running (an agent restarted in time
/// recovers them: `cluster_recovery.rs`); one not back within the master's agent timeout is
/// declared lost, its executors reported LOST — and when it does come back, the master gives
/// it a new id and the agent kills the executors it had given up on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_of_an_agent_lost_to_the_master_are_reported_lost_and_killed_on_its_return() {
    let mut cluster = start_cluster(1, 1.0, 512).await;
    let master = cluster.endpoint();
    let mut fw = Framework::subscribe(&master, "agent-loss-e2e").await;
    let framework_id = fw.client.framework_id().to_string();
    fw.wait_offers_from(1).await;
    let agent = fw.offers.keys().next().cloned().expect("an agent");
    let offer = fw.take_offer(&agent).expect("an offer");
    fw.client
        .accept(
            &offer.id,
            vec![shell(
                "victim",
                "echo $$ > pid; exec sleep 30",
                Resources::new(1.0, 128),
            )],
        )
        .await
        .expect("accept");
    fw.wait_state("victim", ExecutorState::Running).await;
    let pid = executor_pid(&cluster, 1, &framework_id, "victim").await;

    // SIGKILL the agent: the master (5 s agent timeout in a local cluster) reports the
    // executor LOST, though its process runs on.
    cluster.kill_agent(0);
    let (_, message) = fw
        .wait_state_within("victim", ExecutorState::Lost, Duration::from_secs(10))
        .await;
    assert!(message.contains("lost"), "{message}");
    assert!(alive(pid), "the executor outlives its agent");
    let status = cluster_status(&master).await.expect("cluster status");
    assert!(
        status.agents.is_empty(),
        "the lost agent must leave the pool: {:?}",
        status.agents
    );

    // Back (within its own recovery timeout): it adopts the executor, but the master gives it
    // a new id, so it kills it.
    cluster.start_agent(0).expect("the agent starts again");
    wait_gone(pid, "executor of an agent the master declared lost").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let status = cluster_status(&master).await.expect("cluster status");
        if let [again] = &status.agents[..] {
            assert_ne!(again.id, agent, "a lost agent comes back under a new id");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not register again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A master that stops answering (SIGSTOP: its connections stay open, nothing comes) is
/// noticed from its missing heartbeats, with a message that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_hears_when_the_master_falls_silent() {
    let cluster = tokio::time::timeout(
        Duration::from_secs(30),
        LocalCluster::start_with(
            1,
            1.0,
            256,
            &bin_dir(),
            &["--framework-heartbeat-interval-ms", "200"],
        ),
    )
    .await
    .expect("local cluster start timed out")
    .expect("local cluster");
    let mut fw = Framework::subscribe(&cluster.endpoint(), "silent-master-e2e").await;
    let master_pid = cluster.master_pid().expect("master running").to_string();
    let signal = |name: &str| {
        let rc = std::process::Command::new("kill")
            .args([name, &master_pid])
            .status()
            .expect("kill");
        assert!(rc.success());
    };
    // Heartbeats keep a quiet subscription alive well past three intervals.
    let _ = fw.offers_during(Duration::from_millis(1500)).await;
    assert!(
        !fw.seen.iter().any(|e| e.starts_with("Disconnected")),
        "{:?}",
        fw.seen
    );
    signal("-STOP");
    let deadline = tokio::time::Instant::now() + WAIT;
    let why = loop {
        match tokio::time::timeout_at(deadline, fw.events.recv()).await {
            Ok(Some(FrameworkEvent::Disconnected(why))) => break why,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the event stream ended without Disconnected"),
            Err(_) => panic!("no Disconnected within {WAIT:?} of the master falling silent"),
        }
    };
    signal("-CONT");
    assert!(why.contains("no word from the Tessera master"), "{why}");
    assert!(why.contains(cluster.master_address()), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_hears_when_the_master_dies() {
    let cluster = start_cluster(1, 1.0, 256).await;
    let mut fw = Framework::subscribe(&cluster.endpoint(), "master-loss-e2e").await;
    let master_pid = cluster.master_pid().expect("master running");
    let rc = std::process::Command::new("kill")
        .args(["-9", &master_pid.to_string()])
        .status()
        .expect("kill");
    assert!(rc.success());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, fw.events.recv()).await {
            Ok(Some(FrameworkEvent::Disconnected(why))) => {
                assert!(why.contains(cluster.master_address()), "{why}");
                break;
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the event stream ended without Disconnected"),
            Err(_) => panic!("no Disconnected within {WAIT:?} of the master dying"),
        }
    }
    let err = fw
        .client
        .decline("no-such-offer", 0.0)
        .await
        .expect_err("master is gone");
    assert!(
        err.to_string().contains("cannot reach the Tessera master"),
        "{err}"
    );
}
