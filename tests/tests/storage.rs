//! Storage levels and the executor's memory limit: every level gives the same results; under a
//! limit smaller than the data, partitions that do not fit go to disk when the level allows, or
//! are recomputed from lineage when read — never an error. A partition cached on disk is written
//! as it is computed, and one cached serialized or on disk is read back a frame at a time, not
//! whole.

use tessera_e2e::{REPORT_PEAKS, RunOutput, Scratch, peaks, tessera_run, tessera_run_with_env};

/// Caches 8 partitions of 50,000 `u64`s (about 400 KB each) at `level` and counts them twice,
/// with 1 MiB of executor memory for cached partitions.
fn cache_and_count_twice(name: &str, level: &str) -> RunOutput {
    let dir = Scratch::new(name);
    let script = format!(
        r#"
let data = sc.parallelize((0..400_000u64).collect::<Vec<u64>>(), 8).map(|x: u64| x * 3).persist(StorageLevel::{level});
data.count()
// %%
data.filter(|x: &u64| x % 2 == 0).count()
// %%
data.reduce(|a: u64, b: u64| a.max(b))
"#
    );
    let run = tessera_run(&dir.0, &script, "local[1]", &["--executor-memory-mb", "1"]);
    run.expect_success();
    assert_eq!(
        run.lines(),
        vec!["400000", "200000", &(399_999u64 * 3).to_string()],
        "stderr:\n{}",
        run.stderr
    );
    run
}

fn from_cache(run: &RunOutput, job: u64) -> usize {
    run.job(job)
        .iter()
        .filter(|t| t.origin.starts_with("cached:"))
        .count()
}

#[test]
fn memory_only_over_the_limit_keeps_what_fits_and_recomputes_the_rest() {
    let run = cache_and_count_twice("storage-memory", "MemoryOnly");
    // Two 400 KB partitions fit in 1 MiB; the others were not kept and were recomputed.
    assert_eq!(from_cache(&run, 1), 2, "{:?}", run.job(1));
    assert_eq!(run.job(1).len(), 8);
}

#[test]
fn memory_and_disk_spills_what_does_not_fit() {
    let run = cache_and_count_twice("storage-memory-disk", "MemoryAndDisk");
    // Every partition was kept, in memory or on disk.
    assert_eq!(from_cache(&run, 1), 8, "{:?}", run.job(1));
    assert_eq!(from_cache(&run, 2), 8, "{:?}", run.job(2));
}

#[test]
fn disk_only_keeps_every_partition_out_of_memory() {
    let run = cache_and_count_twice("storage-disk", "DiskOnly");
    assert_eq!(from_cache(&run, 1), 8, "{:?}", run.job(1));
}

#[test]
fn memory_only_ser_keeps_what_fits_serialized() {
    let run = cache_and_count_twice("storage-ser", "MemoryOnlySer");
    // Serialized (bincode), a partition is 400 KB too: two fit.
    assert_eq!(from_cache(&run, 1), 2, "{:?}", run.job(1));
}

#[test]
fn shuffle_output_past_the_executor_memory_goes_to_disk_and_is_read_back() {
    let dir = Scratch::new("storage-shuffle");
    // 200,000 pairs grouped without map-side combining: megabytes of shuffle output on each of
    // two executors that keep a quarter of 1 MiB of it in memory.
    let script = r#"
let grouped = sc.parallelize((0..200_000u64).collect::<Vec<u64>>(), 4).map(|x: u64| (x % 50_000, x)).group_by_key();
grouped.count()
// %%
grouped.map(|p: (u64, Vec<u64>)| p.1.iter().sum::<u64>()).reduce(|a: u64, b: u64| a + b)
"#;
    let run = tessera_run(
        &dir.0,
        script,
        "local-cluster[2,1,512]",
        &["--executor-memory-mb", "1"],
    );
    run.expect_success();
    assert_eq!(
        run.lines(),
        vec!["50000".to_string(), (199_999u64 * 200_000 / 2).to_string()],
        "stderr:\n{}",
        run.stderr
    );
    // The second job read the first one's shuffle output again (from disk) without rerunning
    // its map stage.
    assert_eq!(run.map_tasks(0).len(), 4);
    assert!(run.map_tasks(1).is_empty(), "{:?}", run.job(1));
    assert!(
        run.job(1).iter().all(|t| t.shuffle_read > 0),
        "{:?}",
        run.job(1)
    );
}

#[test]
fn partitions_cached_with_two_copies_outlive_the_executor_that_computed_them_and_are_copied_again()
{
    let dir = Scratch::new("storage-replicated");
    let lines: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.0.join("input.txt"), lines).unwrap();
    // A source cached as read, and a map of parallelized numbers: their copies are decoded with
    // a source's table and with an operator's. Then one executor is killed by the script.
    let script = r#"
