//! Shuffles across two executor processes (a loopback cluster of two agents): every
//! function that moves records between partitions against a local reference, stage
//! boundaries and shuffle reuse read from the task metrics, and a join of co-partitioned RDDs
//! that moves nothing (the RDD paper's controlled partitioning).

use std::collections::{BTreeMap, BTreeSet};
use tessera_e2e::{Scratch, tessera_run};

const CLUSTER: &str = "local-cluster[2,1,512]";

/// The pairs the script builds: key `x % 7`, value `x`, for x in 1..=200 in 4 partitions.
fn pairs() -> Vec<(u64, u64)> {
    (1..=200u64).map(|x| (x % 7, x)).collect()
}

fn grouped() -> BTreeMap<u64, Vec<u64>> {
    let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (k, v) in pairs() {
        groups.entry(k).or_default().push(v);
    }
    groups
}

#[test]
fn by_key_functions_match_local_references_across_two_executors() {
    let dir = Scratch::new("shuffle-by-key");
    let script = r#"
let pairs = sc.parallelize((1..=200u64).map(|x| (x % 7, x)).collect::<Vec<_>>(), 4);
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> { v.sort(); v }
// %%
let sums = pairs.reduce_by_key(|a: u64, b: u64| a + b);
println!("{:?}", sorted(sums.collect()));
// %%
println!("{:?}", sorted(sums.collect()));
// %%
println!("{:?}", sorted(pairs.fold_by_key(0, |a: u64, b: u64| a + b).collect()));
// %%
println!("{:?}", sorted(pairs.aggregate_by_key((0u64, 0u32), |acc: (u64, u32), v: u64| (acc.0.max(v), acc.1 + 1), |a: (u64, u32), b: (u64, u32)| (a.0.max(b.0), a.1 + b.1)).collect()));
// %%
println!("{:?}", sorted(pairs.combine_by_key(|v: u64| vec![v], |mut a: Vec<u64>, b: Vec<u64>| { a.extend(b); a }).map_values(|v: Vec<u64>| sorted(v)).collect()));
// %%
println!("{:?}", sorted(pairs.group_by_key().map_values(|v: Vec<u64>| sorted(v)).collect()));
// %%
println!("{:?}", sorted(pairs.values().map(|v: u64| v % 13).distinct().collect()));
// %%
println!("{:?}", pairs.map(|p: (u64, u64)| (p.1 % 50, p.0)).sort_by_key(true).keys().collect());
// %%
println!("{:?}", pairs.values().sort_by(|v: &u64| v % 10, false).map(|v: u64| v % 10).collect());
// %%
let spread = pairs.repartition(3);
(spread.num_partitions(), spread.count(), sorted(spread.collect()) == sorted(pairs.collect()))
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();

    let groups = grouped();
    let sums: Vec<(u64, u64)> = groups.iter().map(|(k, v)| (*k, v.iter().sum())).collect();
    let max_and_count: Vec<(u64, (u64, u32))> = groups
        .iter()
        .map(|(k, v)| (*k, (*v.iter().max().unwrap(), v.len() as u32)))
        .collect();
    let lists: Vec<(u64, Vec<u64>)> = groups.clone().into_iter().collect();
    let distinct: Vec<u64> = pairs()
        .iter()
        .map(|p| p.1 % 13)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut by_value_mod_50: Vec<u64> = pairs().iter().map(|p| p.1 % 50).collect();
    by_value_mod_50.sort();
    let mut digits_descending: Vec<u64> = pairs().iter().map(|p| p.1 % 10).collect();
    digits_descending.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        run.lines(),
        vec![
            format!("{sums:?}"),
            format!("{sums:?}"),
            format!("{sums:?}"),
            format!("{max_and_count:?}"),
            format!("{lists:?}"),
            format!("{lists:?}"),
            format!("{distinct:?}"),
            format!("{by_value_mod_50:?}"),
            format!("{digits_descending:?}"),
            "(3, 200, true)".to_string(),
        ],
        "stderr:\n{}",
        run.stderr
    );

    // Job 0 (the first reduce_by_key) ran a map stage on both executors, whose reducers
    // fetched from both of them.
    let maps = run.map_tasks(0);
    assert_eq!(maps.len(), 4, "{:?}", run.job(0));
    let writers: BTreeSet<u64> = maps.iter().map(|t| t.pid).collect();
    assert_eq!(writers.len(), 2, "map tasks ran in two processes: {maps:?}");
    let read: u64 = run.job(0).iter().map(|t| t.shuffle_read).sum();
    let written: u64 = maps.iter().map(|t| t.shuffle_written).sum();
    assert!(
        read > 0 && read == written,
        "read {read}, written {written}"
    );
    // The metrics place the tasks in time: the reducers started once every map task was
    // done, and all within the run.
    let maps_done = maps.iter().map(|t| t.finished).max().unwrap();
    let reducers: Vec<_> = run
        .job(0)
        .into_iter()
        .filter(|t| t.stage == "result")
        .collect();
    assert_eq!(reducers.len(), 4, "{:?}", run.job(0));
    assert!(
        reducers.iter().all(|t| t.started() >= maps_done),
        "a reducer started before the map stage was done: {:?}",
        run.job(0)
    );
    let now = std::time::SystemTime::now();
    assert!(
        run.tasks
            .iter()
            .all(|t| t.finished <= now && now.duration_since(t.started()).unwrap().as_secs() < 600),
        "{:?}",
        run.tasks
    );
    // Job 1 collected the same shuffled RDD: its map output was reused, not recomputed.
    assert!(run.map_tasks(1).is_empty(), "{:?}", run.job(1));
    assert_eq!(run.job(1).len(), 4);
}

