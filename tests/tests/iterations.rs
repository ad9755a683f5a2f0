//! Long iterative jobs: 200 iterations of a shuffle, with the lineage cut by `checkpoint`
//! every 50, run without deep-recursion failures and give the right result; a checkpointed
//! RDD is read from its files, not recomputed.

use std::collections::BTreeSet;
use tessera_e2e::{Scratch, tessera_run};

#[test]
fn two_hundred_iterations_with_checkpoints_every_fifty() {
    let dir = Scratch::new("iterations");
    let script = r#"
// Each iteration moves every count to the next key (a shuffle, since `map` drops the
// partitioner) and adds one to it.
let mut counts = sc.parallelize((0..1000u64).map(|x| (x % 10, 1u64)).collect::<Vec<_>>(), 4);
for i in 1..=200 {
    counts = counts
        .map(|p: (u64, u64)| ((p.0 + 1) % 10, p.1 + 1))
        .reduce_by_key(|a: u64, b: u64| a + b);
    if i % 50 == 0 {
        counts = counts.checkpoint("checkpoints");
    }
}
// %%
let mut all = counts.collect();
all.sort();
println!("{:?}", all);
// %%
counts.values().sum()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();

    // The same loop, locally.
    let mut counts: Vec<(u64, u64)> = (0..1000u64).map(|x| (x % 10, 1)).collect();
    for _ in 0..200 {
        let mut next = [0u64; 10];
        for (k, v) in counts {
            next[((k + 1) % 10) as usize] += v + 1;
        }
        counts = (0..10).map(|k| (k, next[k as usize])).collect();
    }
    let total: u64 = counts.iter().map(|p| p.1).sum();
    assert_eq!(
        run.lines(),
        vec![format!("{counts:?}"), format!("{:?}", total as f64)],
        "stderr:\n{}",
        run.stderr
    );

    // Jobs 0 to 3 wrote the checkpoints, each computing the 50 shuffles since the one before;
    // the two jobs after the last checkpoint read its files and shuffled nothing.
    for job in 0..4 {
        let stages: BTreeSet<&str> = run
            .map_tasks(job)
            .iter()
            .map(|t| t.stage.as_str())
            .collect();
        assert!(
            stages.len() <= 50,
            "job {job} ran {} map stages",
            stages.len()
        );
    }
    for job in 4..6 {
        assert!(run.map_tasks(job).is_empty(), "{:?}", run.job(job));
        assert!(!run.job(job).is_empty());
    }
}
