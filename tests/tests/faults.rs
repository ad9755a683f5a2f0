//! Faults: an executor killed in the middle of a job over cached data, or over cached data and a
//! shuffle. Its tasks are retried on the other executor and the job gives the correct result;
//! the partitions it cached are adopted from host memory by the other (plain records, kept
//! there; records that own memory, such as strings, from the encoded copy kept there), or,
//! where the agents keep nothing in host memory, recomputed from lineage. The map outputs it held are
//! read through its agent, which serves the copies it left; without that shuffle service they
//! are recomputed from lineage (the map stage is resubmitted for just those).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_e2e::{Scratch, TaskLine, bin, read_task_metrics};

/// What a run with a killed executor left.
struct KilledRun {
    lines: Vec<String>,
    stderr: String,
    tasks: Vec<TaskLine>,
    victim: u64,
    /// The other executor of job 0 (the victim, where it ran alone).
    survivor: u64,
}

/// Runs `script` on a loopback cluster of `executors` executors (one per agent; with `flags`
/// for `tessera`, and `env` for it and the agents it starts); once job 0 has run 8 tasks (naming every executor process) and `ready` holds
/// for the metrics so far, waits `delay` and kills one executor with SIGKILL. Returns what the
/// run printed; panics if it failed.
fn run_and_kill_an_executor(
    name: &str,
    executors: usize,
    (flags, env): (&[&str], &[(&str, &str)]),
    script: &str,
    ready: impl Fn(&[TaskLine]) -> bool,
    delay: Duration,
) -> KilledRun {
    let dir = Scratch::new(name);
    let metrics = dir.0.join("tasks.jsonl");
    let script_path = dir.write("script.rs", script);
    let child = Command::new(bin("tessera"))
        .current_dir(&dir.0)
        .args(flags)
        .args(["--master", &format!("local-cluster[{executors},2,1024]")])
        .arg("--task-metrics")
        .arg(&metrics)
        .arg("run")
        .arg(&script_path)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera runs");

    let deadline = Instant::now() + Duration::from_secs(600);
    let pids: BTreeSet<u64> = loop {
        assert!(
            Instant::now() < deadline,
            "the run did not reach the moment to kill"
        );
        let tasks = read_task_metrics(&metrics);
        let first_job: Vec<&TaskLine> = tasks.iter().filter(|t| t.job == 0).collect();
        if first_job.len() == 8 && ready(&tasks) {
            break first_job.iter().map(|t| t.pid).collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), executors, "every executor ran the first job");

    std::thread::sleep(delay);
    let victim = *pids.iter().next().unwrap();
    let survivor = *pids.iter().last().unwrap();
    let status = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "could not kill executor {victim}");

    let output = child.wait_with_output().expect("tessera finishes");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the run failed:\n{stdout}\n{stderr}"
    );
    KilledRun {
        lines: stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        stderr,
        tasks: read_task_metrics(&metrics),
        victim,
        survivor,
    }
}

impl KilledRun {
    /// The partitions the victim computed in job 0 (and cached, in the scripts below).
    fn held_by_victim(&self) -> BTreeSet<u64> {
        self.tasks
            .iter()
            .filter(|t| t.job == 0 && t.pid == self.victim)
            .map(|t| t.partition)
            .collect()
    }

    /// Asserts that the survivor ran one of `tasks` over a partition the victim had cached.
    fn assert_survivor_read_what_the_victim_held(&self, tasks: &[TaskLine]) {
        let held = self.held_by_victim();
        assert!(!held.is_empty(), "{:?}", self.tasks);
        assert!(
            tasks
                .iter()
                .any(|t| held.contains(&t.partition) && t.pid == self.survivor),
            "the survivor read a partition the victim had cached: {tasks:?}"
        );
    }
}

/// Asserts that a run of the scripts below printed the count of `0..200_000` and the sum of
/// each number doubled.
fn assert_doubled_sum(run: &KilledRun) {
    let expected: u64 = (0..200_000u64).map(|x| x * 2).sum();
    assert_eq!(
        run.lines,
        vec!["200000".to_string(), expected.to_string()],
        "stderr:\n{}",
        run.stderr
    );
}

