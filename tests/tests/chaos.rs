//! The chaos suite: PageRank and logistic regression — the notebooks users run — on a loopback
//! cluster with standby masters (a three-server ZooKeeper ensemble, three masters, two
//! agents), each run with one process killed by SIGKILL at a random moment: an executor, an
//! agent, the leading master or a ZooKeeper server. The killed process is started again (an
//! executor by the session itself, on offers). Every run must give the answer of a run without
//! faults; how much longer the job took is reported.
//!
//! Each faulty run is paired with a run without faults made right after it, and its cost is the
//! difference within the pair: on a two-core machine the job's time drifts with load by more
//! than an iteration over a long suite, and a pair shares the drift.
//!
//! An executor is killed in the notebooks as they are (their data cached `MEMORY_ONLY`, so its
//! cached partitions are recomputed from lineage) and with their data cached with two copies
//! (`MEMORY_ONLY_2`, so they are read from the other copy).
//!
//! `TESSERA_CHAOS_RUNS` runs per target and workload (1 by default, as CI runs it;
//! `scripts/chaos.sh RUNS` for the long mode), `TESSERA_CHAOS_SEED` repeats a sequence of
//! moments, `TESSERA_CHAOS_TARGETS` (a comma-separated subset of `executor,agent,master,
//! zookeeper`) picks the processes killed. The binaries must be built first:
//! `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tessera_e2e::ha::HaCluster;
use tessera_e2e::{Scratch, read_task_metrics};

/// What is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Executor,
    Agent,
    LeadingMaster,
    ZooKeeperServer,
}

const TARGETS: [Target; 4] = [
    Target::Executor,
    Target::Agent,
    Target::LeadingMaster,
    Target::ZooKeeperServer,
];

impl Target {
    /// Its name in `TESSERA_CHAOS_TARGETS`.
    fn name(self) -> &'static str {
        match self {
            Target::Executor => "executor",
            Target::Agent => "agent",
            Target::LeadingMaster => "master",
            Target::ZooKeeperServer => "zookeeper",
        }
    }
}

/// The targets `TESSERA_CHAOS_TARGETS` names (all of them when it is unset).
fn chosen_targets() -> Vec<Target> {
    let Ok(names) = std::env::var("TESSERA_CHAOS_TARGETS") else {
        return TARGETS.to_vec();
    };
    let names: Vec<&str> = names.split(',').map(str::trim).collect();
    for name in &names {
        assert!(
            TARGETS.iter().any(|t| t.name() == *name),
            "TESSERA_CHAOS_TARGETS names {name:?}; use a comma-separated subset of \
             executor,agent,master,zookeeper"
        );
    }
    TARGETS
        .into_iter()
        .filter(|t| names.contains(&t.name()))
        .collect()
}

/// How a workload caches its data: as the notebook does (`MEMORY_ONLY`), or with two copies
/// (`MEMORY_ONLY_2`), which only an executor's loss tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    MemoryOnly,
    MemoryOnly2,
}

impl Level {
    /// The levels each target is run with.
    fn for_target(target: Target) -> &'static [Level] {
        match target {
            Target::Executor => &[Level::MemoryOnly, Level::MemoryOnly2],
            _ => &[Level::MemoryOnly],
        }
    }
}

/// A notebook and its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    PageRank,
    LogisticRegression,
}

