//! Recovery of the cluster manager, end to end with real `tessera-master` and `tessera-agent`
//! processes on 127.0.0.1: the master is killed with SIGKILL and a new one starts on the same
//! port; the agent registers again with the executors it runs, the framework subscribes again
//! by id within its failover timeout and reconciles, and the executors — the very same
//! processes — keep running. A real `tessera run` session that cached an RDD before the restart
//! counts it from the cache after it.
//!
//! The agent too is killed with SIGKILL and started again on its work directory: within its
//! recovery timeout it takes its executors back from its checkpoint under its old id (a
//! session counts its cached RDD from the same executor after it), and sends again the status
//! updates that waited; past the timeout it kills them and their framework gets them LOST.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use tessera_e2e::{
    Scratch, alive, assert_second_count_cached, bin_dir, cache_then_wait_script, finished,
    read_task_metrics, run_in_background, tessera_on, wait_for_tasks,
};
use tessera_framework::{
    ExecutorLaunch, ExecutorReason, ExecutorState, FrameworkClient, FrameworkEvent, FrameworkInfo,
    LocalCluster, MasterEndpoint, Resources, cluster_status,
};
use tokio::sync::mpsc::Receiver;

/// Every wait gives up after this long.
const WAIT: Duration = Duration::from_secs(20);

/// Reads events until `pick` returns something; panics after [`WAIT`] or on Disconnected.
async fn next_matching<T>(
    events: &mut Receiver<FrameworkEvent>,
    what: &str,
    mut pick: impl FnMut(&FrameworkEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(FrameworkEvent::Disconnected(why))) => {
                panic!("disconnected while waiting for {what}: {why}; before: {seen:#?}")
            }
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
                seen.push(event);
            }
            Ok(None) => panic!("events ended while waiting for {what}: {seen:#?}"),
            Err(_) => panic!("no {what} within {WAIT:?}; events: {seen:#?}"),
        }
    }
}

