//! An executor starts at a lower CPU priority and runs its tasks at the priority it was launched
//! with (`runtime/executor/src/start_priority.rs`): once it has registered, every one of its
//! threads is back at the launcher's nice value, under an agent as under `local[N]`.

use tessera_e2e::{Scratch, tessera_run};

/// A job whose tasks each report the nice values of every thread of their executor, as
/// `threads: MIN MAX COUNT`.
const SCRIPT: &str = r#"
// %%
let reports = sc
    .parallelize(vec![0u32; 4], 4)
    .map(|_: u32| {
        let mut nices = Vec::new();
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            // A thread that ended since the directory was read has no stat to read.
            let stat = std::fs::read_to_string(entry.unwrap().path().join("stat")).unwrap_or_default();
            if let Some((_, fields)) = stat.rsplit_once(") ") {
                // After the name: state is field 3, the nice value field 19.
                nices.push(fields.split(' ').nth(16).unwrap().parse::<i64>().unwrap());
            }
        }
        format!(
            "threads: {} {} {}",
            nices.iter().min().unwrap(),
            nices.iter().max().unwrap(),
            nices.len()
        )
    })
    .collect();
for report in reports {
    println!("{report}");
}
"#;

/// This process's nice value, which the session and its executors inherit.
fn own_nice() -> i64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (_, fields) = stat.rsplit_once(") ").unwrap();
    fields.split(' ').nth(16).unwrap().parse().unwrap()
}

fn every_executor_thread_runs_at_the_launchers_priority(scratch: &str, master: &str) {
    let dir = Scratch::new(scratch);
    let run = tessera_run(&dir.0, SCRIPT, master, &[]);
    run.expect_success();
    let reports: Vec<(i64, i64, usize)> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("threads: "))
        .map(|report| {
            let numbers: Vec<&str> = report.split(' ').collect();
            (
                numbers[0].parse().unwrap(),
                numbers[1].parse().unwrap(),
                numbers[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(reports.len(), 4, "one report a task: {}", run.stdout);
    let nice = own_nice();
    for (min, max, threads) in reports {
        assert!(
            threads > 1,
            "an executor has its runtime's and its slots' threads"
        );
        assert_eq!(
            (min, max),
            (nice, nice),
            "every thread of the executor at the launcher's nice value {nice}"
        );
    }
}

#[test]
fn executors_under_an_agent_run_tasks_at_the_launchers_priority() {
    every_executor_thread_runs_at_the_launchers_priority(
        "priority-agent",
        "local-cluster[2,2,512]",
    );
}

#[test]
fn executors_of_local_mode_run_tasks_at_the_launchers_priority() {
    every_executor_thread_runs_at_the_launchers_priority("priority-local", "local[2]");
}
