//! The cleaner, end to end: a script on a loopback cluster of two executors whose map outputs
//! all go to disk (no shuffle memory) rebinds its variables; after the cell, the shuffle files
//! and cached partitions of the RDDs no variable reaches any more are gone from the executors,
//! while what the variables still reach is kept and read without being computed again.

use std::collections::BTreeSet;
use tessera_e2e::{Scratch, tessera_run_with_env};

/// The shuffles whose files some executor keeps, from a cell's `disk [..]` line after `label`.
fn shuffles_on_disk(stdout: &str, label: &str) -> BTreeSet<u64> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label} disk ")))
        .unwrap_or_else(|| panic!("no {label} line in:\n{stdout}"));
    line.split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

#[test]
fn outputs_and_cached_partitions_no_variable_reaches_are_dropped_after_the_cell() {
    let dir = Scratch::new("cleaner");
    let script = r#"
fn report(label: &str, sc: &tessera::Context) {
    // Each executor lists its shuffle directory (tasks spread over both).
    let files = sc.parallelize((0..8u32).collect::<Vec<_>>(), 8)
        .flat_map(|_| {
            let files = std::env::var("TESSERA_FILES_DIR").unwrap();
            let dir = std::path::Path::new(&files).parent().unwrap().join("shuffle");
            std::fs::read_dir(dir)
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    let shuffles: std::collections::BTreeSet<u64> = files.iter()
        .filter_map(|f| f.strip_prefix("shuffle-")?.split('-').next()?.parse().ok())
        .collect();
    let list: Vec<String> = shuffles.iter().map(|s| s.to_string()).collect();
    println!("{label} disk {}", list.join(" "));
}
let pairs = sc.parallelize((0..20_000u64).collect::<Vec<_>>(), 4).map(|x| (x % 100, x));
let mut sums = pairs.reduce_by_key(|a: u64, b: u64| a + b);
let mut doubled = pairs.map_values(|v: u64| v * 2).cache();
println!("first {} {} {}", sums.id(), sums.values().sum(), doubled.count());
// %%
report("before", &sc);
// %%
:storage
// %%
sums = pairs.reduce_by_key(|a: u64, b: u64| a.max(b));
doubled = pairs.map_values(|v: u64| v + 1);
println!("second {} {}", sums.id(), sums.values().sum());
// %%
report("after", &sc);
println!("again {}", sums.values().sum());
// %%
:storage
"#;
    let run = tessera_run_with_env(
        &dir.0,
        script,
        "local-cluster[2,1,512]",
        &[],
        &[("TESSERA_SHUFFLE_MEMORY_MB", "0")],
    );
    run.expect_success();
    let total: u64 = (0..20_000u64).sum();
    let max_total: u64 = (0..100u64).map(|k| 19_900 + k).sum();
    let id_after = |prefix: &str, value: u64| -> u64 {
        let line = run
            .lines()
            .into_iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{}", run.stdout))
            .to_string();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[2].parse::<u64>().unwrap(), value, "{line}");
        words[1].parse().unwrap()
    };
    let first = id_after("first ", total);
    let second = id_after("second ", max_total);

    // Before: the first shuffle's files are on disk. After the cell that rebound `sums`, the
    // first shuffle no variable reaches is gone; the second stays.
    assert_eq!(
        shuffles_on_disk(&run.stdout, "before"),
        BTreeSet::from([first])
    );
    assert_eq!(
        shuffles_on_disk(&run.stdout, "after"),
        BTreeSet::from([second])
    );
    assert!(
        run.lines().contains(&format!("again {max_total}").as_str()),
        "{}",
        run.stdout
    );
    // The kept shuffle was read again without a map task: its outputs were not dropped.
    let map_tasks_of_second = run
        .tasks
        .iter()
        .filter(|t| t.stage == format!("map:{second}"))
        .count();
    assert_eq!(map_tasks_of_second, 4, "one map stage of 4 tasks");

    // The cached RDD no variable reaches is unpersisted: `:storage` listed it, then not.
    let storage_rows: Vec<&str> = run
        .lines()
        .into_iter()
        .filter(|l| l.contains("MEMORY_ONLY"))
        .collect();
    assert_eq!(storage_rows.len(), 1, "{}", run.stdout);
    assert!(storage_rows[0].contains("4/4"), "{}", storage_rows[0]);
}

#[test]
fn a_killed_executors_map_outputs_are_read_through_its_agent_and_removed_there_when_dropped() {
    let dir = Scratch::new("cleaner-served");
    // The script kills one of its executors itself, between two jobs over the same shuffle.
    let script = r#"
fn copies(sandbox: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(std::path::Path::new(sandbox).join("shuffle"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}
let pairs = sc.parallelize((0..20_000u64).collect::<Vec<_>>(), 4).map(|x| (x % 100, x));
let mut sums = pairs.reduce_by_key(|a: u64, b: u64| a + b);
println!("first {} {}", sums.id(), sums.values().sum());
// %%
// Each executor's pid and sandbox (tasks spread over both).
let mut executors = sc.parallelize((0..8u32).collect::<Vec<_>>(), 8)
    .map(|_| (std::process::id(), std::env::var("TESSERA_SANDBOX").unwrap()))
    .collect();
executors.sort();
executors.dedup();
for (pid, sandbox) in &executors {
    println!("copies {pid} {}", copies(sandbox).join(" "));
}
let (victim, victim_sandbox) = executors[0].clone();
// A bool: a variable of a type the cleaner does not know (an `ExitStatus`) would keep everything.
let killed = std::process::Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap().success();
println!("killed {victim} {killed}");
// %%
println!("again {}", sums.values().sum());
// %%
sums = pairs.reduce_by_key(|a: u64, b: u64| a.max(b));
println!("second {}", sums.values().sum());
// %%
println!("left [{}]", copies(&victim_sandbox).join(" "));
"#;
    let run = tessera_run_with_env(&dir.0, script, "local-cluster[2,1,512]", &[], &[]);
    run.expect_success();
    let line = |prefix: &str| -> Vec<String> {
        run.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(String::from)
            .collect()
    };
    let total: u64 = (0..20_000u64).sum();
    let first: u64 = line("first ")[0]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Both executors kept a copy of each map output they wrote in their sandbox: 4 in all.
    let held = line("copies ");
    assert_eq!(held.len(), 2, "{}", run.stdout);
    let named: Vec<String> = held
        .iter()
        .flat_map(|l| l.split_whitespace().skip(1).map(String::from))
        .collect();
    let expected: BTreeSet<String> = (0..4)
        .map(|m| format!("shuffle-{first}-map-{m}.data"))
        .collect();
    assert_eq!(named.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(named.len(), 4, "{held:?}");
    let victim_held = held[0].split_whitespace().count() - 1;
    assert!(victim_held > 0, "the victim wrote map outputs: {held:?}");
    assert!(line("killed ")[0].ends_with(" true"), "{}", run.stdout);

    // The job after the kill read the victim's outputs through its agent: no map task ran again.
    assert_eq!(line("again "), vec![total.to_string()], "{}", run.stderr);
    let map_tasks = run
        .tasks
        .iter()
        .filter(|t| t.stage == format!("map:{first}"))
        .count();
    assert_eq!(map_tasks, 4, "{:?}\n{}", run.tasks, run.stderr);

    // Once no variable reaches the shuffle, the copies the dead executor left are removed by
    // its agent.
    assert_eq!(line("left "), vec!["[]".to_string()], "{}", run.stderr);
}

/// A broadcast join's small side is held by the driver and every executor that joined with it
/// while a variable reaches the join; `:storage` lists it. Once no variable does, it is
/// released, and the next query broadcasts its own.
#[test]
fn a_broadcast_join_side_no_variable_reaches_is_released_after_the_cell() {
    let dir = Scratch::new("cleaner-broadcast");
    let orders: String = std::iter::once("order,customer\n".to_string())
        .chain((0..3_000u32).map(|o| format!("{o},{}\n", o % 40)))
        .collect();
    let customers: String = std::iter::once("customer,segment\n".to_string())
        .chain((0..40u32).map(|c| format!("{c},{}\n", ["retail", "trade"][c as usize % 2])))
        .collect();
    std::fs::write(dir.0.join("orders.csv"), orders).unwrap();
    std::fs::write(dir.0.join("customers.csv"), customers).unwrap();
    let script = format!(
        r#"let orders = sc.read_csv("{0}/orders.csv");
let customers = sc.read_csv("{0}/customers.csv");
let mut joined = orders.join(&customers, &["customer"], &["customer"], JoinKind::Inner);
println!("first {{}}", joined.filter(col("segment").eq(lit("trade"))).count());
println!("== storage");
// %%
:storage
// %%
println!("again {{}}", joined.count());
// %%
joined = orders.filter(col("customer").lt(lit(10)));
println!("second {{}}", joined.count());
println!("== storage");
// %%
:storage
// %%
let retail = orders.join(&customers.filter(col("segment").eq(lit("retail"))), &["customer"], &["customer"], JoinKind::Inner);
println!("third {{}}", retail.count());
println!("== storage");
// %%
:storage
// %%
println!("== jobs");
// %%
:jobs
"#,
        dir.0.display()
    );
    let run = tessera_run_with_env(&dir.0, &script, "local-cluster[2,1,512]", &[], &[]);
    run.expect_success();
    for (line, count) in [
        ("first", 1_500),
        ("again", 3_000),
        ("second", 750),
        ("third", 1_500),
    ] {
        let expected = format!("{line} {count}");
        assert!(
            run.lines().contains(&expected.as_str()),
            "{expected}:\n{}",
            run.stdout
        );
    }
    // The broadcast sides `:storage` listed, after each of its three cells.
    let (reports, jobs) = run.stdout.split_once("== jobs").expect("the last cell ran");
    let listed: Vec<Vec<&str>> = reports
        .split("== storage")
        .skip(1)
        .map(|report| {
            report
                .lines()
                .filter(|l| l.contains("the small side of"))
                .collect()
        })
        .collect();
    assert_eq!(listed.len(), 3, "{}", run.stdout);
    assert_eq!(listed[0].len(), 1, "{}", run.stdout);
    assert!(listed[1].is_empty(), "{}", run.stdout);
    assert_eq!(listed[2].len(), 1, "{}", run.stdout);
    assert_ne!(listed[0][0], listed[2][0], "{}", run.stdout);
    // Each join collected its side once: the join still held ran again on the side it kept,
    // and nothing collected the released one again.
    assert_eq!(jobs.matches("collect the small side").count(), 2, "{jobs}");
}
