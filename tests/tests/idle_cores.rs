//! A job on a cached partition or a text split uses every core of its executor, even with one
//! partition: the executor's idle slot takes some of the running task's batches or lines
//! (`morsels.rs`). The answers, accumulators included, are those of one pass over the records,
//! a collection keeps their order, and a sum of floats is the same to the last bit each time.
//! A job's tasks beyond its executor's cores wait there for one, and their metrics tell that
//! wait from the rest.

use tessera_e2e::{Scratch, tessera_run};

/// The records, and the work done on each (a few hundred multiplications, so that a job lasts
/// tens of milliseconds and a helper surely starts before the task's own thread is done).
const SPIN: &str = r#"
const N: u64 = 400_000;
fn spin(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..1000 {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    h
}
"#;

/// The same, here.
const N: u64 = 400_000;
fn spin(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..1000 {
        h = h
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    h
}

/// A script whose first cell caches the records in one partition and counts them, followed by
/// `cells`.
fn on_cached_numbers(cells: &str) -> String {
    format!(
        "{SPIN}\n// %%\nlet numbers = sc.parallelize((0..N).collect::<Vec<u64>>(), 1).cache();\nnumbers.count()\n{cells}"
    )
}

#[test]
fn one_cached_partition_is_worked_on_by_both_cores_with_the_answers_of_one_pass() {
    let dir = Scratch::new("idle-cores");
    let script = on_cached_numbers(
        r#"// %%
numbers.map(|x: u64| spin(x)).reduce(|a: u64, b: u64| a ^ b)
// %%
let seen = sc.accumulator::<u64>();
numbers.map(capture!([seen] |x: u64| { seen.add(1); spin(x) % 7 })).count_by_value().len()
// %%
seen.value()
// %%
numbers.filter(|x: &u64| spin(*x) % 3 == 0).count()
// %%
println!("{:?}", numbers.map(|x: u64| spin(x)).top(3));
// %%
let stats = numbers.map(|x: u64| (spin(x) % 1000) as f64).stats();
(stats.count(), stats.min(), stats.max(), format!("{:.6}", stats.mean()))
// %%
let fifths = numbers.filter(|x: &u64| spin(*x) % 5 == 0).collect();
(fifths.len(), fifths.iter().enumerate().fold(0u64, |h, (i, x)| h.wrapping_mul(31).wrapping_add(i as u64 ^ x)))
// %%
let sums: Vec<String> = (0..3).map(|_| format!("{:?}", numbers.map(|x: u64| (spin(x) % 1000) as f64 / 7.0).reduce(|a: f64, b: f64| a + b))).collect();
sums.join(" ")
"#,
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();

    let spun: Vec<u64> = (0..N).map(spin).collect();
    let xor = spun.iter().fold(0, |a, b| a ^ b);
    let thirds = spun.iter().filter(|h| *h % 3 == 0).count();
    let mut top = spun.clone();
    top.sort_unstable_by(|a, b| b.cmp(a));
    let residues: Vec<f64> = spun.iter().map(|h| (h % 1000) as f64).collect();
    let mean = residues.iter().sum::<f64>() / N as f64;
    let (min, max) = residues
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let fifths: Vec<u64> = (0..N).filter(|x| spin(*x).is_multiple_of(5)).collect();
    let order = fifths.iter().enumerate().fold(0u64, |h, (i, x)| {
        h.wrapping_mul(31).wrapping_add(i as u64 ^ x)
    });
    let lines = run.lines();
    assert_eq!(lines.len(), 9, "{lines:?}\nstderr:\n{}", run.stderr);
    // Three runs of the same float sum, each shared among threads as they came: one answer.
    let sums: Vec<&str> = lines[8].trim_matches('"').split(' ').collect();
    assert_eq!(sums.len(), 3, "{lines:?}");
    assert!(sums.iter().all(|s| *s == sums[0]), "{sums:?}");
    let sum: f64 = sums[0].parse().unwrap();
    let expected: f64 = residues.iter().map(|r| r / 7.0).sum();
    assert!(
        (sum - expected).abs() < 1e-9 * expected,
        "{sum} against {expected}"
    );
    assert_eq!(
        lines[..8],
        vec![
            N.to_string(),
            xor.to_string(),
            "7".to_string(),
            N.to_string(),
            thirds.to_string(),
            format!("{:?}", &top[..3]),
            format!("({N}, {min:?}, {max:?}, \"{mean:.6}\")"),
            format!("({}, {order})", fifths.len()),
        ],
        "stderr:\n{}",
        run.stderr
    );

    // Job 0 computed and cached the partition, on one thread; every later job read it from
    // the cache and shared its batches with the executor's other core.
    let first = run.job(0);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].threads, 1, "{first:?}");
    let records = [N, N, thirds as u64, N, N, fifths.len() as u64, N, N, N];
    for (job, records) in (1..=9).zip(records) {
        let tasks = run.job(job);
        assert_eq!(tasks.len(), 1, "job {job}: {tasks:?}");
        let task = tasks[0];
        assert!(task.origin.starts_with("cached:"), "job {job}: {task:?}");
        assert_eq!(
            task.records, records,
            "job {job}: every record once: {task:?}"
        );
        assert_eq!(task.threads, 2, "job {job} ran on both cores: {task:?}");
    }
}

#[test]
fn one_text_split_is_parsed_by_both_cores_and_cached_in_its_order() {
    let dir = Scratch::new("idle-cores-text");
    // N lines of 2.7 MB in one split: eleven chunks of 256 KiB, each tens of milliseconds of
    // parsing, so that the other core surely helps.
    let script = format!(
        r#"{SPIN}
// %%
std::fs::write("numbers.txt", (0..N).map(|x| format!("{{x}}\n")).collect::<String>()).unwrap();
let numbers = sc.text_file("numbers.txt", 1).map(|line: String| {{
    let x: u64 = line.parse().unwrap();
    std::hint::black_box(spin(x));
    x
}}).cache();
numbers.map(|x: u64| (spin(x) % 1000) as f64 / 7.0).reduce(|a: f64, b: f64| a + b)
// %%
let sums: Vec<String> = (0..3).map(|_| format!("{{:?}}", sc.text_file("numbers.txt", 1).map(|line: String| (spin(line.parse::<u64>().unwrap()) % 1000) as f64 / 7.0).reduce(|a: f64, b: f64| a + b))).collect();
sums.join(" ")
// %%
let all = numbers.collect();
(all.len(), all.iter().enumerate().all(|(i, x)| i as u64 == *x))
"#
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &[]);
    run.expect_success();

    let expected: f64 = (0..N).map(|x| (spin(x) % 1000) as f64 / 7.0).sum();
    let close = |sum: &str| {
        let sum: f64 = sum.parse().unwrap();
        (sum - expected).abs() < 1e-9 * expected
    };
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{lines:?}\nstderr:\n{}", run.stderr);
    assert!(close(lines[0]), "{} against {expected}", lines[0]);
    // Three passes over the file, each shared among threads as they came: one answer, to the
    // last bit.
    let sums: Vec<&str> = lines[1].trim_matches('"').split(' ').collect();
    assert_eq!(sums.len(), 3, "{lines:?}");
    assert!(sums.iter().all(|s| *s == sums[0]), "{sums:?}");
    assert!(close(sums[0]), "{sums:?} against {expected}");
    // The partition cached by both threads holds every line once, in the file's order.
    assert_eq!(lines[2], format!("({N}, true)"), "stderr:\n{}", run.stderr);

    // Job 0 parsed the split on both cores as it cached it; so did each pass over the file;
    // the last job read the cache.
    for job in 0..=3 {
        let tasks = run.job(job);
        assert_eq!(tasks.len(), 1, "job {job}: {tasks:?}");
        let task = tasks[0];
        assert_eq!(task.origin, "computed", "job {job}: {task:?}");
        assert_eq!(task.records, N, "job {job}: every line once: {task:?}");
        assert_eq!(task.threads, 2, "job {job} ran on both cores: {task:?}");
    }
    let last = run.job(4);
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(last[0].origin.starts_with("cached:"), "{last:?}");
}

#[test]
fn a_panic_in_a_shared_task_fails_its_job_with_its_message_and_keeps_the_cache() {
    let dir = Scratch::new("idle-cores-panic");
    // The panicking record is in the partition's last batch, which either thread may take.
    let script = on_cached_numbers(
        r#"// %%
numbers.map(|x: u64| if x == N - 1 { panic!("bad record {x}") } else { spin(x) }).reduce(|a: u64, b: u64| a ^ b)
// %%
numbers.map(|x: u64| spin(x)).reduce(|a: u64, b: u64| a ^ b)
"#,
    );
    let run = tessera_run(&dir.0, &script, "local[2]", &["--keep-going"]);
    assert!(!run.success, "a failed cell makes the run fail");
    let message = format!("closure panicked: bad record {}", N - 1);
    assert!(run.stderr.contains(&message), "{}", run.stderr);
    assert!(run.stderr.contains("error in cell 3"), "{}", run.stderr);
    let xor = (0..N).map(spin).fold(0, |a, b| a ^ b);
    assert_eq!(run.lines(), vec![N.to_string(), xor.to_string()]);
    let last = run.tasks.iter().filter(|t| t.job == 2).collect::<Vec<_>>();
    assert_eq!(last.len(), 1, "{:?}", run.tasks);
    assert!(last[0].origin.starts_with("cached:"), "{last:?}");
    assert_eq!(last[0].threads, 2, "{last:?}");
}

#[test]
fn tasks_sent_ahead_wait_for_a_core_and_their_metrics_say_how_long() {
    let dir = Scratch::new("idle-cores-ahead");
    // Four tasks of 300 ms on two cores: the last two are sent to wait on the executor for the
    // first two to end. Nothing is cached, so no idle slot helps.
    let script = r#"
sc.parallelize((0..4u64).collect::<Vec<u64>>(), 4)
    .map(|x: u64| { std::thread::sleep(std::time::Duration::from_millis(300)); x })
    .count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    assert_eq!(run.lines(), vec!["4"]);
    let mut tasks = run.job(0);
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    tasks.sort_by_key(|t| t.slot_wait);
    let (first, later) = tasks.split_at(2);
    let ms = std::time::Duration::from_millis;
    assert!(
        first.iter().all(|t| t.slot_wait < ms(150)) && later.iter().all(|t| t.slot_wait > ms(150)),
        "two tasks ran at once, two waited for them: {tasks:?}"
    );
    for task in &tasks {
        assert!(task.ran >= ms(300), "{task:?}");
        assert!(
            task.sent <= task.finished - task.ran - task.slot_wait,
            "sent before it waited and ran: {task:?}"
        );
        // What is left of the round trip is the trip, not the wait or the run.
        let round_trip = task.finished.duration_since(task.sent).unwrap();
        assert!(
            task.scheduler_delay < ms(150)
                && task.scheduler_delay + task.slot_wait + task.ran <= round_trip + ms(1),
            "{task:?}"
        );
    }
}
