//! Recovery of the cluster manager, end to end with real `tessera-master` and `tessera-agent`
//! processes on 127.0.0.1: the master is killed with SIGKILL and a new one starts on the same
//! port; the agent registers again with the executors it runs, the framework subscribes again
//! by id within its failover timeout and reconciles, and the executors — the very same
//! processes — keep running. A real `tessera run` session that cached an RDD before the restart
//! counts it from the cache after it.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera_e2e::{Scratch, alive, bin, bin_dir, read_task_metrics};
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

/// The state and reason of the next status update of `executor`.
async fn next_status(
    events: &mut Receiver<FrameworkEvent>,
    executor: &str,
) -> (ExecutorState, Option<ExecutorReason>, String) {
    next_matching(events, &format!("a status of {executor}"), |e| match e {
        FrameworkEvent::ExecutorStatus {
            executor_id,
            state,
            reason,
            message,
            ..
        } if executor_id == executor => Some((*state, *reason, message.clone())),
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
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(status) = cluster_status(endpoint).await
            && check(&status)
        {
            return;
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
    let offer = next_matching(&mut events, "an offer", |e| match e {
        FrameworkEvent::Offers(offers) => offers.first().cloned(),
        _ => None,
    })
    .await;
    let launch = ExecutorLaunch {
        executor_id: "sleeper".into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "echo $$ > pid; exec sleep 600".into()],
        env: Vec::new(),
        resources: Resources::new(1.0, 128),
    };
    client
        .accept(&offer.id, vec![launch])
        .await
        .expect("accept");
    loop {
        if next_status(&mut events, "sleeper").await.0 == ExecutorState::Running {
            break;
        }
    }
    let pid_file = cluster
        .agent_work_dir(0)
        .join(format!("frameworks/{framework_id}/executors/sleeper/pid"));
    let pid = {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the executor wrote no pid");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    cluster.restart_master().await.expect("a new master");

    // The client subscribes again by itself, under the same id.
    let again = next_matching(&mut events, "Registered again", |e| match e {
        FrameworkEvent::Registered { framework_id } => Some(framework_id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(again, framework_id);
    // The agent registers again with its executor: the new master knows it, RUNNING.
    let endpoint = cluster.endpoint();
    wait_status(&endpoint, "the executor taken back", |s| {
        keeps(s, &framework_id, "sleeper")
    })
    .await;
    assert!(
        alive(pid),
        "the executor process survived the master restart"
    );

    // Explicit reconciliation: its state, and LOST for one the master does not know.
    client
        .reconcile(vec!["sleeper".into(), "ghost".into()])
        .await
        .expect("reconcile");
    let reconciled = Some(ExecutorReason::Reconciliation);
    let (state, reason, _) = next_status(&mut events, "sleeper").await;
    assert_eq!((state, reason), (ExecutorState::Running, reconciled));
    let (state, reason, message) = next_status(&mut events, "ghost").await;
    assert_eq!(
        (state, reason),
        (ExecutorState::Lost, reconciled),
        "{message}"
    );
    // Implicit: every executor of the framework that runs.
    client.reconcile(Vec::new()).await.expect("reconcile");
    let (state, reason, _) = next_status(&mut events, "sleeper").await;
    assert_eq!((state, reason), (ExecutorState::Running, reconciled));

    // The framework still commands it through the new master.
    client.kill_executor("sleeper").await.expect("kill");
    loop {
        let (state, _, _) = next_status(&mut events, "sleeper").await;
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

#[test]
fn a_session_keeps_its_cached_partitions_across_a_master_restart() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut cluster = runtime
        .block_on(LocalCluster::start(1, 2.0, 1024, &bin_dir()))
        .expect("a local cluster");
    let dir = Scratch::new("recovery-session");
    let go = dir.0.join("master-restarted");
    let metrics = dir.0.join("tasks.jsonl");
    let script = format!(
        "// %%\n\
         let cached = sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).cache();\n\
         println!(\"first {{}}\", cached.count());\n\
         // %%\n\
         while !std::path::Path::new({go:?}).exists() {{\n\
             std::thread::sleep(std::time::Duration::from_millis(50));\n\
         }}\n\
         // %%\n\
         println!(\"second {{}}\", cached.count());\n"
    );
    let script_path = dir.write("script.rs", &script);
    let credentials = cluster.credentials_dir().join("frameworks").join("local");
    let child = Command::new(bin("tessera"))
        .current_dir(&dir.0)
        .args([
            "--master",
            &format!("tessera://{}", cluster.master_address()),
        ])
        .arg("--credentials")
        .arg(&credentials)
        .arg("--task-metrics")
        .arg(&metrics)
        .args(["--failover-timeout-s", "60"])
        .arg("run")
        .arg(&script_path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera runs");

    // The first count ran (and cached its 4 partitions).
    let deadline = Instant::now() + Duration::from_secs(600);
    while read_task_metrics(&metrics)
        .iter()
        .filter(|t| t.job == 0)
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "the first job did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    let endpoint = cluster.endpoint();
    let before = runtime.block_on(cluster_status(&endpoint)).unwrap();
    let session = before
        .frameworks
        .iter()
        .find(|f| f.name == "tessera-session")
        .expect("the session is subscribed")
        .id
        .clone();
    let executor = before
        .executors
        .iter()
        .find(|e| e.framework_id == session && e.state == ExecutorState::Running)
        .expect("the session's executor runs")
        .executor_id
        .clone();

    runtime
        .block_on(cluster.restart_master())
        .expect("a new master");
    runtime.block_on(wait_status(
        &endpoint,
        "the session back with its executor",
        |s| keeps(s, &session, &executor),
    ));
    std::fs::write(&go, "").unwrap();

    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tessera run failed: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("first 1000"), "{stdout}");
    assert!(stdout.contains("second 1000"), "{stdout}");
    let tasks = read_task_metrics(&metrics);
    let pids = |job: u64| -> BTreeSet<u64> {
        tasks
            .iter()
            .filter(|t| t.job == job)
            .map(|t| t.pid)
            .collect()
    };
    let second: Vec<_> = tasks.iter().filter(|t| t.job == 1).collect();
    assert_eq!(second.len(), 4, "{tasks:?}");
    assert!(
        second.iter().all(|t| t.origin.starts_with("cached:")),
        "every partition came from the cache after the master restart: {second:?}"
    );
    assert_eq!(
        pids(0),
        pids(1),
        "the same executor process served both counts"
    );
}