#[test]
fn joins_and_cogroup_match_local_references() {
    let dir = Scratch::new("shuffle-joins");
    let script = r#"
let left = sc.parallelize(vec![(1u32, "a".to_string()), (2, "b".to_string()), (2, "c".to_string()), (3, "d".to_string())], 2);
let right = sc.parallelize(vec![(2u32, 20i32), (3, 30), (3, 31), (4, 40)], 3);
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> { v.sort(); v }
// %%
println!("{:?}", sorted(left.join(&right).collect()));
// %%
println!("{:?}", sorted(left.left_outer_join(&right).collect()));
// %%
println!("{:?}", sorted(left.right_outer_join(&right).collect()));
// %%
println!("{:?}", sorted(left.full_outer_join(&right).collect()));
// %%
println!("{:?}", sorted(left.cogroup(&right).map_values(|(a, b): (Vec<String>, Vec<i32>)| (sorted(a), sorted(b))).collect()));
// %%
println!("{:?}", sorted(left.subtract_by_key(&right).collect()));
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();

    let left = [(1u32, "a"), (2, "b"), (2, "c"), (3, "d")];
    let right = [(2u32, 20i32), (3, 30), (3, 31), (4, 40)];
    let s = |v: &str| v.to_string();
    let mut join = Vec::new();
    let mut left_outer = Vec::new();
    for (k, v) in left {
        let matches: Vec<i32> = right.iter().filter(|r| r.0 == k).map(|r| r.1).collect();
        if matches.is_empty() {
            left_outer.push((k, (s(v), None)));
        }
        for w in matches {
            join.push((k, (s(v), w)));
            left_outer.push((k, (s(v), Some(w))));
        }
    }
    let mut right_outer = Vec::new();
    for (k, w) in right {
        let matches: Vec<&str> = left.iter().filter(|l| l.0 == k).map(|l| l.1).collect();
        if matches.is_empty() {
            right_outer.push((k, (None, w)));
        }
        for v in matches {
            right_outer.push((k, (Some(s(v)), w)));
        }
    }
    let mut full: Vec<(u32, (Option<String>, Option<i32>))> = left_outer
        .iter()
        .map(|(k, (v, w))| (*k, (Some(v.clone()), *w)))
        .collect();
    full.extend(
        right_outer
            .iter()
            .filter(|(_, (v, _))| v.is_none())
            .map(|(k, (_, w))| (*k, (None, Some(*w)))),
    );
    let keys: BTreeSet<u32> = left
        .iter()
        .map(|l| l.0)
        .chain(right.iter().map(|r| r.0))
        .collect();
    let cogroup: Vec<(u32, (Vec<String>, Vec<i32>))> = keys
        .iter()
        .map(|&k| {
            let vs = left.iter().filter(|l| l.0 == k).map(|l| s(l.1)).collect();
            let ws = right.iter().filter(|r| r.0 == k).map(|r| r.1).collect();
            (k, (vs, ws))
        })
        .collect();
    let subtract: Vec<(u32, String)> = left
        .iter()
        .filter(|l| !right.iter().any(|r| r.0 == l.0))
        .map(|l| (l.0, s(l.1)))
        .collect();
    join.sort();
    left_outer.sort();
    right_outer.sort();
    full.sort();
    assert_eq!(
        run.lines(),
        vec![
            format!("{join:?}"),
            format!("{left_outer:?}"),
            format!("{right_outer:?}"),
            format!("{full:?}"),
            format!("{cogroup:?}"),
            format!("{subtract:?}"),
        ],
        "stderr:\n{}",
        run.stderr
    );
}

