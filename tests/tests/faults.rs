//! Faults: an executor killed in the middle of a job over cached data. Its tasks are retried
//! on the other executor, the partitions it cached are recomputed from lineage, and the job
//! gives the correct result.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_e2e::{Scratch, TaskLine, bin, read_task_metrics};

#[test]
fn killing_an_executor_mid_job_loses_no_result() {
    let dir = Scratch::new("kill-executor");
    let metrics = dir.0.join("tasks.jsonl");
    // Cell 1 caches 8 partitions on two executors; cell 2 is a slow job over the cache.
    let script = r#"
let data = sc.parallelize((0..200_000u64).collect::<Vec<u64>>(), 8).cache();
data.count()
// %%
data.map(|x: u64| { if x % 4096 == 0 { std::thread::sleep(std::time::Duration::from_millis(250)); } x * 2 }).reduce(|a, b| a + b)
"#;
    let script_path = dir.write("script.rs", script);
    let child = Command::new(bin("tessera"))
        .current_dir(&dir.0)
        .args(["--master", "local-cluster[2,2,1024]", "--task-metrics"])
        .arg(&metrics)
        .arg("run")
        .arg(&script_path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera runs");

    // Wait for the first job's tasks, which name the executor processes.
    let deadline = Instant::now() + Duration::from_secs(600);
    let pids: BTreeSet<u64> = loop {
        assert!(Instant::now() < deadline, "the first job did not finish");
        let first_job: Vec<TaskLine> = read_task_metrics(&metrics)
            .into_iter()
            .filter(|t| t.job == 0)
            .collect();
        if first_job.len() == 8 {
            break first_job.iter().map(|t| t.pid).collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(pids.len(), 2, "two executors ran the first job");

    // Let the slow job start, then kill one executor outright.
    std::thread::sleep(Duration::from_millis(1500));
    let victim = *pids.iter().next().unwrap();
    unsafe_kill(victim);

    let output = child.wait_with_output().expect("tessera finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the run failed:\n{stdout}\n{stderr}"
    );
    let expected: u64 = (0..200_000u64).map(|x| x * 2).sum();
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        vec!["200000".to_string(), expected.to_string()],
        "stderr:\n{stderr}"
    );

    // The slow job finished on the survivor, recomputing from lineage what the victim cached.
    let second_job: Vec<TaskLine> = read_task_metrics(&metrics)
        .into_iter()
        .filter(|t| t.job == 1)
        .collect();
    assert_eq!(second_job.len(), 8, "{second_job:?}");
    assert!(
        second_job
            .iter()
            .any(|t| t.origin == "computed" && t.pid != victim),
        "a partition the victim cached was recomputed on the survivor: {second_job:?}"
    );
}

fn unsafe_kill(pid: u64) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "could not kill executor {pid}");
}