/// Whether the executor of job 0 with the lowest pid (the one [`run_and_kill_an_executor`]
/// kills) has written its encoded copy in host memory of every partition it cached in job 0.
/// A copy's manifest (`.block`) is written once its file is complete, in the directory the
/// agent names in the executor's environment.
fn victims_copies_written(tasks: &[TaskLine]) -> bool {
    let first_job = tasks.iter().filter(|t| t.job == 0);
    let Some(victim) = first_job.clone().map(|t| t.pid).min() else {
        return false;
    };
    let held = first_job.filter(|t| t.pid == victim).count();
    let Ok(environ) = std::fs::read(format!("/proc/{victim}/environ")) else {
        return false;
    };
    let Some(dir) = String::from_utf8_lossy(&environ)
        .split('\0')
        .find_map(|v| v.strip_prefix("TESSERA_MEMORY_DIR=").map(String::from))
    else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let copies = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".block"))
        .count();
    copies >= held
}

/// Cell 1 caches 8 partitions of strings on two executors; cell 2 is a slow job over the
/// cache, in which one executor is killed (with `env` for the session and its agents) once
/// `ready` holds for the metrics so far and the job has finished a task: a task takes 1.5 s,
/// and each executor runs four on two slots, so the victim is then computing some. Checks the
/// answer, and returns the run and the tasks of cell 2.
fn kill_mid_job_over_strings(
    name: &str,
    env: &[(&str, &str)],
    ready: impl Fn(&[TaskLine]) -> bool,
) -> (KilledRun, Vec<TaskLine>) {
    let script = r#"
let data = sc.parallelize((0..200_000u64).map(|x| x.to_string()).collect::<Vec<String>>(), 8).cache();
data.count()
// %%
data.map(|x: String| { let x: u64 = x.parse().unwrap(); if x % 4096 == 0 { std::thread::sleep(std::time::Duration::from_millis(250)); } x * 2 }).reduce(|a, b| a + b)
"#;
    let run = run_and_kill_an_executor(
        name,
        2,
        (&[], env),
        script,
        |tasks| tasks.iter().any(|t| t.job == 1) && ready(tasks),
        Duration::ZERO,
    );
    assert_doubled_sum(&run);
    let second_job: Vec<TaskLine> = run.tasks.iter().filter(|t| t.job == 1).cloned().collect();
    assert_eq!(second_job.len(), 8, "{second_job:?}");
    (run, second_job)
}

#[test]
fn killing_an_executor_mid_job_loses_no_result_and_its_cache_of_strings_is_adopted() {
    // Strings own memory in the process that made them; the victim also kept an encoded copy
    // of each partition in host memory, which the survivor adopted and decoded: nothing was
    // computed again, and the survivor read what the victim had cached. The copies are written
    // at a lower priority than tasks, and a busy host (CI runs two of these tests at once)
    // can hold them back for seconds: the victim is killed once they are written.
    let (run, second_job) = kill_mid_job_over_strings("kill-executor", &[], victims_copies_written);
    assert!(
        second_job.iter().all(|t| t.origin.starts_with("cached:")),
        "every partition read from the cache: {second_job:?}\nstderr:\n{}",
        run.stderr
    );
    run.assert_survivor_read_what_the_victim_held(&second_job);
}

#[test]
fn without_host_memory_a_killed_executors_cache_of_strings_is_recomputed() {
    // Agents that keep nothing in host memory: the partitions the victim cached went with it,
    // and are computed again from lineage.
    let env = [("TESSERA_AGENT_MEMORY_DIR", "none")];
    let (run, second_job) =
        kill_mid_job_over_strings("kill-executor-no-host-memory", &env, |_| true);
    assert!(
        second_job
            .iter()
            .any(|t| t.origin == "computed" && t.pid != run.victim),
        "a partition the victim cached was recomputed on another executor: {second_job:?}"
    );
}