let lines = sc.text_file("input.txt", 4).persist(StorageLevel::MemoryOnly2);
let squares = sc.parallelize((0..40_000u64).collect::<Vec<_>>(), 4).map(|x: u64| x * x).persist(StorageLevel::MemoryOnly2);
println!("first {} {}", lines.count(), squares.reduce(|a: u64, b: u64| a + b));
// %%
:storage
// %%
let pids = sc.parallelize((0..8u32).collect::<Vec<_>>(), 8).map(|_| std::process::id()).collect();
let victim = pids.iter().min().unwrap().to_string();
let killed = std::process::Command::new("kill").args(["-9", &victim]).status().unwrap().success();
println!("killed {victim} {killed}");
// %%
println!("again {} {}", lines.count(), squares.reduce(|a: u64, b: u64| a + b));
// %%
// Jobs while the session replaces the executor: with TESSERA_PROACTIVE_REPLICATION=1, each
// starts the copies its partitions lost. Until tasks run on two executors again (tasks wait for
// an executor that holds their partition), or ten seconds.
for _ in 0..100 {
    lines.count();
    let pids: std::collections::BTreeSet<u32> = squares.map(|_: u64| std::process::id()).collect().into_iter().collect();
    if pids.len() == 2 {
        break;
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
}
// %%
:storage
// %%
println!("last {} {}", lines.count(), squares.reduce(|a: u64, b: u64| a + b));
"#;
    let run = tessera_run_with_env(
        &dir.0,
        script,
        "local-cluster[2,1,512]",
        &[],
        &[("TESSERA_PROACTIVE_REPLICATION", "1")],
    );
    run.expect_success();
    let sum: u64 = (0..40_000u64).map(|x| x * x).sum();
    let line = |prefix: &str| -> Vec<&str> {
        run.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .collect()
    };
    assert_eq!(line("first "), [format!("20000 {sum}")]);
    assert_eq!(line("again "), [format!("20000 {sum}")], "{}", run.stderr);
    let killed = line("killed ");
    assert!(killed[0].ends_with(" true"), "{}", run.stdout);
    let victim: u64 = killed[0].split(' ').next().unwrap().parse().unwrap();

    // `:storage` shows both RDDs at MEMORY_ONLY_2, every partition on both executors: before
    // the kill, and again after it, once the replacement executor got copies.
    let rows: Vec<&str> = run
        .lines()
        .into_iter()
        .filter(|l| l.contains("MEMORY_ONLY_2"))
        .collect();
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    assert_ne!(rows[0], rows[2], "a new executor holds copies: {rows:?}");
    assert_eq!(line("last "), [format!("20000 {sum}")]);
    for row in rows {
        assert!(row.contains("4/4"), "{row}");
        assert_eq!(
            row.matches(": 4 (").count(),
            2,
            "4 partitions on each executor: {row}"
        );
    }

    // After the kill, every partition of both RDDs was read from a cache, none computed again,
    // and none on the executor that was killed; in the last two jobs, on both executors again.
    let after: Vec<_> = run.tasks.iter().filter(|t| t.job >= 3).collect();
    for task in &after {
        assert!(
            task.origin.starts_with("cached:"),
            "{task:?}\n{}",
            run.stderr
        );
        assert_ne!(task.pid, victim, "{task:?}");
    }
    let last_job = after.iter().map(|t| t.job).max().unwrap();
    let last_pids: std::collections::BTreeSet<u64> = after
        .iter()
        .filter(|t| t.job + 1 >= last_job)
        .map(|t| t.pid)
        .collect();
    assert_eq!(
        last_pids.len(),
        2,
        "the last jobs ran on both executors: {after:?}"
    );
}

