//! Dynamic allocation on a real cluster (a master and two agents on 127.0.0.1, a `tessera run`
//! session subscribed to it): executors idle past the session's timeout are released — the
//! master shows none of the session's executors running — and a later job gets executors
//! again; executors holding cached partitions are kept.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tessera_e2e::{Scratch, bin_dir, tessera_on};
use tessera_framework::{ExecutorState, LocalCluster, cluster_status};

/// How many executors of the session ("tessera-session") the master sees running, sampled
/// while `tessera run SCRIPT` runs against `cluster`; and the run's stdout.
fn run_and_sample(
    cluster: &LocalCluster,
    dir: &Path,
    script: &str,
    extra: &[&str],
) -> (Vec<usize>, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    std::fs::write(dir.join("script.rs"), script).unwrap();
    let mut child = tessera_on(cluster, dir)
        .args(extra)
        .args(["run", "script.rs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tessera runs");
    let endpoint = cluster.endpoint();
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Ok(status) = runtime.block_on(cluster_status(&endpoint)) {
            let session: Vec<&str> = status
                .frameworks
                .iter()
                .filter(|f| f.name == "tessera-session")
                .map(|f| f.id.as_str())
                .collect();
            samples.push(
                status
                    .executors
                    .iter()
                    .filter(|e| {
                        session.contains(&e.framework_id.as_str())
                            && e.state == ExecutorState::Running
                    })
                    .count(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "tessera run failed: {stdout}");
    (samples, stdout)
}

fn cluster() -> LocalCluster {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(LocalCluster::start(2, 2.0, 1024, &bin_dir()))
        .expect("a local cluster")
}

#[test]
fn idle_executors_are_released_and_a_later_job_gets_executors_again() {
    let cluster = cluster();
    let dir = Scratch::new("dynamic-release");
    let script = "// %%\n\
        println!(\"first {}\", sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).count());\n\
        // %%\n\
        std::thread::sleep(std::time::Duration::from_secs(4));\n\
        // %%\n\
        println!(\"second {}\", sc.parallelize((1..=100u64).collect::<Vec<_>>(), 4).count());\n\
        // The executors it got stay a moment (under the idle timeout) for the master to be\n\
        // asked: the session would otherwise end with the job.\n\
        std::thread::sleep(std::time::Duration::from_millis(700));\n";
    let (samples, stdout) = run_and_sample(
        &cluster,
        &dir.0,
        script,
        &["--executor-idle-timeout-s", "1"],
    );
    assert!(stdout.contains("first 1000"), "{stdout}");
    assert!(stdout.contains("second 100"), "{stdout}");
    let held = samples
        .iter()
        .position(|&n| n > 0)
        .expect("executors were acquired");
    let released = samples[held..]
        .iter()
        .position(|&n| n == 0)
        .map(|at| held + at)
        .unwrap_or_else(|| panic!("idle executors were never released: {samples:?}"));
    assert!(
        samples[released..].iter().any(|&n| n > 0),
        "no executor was acquired again for the later job: {samples:?}"
    );
}

#[test]
fn executors_holding_cached_partitions_are_kept() {
    let cluster = cluster();
    let dir = Scratch::new("dynamic-cached");
    let script = "// %%\n\
        let cached = sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).cache();\n\
        println!(\"first {}\", cached.count());\n\
        // %%\n\
        std::thread::sleep(std::time::Duration::from_secs(3));\n\
        // %%\n\
        println!(\"second {}\", cached.count());\n";
    let (samples, stdout) = run_and_sample(
        &cluster,
        &dir.0,
        script,
        &["--executor-idle-timeout-s", "1"],
    );
    assert!(stdout.contains("second 1000"), "{stdout}");
    let held = samples
        .iter()
        .position(|&n| n > 0)
        .expect("executors were acquired");
    // Until the session's last job: its teardown at the end ends them all.
    let last = samples.iter().rposition(|&n| n > 0).unwrap();
    assert!(
        samples[held..=last].iter().all(|&n| n > 0),
        "an executor holding cached partitions was released: {samples:?}"
    );
    assert!(
        last - held >= 10,
        "the executors were not seen through the 3 s the cell slept: {samples:?}"
    );
}