#[test]
fn an_rdd_partitioned_by_key_keeps_its_partitioner_and_is_not_shuffled_again() {
    let dir = Scratch::new("shuffle-partitioner");
    let script = r#"
let pairs = sc.parallelize((1..=200u64).map(|x| (x % 7, x)).collect::<Vec<_>>(), 4);
let placed = pairs.partition_by(Partitioner::hash(3)).cache();
placed.count()
// %%
(placed.partitioner() == Some(Partitioner::hash(3)), placed.map_values(|v: u64| v + 1).partitioner().is_some(), placed.map(|p: (u64, u64)| p).partitioner().is_none())
// %%
let mut sums = placed.map_values(|v: u64| v * 2).reduce_by_key(|a: u64, b: u64| a + b).collect();
sums.sort();
println!("{:?}", sums);
// %%
println!("{:?}", placed.map_partitions_with_index(|i: u32, mut part: std::vec::IntoIter<(u64, u64)>| vec![part.all(|p| tessera::hash_partition(&p.0, 3) == i)]).collect());
// %%
let halves = placed.map_values(|v: u64| v / 2);
let joined = placed.join(&halves);
(joined.partitioner() == Some(Partitioner::hash(3)), joined.count())
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();
    let joined: usize = grouped().values().map(|v| v.len() * v.len()).sum();
    let sums: Vec<(u64, u64)> = grouped()
        .iter()
        .map(|(k, v)| (*k, v.iter().map(|x| x * 2).sum()))
        .collect();
    assert_eq!(
        run.lines(),
        vec![
            "200".to_string(),
            "(true, true, true)".to_string(),
            format!("{sums:?}"),
            // Partition i holds the keys that hash to i.
            "[true, true, true]".to_string(),
            format!("(true, {joined})"),
        ],
        "stderr:\n{}",
        run.stderr
    );
    // Job 0 shuffled once; the reduce_by_key on the partitioned, cached RDD (job 1) ran no map
    // stage and read its partitions from the cache.
    assert_eq!(run.map_tasks(0).len(), 4);
    let job = run.job(1);
    assert!(run.map_tasks(1).is_empty(), "{job:?}");
    assert_eq!(job.len(), 3);
    assert!(
        job.iter().all(|t| t.origin.starts_with("cached:")),
        "{job:?}"
    );
    // The join of two RDDs placed by the same partitioner (job 3) moved nothing either: each
    // task read both sides of its partition from the cache.
    let job = run.job(3);
    assert!(run.map_tasks(3).is_empty(), "{job:?}");
    assert_eq!(job.len(), 3);
    assert!(
        job.iter().all(|t| t.origin.starts_with("cached:")),
        "{job:?}"
    );
    assert!(job.iter().all(|t| t.shuffle_read == 0), "{job:?}");
}