#[test]
fn every_replicated_level_keeps_two_copies_that_read_back_the_same() {
    // Serialized, spilled and on-disk copies: each is encoded by one executor and decoded (or
    // written to disk) by the other.
    for (level, shown) in [
        ("MemoryOnlySer2", "MEMORY_ONLY_SER_2"),
        ("MemoryAndDisk2", "MEMORY_AND_DISK_2"),
        ("DiskOnly2", "DISK_ONLY_2"),
    ] {
        let dir = Scratch::new(&format!("storage-{shown}"));
        let script = format!(
            r#"
let words = sc.parallelize((0..20_000u64).map(|i| format!("w{{}}", i % 97)).collect::<Vec<_>>(), 4).map(|w: String| w.len() as u64).persist(StorageLevel::{level});
println!("sum {{}}", words.reduce(|a: u64, b: u64| a + b));
// %%
:storage
// %%
println!("again {{}}", words.reduce(|a: u64, b: u64| a + b));
"#
        );
        let run = tessera_run(&dir.0, &script, "local-cluster[2,1,512]", &[]);
        run.expect_success();
        let sum: u64 = (0..20_000u64)
            .map(|i| format!("w{}", i % 97).len() as u64)
            .sum();
        let lines = run.lines();
        assert!(
            lines.contains(&format!("sum {sum}").as_str()),
            "{}",
            run.stdout
        );
        assert!(
            lines.contains(&format!("again {sum}").as_str()),
            "{}",
            run.stdout
        );
        let row = lines
            .iter()
            .find(|l| l.contains(shown))
            .unwrap_or_else(|| panic!("no {shown} row in:\n{}", run.stdout));
        assert!(row.contains("4/4"), "{row}");
        assert_eq!(
            row.matches(": 4 (").count(),
            2,
            "4 partitions on each executor: {row}"
        );
        assert!(
            run.job(1).iter().all(|t| t.origin.starts_with("cached:")),
            "{:?}",
            run.job(1)
        );
    }
}

/// Script lines defining `memory(reset)`: a task of the (one) executor that returns its peak
/// and current resident memory in kB, its peak reset first (`/proc/self/clear_refs`) if
/// `reset`.
const EXECUTOR_MEMORY: &str = r#"
let memory = |reset: bool| -> (u64, u64) { sc.parallelize(vec![reset], 1).map(|reset: bool| {
    if reset { std::fs::write("/proc/self/clear_refs", "5").unwrap(); }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = |key: &str| -> u64 { status.lines().find(|l| l.starts_with(key)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap() };
    (kb("VmHWM:"), kb("VmRSS:"))
}).collect()[0] };
"#;

/// A script that computes one partition of 200,000 strings (about 30 MB in memory) without
/// caching it, then caches it at `level`, then counts it from the cache. Before each of these
/// jobs it resets the executor's peak memory (`/proc/self/clear_refs`), and after each it
/// prints how much the peak grew.
fn cache_and_read_peak_script(level: &str) -> String {
    format!(
        r#"
{EXECUTOR_MEMORY}
let strings = sc.parallelize((0..200_000u64).collect::<Vec<u64>>(), 1).map(|i: u64| format!("{{i:0>120}}"));
let before = memory(true).1;
println!("computed {{}}", strings.count());
println!("computing grew {{}} kB", memory(false).0.saturating_sub(before));
let data = strings.persist(StorageLevel::{level});
let before = memory(true).1;
println!("cached {{}}", data.count());
println!("caching grew {{}} kB", memory(false).0.saturating_sub(before));
let before = memory(true).1;
println!("read {{}}", data.count());
println!("reading grew {{}} kB", memory(false).0.saturating_sub(before));
"#
    )
}

/// The growth in kB a line of [`cache_and_read_peak_script`] printed for `what`.
fn growth(lines: &[&str], what: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{what} grew ")))
        .and_then(|l| l.strip_suffix(" kB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no growth printed for {what}: {lines:?}"))
}

#[test]
fn a_partition_cached_on_disk_is_written_as_it_is_computed_and_read_a_frame_at_a_time() {
    for level in ["DiskOnly", "MemoryOnlySer"] {
        let dir = Scratch::new("storage-peaks");
        let run = tessera_run(&dir.0, &cache_and_read_peak_script(level), "local[1]", &[]);
        run.expect_success();
        let lines = run.lines();
        let counts: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.contains(" grew "))
            .collect();
        assert_eq!(
            counts,
            ["computed 200000", "cached 200000", "read 200000"],
            "{}",
            run.stderr
        );
        // Jobs: a reset, the computing, a report, and so on for the caching and the read.
        assert_eq!(from_cache(&run, 7), 1, "{:?}", run.job(7));
        // The partition takes about 30 MB as records. Gathered whole before it went to its
        // file, or read whole before its first batch was handed on, it grew the executor's
        // peak by that much more than computing it without caching did.
        let [computing, caching, reading] =
            ["computing", "caching", "reading"].map(|what| growth(&lines, what));
        assert!(
            reading < 8_000,
            "reading the partition cached {level} grew the executor's peak by {reading} kB"
        );
        if level == "DiskOnly" {
            assert!(
                caching < computing + 8_000,
                "caching the partition {level} grew the executor's peak by {caching} kB, \
                 computing it without caching by {computing} kB"
            );
        }
    }
}