/// Cell 1 caches 8 partitions of `u64`s on `executors` executors; one is killed while cell 2
/// waits; cell 3 reads the cache. Checks the answer, and that no partition was computed again
/// after the kill: `u64`s are plain bytes, kept in host memory, and what the victim kept was
/// adopted. Returns the run and the tasks of cell 3.
fn kill_between_cells_over_plain_records(
    name: &str,
    executors: usize,
) -> (KilledRun, Vec<TaskLine>) {
    let script = r#"
let data = sc.parallelize((0..200_000u64).collect::<Vec<u64>>(), 8).cache();
data.count()
// %%
std::thread::sleep(std::time::Duration::from_secs(3));
// %%
data.map(|x: u64| x * 2).reduce(|a, b| a + b)
"#;
    let run = run_and_kill_an_executor(
        name,
        executors,
        (&[], &[]),
        script,
        |_| true,
        Duration::from_millis(500),
    );
    assert_doubled_sum(&run);
    let after: Vec<TaskLine> = run.tasks.iter().filter(|t| t.job == 1).cloned().collect();
    assert_eq!(after.len(), 8, "{after:?}");
    assert!(
        after
            .iter()
            .all(|t| t.origin.starts_with("cached:") && t.pid != run.victim),
        "every partition read from the cache after the kill: {after:?}\nstderr:\n{}",
        run.stderr
    );
    (run, after)
}

#[test]
fn a_cache_of_plain_records_outlives_a_killed_executor() {
    // The survivor, on the same host, adopted what the victim kept when the driver found it
    // lost.
    let (run, after) = kill_between_cells_over_plain_records("kill-executor-plain", 2);
    run.assert_survivor_read_what_the_victim_held(&after);
}

#[test]
fn the_replacement_of_an_executor_alone_on_its_host_adopts_its_cache_of_plain_records() {
    // One agent, one executor. Nobody else on the host can adopt what it kept in host memory;
    // its replacement, launched there on the next offer, adopts it as it registers, before it
    // takes a task (the checks of the helper: every partition read from the cache).
    let (run, after) = kill_between_cells_over_plain_records("kill-lone-executor", 1);
    assert!(after.iter().all(|t| t.pid != run.victim), "{after:?}");
}

#[test]
fn a_task_killed_while_it_caches_a_text_file_is_carried_on_by_another_executor() {
    // Cell 2 parses a file of a million numbers in four splits of 250,000 lines (of 8 bytes)
    // and caches them; each split's task stops for a while three quarters through (the first
    // time only). Every task is then under way on the two executors, and one executor is
    // killed. What the victim had parsed of its splits was kept in host memory as it went:
    // the survivor adopts it, and the tasks tried again carry on from where the victim had
    // got instead of parsing the split anew.
    let marks = Scratch::new("carried-on-marks");
    let mark = |x: u64| marks.0.join(format!("reached-{x}"));
    let stops = [187_500u64, 437_500, 687_500, 937_500];
    let script = format!(
        r#"
sc.parallelize((0..8u64).collect::<Vec<u64>>(), 8).count()
// %%
std::fs::write("numbers.txt", (0..1_000_000u64).map(|x| format!("{{x:07}}\n")).collect::<String>()).unwrap();
let stops: Vec<u64> = vec!{stops:?};
let data = sc.text_file("numbers.txt", 4).map(move |line: String| {{
    let x: u64 = line.parse().unwrap();
    if stops.contains(&x) {{
        let mark = format!("{marks}/reached-{{x}}");
        if std::fs::metadata(&mark).is_err() {{
            std::fs::write(&mark, "").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(3));
        }}
    }}
    x
}}).cache();
data.count()
// %%
data.map(|x: u64| x * 2).reduce(|a, b| a + b)
"#,
        marks = marks.0.display()
    );
    let every_task_stopped = |_: &[TaskLine]| stops.iter().all(|&x| mark(x).exists());
    let run = run_and_kill_an_executor(
        "kill-executor-caching",
        2,
        (&[], &[]),
        &script,
        every_task_stopped,
        Duration::from_millis(200),
    );
    let expected: u64 = (0..1_000_000u64).map(|x| x * 2).sum();
    assert_eq!(
        run.lines,
        ["8", "1000000", &expected.to_string()],
        "stderr:\n{}",
        run.stderr
    );
    let caching: Vec<&TaskLine> = run.tasks.iter().filter(|t| t.job == 1).collect();
    let carried_on: Vec<&&TaskLine> = caching
        .iter()
        .filter(|t| t.origin.starts_with("resumed:"))
        .collect();
    assert!(
        !carried_on.is_empty() && carried_on.iter().all(|t| t.pid == run.survivor),
        "the survivor carried on the victim's tasks: {caching:?}\nstderr:\n{}",
        run.stderr
    );
    for task in &carried_on {
        let records: u64 = task.origin.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            records > 0 && records < 250_000,
            "part of a split of 250,000 lines came from host memory: {task:?}"
        );
    }
    let read_back: Vec<&TaskLine> = run.tasks.iter().filter(|t| t.job == 2).collect();
    assert!(
        read_back.len() == 4 && read_back.iter().all(|t| t.origin.starts_with("cached:")),
        "every partition, those carried on too, was cached whole: {read_back:?}"
    );
}

