//! Speculative execution (`TESSERA_SPECULATION=1`, Spark's `spark.speculation`), end to end on
//! `local-cluster`: an executor that stops answering without dying — frozen with SIGSTOP, as a
//! machine that hangs — holds the tasks sent to it, and the job still ends with the right
//! answer, its tasks copied to the other executor.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::process::Command;
use tessera_e2e::{
    Scratch, bin, cache_then_wait_script, finished, read_task_metrics, run_in_background,
    wait_for_tasks,
};

/// Sends `signal` to process `pid`; whether it was still there to receive it.
fn signal(pid: u64, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill runs")
        .success()
}

#[test]
fn with_speculation_a_job_ends_while_an_executor_is_frozen() {
    let dir = Scratch::new("speculation");
    let go = dir.0.join("frozen");
    let metrics = dir.0.join("tasks.jsonl");
    let script = cache_then_wait_script(
        &go,
        "println!(\"sum {}\", cached.map(|x: u64| x * 2).reduce(|a: u64, b: u64| a + b));\n",
    );
    let script_path = dir.write("script.rs", &script);
    let mut session = Command::new(bin("tessera"));
    session
        .current_dir(&dir.0)
        .args(["--master", "local-cluster[2,1,1024]"])
        .env("NO_COLOR", "1")
        .env("TESSERA_SPECULATION", "1")
        .env("TESSERA_SPECULATION_QUANTILE", "0.5")
        .env("TESSERA_SPECULATION_MIN_MS", "200");
    let child = run_in_background(session, &metrics, &script_path);

    // An executor that ran a task of the first job (and cached its partition) now freezes.
    // (The other may have registered after that job; copies wait for an executor to go to.)
    wait_for_tasks(&metrics, 0, 4);
    let frozen = read_task_metrics(&metrics)[0].pid;
    assert!(
        signal(frozen, "-STOP"),
        "executor {frozen} is there to freeze"
    );
    std::fs::write(&go, "").unwrap();

    // The tasks of the second count and of the sum sent to the frozen executor never answer;
    // their copies do.
    wait_for_tasks(&metrics, 2, 4);
    // Thawed, unless the session, done, has already stopped its executors.
    signal(frozen, "-CONT");
    let stdout = finished(child, "with an executor frozen");
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let sum: u64 = (1..=1000u64).map(|x| x * 2).sum();
    assert_eq!(
        lines,
        [
            "first 1000".to_string(),
            "second 1000".to_string(),
            format!("sum {sum}")
        ]
    );
    let later: Vec<_> = read_task_metrics(&metrics)
        .into_iter()
        .filter(|t| t.job > 0)
        .collect();
    assert!(
        later.iter().all(|t| t.pid != frozen),
        "every task after the freeze ended on the executor that answers: {later:?}"
    );
}
