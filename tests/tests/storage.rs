//! Storage levels and the executor's memory limit: every level gives the same results; under a
//! limit smaller than the data, partitions that do not fit go to disk when the level allows, or
//! are recomputed from lineage when read — never an error.

use tessera_e2e::{RunOutput, Scratch, tessera_run};

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