#[test]
fn a_custom_partitioner_places_keys_and_co_partitioned_joins_do_not_shuffle() {
    let dir = Scratch::new("shuffle-custom-partitioner");
    // Even keys in partition 0, odd keys in partition 1: a placement no hash gives.
    let script = r#"
#[derive(Serialize, Deserialize)]
struct ByParity;
impl CustomPartitioner<u64> for ByParity {
    fn num_partitions(&self) -> u32 { 2 }
    fn partition(&self, key: &u64) -> u32 { (key % 2) as u32 }
}
let pairs = sc.parallelize((1..=200u64).map(|x| (x % 7, x)).collect::<Vec<_>>(), 4);
let placed = pairs.partition_by_custom(&ByParity).cache();
println!("{:?}", placed.glom().map(|part: Vec<(u64, u64)>| { let mut keys: Vec<u64> = part.iter().map(|p| p.0).collect(); keys.sort(); keys.dedup(); keys }).collect());
// %%
let other = pairs.map_values(|v: u64| v % 3).partition_by_custom(&ByParity);
let joined = placed.join(&other);
(joined.partitioner() == placed.partitioner(), joined.count())
// %%
let mut sums = placed.reduce_by_key(|a: u64, b: u64| a + b).collect();
sums.sort();
println!("{:?}", sums);
// %%
#[derive(Serialize, Deserialize)]
struct Broken;
impl CustomPartitioner<u64> for Broken {
    fn num_partitions(&self) -> u32 { 2 }
    fn partition(&self, key: &u64) -> u32 { *key as u32 }
}
pairs.partition_by_custom(&Broken).count()
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    let joined: usize = grouped().values().map(|v| v.len() * v.len()).sum();
    let sums: Vec<(u64, u64)> = grouped()
        .iter()
        .map(|(k, v)| (*k, v.iter().sum()))
        .collect();
    assert_eq!(
        run.lines(),
        vec![
            "[[0, 2, 4, 6], [1, 3, 5]]".to_string(),
            format!("(true, {joined})"),
            format!("{sums:?}"),
        ],
        "stderr:\n{}",
        run.stderr
    );
    // The join (job 1) shuffled only `other` (4 map tasks), never `placed`, which it read
    // from the cache; the reduce_by_key (job 2) shuffled nothing.
    assert_eq!(run.map_tasks(1).len(), 4, "{:?}", run.job(1));
    assert!(run.map_tasks(2).is_empty(), "{:?}", run.job(2));
    // A partitioner that returns a partition it does not have fails the job and says why.
    assert!(!run.success);
    assert!(
        run.stderr.contains("placed a key in partition")
            && run.stderr.contains("below `num_partitions()`"),
        "stderr:\n{}",
        run.stderr
    );
}

#[test]
fn a_range_partitioned_rdd_joins_one_partitioned_otherwise() {
    let dir = Scratch::new("shuffle-join-sorted");
    // The sorted side is range-partitioned; the join reshuffles both sides by hash.
    let script = r#"
let sorted = sc.parallelize((0..20u64).map(|x| (x, x * 10)).collect::<Vec<_>>(), 3).sort_by_key(true);
let plain = sc.parallelize((0..20u64).map(|x| (x, x + 1)).collect::<Vec<_>>(), 2);
let mut joined = sorted.join(&plain).collect();
joined.sort();
println!("{:?}", joined);
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();
    let expected: Vec<(u64, (u64, u64))> = (0..20u64).map(|x| (x, (x * 10, x + 1))).collect();
    assert_eq!(
        run.lines(),
        vec![format!("{expected:?}")],
        "stderr:\n{}",
        run.stderr
    );
}

