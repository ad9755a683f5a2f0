//! Helpers for end-to-end tests: find the built binaries, run scripts through `tessera run`,
//! and read the task metrics it logs.
//!
//! The binaries must be built first (`cargo build --workspace --bins`); the tests start them as
//! real processes on 127.0.0.1.

pub mod ha;
pub mod netns;
pub mod refusals;
pub mod zookeeper;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Directory of the workspace's binaries (next to the test executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Path of binary `name`, or a panic that says how to build it.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// `tessera` in `dir`, a session of `cluster` (`--master tessera://…` and the cluster's
/// framework credentials), colours off: what every test that runs a session on a
/// `LocalCluster` starts from.
pub fn tessera_on(cluster: &tessera_framework::LocalCluster, dir: &Path) -> Command {
    let mut command = Command::new(bin("tessera"));
    command
        .current_dir(dir)
        .args([
            "--master",
            &format!("tessera://{}", cluster.master_address()),
        ])
        .arg("--credentials")
        .arg(cluster.credentials_dir().join("frameworks").join("local"))
        .env("NO_COLOR", "1");
    command
}

/// 1..=1000 as log lines (`INFO line 1`, ...); every tenth is an `ERROR` line: the input of
/// the cache script.
pub fn log_file() -> String {
    (1..=1000)
        .map(|i| format!("{} line {i}\n", if i % 10 == 0 { "ERROR" } else { "INFO" }))
        .collect()
}

/// A script that caches 1..=1000 in 4 partitions and counts it ("first 1000"), waits until the
/// file `go` exists (the test disrupts the cluster meanwhile), counts again ("second 1000"),
/// then runs `after` (more of the last cell).
pub fn cache_then_wait_script(go: &Path, after: &str) -> String {
    format!(
        "// %%\n\
         let cached = sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).cache();\n\
         println!(\"first {{}}\", cached.count());\n\
         // %%\n\
         while !std::path::Path::new({go:?}).exists() {{\n\
             std::thread::sleep(std::time::Duration::from_millis(50));\n\
         }}\n\
         // %%\n\
         println!(\"second {{}}\", cached.count());\n{after}"
    )
}

/// Starts `session` (a `tessera` command) running `script` in the background, logging task
/// metrics to `metrics`, its output piped.
pub fn run_in_background(
    mut session: Command,
    metrics: &Path,
    script: &Path,
) -> std::process::Child {
    session
        .arg("--task-metrics")
        .arg(metrics)
        .arg("run")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tessera runs")
}

/// Waits for a session started by [`run_in_background`] to end and returns what it printed;
/// panics, with its output and `context`, if it failed.
pub fn finished(child: std::process::Child, context: &str) -> String {
    let output = child.wait_with_output().expect("tessera finishes");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tessera run failed: {stdout}\n{stderr}\n{context}"
    );
    stdout
}

/// Waits until `metrics` shows `tasks` tasks of job `job` done; panics after ten minutes (the
/// first session on a machine compiles the cells' dependencies).
pub fn wait_for_tasks(metrics: &Path, job: u64, tasks: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while read_task_metrics(metrics)
        .iter()
        .filter(|t| t.job == job)
        .count()
        < tasks
    {
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} did not run {tasks} tasks"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tessera-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What `tessera run` did.
pub struct RunOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub tasks: Vec<TaskLine>,
}

impl RunOutput {
    /// Lines of stdout, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Panics with the run's output unless it succeeded.
    pub fn expect_success(&self) {
        assert!(
            self.success,
            "tessera run failed:\n{}\n{}",
            self.stdout, self.stderr
        );
    }

    /// Tasks of job `job`.
    pub fn job(&self, job: u64) -> Vec<&TaskLine> {
        self.tasks.iter().filter(|t| t.job == job).collect()
    }

    /// Shuffle map tasks of job `job`.
    pub fn map_tasks(&self, job: u64) -> Vec<&TaskLine> {
        self.job(job)
            .into_iter()
            .filter(|t| t.stage.starts_with("map:"))
            .collect()
    }
}

/// Whether process `pid` runs (a zombie does not: it shows state Z; reaped ones vanish from
/// /proc).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// One line of the task metrics log.
#[derive(Debug, Clone)]
pub struct TaskLine {
    pub job: u64,
    /// `result`, or `map:<shuffle>` for a shuffle's map task.
    pub stage: String,
    pub partition: u64,
    /// `PROCESS_LOCAL`, `NODE_LOCAL` or `ANY`: how close to its data the task ran.
    pub locality: String,
    pub executor: String,
    pub pid: u64,
    pub origin: String,
    pub shuffle_read: u64,
    pub shuffle_written: u64,
    /// Bytes the task wrote to spill files, or kept on disk of what it fetched.
    pub spilled: u64,
    /// Records the task's action received.
    pub records: u64,
    /// Threads its records went through: more than one when idle cores of its executor
    /// helped with a cached partition.
    pub threads: u64,
    /// How long the task ran on its executor.
    pub ran: std::time::Duration,
    /// How long it waited on its executor for a core before it ran.
    pub slot_wait: std::time::Duration,
    /// The rest of the time from sending it to having its result (Spark's scheduler delay).
    pub scheduler_delay: std::time::Duration,
    /// When the driver sent it.
    pub sent: std::time::SystemTime,
    /// When the driver had its result.
    pub finished: std::time::SystemTime,
}