/// Cell 2 shuffles the cached data; its reduce tasks are slow (4 x 8 records x 150 ms).
const SLOW_REDUCE: &str = r#"
let data = sc.parallelize((0..100_000u64).collect::<Vec<u64>>(), 8).cache();
data.count()
// %%
let mut sums = data.map(|x: u64| (x % 64, x)).reduce_by_key(|a: u64, b: u64| a + b)
    .map(|p: (u64, u64)| { std::thread::sleep(std::time::Duration::from_millis(150)); p })
    .collect();
sums.sort();
println!("{:?}", sums);
"#;

/// Runs [`SLOW_REDUCE`] and kills an executor as soon as the map stage has written all its
/// output, early in the reduce stage; checks the answer and returns the map tasks of the job.
fn kill_during_the_reduce_stage(name: &str, flags: &[&str]) -> (KilledRun, Vec<TaskLine>) {
    let map_stage_done = |tasks: &[TaskLine]| {
        tasks
            .iter()
            .filter(|t| t.job == 1 && t.stage.starts_with("map:"))
            .count()
            == 8
    };
    let run = run_and_kill_an_executor(
        name,
        2,
        (flags, &[]),
        SLOW_REDUCE,
        map_stage_done,
        Duration::from_millis(300),
    );
    let mut sums = vec![0u64; 64];
    for x in 0..100_000u64 {
        sums[(x % 64) as usize] += x;
    }
    let expected: Vec<(u64, u64)> = (0..64).map(|k| (k, sums[k as usize])).collect();
    assert_eq!(
        run.lines,
        vec!["100000".to_string(), format!("{expected:?}")],
        "stderr:\n{}",
        run.stderr
    );
    let maps = run
        .tasks
        .iter()
        .filter(|t| t.job == 1 && t.stage.starts_with("map:"))
        .cloned()
        .collect();
    (run, maps)
}

#[test]
fn killing_an_executor_during_a_reduce_stage_loses_none_of_its_map_outputs() {
    let (run, maps) = kill_during_the_reduce_stage("kill-executor-served", &[]);
    // Reducers read the victim's outputs through its agent: no map task ran again.
    assert_eq!(maps.len(), 8, "{maps:?}\nstderr:\n{}", run.stderr);
    let reduces_after: Vec<&TaskLine> = run
        .tasks
        .iter()
        .filter(|t| t.job == 1 && !t.stage.starts_with("map:") && t.pid != run.victim)
        .collect();
    assert!(
        reduces_after.len() >= 5,
        "the survivor ran the reduce tasks left: {:?}",
        run.tasks
    );
}

#[test]
fn without_the_shuffle_service_a_killed_executors_map_outputs_are_recomputed() {
    let (run, maps) =
        kill_during_the_reduce_stage("kill-executor-shuffle", &["--no-shuffle-service"]);
    // The map outputs the victim held were written again, after the kill, by other processes:
    // on the survivor from the partitions it adopted from the victim's host memory.
    assert!(
        maps.len() > 8,
        "the map stage ran again for lost outputs: {maps:?}"
    );
    assert!(maps[8..].iter().all(|t| t.pid != run.victim), "{maps:?}");
    assert!(
        maps[8..]
            .iter()
            .filter(|t| t.pid == run.survivor)
            .all(|t| t.origin.starts_with("cached:")),
        "{maps:?}"
    );
}
