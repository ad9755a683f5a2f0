//! Two sessions on one cluster (a master and two agents of 2 CPUs on 127.0.0.1, two `tessera
//! run` sessions of the same user): while both run jobs each holds its fair share — one
//! executor of two — measured from the master's cluster status; when one goes idle, the other
//! grows; the session that waited says so, and why.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tessera_e2e::{Scratch, bin_dir, tessera_on};
use tessera_framework::{ExecutorState, LocalCluster, cluster_status};

/// A session running `script` against `cluster`, its stderr in `dir/NAME.stderr`.
fn start_session(cluster: &LocalCluster, dir: &Path, name: &str, script: &str) -> Child {
    let file = format!("{name}.rs");
    std::fs::write(dir.join(&file), script).unwrap();
    let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).unwrap();
    tessera_on(cluster, dir)
        .args(["--executor-idle-timeout-s", "2", "run", &file])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("tessera runs")
}

/// A script that runs jobs of slow tasks for `busy_s` seconds, then idles `idle_s` seconds.
fn busy_then_idle(busy_s: u64, idle_s: u64) -> String {
    format!(
        "// %%\n\
         let started = std::time::Instant::now();\n\
         let mut jobs = 0;\n\
         while started.elapsed() < std::time::Duration::from_secs({busy_s}) {{\n\
         \x20   let n = sc.parallelize((0..8u64).collect::<Vec<_>>(), 8)\n\
         \x20       .map(|x: u64| {{ std::thread::sleep(std::time::Duration::from_millis(150)); x }})\n\
         \x20       .count();\n\
         \x20   assert_eq!(n, 8);\n\
         \x20   jobs += 1;\n\
         }}\n\
         println!(\"jobs {{jobs}}\");\n\
         // %%\n\
         std::thread::sleep(std::time::Duration::from_secs({idle_s}));\n\
         println!(\"done\");\n"
    )
}

/// Running executors of each session's framework, in the order the frameworks subscribed.
fn executors_per_session(cluster: &LocalCluster, runtime: &tokio::runtime::Runtime) -> Vec<usize> {
    let Ok(status) = runtime.block_on(cluster_status(&cluster.endpoint())) else {
        return Vec::new();
    };
    let mut sessions: Vec<&str> = status
        .frameworks
        .iter()
        .filter(|f| f.name == "tessera-session" && f.connected)
        .map(|f| f.id.as_str())
        .collect();
    // Ids end with a sequence number: subscription order.
    sessions.sort_by_key(|id| {
        id.rsplit('F')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    sessions
        .iter()
        .map(|id| {
            status
                .executors
                .iter()
                .filter(|e| e.framework_id == *id && e.state == ExecutorState::Running)
                .count()
        })
        .collect()
}

/// What the sessions wrote to stderr so far, for a failure's message.
fn logs(dir: &Path) -> String {
    ["first", "second"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.stderr")));
            format!(
                "--- {name} session's stderr:\n{}\n",
                text.unwrap_or_default()
            )
        })
        .collect()
}

/// Samples until `done` holds of the executors per session, or `within` passes.
fn wait_for(
    cluster: &LocalCluster,
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    within: Duration,
    what: &str,
    done: impl Fn(&[usize]) -> bool,
) -> Vec<Vec<usize>> {
    let deadline = Instant::now() + within;
    let mut samples = Vec::new();
    loop {
        let now = executors_per_session(cluster, runtime);
        let met = done(&now);
        samples.push(now);
        if met {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; executors per session, sampled: {samples:?}\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_busy_sessions_share_the_cluster_and_an_idle_one_makes_room() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime
        .block_on(LocalCluster::start_with(
            2,
            2.0,
            1024,
            &bin_dir(),
            &["--reclaim-after-ms", "1000"],
        ))
        .expect("a local cluster");
    let dir = Scratch::new("fair-share");
    // The first session is busy long enough for the second to come, share, and be seen
    // sharing; then it idles (its executors go after 2 s) while the second is still busy.
    let mut first = start_session(&cluster, &dir.0, "first", &busy_then_idle(20, 15));
    wait_for(
        &cluster,
        &runtime,
        &dir.0,
        Duration::from_secs(90),
        "the first session takes the cluster",
        |n| n == [2],
    );
    let mut second = start_session(&cluster, &dir.0, "second", &busy_then_idle(30, 0));
    // The second waits, the master asks the first for its surplus, and each holds one.
    let shared = wait_for(
        &cluster,
        &runtime,
        &dir.0,
        Duration::from_secs(60),
        "both sessions hold one executor",
        |n| n == [1, 1],
    );
    // And they keep sharing while both are busy.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(4) {
        let now = executors_per_session(&cluster, &runtime);
        assert_eq!(
            now,
            [1, 1],
            "the share did not hold: {shared:?} then {now:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The first goes idle: its executor is released and the second grows to two.
    wait_for(
        &cluster,
        &runtime,
        &dir.0,
        Duration::from_secs(60),
        "the second session grows once the first is idle",
        |n| n == [0, 2],
    );
    for (name, child) in [("first", &mut first), ("second", &mut second)] {
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(dir.0.join(format!("{name}.stderr"))).unwrap();
        assert!(status.success(), "the {name} session failed: {stderr}");
    }
    let said = std::fs::read_to_string(dir.0.join("second.stderr")).unwrap();
    assert!(
        said.contains("of 2 executors") && said.contains("other sessions may hold"),
        "the second session did not say what it waited for, and why: {said}"
    );
    let gave = std::fs::read_to_string(dir.0.join("first.stderr")).unwrap();
    assert!(
        gave.contains("giving executors back to share the cluster"),
        "the first session did not say it gave executors back: {gave}"
    );
}