/// Waits until the client has subscribed again by itself under `framework_id` and the master
/// shows its `executor` running.
async fn back_with_executor(
    events: &mut Receiver<FrameworkEvent>,
    cluster: &LocalCluster,
    framework_id: &str,
    executor: &str,
) {
    let again = next_matching(events, "Registered again", |e| match e {
        FrameworkEvent::Registered { framework_id } => Some(framework_id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(again, framework_id);
    wait_status(&cluster.endpoint(), "the executor kept", |s| {
        keeps(s, framework_id, executor)
    })
    .await;
}

/// The next answer to a reconciliation about `executor` (an update sent again may come
/// before: a framework may see an update more than once).
async fn next_reconciled(events: &mut Receiver<FrameworkEvent>, executor: &str) -> Update {
    loop {
        let u = next_update(events, executor).await;
        if u.reason == Some(ExecutorReason::Reconciliation) {
            return u;
        }
    }
}

/// The first offer that comes.
async fn first_offer(events: &mut Receiver<FrameworkEvent>) -> tessera_framework::Offer {
    next_matching(events, "an offer", |e| match e {
        FrameworkEvent::Offers(offers) => offers.first().cloned(),
        _ => None,
    })
    .await
}

/// Polls the master until `check` holds for its status; panics after [`WAIT`].
async fn wait_status(
    endpoint: &MasterEndpoint,
    what: &str,
    check: impl Fn(&tessera_framework::ClusterStatus) -> bool,
) {
    wait_status_for(endpoint, what, |status| check(status).then_some(())).await
}

/// Polls the master until `probe` finds what it looks for in its status, and returns it;
/// panics after [`WAIT`].
async fn wait_status_for<T>(
    endpoint: &MasterEndpoint,
    what: &str,
    probe: impl Fn(&tessera_framework::ClusterStatus) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(status) = cluster_status(endpoint).await
            && let Some(found) = probe(&status)
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the master shows `executor` of `framework` running and the framework subscribed.
fn keeps(status: &tessera_framework::ClusterStatus, framework: &str, executor: &str) -> bool {
    status
        .frameworks
        .iter()
        .any(|f| f.id == framework && f.connected)
        && status.executors.iter().any(|e| {
            e.framework_id == framework
                && e.executor_id == executor
                && e.state == ExecutorState::Running
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restart_keeps_executors_and_the_framework_reconciles() {
    let mut cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let info = FrameworkInfo {
        name: "recovery-e2e".into(),
        failover_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let (client, mut events) = FrameworkClient::subscribe(&cluster.endpoint(), info)
        .await
        .expect("subscribe");
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    let launch = ExecutorLaunch {
        executor_id: "sleeper".into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "echo $$ > pid; exec sleep 600".into()],
        env: Vec::new(),
        resources: Resources::new(1.0, 128),
        extras: Default::default(),
        files_credential: None,
    };
    client
        .accept(&offer.id, vec![launch])
        .await
        .expect("accept");
    while next_update(&mut events, "sleeper").await.state != ExecutorState::Running {}
    let pid = written_pid(&cluster, &framework_id, "sleeper").await;

    cluster.restart_master().await.expect("a new master");

    // The client subscribes again by itself, under the same id, and the agent registers
    // again with its executor: the new master knows it, RUNNING.
    back_with_executor(&mut events, &cluster, &framework_id, "sleeper").await;
    assert!(
        alive(pid),
        "the executor process survived the master restart"
    );
    let status = cluster_status(&cluster.endpoint()).await.unwrap();
    let framework = status.frameworks.iter().find(|f| f.id == framework_id);
    assert_eq!(
        framework.map(|f| (f.name.as_str(), f.failover_timeout)),
        Some(("recovery-e2e", Duration::from_secs(60))),
        "the new master knows the framework as it subscribed"
    );

    // Explicit reconciliation: its state, and LOST for one the master does not know.
    client
        .reconcile(vec!["sleeper".into(), "ghost".into()])
        .await
        .expect("reconcile");
    let reconciled = Some(ExecutorReason::Reconciliation);
    let u = next_reconciled(&mut events, "sleeper").await;
    assert_eq!((u.state, u.reason), (ExecutorState::Running, reconciled));
    assert!(
        u.uuid.is_empty(),
        "answers to reconcile are not acknowledged"
    );
    let u = next_update(&mut events, "ghost").await;
    let lost = (ExecutorState::Lost, reconciled);
    assert_eq!((u.state, u.reason), lost, "{}", u.message);
    // Implicit: every executor of the framework that runs.
    client.reconcile(Vec::new()).await.expect("reconcile");
    let u = next_reconciled(&mut events, "sleeper").await;
    assert_eq!((u.state, u.reason), (ExecutorState::Running, reconciled));

    // The framework still commands it through the new master.
    client.kill_executor("sleeper").await.expect("kill");
    loop {
        let state = next_update(&mut events, "sleeper").await.state;
        if state.is_terminal() {
            assert_eq!(state, ExecutorState::Killed);
            break;
        }
    }
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "the killed executor still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Subscribes to `cluster` as `name` with a failover timeout of a minute; `id` to subscribe
/// again as that framework.
async fn subscribe(
    cluster: &LocalCluster,
    name: &str,
    id: Option<String>,
    explicit_acknowledgements: bool,
) -> (FrameworkClient, Receiver<FrameworkEvent>) {
    let info = FrameworkInfo {
        name: name.into(),
        failover_timeout: Some(Duration::from_secs(60)),
        framework_id: id,
        explicit_acknowledgements,
        ..Default::default()
    };
    let (client, mut events) = FrameworkClient::subscribe(&cluster.endpoint(), info)
        .await
        .expect("subscribe");
    next_matching(&mut events, "Registered", |e| {
        matches!(e, FrameworkEvent::Registered { .. }).then_some(())
    })
    .await;
    (client, events)
}

/// A shell executor of 0.5 CPU and 64 MiB.
fn shell(executor_id: &str, script: &str) -> ExecutorLaunch {
    ExecutorLaunch {
        executor_id: executor_id.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: Vec::new(),
        resources: Resources::new(0.5, 64),
        extras: Default::default(),
        files_credential: None,
    }
}

/// What a status update said.
struct Update {
    state: ExecutorState,
    reason: Option<ExecutorReason>,
    exit_code: Option<i32>,
    uuid: String,
    message: String,
}

/// The next status update of `executor`.
async fn next_update(events: &mut Receiver<FrameworkEvent>, executor: &str) -> Update {
    next_matching(events, &format!("an update of {executor}"), |e| match e {
        FrameworkEvent::ExecutorStatus {
            executor_id,
            state,
            reason,
            exit_code,
            uuid,
            message,
            ..
        } if executor_id == executor => Some(Update {
            state: *state,
            reason: *reason,
            exit_code: *exit_code,
            uuid: uuid.clone(),
            message: message.clone(),
        }),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_back_within_its_failover_timeout_hears_what_happened_meanwhile() {
    let cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "away-e2e", None, false).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    let launches = vec![
        shell(
            "waiter",
            "while [ ! -e go ]; do sleep 0.05; done; echo bye >&2; exit 3",
        ),
        shell("sleeper", "exec sleep 600"),
    ];
    client.accept(&offer.id, launches).await.expect("accept");
    let mut running = BTreeSet::new();
    while running.len() < 2 {
        let started = next_matching(&mut events, "executors running", |e| match e {
            FrameworkEvent::ExecutorStatus {
                executor_id, state, ..
            } => Some((executor_id.clone(), *state)),
            _ => None,
        })
        .await;
        if started.1 == ExecutorState::Running {
            running.insert(started.0);
        }
    }

    // The framework goes away (its process would have died); the waiter ends meanwhile.
    drop((client, events));
    let endpoint = cluster.endpoint();
    wait_status(&endpoint, "the framework disconnected", |s| {
        s.frameworks
            .iter()
            .any(|f| f.id == framework_id && !f.connected)
    })
    .await;
    let sandbox = |e: &str| {
        cluster
            .agent_work_dir(0)
            .join(format!("frameworks/{framework_id}/executors/{e}"))
    };
    std::fs::write(sandbox("waiter").join("go"), "").unwrap();
    wait_status(&endpoint, "the waiter ended", |s| {
        s.executors
            .iter()
            .any(|e| e.executor_id == "waiter" && e.state == ExecutorState::Failed)
    })
    .await;

    // Back by id: the end it missed comes, and the other executor still runs.
    let (client, mut events) =
        subscribe(&cluster, "away-e2e", Some(framework_id.clone()), false).await;
    assert_eq!(client.framework_id(), framework_id);
    let u = next_update(&mut events, "waiter").await;
    assert_eq!((u.state, u.exit_code), (ExecutorState::Failed, Some(3)));
    wait_status(&endpoint, "the sleeper kept", |s| {
        keeps(s, &framework_id, "sleeper")
    })
    .await;
    client.teardown().await.expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_not_acknowledged_comes_again_until_it_is() {
    let cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "acks-e2e", None, true).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    client
        .accept(&offer.id, vec![shell("sleeper", "exec sleep 600")])
        .await
        .expect("accept");
    let Update {
        state,
        uuid: starting,
        ..
    } = next_update(&mut events, "sleeper").await;
    assert_eq!(state, ExecutorState::Starting);
    assert_eq!(starting.len(), 32, "a uuid: {starting}");
    // Not acknowledged: the agent sends it again (after 2 s), and nothing after it.
    let u = next_update(&mut events, "sleeper").await;
    assert_eq!(
        (u.state, u.uuid.as_str()),
        (ExecutorState::Starting, starting.as_str())
    );

    // Away and back by id: it comes again at once.
    drop((client, events));
    let (client, mut events) = subscribe(&cluster, "acks-e2e", Some(framework_id), true).await;
    let u = next_update(&mut events, "sleeper").await;
    assert_eq!(
        (u.state, u.uuid.as_str()),
        (ExecutorState::Starting, starting.as_str())
    );

    // Acknowledged, the next comes; acknowledged too, nothing comes again.
    let agent = offer.agent_id.as_str();
    client
        .acknowledge(agent, "sleeper", &starting)
        .await
        .expect("acknowledge");
    let running = loop {
        let u = next_update(&mut events, "sleeper").await;
        if u.state == ExecutorState::Running {
            break u.uuid;
        }
    };
    client
        .acknowledge(agent, "sleeper", &running)
        .await
        .expect("acknowledge");
    let quiet = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(FrameworkEvent::ExecutorStatus { uuid, .. }) = events.recv().await
                && uuid == running
            {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "an acknowledged update came again");
    client.teardown().await.expect("teardown");
}

/// A network cut shorter than the failover timeout (the master stopped with SIGSTOP: its
/// connections stay, nothing comes): the client notices the silence, subscribes again by id
/// once the master answers, and the framework keeps its executor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_shorter_than_the_failover_timeout_keeps_the_executor() {
    let cluster = LocalCluster::start_with(
        1,
        2.0,
        1024,
        &bin_dir(),
        &["--framework-heartbeat-interval-ms", "200"],
    )
    .await
    .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "cut-e2e", None, false).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    client
        .accept(&offer.id, vec![shell("sleeper", "exec sleep 600")])
        .await
        .expect("accept");
    while next_update(&mut events, "sleeper").await.state != ExecutorState::Running {}
    let master = cluster.master_pid().expect("master").to_string();
    let signal = |name: &str| {
        let ok = Command::new("kill").args([name, &master]).status().unwrap();
        assert!(ok.success());
    };
    signal("-STOP");
    // Silent for more than three heartbeats (the client's limit is at least 1 s).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    signal("-CONT");
    back_with_executor(&mut events, &cluster, &framework_id, "sleeper").await;
    let u = next_reconciled(&mut events, "sleeper").await;
    assert_eq!(
        u.state,
        ExecutorState::Running,
        "the implicit reconciliation"
    );
}

/// Reads events until a Failure for which `pick` holds.
async fn next_failure(
    events: &mut Receiver<FrameworkEvent>,
    what: &str,
    pick: impl Fn(&str, Option<&str>, Option<i32>) -> bool,
) {
    next_matching(events, what, |e| match e {
        FrameworkEvent::Failure {
            agent_id,
            executor_id,
            status,
        } => pick(agent_id, executor_id.as_deref(), *status).then_some(()),
        _ => None,
    })
    .await
}

/// An executor's files in its sandbox's `outbox/` reach its framework as Message events, in
/// order, and leave the outbox.
#[tokio::test(flavor = "multi_thread")]
async fn an_executor_sends_its_framework_messages_through_its_outbox() {
    let cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "outbox-e2e", None, false).await;
    let offer = first_offer(&mut events).await;
    // Each message written under a dot name, then renamed: the agent never reads half.
    let script = "mkdir -p outbox; \
        printf 'rows: 1000' > outbox/.1; mv outbox/.1 outbox/0001; \
        printf 'rows: 2000' > outbox/.2; mv outbox/.2 outbox/0002; \
        sleep 600";
    client
        .accept(&offer.id, vec![shell("reporter", script)])
        .await
        .expect("accept");
    let mut got = Vec::new();
    while got.len() < 2 {
        let data = next_matching(&mut events, "a message from the executor", |e| match e {
            FrameworkEvent::Message {
                executor_id, data, ..
            } if executor_id == "reporter" => Some(data.clone()),
            _ => None,
        })
        .await;
        got.push(String::from_utf8(data).unwrap());
    }
    assert_eq!(
        got,
        ["rows: 1000", "rows: 2000"],
        "in the order they were written"
    );
    let outbox = cluster.agent_work_dir(0).join(format!(
        "frameworks/{}/executors/reporter/outbox",
        client.framework_id()
    ));
    // The agent removes each once the master took it (the framework may hear it first).
    let deadline = Instant::now() + WAIT;
    while std::fs::read_dir(&outbox).unwrap().count() > 0 {
        assert!(
            Instant::now() < deadline,
            "messages sent are not removed from the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.kill_executor("reporter").await.expect("kill");
}

/// Messages reach a running executor's sandbox; Shutdown lets it stop on SIGTERM, Kill does
/// not wait for one that ignores it; a non-zero exit and a lost agent come as Failure events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_shutdown_kill_and_failures() {
    let cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "calls-e2e", None, false).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    let launches = vec![
        shell(
            "polite",
            "trap 'echo bye > termed; exit 0' TERM; \
             while :; do for f in messages/*; do [ -e \"$f\" ] && cat \"$f\" >> got && rm \"$f\"; done; \
             sleep 0.05; done",
        ),
        shell("stubborn", "trap '' TERM; while :; do sleep 0.05; done"),
        shell("failing", "while [ ! -e go ]; do sleep 0.05; done; exit 7"),
    ];
    client.accept(&offer.id, launches).await.expect("accept");
    let mut running = BTreeSet::new();
    while running.len() < 3 {
        if let FrameworkEvent::ExecutorStatus {
            executor_id,
            state: ExecutorState::Running,
            ..
        } = next_matching(&mut events, "three running", |e| Some(e.clone())).await
        {
            running.insert(executor_id);
        }
    }
    let sandbox = |e: &str| {
        cluster
            .agent_work_dir(0)
            .join(format!("frameworks/{framework_id}/executors/{e}"))
    };

    client
        .send_message("polite", b"hello ".to_vec())
        .await
        .expect("message");
    client
        .send_message("polite", b"world".to_vec())
        .await
        .expect("message");
    // Both arrive, whole; in either order (messages are best effort, as Mesos').
    let deadline = Instant::now() + WAIT;
    loop {
        let got = std::fs::read_to_string(sandbox("polite").join("got")).unwrap_or_default();
        if got == "hello world" || got == "worldhello " {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the messages did not arrive: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    client.shutdown_executor("polite").await.expect("shutdown");
    while !next_update(&mut events, "polite").await.state.is_terminal() {}
    assert_eq!(
        std::fs::read_to_string(sandbox("polite").join("termed")).unwrap(),
        "bye\n",
        "it had its SIGTERM"
    );

    let started = Instant::now();
    client.kill_executor("stubborn").await.expect("kill");
    let end = loop {
        let u = next_update(&mut events, "stubborn").await;
        if u.state.is_terminal() {
            break u.state;
        }
    };
    assert_eq!(end, ExecutorState::Killed);
    // An agent's grace period between SIGTERM and SIGKILL is 3 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "Kill waited for a grace period: {:?}",
        started.elapsed()
    );

    std::fs::write(sandbox("failing").join("go"), "").unwrap();
    next_failure(&mut events, "the executor's failure", |_, e, status| {
        e == Some("failing") && status == Some(7)
    })
    .await;

    let agent_pid = cluster.agent_pids()[0];
    Command::new("kill")
        .args(["-9", &agent_pid.to_string()])
        .status()
        .expect("kill");
    next_failure(&mut events, "the agent's failure", |agent, e, _| {
        agent == offer.agent_id && e.is_none()
    })
    .await;
}

/// The agent's status now: its id and address.
async fn the_agent(endpoint: &MasterEndpoint) -> (String, String) {
    let status = cluster_status(endpoint).await.expect("cluster status");
    let [agent] = &status.agents[..] else {
        panic!("one agent: {:?}", status.agents);
    };
    (agent.id.clone(), agent.address.clone())
}

/// Waits until agent `id` has registered again from an address other than `old_address` (a
/// restarted agent listens on a new port).
async fn wait_reregistered(cluster: &LocalCluster, id: &str, old_address: &str) {
    let log = cluster.agent_log(0);
    wait_status(
        &cluster.endpoint(),
        &format!("the agent back under its id (its log: {})", log.display()),
        |s| {
            s.agents
                .iter()
                .any(|a| a.id == id && a.address != old_address)
        },
    )
    .await;
}

/// What `probe` finds, once it finds something (within [`WAIT`], else the test fails saying
/// `what` did not happen).
async fn found<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pid a shell executor wrote to its sandbox's `pid` file.
async fn written_pid(cluster: &LocalCluster, framework_id: &str, executor: &str) -> u32 {
    let file = cluster.agent_work_dir(0).join(format!(
        "frameworks/{framework_id}/executors/{executor}/pid"
    ));
    found(&format!("no pid written by {executor}"), || {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    })
    .await
}

/// Waits until agent 0's checkpoint names `executor` with process `pid`: what the agent finds
/// again when it restarts.
async fn checkpointed(cluster: &LocalCluster, executor: &str, pid: u32) {
    let work_dir = cluster.agent_work_dir(0);
    found(&format!("agent 0 did not checkpoint {executor}"), || {
        let saved = tessera_agent::checkpoint::load(&work_dir).ok().flatten()?;
        (saved.executors.iter())
            .any(|e| e.executor_id == executor && e.pid as u32 == pid)
            .then_some(())
    })
    .await
}

/// An agent killed with SIGKILL and started again within its recovery timeout takes its
/// executor back (the same process) under its old id, and sends again, from its checkpoint,
/// the status updates its framework had not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restarted_in_time_keeps_its_id_its_executors_and_their_updates() {
    let mut cluster = LocalCluster::start(1, 2.0, 1024, &bin_dir())
        .await
        .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "agent-restart-e2e", None, true).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    client
        .accept(
            &offer.id,
            vec![shell("sleeper", "echo $$ > pid; exec sleep 600")],
        )
        .await
        .expect("accept");
    let first = next_update(&mut events, "sleeper").await;
    assert_eq!(first.state, ExecutorState::Starting);
    let pid = written_pid(&cluster, &framework_id, "sleeper").await;
    // The executor writes its pid as it starts, which can be before its agent has checkpointed
    // it: killed in between, the agent would come back without it.
    checkpointed(&cluster, "sleeper", pid).await;
    let (agent_id, address) = the_agent(&cluster.endpoint()).await;

    // Killed before it sends the unacknowledged update again (after 2 s), started again.
    cluster.kill_agent(0);
    assert!(alive(pid), "the executor outlives its agent");
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start_agent(0).expect("the agent starts again");
    wait_reregistered(&cluster, &agent_id, &address).await;

    // Only the restarted agent can have sent it: it was in its checkpoint.
    let again = next_update(&mut events, "sleeper").await;
    assert_eq!(
        (again.state, again.uuid.as_str()),
        (ExecutorState::Starting, first.uuid.as_str())
    );
    client
        .acknowledge(&agent_id, "sleeper", &first.uuid)
        .await
        .expect("acknowledge");
    let running = loop {
        let u = next_update(&mut events, "sleeper").await;
        assert!(!u.state.is_terminal(), "it ended: {}", u.message);
        if u.state == ExecutorState::Running {
            break u;
        }
    };
    assert!(
        running.message.contains(&format!("pid {pid}")),
        "{}",
        running.message
    );
    wait_status(&cluster.endpoint(), "the executor kept", |s| {
        keeps(s, &framework_id, "sleeper")
            && s.executors
                .iter()
                .any(|e| e.executor_id == "sleeper" && e.agent_id == agent_id)
    })
    .await;
    assert!(alive(pid), "the same process runs");

    // The restarted agent commands it: a kill reaches the adopted process.
    client.kill_executor("sleeper").await.expect("kill");
    loop {
        let u = next_update(&mut events, "sleeper").await;
        client
            .acknowledge(&agent_id, "sleeper", &u.uuid)
            .await
            .expect("acknowledge");
        if u.state.is_terminal() {
            assert_eq!(u.state, ExecutorState::Killed, "{}", u.message);
            break;
        }
    }
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "the killed executor still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An agent back later than its recovery timeout (short here; the master, whose agent timeout
/// is longer, still knows it) kills the executors its checkpoint names and reports them LOST;
/// one that ended while it was away is reported LOST too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_of_an_agent_back_after_its_recovery_timeout_are_killed_and_lost() {
    let mut cluster = LocalCluster::start_with_agent_flags(
        (1, 2.0, 1024),
        &bin_dir(),
        &[],
        &[&["--recovery-timeout-s", "1"]],
    )
    .await
    .expect("a local cluster");
    let (client, mut events) = subscribe(&cluster, "recovery-timeout-e2e", None, false).await;
    let framework_id = client.framework_id().to_string();
    let offer = first_offer(&mut events).await;
    let launches = vec![
        shell("sleeper", "echo $$ > pid; exec sleep 600"),
        shell(
            "quitter",
            "echo $$ > pid; while [ ! -e go ]; do sleep 0.05; done; exit 0",
        ),
    ];
    client.accept(&offer.id, launches).await.expect("accept");
    let mut running = BTreeSet::new();
    while running.len() < 2 {
        if let FrameworkEvent::ExecutorStatus {
            executor_id,
            state: ExecutorState::Running,
            ..
        } = next_matching(&mut events, "two running", |e| Some(e.clone())).await
        {
            running.insert(executor_id);
        }
    }
    let sleeper = written_pid(&cluster, &framework_id, "sleeper").await;
    let quitter = written_pid(&cluster, &framework_id, "quitter").await;
    let (agent_id, address) = the_agent(&cluster.endpoint()).await;

    cluster.kill_agent(0);
    let sandbox = cluster
        .agent_work_dir(0)
        .join(format!("frameworks/{framework_id}/executors/quitter"));
    std::fs::write(sandbox.join("go"), "").unwrap();
    // Away past its recovery timeout, within the master's agent timeout (5 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(alive(sleeper), "the executor outlived its agent");
    cluster.start_agent(0).expect("the agent starts again");

    let mut lost = BTreeSet::new();
    while lost.len() < 2 {
        let (executor, state, message) =
            next_matching(&mut events, "the executors' ends", |e| match e {
                FrameworkEvent::ExecutorStatus {
                    executor_id,
                    state,
                    message,
                    ..
                } if state.is_terminal() => Some((executor_id.clone(), *state, message.clone())),
                _ => None,
            })
            .await;
        assert_eq!(state, ExecutorState::Lost, "{executor}: {message}");
        // The sleeper's LOST comes from the agent (it killed it) or, if the agent's registration
        // without it reaches the master first, from the master.
        let expected: &[&str] = match executor.as_str() {
            "sleeper" => &[
                "longer than its recovery timeout (1 s)",
                "registered again (it restarted) without it",
            ],
            "quitter" => &["ended while its agent was away"],
            other => panic!("an end of {other}"),
        };
        assert!(
            expected.iter().any(|e| message.contains(e)),
            "{executor}: {message}"
        );
        lost.insert(executor);
    }
    let deadline = Instant::now() + WAIT;
    while alive(sleeper) || alive(quitter) {
        assert!(Instant::now() < deadline, "an executor still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The master kept the agent: it came back under its id, with nothing running.
    wait_reregistered(&cluster, &agent_id, &address).await;
    wait_status(&cluster.endpoint(), "both executors lost", |s| {
        s.executors
            .iter()
            .filter(|e| e.framework_id == framework_id)
            .all(|e| e.state == ExecutorState::Lost)
    })
    .await;
}

/// The session's framework id and its running executor's id, once the master shows both.
fn session_and_its_executor(status: &tessera_framework::ClusterStatus) -> Option<(String, String)> {
    let session = status
        .frameworks
        .iter()
        .find(|f| f.name == "tessera-session")?;
    let executor = status
        .executors
        .iter()
        .find(|e| e.framework_id == session.id && e.state == ExecutorState::Running)?;
    Some((session.id.clone(), executor.executor_id.clone()))
}

/// Runs a real `tessera run` session on one agent that caches an RDD of 4 partitions and
/// counts it, then `disrupt`s the cluster (given the session's framework id and its executor),
/// then counts it again: every partition of the second count must come from the cache of the
/// executor process that computed it.
fn a_session_counts_from_its_cache_across(
    name: &str,
    disrupt: impl FnOnce(&mut LocalCluster, &tokio::runtime::Runtime, &str, &str),
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut cluster = runtime
        .block_on(LocalCluster::start(1, 2.0, 1024, &bin_dir()))
        .expect("a local cluster");
    let dir = Scratch::new(&name.replace(' ', "-"));
    let go = dir.0.join("disrupted");
    let metrics = dir.0.join("tasks.jsonl");
    let script = cache_then_wait_script(&go, "");
    let script_path = dir.write("script.rs", &script);
    let mut session = tessera_on(&cluster, &dir.0);
    session.args(["--failover-timeout-s", "60"]);
    let child = run_in_background(session, &metrics, &script_path);
    // The first count ran (and cached its 4 partitions).
    wait_for_tasks(&metrics, 0, 4);
    // The master hears from the agent that the executor runs, which may come after the
    // session's first job has ended.
    let (session, executor) = runtime.block_on(wait_status_for(
        &cluster.endpoint(),
        "the master showing the session's executor running",
        session_and_its_executor,
    ));

    disrupt(&mut cluster, &runtime, &session, &executor);
    std::fs::write(&go, "").unwrap();

    let stdout = finished(child, "");
    assert!(stdout.contains("first 1000"), "{stdout}");
    assert!(stdout.contains("second 1000"), "{stdout}");
    assert_second_count_cached(&read_task_metrics(&metrics), name);
}

#[test]
fn a_session_keeps_its_cached_partitions_across_a_master_restart() {
    a_session_counts_from_its_cache_across(
        "master restart",
        |cluster, runtime, session, executor| {
            runtime
                .block_on(cluster.restart_master())
                .expect("a new master");
            runtime.block_on(wait_status(
                &cluster.endpoint(),
                "the session back with its executor",
                |s| keeps(s, session, executor),
            ));
        },
    );
}

/// Kills agent 0 with SIGKILL, runs `while_down` on its work directory, starts it again, and
/// waits until the master shows `executor` of `session` running on it under its old id.
fn restart_agent_keeping(
    cluster: &mut LocalCluster,
    runtime: &tokio::runtime::Runtime,
    session: &str,
    executor: &str,
    while_down: impl FnOnce(&std::path::Path),
) {
    let endpoint = cluster.endpoint();
    let (agent_id, address) = runtime.block_on(the_agent(&endpoint));
    cluster.kill_agent(0);
    while_down(&cluster.agent_work_dir(0));
    cluster.start_agent(0).expect("the agent starts again");
    runtime.block_on(wait_reregistered(cluster, &agent_id, &address));
    runtime.block_on(wait_status(
        &endpoint,
        "the master shows the same executor running on the same agent",
        |s| {
            s.executors.iter().any(|e| {
                e.framework_id == session
                    && e.executor_id == executor
                    && e.agent_id == agent_id
                    && e.state == ExecutorState::Running
            })
        },
    ));
}

/// The agent is killed with SIGKILL and started again: the session's next count reads every
/// partition from the same executor's cache, and the master shows the same agent and executor.
#[test]
fn a_session_keeps_its_cached_partitions_across_an_agent_restart() {
    a_session_counts_from_its_cache_across(
        "agent restart",
        |cluster, runtime, session, executor| {
            restart_agent_keeping(cluster, runtime, session, executor, |_| {
                std::thread::sleep(Duration::from_millis(500))
            });
        },
    );
}

/// The agent is killed with SIGKILL after starting the session's executor but before its
/// checkpoint named it (made so here by taking the executor out of the checkpoint it left):
/// restarted, it finds the executor running in its sandbox and adopts it, and the session's
/// next count reads every partition from that executor's cache, as after any other restart.
#[test]
fn a_session_keeps_its_cached_partitions_when_its_agent_died_before_checkpointing_its_executor() {
    a_session_counts_from_its_cache_across(
        "agent died before its checkpoint",
        |cluster, runtime, session, executor| {
            restart_agent_keeping(cluster, runtime, session, executor, |work_dir| {
                let mut saved = tessera_agent::checkpoint::load(work_dir)
                    .expect("the agent's checkpoint reads")
                    .expect("the agent left a checkpoint");
                let named = saved.executors.len();
                saved.executors.retain(|e| e.executor_id != executor);
                assert_eq!(saved.executors.len(), named - 1, "it named {executor}");
                tessera_agent::checkpoint::Writer::new(work_dir)
                    .save(|| saved)
                    .expect("the edited checkpoint is written");
            });
        },
    );
}

/// The stderr files of agent 0's executors, joined.
fn executors_stderr(cluster: &LocalCluster) -> String {
    let frameworks = cluster.agent_work_dir(0).join("frameworks");
    let mut text = String::new();
    for framework in std::fs::read_dir(frameworks)
        .into_iter()
        .flatten()
        .flatten()
    {
        let executors = std::fs::read_dir(framework.path().join("executors"));
        for executor in executors.into_iter().flatten().flatten() {
            text += &std::fs::read_to_string(executor.path().join("stderr")).unwrap_or_default();
        }
    }
    text
}

/// An executor whose agent and session were both killed (SIGKILL) has nobody left to end it:
/// it ends itself once its driver has left its heartbeats unanswered for the driver timeout
/// (`TESSERA_DRIVER_TIMEOUT_S`, 2 s here, which the session passes on to its executors), and
/// says why.
#[test]
fn an_executor_ends_itself_once_its_agent_and_its_session_are_gone() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut cluster = runtime
        .block_on(LocalCluster::start(1, 2.0, 1024, &bin_dir()))
        .expect("a local cluster");
    let dir = Scratch::new("driver-gone");
    let metrics = dir.0.join("tasks.jsonl");
    let script = cache_then_wait_script(&dir.0.join("never"), "");
    let script_path = dir.write("script.rs", &script);
    let mut session = tessera_on(&cluster, &dir.0);
    session.env("TESSERA_DRIVER_TIMEOUT_S", "2");
    let mut child = run_in_background(session, &metrics, &script_path);
    wait_for_tasks(&metrics, 0, 4);
    let pid = read_task_metrics(&metrics)[0].pid as u32;

    cluster.kill_agent(0);
    child.kill().expect("the session is killed");
    child.wait().unwrap();
    let killed = Instant::now();
    assert!(
        alive(pid),
        "the executor outlives its agent and its session"
    );
    while alive(pid) {
        assert!(
            killed.elapsed() < WAIT,
            "the executor still runs {WAIT:?} after its agent and session were killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = executors_stderr(&cluster);
    assert!(
        stderr.contains("has not answered for") && stderr.contains("its session has ended"),
        "{stderr}"
    );
}
