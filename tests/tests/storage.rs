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
