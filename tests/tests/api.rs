//! The RDD API against local references: each cell's printed result is compared with the same
//! computation done here on a `Vec`.

use tessera_e2e::{Scratch, tessera_run};

#[test]
fn transformations_and_actions_match_local_references() {
    let dir = Scratch::new("api");
    let script = r#"
let nums = sc.parallelize((1..=100).collect::<Vec<i64>>(), 4);
// %%
println!("{:?}", nums.map_partitions_with_index(|i: u32, it: std::vec::IntoIter<i64>| vec![(i, it.count())]).collect());
// %%
println!("{:?}", nums.glom().map(|p: Vec<i64>| p.len()).collect());
// %%
nums.key_by(|x: &i64| x % 3).filter(|p: &(i64, i64)| p.0 == 0).values().sum()
// %%
let pairs = nums.map(|x: i64| (x % 5, x));
println!("{:?}", pairs.map_values(|v: i64| v * 10).lookup(2));
// %%
pairs.flat_map_values(|v: i64| vec![v; 2]).count()
// %%
let mut by_key: Vec<(i64, u64)> = pairs.count_by_key().into_iter().collect();
by_key.sort();
println!("{:?}", by_key);
// %%
nums.aggregate((0i64, 0u32), |acc: (i64, u32), x: i64| (acc.0 + x, acc.1 + 1), |a: (i64, u32), b: (i64, u32)| (a.0 + b.0, a.1 + b.1))
// %%
(nums.take_ordered(3), nums.top(3))
// %%
let s = nums.stats();
(s.count(), s.mean(), s.min(), s.max())
// %%
let a = nums.sample(false, 0.3, 7).collect();
let b = nums.sample(false, 0.3, 7).collect();
(a == b, a.len() > 10 && a.len() < 60, a.iter().all(|x| (1..=100).contains(x)))
// %%
let words = sc.parallelize(vec!["a".to_string(), "b".to_string(), "a".to_string()], 2);
let mut counts: Vec<(String, u64)> = words.count_by_value().into_iter().collect();
counts.sort();
println!("{:?}", counts);
// %%
nums.filter(|x: &i64| x % 10 == 0).save_as_text_file("out");
let mut lines: Vec<i64> = std::fs::read_dir("out").unwrap()
    .flat_map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap().lines().map(|l| l.parse::<i64>().unwrap()).collect::<Vec<_>>())
    .collect();
lines.sort();
println!("{:?}", lines);
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();

    let nums: Vec<i64> = (1..=100).collect();
    let parts: Vec<&[i64]> = (0..4).map(|i| &nums[i * 25..(i + 1) * 25]).collect();
    let with_index: Vec<(u32, usize)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32, p.len()))
        .collect();
    let glom: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    let multiples_of_3: f64 = nums.iter().filter(|x| *x % 3 == 0).sum::<i64>() as f64;
    let lookup: Vec<i64> = nums
        .iter()
        .filter(|x| *x % 5 == 2)
        .map(|x| x * 10)
        .collect();
    let mut by_key: Vec<(i64, u64)> = (0..5)
        .map(|k| (k, nums.iter().filter(|x| *x % 5 == k).count() as u64))
        .collect();
    by_key.sort();
    let tens: Vec<i64> = nums.iter().copied().filter(|x| x % 10 == 0).collect();
    let expected = vec![
        format!("{with_index:?}"),
        format!("{glom:?}"),
        format!("{multiples_of_3:?}"),
        format!("{lookup:?}"),
        "200".to_string(),
        format!("{by_key:?}"),
        format!("{:?}", (nums.iter().sum::<i64>(), 100u32)),
        format!("{:?}", (vec![1i64, 2, 3], vec![100i64, 99, 98])),
        format!("{:?}", (100u64, 50.5f64, 1.0f64, 100.0f64)),
        "(true, true, true)".to_string(),
        format!(
            "{:?}",
            vec![("a".to_string(), 2u64), ("b".to_string(), 1u64)]
        ),
        format!("{tens:?}"),
    ];
    assert_eq!(run.lines(), expected, "stderr:\n{}", run.stderr);
}

#[test]
fn union_and_zip_with_index_follow_partition_order() {
    let dir = Scratch::new("union");
    let script = r#"
let a = sc.parallelize((1..=10).collect::<Vec<i64>>(), 3);
let b = sc.parallelize((100..=104).collect::<Vec<i64>>(), 2).cache();
let both = a.union(&b).cache();
both.count()
// %%
println!("{:?}", both.collect());
// %%
both.filter(|x: &i64| *x >= 100).count()
// %%
println!("{:?}", sc.union(&[a, b, a]).zip_with_index().filter(|p: &(i64, u64)| p.1 % 5 == 0).collect());
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let a: Vec<i64> = (1..=10).collect();
    let b: Vec<i64> = (100..=104).collect();
    let both: Vec<i64> = a.iter().chain(&b).copied().collect();
    let all: Vec<i64> = a.iter().chain(&b).chain(&a).copied().collect();
    let every_fifth: Vec<(i64, u64)> = all
        .iter()
        .copied()
        .zip(0u64..)
        .filter(|p| p.1 % 5 == 0)
        .collect();
    assert_eq!(
        run.lines(),
        vec![
            "15".to_string(),
            format!("{both:?}"),
            "5".to_string(),
            format!("{every_fifth:?}")
        ],
        "stderr:\n{}",
        run.stderr
    );
    // The third job ran on the cached union: every partition came from its cache.
    assert!(
        run.job(2).iter().all(|t| t.origin.starts_with("cached:")),
        "{:?}",
        run.job(2)
    );
}

#[test]
fn coalesce_and_cartesian_match_local_references() {
    let dir = Scratch::new("coalesce-cartesian");
    let script = r#"
let nums = sc.parallelize((1..=20).collect::<Vec<i64>>(), 5).cache();
let fewer = nums.coalesce(2);
(fewer.num_partitions(), fewer.glom().map(|p: Vec<i64>| p.len()).collect(), fewer.collect())
// %%
let letters = sc.parallelize(vec!['a', 'b', 'c'], 2);
let pairs = nums.filter(|x: &i64| *x <= 2).cartesian(&letters);
let mut all = pairs.collect();
all.sort();
(pairs.num_partitions(), all)
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let nums: Vec<i64> = (1..=20).collect();
    // Partitions of 4 records; the first two go to one output partition, the other three to
    // the other.
    let coalesced = format!("{:?}", (2u32, vec![8usize, 12], nums));
    let mut pairs = Vec::new();
    for x in [1i64, 2] {
        for c in ['a', 'b', 'c'] {
            pairs.push((x, c));
        }
    }
    let cartesian = format!("{:?}", (10u32, pairs));
    assert_eq!(
        run.lines(),
        vec![coalesced, cartesian],
        "stderr:\n{}",
        run.stderr
    );
    // Coalescing read the cached partitions: no record was computed again.
    assert!(
        run.job(1).iter().all(|t| t.origin.starts_with("cached:")),
        "{:?}",
        run.job(1)
    );
}