#[test]
fn buckets_larger_than_a_message_piece_are_fetched_whole_from_the_other_executor() {
    let dir = Scratch::new("shuffle-big-buckets");
    // 4 map partitions of 120 records of 100 kB, keyed 0 or 1: every bucket holds 6 MB, more
    // than one piece of a FetchShuffle stream (4 MiB).
    let script = r#"
let big = sc.parallelize((0..4u64).collect::<Vec<_>>(), 4)
    .flat_map(|i: u64| (0..120u64).map(move |j| {
        let n = (i * 1000 + j).to_string();
        (j % 2, "0".repeat(100_000 - n.len()) + &n)
    }).collect::<Vec<_>>());
let mut groups = big.group_by_key().map_values(|v: Vec<String>| {
    (v.len(), v.iter().map(|s| s.len()).sum::<usize>(), v.iter().map(|s| s.trim_start_matches('0').parse::<u64>().unwrap_or(0)).sum::<u64>())
}).collect();
groups.sort();
println!("{:?}", groups);
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();
    let expected: Vec<(u64, (usize, usize, u64))> = (0..2u64)
        .map(|key| {
            let numbers: Vec<u64> = (0..4u64)
                .flat_map(|i| {
                    (0..120u64)
                        .filter(move |j| j % 2 == key)
                        .map(move |j| i * 1000 + j)
                })
                .collect();
            (
                key,
                (numbers.len(), numbers.len() * 100_000, numbers.iter().sum()),
            )
        })
        .collect();
    assert_eq!(run.lines(), vec![format!("{expected:?}")], "{}", run.stderr);
    let maps = run.map_tasks(0);
    let map_executors: BTreeSet<&str> = maps.iter().map(|t| t.executor.as_str()).collect();
    assert_eq!(
        map_executors.len(),
        2,
        "map outputs on both executors: {maps:?}"
    );
    let reads: Vec<u64> = run
        .job(0)
        .iter()
        .filter(|t| t.stage == "result")
        .map(|t| t.shuffle_read)
        .collect();
    assert!(
        reads.iter().any(|&r| r > 4 * 6_000_000),
        "a reducer read every bucket of its key: {reads:?}"
    );
}

/// Moves 2.4 GB through one shuffle (about half a minute, a few GB of memory).
#[test]
fn a_reducer_fetches_more_than_a_gibibyte_from_one_executor() {
    let dir = Scratch::new("shuffle-past-1gib");
    // 4 map partitions of 600 records of 1 MB, all under key 0: the reducer fetches 1.2 GB
    // from the other executor, more than any one message may carry (1 GiB).
    let script = r#"
let big = sc.parallelize((0..4u64).collect::<Vec<_>>(), 4)
    .flat_map(|i: u64| (0..600u64).map(move |j| (0u64, vec![(i * 1000 + j) as u8; 1_000_000])).collect::<Vec<_>>());
println!("{:?}", big.group_by_key().map_values(|v: Vec<Vec<u8>>| (v.len(), v.iter().map(|s| s.len()).sum::<usize>())).collect());
"#;
    // Executors are killed past their memory: give them most of what the agents offer.
    let run = tessera_run(
        &dir.0,
        script,
        "local-cluster[2,1,8192]",
        &["--executor-memory-mb", "7168"],
    );
    run.expect_success();
    assert_eq!(
        run.lines(),
        vec!["[(0, (2400, 2400000000))]"],
        "{}",
        run.stderr
    );
    let read: u64 = run.job(0).iter().map(|t| t.shuffle_read).sum();
    assert!(read > 2_400_000_000, "{:?}", run.job(0));
}

/// A task that concatenates several partitions of one shuffle's output (`coalesce`) reads each
/// of them, not one of them several times.
#[test]
fn coalescing_a_shuffle_reads_every_partition_of_it_once() {
    let dir = Scratch::new("coalesce-shuffle");
    let script = r#"
let sums = sc.parallelize((1..=200u64).map(|x| (x % 7, x)).collect::<Vec<_>>(), 4).reduce_by_key(|a: u64, b: u64| a + b);
let mut one = sums.coalesce(1).collect();
one.sort();
println!("{:?}", one);
"#;
    let run = tessera_run(&dir.0, script, CLUSTER, &[]);
    run.expect_success();
    let sums: Vec<(u64, u64)> = grouped()
        .iter()
        .map(|(k, v)| (*k, v.iter().sum()))
        .collect();
    assert_eq!(run.lines(), vec![format!("{sums:?}")], "{}", run.stderr);
}