impl Workload {
    fn notebook(self) -> PathBuf {
        let name = match self {
            Workload::PageRank => "pagerank.rs",
            Workload::LogisticRegression => "logistic_regression.rs",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../notebooks")
            .join(name)
    }

    /// The notebook as a user runs it at `level`: a copy in `dir` whose cache is persisted at
    /// that level instead (`cache()` is `MEMORY_ONLY`).
    fn notebook_at(self, level: Level, dir: &Path) -> PathBuf {
        if level == Level::MemoryOnly {
            return self.notebook();
        }
        let text = std::fs::read_to_string(self.notebook()).unwrap();
        assert_eq!(text.matches(".cache();").count(), 1, "one cached RDD");
        let path = dir.join(format!("{self:?}-{level:?}.rs"));
        let persisted = text.replace(".cache();", ".persist(StorageLevel::MemoryOnly2);");
        std::fs::write(&path, persisted).unwrap();
        path
    }

    /// Writes its input into `dir`: a graph of 200,000 edges, or 200,000 labelled points (the
    /// same every run).
    fn input(self, dir: &Path) -> PathBuf {
        let mut random = Random(7);
        let (name, text) = match self {
            Workload::PageRank => (
                "graph.txt",
                (0..200_000)
                    .map(|_| format!("{} {}\n", random.below(20_000), random.below(20_000)))
                    .collect::<String>(),
            ),
            Workload::LogisticRegression => (
                "points.txt",
                (0..200_000)
                    .map(|_| {
                        let y = if random.below(2) == 0 { -1 } else { 1 };
                        let x: Vec<String> = (0..10)
                            .map(|_| format!("{:.4}", y as f64 * 0.3 + random.unit() - 0.5))
                            .collect();
                        format!("{y} {}\n", x.join(" "))
                    })
                    .collect::<String>(),
            ),
        };
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The answer in a run's output: every page's rank, or the weights.
    fn answer(self, stdout: &str) -> Vec<(String, f64)> {
        let prefix = match self {
            Workload::PageRank => "rank: ",
            Workload::LogisticRegression => "w: ",
        };
        let mut answer = Vec::new();
        for line in stdout.lines() {
            let Some(rest) = line.strip_prefix(prefix) else {
                continue;
            };
            match self {
                Workload::PageRank => {
                    let (page, rank) = rest.split_once(' ').unwrap();
                    answer.push((page.to_string(), rank.parse().unwrap()));
                }
                Workload::LogisticRegression => {
                    for (i, w) in rest.split(' ').enumerate() {
                        answer.push((i.to_string(), w.parse().unwrap()));
                    }
                }
            }
        }
        answer
    }

    /// The job's time as the notebook prints it, in milliseconds: PageRank's whole job, or
    /// the sum of LR's iterations.
    fn job_ms(self, stdout: &str) -> f64 {
        // "pagerank took 812.3 ms", "iteration 3: 12.3 ms, mean loss 0.5".
        let ms = |text: &str| -> Option<f64> { text.split(" ms").next()?.trim().parse().ok() };
        let times = stdout.lines().filter_map(|line| match self {
            Workload::PageRank => ms(line.strip_prefix("pagerank took ")?),
            Workload::LogisticRegression => {
                ms(line.strip_prefix("iteration ")?.split_once(": ")?.1)
            }
        });
        times.sum()
    }
}

/// Whether two answers agree: the same keys, values within a relative 1e-6 (sums may be added
/// in another order when tasks run again).
fn same_answer(a: &[(String, f64)], b: &[(String, f64)]) -> bool {
    let a: BTreeMap<&str, f64> = a.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let b: BTreeMap<&str, f64> = b.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    !a.is_empty()
        && a.len() == b.len()
        && a.iter().all(|(k, x)| {
            b.get(k)
                .is_some_and(|y| (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0))
        })
}

/// xorshift: moments that a seed repeats.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The iterations both notebooks are told to run: a tenth of PageRank's job (reading the graph
/// included) or of LR's iterations is "an iteration's time".
const ITERATIONS: u32 = 10;

/// The middle value (NaN for none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One run's outcome.
struct Run {
    stdout: String,
    stderr: String,
    success: bool,
    /// Whether the fault hit the run: the session was still running when the process was
    /// killed (a fault after its end proves nothing).
    hit: bool,
    /// For a killed executor, whether it was killed before the first job ended (LR's first
    /// iteration, which reads and parses the points; PageRank's reading and grouping of the
    /// links), where the tasks it was running are lost with what they had computed, rather
    /// than in the jobs that read what was cached.
    died_loading: bool,
}

/// Runs `notebook` on `input` as a session of `cluster`; with `fault`, kills the target `after`
/// the job started (its first task ran) and starts it again.
fn run(
    cluster: &mut HaCluster,
    notebook: &Path,
    input: &Path,
    fault: Option<(Target, Duration, &mut Random)>,
) -> Run {
    let dir = Scratch::new("chaos");
    let metrics = dir.0.join("tasks.jsonl");
    let started = Instant::now();
    let mut child = cluster
        .tessera(&dir.0)
        .arg("--task-metrics")
        .arg(&metrics)
        .arg("run")
        .arg(notebook)
        .env("TESSERA_EXAMPLE_INPUT", input)
        .env("TESSERA_EXAMPLE_ALL", "1")
        .env("TESSERA_EXAMPLE_ITERATIONS", ITERATIONS.to_string())
        // Files, not pipes: the ranks are more than a pipe holds while nobody reads.
        .stdout(std::fs::File::create(dir.0.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.0.join("stderr")).unwrap())
        .spawn()
        .expect("tessera runs");
    let mut hit = false;
    let mut killed_at = None;
    if let Some((target, after, random)) = fault {
        let deadline = Instant::now() + Duration::from_secs(300);
        while read_task_metrics(&metrics).is_empty() && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the job did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(after);
        hit = child.try_wait().unwrap().is_none();
        match target {
            Target::Executor => {
                let deadline = Instant::now() + Duration::from_secs(300);
                let pid = loop {
                    let pids: Vec<u64> =
                        read_task_metrics(&metrics).iter().map(|t| t.pid).collect();
                    if let Some(&pid) = pids.get(random.below(pids.len().max(1) as u64) as usize) {
                        break pid;
                    }
                    assert!(Instant::now() < deadline, "no executor ran a task");
                    std::thread::sleep(Duration::from_millis(20));
                };
                // A pid of an executor already gone (and replaced) fails; the run is made again.
                let killed = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
                hit &= killed.is_ok_and(|s| s.success());
                killed_at = Some(std::time::SystemTime::now());
            }
            Target::Agent => {
                let i = random.below(cluster.shape().0 as u64) as usize;
                cluster.kill_agent(i);
                std::thread::sleep(Duration::from_millis(500));
                cluster.start_agent(i);
            }
            Target::LeadingMaster => {
                let leader = cluster.wait_leader(Duration::from_secs(30));
                cluster.kill_master(leader);
                std::thread::sleep(Duration::from_millis(500));
                cluster.start_master(leader);
            }
            Target::ZooKeeperServer => {
                let i = random.below(cluster.zk.len() as u64) as usize;
                cluster.zk.kill(i);
                std::thread::sleep(Duration::from_millis(500));
                cluster.zk.restart(i);
            }
        }
    }
    let limit = Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("a chaos run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).unwrap_or_default();
    let first_job_ended = read_task_metrics(&metrics)
        .iter()
        .filter(|t| t.job == 0)
        .map(|t| t.finished)
        .max();
    let died_loading = killed_at.is_some_and(|at| first_job_ended.is_some_and(|end| at < end));
    Run {
        stdout: read("stdout"),
        stderr: read("stderr"),
        success: status.success(),
        hit,
        died_loading,
    }
}

#[test]
fn every_run_with_a_process_killed_gives_the_answer_of_a_run_without() {
    let runs: usize = std::env::var("TESSERA_CHAOS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let seed: u64 = std::env::var("TESSERA_CHAOS_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("chaos: {runs} run(s) per target and workload, TESSERA_CHAOS_SEED={seed}");
    let mut random = Random(seed);
    let mut cluster = HaCluster::start(3, 3, 2, 2.0, 1024);
    let inputs = Scratch::new("chaos-inputs");
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for workload in [Workload::PageRank, Workload::LogisticRegression] {
        let input = workload.input(&inputs.0);
        // Without faults: a cold run, then a warm one (as the faulty runs are) whose job
        // time picks the moments of the kills. Every answer agrees.
        let notebook = workload.notebook();
        let cold = run(&mut cluster, &notebook, &input, None);
        let warm = run(&mut cluster, &notebook, &input, None);
        for run in [&cold, &warm] {
            assert!(
                run.success,
                "a run without faults failed: {}\n{}",
                run.stdout, run.stderr
            );
        }
        let expected = workload.answer(&warm.stdout);
        assert!(!expected.is_empty(), "no answer printed: {}", warm.stdout);
        assert!(same_answer(&workload.answer(&cold.stdout), &expected));
        let warm_ms = workload.job_ms(&warm.stdout);
        let cases = chosen_targets()
            .into_iter()
            .flat_map(|t| Level::for_target(t).iter().map(move |l| (t, *l)));
        for (target, level) in cases {
            let notebook = workload.notebook_at(level, &inputs.0);
            let mut extra_ms = Vec::new();
            let mut clean_ms = Vec::new();
            // The costs of executors that died while the first job ran, and after.
            let (mut loading_ms, mut cached_ms) = (Vec::new(), Vec::new());
            let mut correct = 0;
            // Runs that had ended before their process was killed, made again.
            let mut missed = 0;
            for _ in 0..runs {
                // The part of the job the kill lands in: its time without faults, halved each
                // time the run ended before its kill (a busy machine makes some runs slower than
                // others).
                let mut window_ms = warm_ms;
                let (after, faulty) = loop {
                    // A moment in the job as it ran without faults (not its last fifth, which a
                    // faster run may already be past).
                    let after = Duration::from_secs_f64(window_ms / 1e3 * 0.8 * random.unit());
                    let faulty = run(
                        &mut cluster,
                        &notebook,
                        &input,
                        Some((target, after, &mut random)),
                    );
                    if faulty.hit || !faulty.success || missed >= 3 * runs {
                        break (after, faulty);
                    }
                    missed += 1;
                    window_ms /= 2.0;
                };
                // Its pair: the same job without faults, right after it.
                let clean = run(&mut cluster, &notebook, &input, None);
                if !clean.success || !same_answer(&workload.answer(&clean.stdout), &expected) {
                    failures.push(format!(
                        "{workload:?} at {level:?} without faults (after {target:?} was killed): \
                         success {}\n{}\n{}",
                        clean.success, clean.stdout, clean.stderr
                    ));
                    continue;
                }
                if faulty.success
                    && faulty.hit
                    && same_answer(&workload.answer(&faulty.stdout), &expected)
                {
                    correct += 1;
                    let clean = workload.job_ms(&clean.stdout);
                    let extra = workload.job_ms(&faulty.stdout) - clean;
                    extra_ms.push(extra);
                    clean_ms.push(clean);
                    if target == Target::Executor {
                        match faulty.died_loading {
                            true => loading_ms.push(extra),
                            false => cached_ms.push(extra),
                        }
                    }
                } else {
                    failures.push(format!(
                        "{workload:?} at {level:?} with {target:?} killed after {after:?}: \
                         success {}, hit while running {}\n{}\n{}",
                        faulty.success, faulty.hit, faulty.stdout, faulty.stderr
                    ));
                }
            }
            let max = extra_ms.iter().copied().fold(f64::NAN, f64::max);
            let median_extra = median(extra_ms);
            let median_clean = median(clean_ms);
            let iteration_ms = median_clean / f64::from(ITERATIONS);
            let mut line = format!(
                "{:<20} {:<12} {:<16} {correct:>3}/{runs:<3} job {median_clean:>6.0} ms without \
                 faults; added {median_extra:>+6.0} ms median ({:>+5.2} iterations of \
                 {iteration_ms:.0} ms), {max:>+6.0} ms most ({missed} run(s) over before the \
                 kill, made again)",
                format!("{workload:?}"),
                format!("{level:?}"),
                format!("{target:?}"),
                median_extra / iteration_ms,
            );
            if target == Target::Executor {
                let part = |costs: Vec<f64>| {
                    let n = costs.len();
                    format!(
                        "{n} run(s), {:+.2} iterations",
                        median(costs) / iteration_ms
                    )
                };
                line += &format!(
                    "; died in the first job: {}; after it: {}",
                    part(loading_ms),
                    part(cached_ms)
                );
            }
            report.push(line);
        }
    }
    eprintln!(
        "chaos report (workload, cache level, target killed, correct runs, job time; each faulty \
         run against a run without faults right after it):\n{}",
        report.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} run(s) went wrong:\n{}\n{}",
        failures.len(),
        failures.join("\n\n"),
        cluster.logs()
    );
}