#[test]
fn a_partition_larger_than_the_executors_memory_is_cached_on_disk() {
    // One partition of 1,000,000 strings of 120 characters: about 190 MB as records, 136 MB
    // encoded, on executors their agents hold to 128 MiB (64 MiB for cached partitions and
    // 64 of overhead). Gathered whole before it went to its file, the partition took the
    // executor past its limit, and the agent killed it; written as it is computed, it is
    // cached, and read from the cache by the next jobs. With two copies, the second is sent
    // from the file a piece at a time into a file on the other executor (read whole to be
    // sent, it too took the executor past its limit).
    for (level, executors) in [("DiskOnly", 1), ("DiskOnly2", 2)] {
        let dir = Scratch::new("storage-larger-than-memory");
        let script = format!(
            r#"
{REPORT_PEAKS}
let data = sc.parallelize((0..1_000_000u64).collect::<Vec<u64>>(), 1).map(|i: u64| format!("{{i:0>120}}")).persist(StorageLevel::{level});
println!("cached {{}}", data.count());
println!("ending in 7 {{}}", data.filter(|s: &String| s.ends_with('7')).count());
println!("longest {{}}", data.map(|s: String| s.len() as u64).reduce(|a, b| a.max(b)));
report_peaks("after", &sc);
// %%
:storage
"#
        );
        let run = tessera_run(
            &dir.0,
            &script,
            &format!("local-cluster[{executors},1,512]"),
            &["--executor-memory-mb", "64"],
        );
        run.expect_success();
        let lines = run.lines();
        assert_eq!(
            lines[..3],
            ["cached 1000000", "ending in 7 100000", "longest 120"],
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("executor lost"),
            "no executor was lost: {}",
            run.stderr
        );
        for job in [1, 2] {
            assert_eq!(from_cache(&run, job), 1, "{:?}", run.job(job));
        }
        // `:storage` shows the partition on as many executors as the level keeps copies.
        let row = lines
            .iter()
            .find(|l| l.contains("DISK_ONLY"))
            .unwrap_or_else(|| panic!("no DISK_ONLY row in:\n{}", run.stdout));
        assert_eq!(row.matches(": 1 (").count(), executors, "{row}");
        let peaks = peaks(&run.stdout, "after");
        assert_eq!(peaks.len(), executors, "{}", run.stdout);
        for kb in peaks.values() {
            assert!(*kb < 128 << 10, "an executor's peak was {kb} kB");
        }
    }
}

#[test]
fn a_partition_larger_than_the_cache_memory_goes_to_disk_or_is_not_cached_as_it_is_computed() {
    // The same partition of about 190 MB, at a memory level, on an executor that may cache
    // 64 MiB. Once its records pass that, the rest goes to disk with what was kept
    // (MemoryAndDisk), or the partition is not cached and the user is told why (MemoryOnly),
    // instead of being gathered whole first: the job that caches it grows the executor's
    // peak by the cache's memory and a margin, not by the partition's size.
    for level in ["MemoryAndDisk", "MemoryOnly"] {
        let dir = Scratch::new("storage-past-cache-memory");
        let script = format!(
            r#"
{EXECUTOR_MEMORY}
let data = sc.parallelize((0..1_000_000u64).collect::<Vec<u64>>(), 1).map(|i: u64| format!("{{i:0>120}}")).persist(StorageLevel::{level});
let before = memory(true).1;
println!("cached {{}}", data.count());
println!("caching grew {{}} kB", memory(false).0.saturating_sub(before));
println!("ending in 7 {{}}", data.filter(|s: &String| s.ends_with('7')).count());
"#
        );
        let run = tessera_run(&dir.0, &script, "local[1]", &["--executor-memory-mb", "64"]);
        run.expect_success();
        let lines = run.lines();
        assert_eq!(
            [lines[0], lines[2]],
            ["cached 1000000", "ending in 7 100000"],
            "{}",
            run.stderr
        );
        // The cache's 64 MiB, and about 40 MB more for the source's million numbers (as bytes
        // and as records), the batches under way and the code; gathered whole, 180 MB.
        let caching = growth(&lines, "caching");
        assert!(
            caching < (64 + 56) << 10,
            "caching the partition {level} grew the executor's peak by {caching} kB"
        );
        // Jobs: a report, the caching, a report, the filter.
        let filter = run.job(3);
        if level == "MemoryAndDisk" {
            assert_eq!(from_cache(&run, 3), 1, "read from disk: {filter:?}");
        } else {
            assert_eq!(from_cache(&run, 3), 0, "computed again: {filter:?}");
            for says in [
                "partition 0 of rdd",
                "is not cached",
                "MemoryAndDisk",
                "--executor-memory-mb",
            ] {
                assert!(
                    run.stderr.contains(says),
                    "the user was told why: {}",
                    run.stderr
                );
            }
        }
    }
}
