//! End-to-end tests of agents' isolation and of command tasks: a real `tessera-master` and
//! `tessera-agent` on 127.0.0.1 (`LocalCluster`), commands run through `tessera cluster exec`
//! as a user would, and `tessera cluster status`.
//!
//! On a host without a writable cgroup v2 (cpu, memory, pids controllers), agents run in posix
//! mode, and the memory test exercises the agent's own enforcement; with one, the kernel's.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::process::{Command, Output};

use tessera_e2e::{bin, bin_dir};
use tessera_framework::{LocalCluster, cluster_status};

fn cluster(runtime: &tokio::runtime::Runtime) -> LocalCluster {
    runtime
        .block_on(LocalCluster::start(1, 2.0, 1024, &bin_dir()))
        .expect("a local cluster")
}

/// `tessera --master tessera://… --credentials … cluster ARGS`, to run.
fn cluster_command(cluster: &LocalCluster, args: &[&str]) -> Command {
    let credentials = cluster.credentials_dir().join("frameworks").join("local");
    let mut command = Command::new(bin("tessera"));
    command
        .args([
            "--master",
            &format!("tessera://{}", cluster.master_address()),
        ])
        .arg("--credentials")
        .arg(&credentials)
        .arg("cluster")
        .args(args)
        .env("NO_COLOR", "1");
    command
}

/// What `tessera … cluster ARGS` did.
fn tessera_cluster(cluster: &LocalCluster, args: &[&str]) -> Output {
    cluster_command(cluster, args)
        .output()
        .expect("tessera runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn exec_runs_a_command_as_a_task_and_exits_with_its_status() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = cluster(&runtime);

    let failing = tessera_cluster(
        &cluster,
        &[
            "exec", "--cpus", "1", "--mem-mb", "64", "--", "sh", "-c", "exit 3",
        ],
    );
    let text = stderr(&failing);
    assert_eq!(failing.status.code(), Some(3), "{text}");
    for line in [
        "task exec-1 STARTING on ",
        "task exec-1 RUNNING on ",
        "task exec-1 FAILED on ",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("exited with status 3"), "{text}");

    let ok = tessera_cluster(
        &cluster,
        &["exec", "--cpus", "0.5", "--mem-mb", "32", "--", "true"],
    );
    let text = stderr(&ok);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("task exec-1 FINISHED on "), "{text}");

    // Each exec was its own framework, torn down at the end: nothing is left allocated.
    let status = runtime
        .block_on(cluster_status(&cluster.endpoint()))
        .unwrap();
    assert!(status.frameworks.is_empty(), "{:?}", status.frameworks);
    assert_eq!(status.agents[0].allocated.mem_mb, 0);
}

#[test]
fn exec_says_when_nothing_fits_and_gives_up() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = cluster(&runtime);
    let output = tessera_cluster(
        &cluster,
        &[
            "exec",
            "--cpus",
            "8",
            "--mem-mb",
            "64",
            "--timeout",
            "2",
            "--",
            "true",
        ],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "gave up after 2 s: no agent offers 8 cpus and 64 MiB; the largest offer is 2 cpus \
             and 1024 MiB on "
        ),
        "{text}"
    );
    assert!(!text.contains("STARTING"), "{text}");
}

#[test]
fn a_command_past_its_memory_is_killed_and_says_so() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = cluster(&runtime);
    // The shell keeps about 300 MB in a variable, then sleeps: killed long before it wakes.
    let started = std::time::Instant::now();
    let output = tessera_cluster(
        &cluster,
        &[
            "exec",
            "--cpus",
            "1",
            "--mem-mb",
            "128",
            "--",
            "sh",
            "-c",
            "x=$(head -c 300000000 /dev/zero | tr '\\0' a); sleep 60; echo survived",
        ],
    );
    let text = stderr(&output);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "not killed in time: {text}"
    );
    assert_ne!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("task exec-1 FAILED on ") && text.contains(": memory limit 128 MiB exceeded"),
        "{text}"
    );
    // The master keeps the reason for `cluster status` too.
    let status = runtime
        .block_on(cluster_status(&cluster.endpoint()))
        .unwrap();
    let executor = status
        .executors
        .iter()
        .find(|e| e.executor_id == "exec-1")
        .expect("the task in the master's status");
    assert_eq!(executor.message, "memory limit 128 MiB exceeded");
}

#[test]
fn cluster_status_shows_how_each_agent_isolates_and_what_executors_use() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = cluster(&runtime);
    let status = runtime
        .block_on(cluster_status(&cluster.endpoint()))
        .unwrap();
    let mode = status.agents[0].isolation.clone();
    assert!(
        mode == "cgroups-v2" || mode == "posix",
        "unknown isolation mode {mode:?}"
    );

    // A command that holds some memory while status is read.
    let mut exec = cluster_command(
        &cluster,
        &["exec", "--cpus", "1", "--mem-mb", "256", "--", "sh", "-c"],
    )
    .arg("x=$(head -c 20000000 /dev/zero | tr '\\0' a); sleep 30")
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("tessera runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let used = loop {
        let status = runtime
            .block_on(cluster_status(&cluster.endpoint()))
            .unwrap();
        if let Some(e) = status
            .executors
            .iter()
            .find(|e| e.memory_used_bytes > 20_000_000)
        {
            break e.memory_used_bytes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no executor's usage reached the master: {:?}",
            status.executors
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(used < 256 << 20, "{used}");

    let output = tessera_cluster(&cluster, &["status"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("isolation"), "{text}");
    assert!(text.contains(&mode), "{text}");
    assert!(text.contains("memory used"), "{text}");

    // The exec's subscription ends with it, and the master kills its task.
    exec.kill().expect("stop the exec");
    let _ = exec.wait();
}
