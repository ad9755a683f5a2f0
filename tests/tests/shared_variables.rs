//! Broadcast variables and accumulators across two executors, and an accumulator of an action
//! whose task failed once counting that task's updates once. The broadcast value (about 5 MB)
//! reaches the executors in several pieces.

use tessera_e2e::{Scratch, tessera_run};

#[test]
fn broadcast_values_and_accumulators_reach_and_leave_the_executors() {
    let dir = Scratch::new("shared-variables");
    let script = r#"
let squares = sc.broadcast((0..300_000u64).map(|x| (x, x * x)).collect::<std::collections::HashMap<u64, u64>>());
let spread = sc.parallelize((0..300_000u64).step_by(300).collect::<Vec<u64>>(), 8);
spread.map(capture!([squares] |x: u64| squares.value()[&x])).reduce(|a: u64, b: u64| a + b)
// %%
squares.value().len()
// %%
let nums = sc.parallelize((0..1000u64).collect::<Vec<u64>>(), 8);
let total = sc.accumulator::<u64>();
nums.foreach(capture!([total] |x: u64| total.add(x)));
total.value()
// %%
// The task holding 500 panics on its first attempt, after adding for part of its records.
let seen = sc.accumulator::<u64>();
let marker = std::env::current_dir().unwrap().join("failed-once").to_string_lossy().into_owned();
nums.foreach(capture!([seen, marker] |x: u64| {
    seen.add(1);
    if x == 500 && !std::path::Path::new(marker.as_str()).exists() {
        std::fs::write(marker.as_str(), "").unwrap();
        panic!("the first attempt fails");
    }
}));
(seen.value(), std::path::Path::new(&marker).exists())
// %%
total.add(5);
total.value()
"#;
    let run = tessera_run(&dir.0, script, "local-cluster[2,1,512]", &[]);
    run.expect_success();
    let squares: u64 = (0..300_000u64).step_by(300).map(|x| x * x).sum();
    let total: u64 = (0..1000u64).sum();
    assert_eq!(
        run.lines(),
        vec![
            squares.to_string(),
            "300000".to_string(),
            total.to_string(),
            "(1000, true)".to_string(),
            (total + 5).to_string(),
        ],
        "stderr:\n{}",
        run.stderr
    );
    // Both executors ran tasks of the broadcast job.
    let pids: std::collections::BTreeSet<u64> = run.job(0).iter().map(|t| t.pid).collect();
    assert_eq!(pids.len(), 2, "{:?}", run.job(0));
}