impl TaskLine {
    /// When the task started, give or take the trip of its result to the driver.
    pub fn started(&self) -> std::time::SystemTime {
        self.finished - self.ran
    }
}

/// Runs `tessera run SCRIPT` with `args` in `dir` and collects its output and task metrics.
/// Items for a script's cell: `report_peaks(label, &sc)` has tasks on every executor print
/// `LABEL PID KB`, the executor's peak resident memory (VmHWM) so far.
pub const REPORT_PEAKS: &str = r#"
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
fn report_peaks(label: &str, sc: &tessera::Context) {
    let mut peaks = sc.parallelize((0..8u32).collect::<Vec<_>>(), 8)
        .map(|_| (std::process::id(), peak_kb()))
        .collect();
    peaks.sort();
    peaks.dedup_by_key(|p| p.0);
    for (pid, kb) in peaks { println!("{label} {pid} {kb}"); }
}
"#;

/// The peak resident memory (kB) of each executor, from the `LABEL PID KB` lines that
/// [`REPORT_PEAKS`]' `report_peaks` printed.
pub fn peaks(stdout: &str, label: &str) -> std::collections::BTreeMap<u64, u64> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(label)?.strip_prefix(' '))
        .map(|rest| {
            let mut words = rest.split_whitespace().map(|w| w.parse::<u64>().unwrap());
            (words.next().unwrap(), words.next().unwrap())
        })
        .collect()
}

pub fn tessera_run(dir: &Path, script: &str, master: &str, extra: &[&str]) -> RunOutput {
    tessera_run_with_env(dir, script, master, extra, &[])
}

/// As [`tessera_run`], with environment variables for the session (cells read them).
pub fn tessera_run_with_env(
    dir: &Path,
    script: &str,
    master: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> RunOutput {
    let script_path = dir.join("script.rs");
    std::fs::write(&script_path, script).unwrap();
    let metrics = dir.join("tasks.jsonl");
    let _ = std::fs::remove_file(&metrics);
    let output = Command::new(bin("tessera"))
        .current_dir(dir)
        .args(["--master", master, "--task-metrics"])
        .arg(&metrics)
        .arg("run")
        .arg(&script_path)
        .args(extra)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("tessera runs");
    let tasks = read_task_metrics(&metrics);
    RunOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        tasks,
    }
}

/// Asserts that job 1, a second count of 4 partitions, read every partition from the cache on
/// the executor processes that ran job 0: nothing they held was lost `across` what happened
/// between the two (a failover, a restart).
pub fn assert_second_count_cached(tasks: &[TaskLine], across: &str) {
    let second: Vec<_> = tasks.iter().filter(|t| t.job == 1).collect();
    assert_eq!(second.len(), 4, "{tasks:?}");
    assert!(
        second.iter().all(|t| t.origin.starts_with("cached:")),
        "every partition came from the cache after the {across}: {second:?}"
    );
    let pids = |job: u64| -> std::collections::BTreeSet<u64> {
        tasks
            .iter()
            .filter(|t| t.job == job)
            .map(|t| t.pid)
            .collect()
    };
    assert_eq!(
        pids(0),
        pids(1),
        "the same executor processes served both counts"
    );
}

/// The task metrics a run logged with `--task-metrics` so far (none if the file is not there).
/// Read while the run goes on, the file may end in a line being written: only whole lines
/// (ended by a newline) count.
pub fn read_task_metrics(path: &Path) -> Vec<TaskLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("metrics lines are JSON");
            let micros = |field: &str| {
                std::time::Duration::from_micros(
                    v[field]
                        .as_u64()
                        .unwrap_or_else(|| panic!("metrics line without {field}: {line}")),
                )
            };
            TaskLine {
                job: v["job"].as_u64().unwrap(),
                stage: v["stage"].as_str().unwrap().to_string(),
                partition: v["partition"].as_u64().unwrap(),
                locality: v["locality"].as_str().unwrap().to_string(),
                executor: v["executor"].as_str().unwrap().to_string(),
                pid: v["pid"].as_u64().unwrap(),
                origin: v["origin"].as_str().unwrap().to_string(),
                shuffle_read: v["shuffle_read"].as_u64().unwrap(),
                shuffle_written: v["shuffle_written"].as_u64().unwrap(),
                records: v["records"].as_u64().unwrap(),
                threads: v["threads"].as_u64().unwrap(),
                spilled: v["spilled"].as_u64().unwrap(),
                ran: micros("micros"),
                slot_wait: micros("slot_wait_micros"),
                scheduler_delay: micros("scheduler_delay_micros"),
                sent: std::time::UNIX_EPOCH + micros("sent_unix_micros"),
                finished: std::time::UNIX_EPOCH + micros("finished_unix_micros"),
            }
        })
        .collect()
}
