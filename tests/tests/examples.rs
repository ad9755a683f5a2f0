//! The worked examples under `notebooks/`, replayed by `tessera run` on their sample data and
//! checked against plain-Rust references computed here from the same files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tessera_e2e::{RunOutput, Scratch, tessera_run_with_env};

fn notebooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `notebooks/NAME.rs` on `notebooks/data/INPUT` and returns its output.
fn run_example(name: &str, input: &str, master: &str, env: &[(&str, &str)]) -> (RunOutput, String) {
    let dir = Scratch::new(&format!("example-{name}"));
    let script = read(&notebooks().join(format!("{name}.rs")));
    let input_path = notebooks().join("data").join(input);
    let input_str = input_path.to_str().unwrap().to_string();
    let mut all_env = vec![("TESSERA_EXAMPLE_INPUT", input_str.as_str())];
    all_env.extend_from_slice(env);
    let run = tessera_run_with_env(&dir.0, &script, master, &[], &all_env);
    run.expect_success();
    (run, read(&input_path))
}

/// What follows `label: ` (or `label ` for numbered labels such as `centre 0: ...`) on each
/// output line that starts with `label`.
fn values<'a>(run: &'a RunOutput, label: &str) -> Vec<&'a str> {
    run.lines()
        .into_iter()
        .filter_map(|l| {
            let rest = l.strip_prefix(label)?;
            rest.strip_prefix(": ").or_else(|| rest.strip_prefix(' '))
        })
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} != {expected}"
    );
}

fn floats(text: &str) -> Vec<f64> {
    text.split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn log_mining_counts_errors_and_answers_sub_queries_from_the_cache() {
    let (run, log) = run_example("log_mining", "app.log", "local[2]", &[]);
    let errors: Vec<Vec<&str>> = log
        .lines()
        .filter(|l| l.starts_with("ERROR"))
        .map(|l| l.split('\t').collect())
        .collect();
    let mysql = errors
        .iter()
        .filter(|f| f.join("\t").contains("mysql"))
        .count();
    let mut hdfs: Vec<&str> = errors
        .iter()
        .filter(|f| f[2] == "hdfs")
        .map(|f| f[1])
        .collect();
    hdfs.sort();
    let mut by_component: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &errors {
        *by_component.entry(f[2]).or_default() += 1;
    }
    assert_eq!(values(&run, "errors"), vec![errors.len().to_string()]);
    assert_eq!(values(&run, "mysql errors"), vec![mysql.to_string()]);
    assert_eq!(values(&run, "hdfs error times"), vec![hdfs.join(",")]);
    let expected: Vec<String> = by_component
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect();
    assert_eq!(values(&run, "component"), expected);
    // The sub-queries (jobs 1 to 3) read the cached error lines, never the file: every task
    // started from the cache, except reducers, which read the shuffle of job 3.
    for job in 1..=3 {
        let tasks = run.job(job);
        let shuffled = !run.map_tasks(job).is_empty();
        assert!(!tasks.is_empty());
        assert!(
            tasks
                .iter()
                .all(|t| t.origin.starts_with("cached:") || (shuffled && t.stage == "result")),
            "job {job}: {tasks:?}"
        );
    }

    // The paired notebook replays to the same output.
    let dir = Scratch::new("example-log-mining-notebook");
    let notebook = std::process::Command::new(tessera_e2e::bin("tessera"))
        .current_dir(&dir.0)
        .args(["--master", "local[2]", "run"])
        .arg(notebooks().join("log_mining.ipynb"))
        .env("TESSERA_EXAMPLE_INPUT", notebooks().join("data/app.log"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&notebook.stdout);
    assert!(
        notebook.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&notebook.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, run.lines());
}

#[test]
fn word_count_matches_a_local_count() {
    let (run, text) = run_example("word_count", "words.txt", "local-cluster[2,1,1024]", &[]);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for word in text
        .lines()
        .flat_map(|l| l.split(' '))
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word).or_default() += 1;
    }
    let mut top: Vec<(u64, &str)> = counts.iter().map(|(w, c)| (*c, *w)).collect();
    top.sort_by(|a, b| b.cmp(a));
    let expected_top: Vec<String> = top
        .iter()
        .take(5)
        .map(|(c, w)| format!("{w} {c}"))
        .collect();
    assert_eq!(
        values(&run, "distinct words"),
        vec![counts.len().to_string()]
    );
    assert_eq!(
        values(&run, "total words"),
        vec![counts.values().sum::<u64>().to_string()]
    );
    assert_eq!(values(&run, "top"), expected_top);
}

#[test]
fn pagerank_matches_the_classic_algorithm_and_never_reshuffles_the_links() {
    let (run, graph) = run_example(
        "pagerank",
        "graph.txt",
        "local-cluster[2,1,1024]",
        &[("TESSERA_EXAMPLE_ALL", "1")],
    );
    // Spark's example: links grouped by source; ranks for sources; inner join each iteration.
    let mut links: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for line in graph.lines() {
        let ids: Vec<u64> = line
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        links.entry(ids[0]).or_default().insert(ids[1]);
    }
    let mut ranks: BTreeMap<u64, f64> = links.keys().map(|&k| (k, 1.0)).collect();
    for _ in 0..10 {
        let mut sums: BTreeMap<u64, f64> = BTreeMap::new();
        for (src, urls) in &links {
            if let Some(rank) = ranks.get(src) {
                for url in urls {
                    *sums.entry(*url).or_default() += rank / urls.len() as f64;
                }
            }
        }
        ranks = sums
            .into_iter()
            .map(|(k, s)| (k, 0.15 + 0.85 * s))
            .collect();
    }
    let computed: BTreeMap<u64, f64> = values(&run, "rank")
        .iter()
        .map(|l| {
            let (page, rank) = l.split_once(' ').unwrap();
            (page.parse().unwrap(), rank.parse().unwrap())
        })
        .collect();
    assert_eq!(
        computed.keys().collect::<Vec<_>>(),
        ranks.keys().collect::<Vec<_>>()
    );
    for (page, rank) in &ranks {
        let tolerance = 1e-8 * rank.max(1.0);
        assert!(
            (computed[page] - rank).abs() <= tolerance,
            "page {page}: {} != {rank}",
            computed[page]
        );
    }
    // Links were shuffled once (grouped, in the first job); no later job wrote map output of
    // the links again, only the contributions (one shuffle per iteration).
    let link_shuffles: BTreeSet<&str> = run
        .tasks
        .iter()
        .filter(|t| t.stage.starts_with("map:"))
        .map(|t| t.stage.as_str())
        .collect();
    // distinct, group_by_key, and one reduce_by_key per iteration.
    assert_eq!(link_shuffles.len(), 2 + 10, "{link_shuffles:?}");
}

#[test]
fn logistic_regression_matches_a_single_threaded_loop() {
    let (run, text) = run_example("logistic_regression", "points.txt", "local[2]", &[]);
    const D: usize = 10;
    let points: Vec<(f64, Vec<f64>)> = text
        .lines()
        .map(|l| {
            let v = floats(l);
            (v[0], v[1..].to_vec())
        })
        .collect();
    let mut w: Vec<f64> = (0..D).map(|i| (i as f64 / D as f64) - 0.5).collect();
    for _ in 0..10 {
        let mut g = vec![0.0; D];
        for (y, x) in &points {
            let dot: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            let scale = (1.0 / (1.0 + (-y * dot).exp()) - 1.0) * y;
            for (gi, xi) in g.iter_mut().zip(x) {
                *gi += xi * scale;
            }
        }
        for (wi, gi) in w.iter_mut().zip(&g) {
            *wi -= gi;
        }
    }
    let computed = floats(values(&run, "w")[0]);
    for (i, (a, e)) in computed.iter().zip(&w).enumerate() {
        assert_close(*a, *e, &format!("w[{i}]"));
    }
    assert_eq!(values(&run, "iteration").len(), 10);
}

#[test]
fn kmeans_matches_lloyds_algorithm_run_locally() {
    let (run, text) = run_example("kmeans", "clusters.txt", "local[2]", &[]);
    let points: Vec<(f64, f64)> = text
        .lines()
        .map(|l| {
            let v = floats(l);
            (v[0], v[1])
        })
        .collect();
    let mut centres: Vec<(f64, f64)> = points[..3].to_vec();
    for _ in 0..10 {
        let mut sums = vec![(0.0, 0.0, 0u64); 3];
        for p in &points {
            let distance = |c: &(f64, f64)| (p.0 - c.0).powi(2) + (p.1 - c.1).powi(2);
            let closest = (0..3)
                .min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b])))
                .unwrap();
            sums[closest] = (
                sums[closest].0 + p.0,
                sums[closest].1 + p.1,
                sums[closest].2 + 1,
            );
        }
        for (i, (x, y, n)) in sums.into_iter().enumerate() {
            if n > 0 {
                centres[i] = (x / n as f64, y / n as f64);
            }
        }
    }
    let computed: Vec<Vec<f64>> = values(&run, "centre")
        .iter()
        .map(|l| floats(l.split_once(": ").map_or(*l, |(_, v)| v)))
        .collect();
    assert_eq!(computed.len(), 3, "{:?}", run.lines());
    for (i, c) in centres.iter().enumerate() {
        assert_close(computed[i][0], c.0, &format!("centre {i} x"));
        assert_close(computed[i][1], c.1, &format!("centre {i} y"));
    }
}

/// The cells of a table row printed by `show`: `│ a ┆ b │` as `["a", "b"]`.
fn table_row(line: &str) -> Vec<&str> {
    line.trim_matches(|c| c == '│' || c == ' ')
        .split('┆')
        .map(str::trim)
        .collect()
}

#[test]
fn dataframes_mines_the_orders_it_generated() {
    let dir = Scratch::new("example-dataframes");
    let data = dir.0.join("sales");
    let script = read(&notebooks().join("dataframes.rs"));
    let run = tessera_run_with_env(
        &dir.0,
        &script,
        "local[2]",
        &[],
        &[("TESSERA_EXAMPLE_DIR", data.to_str().unwrap())],
    );
    run.expect_success();
    // References from the files the notebook wrote.
    let mut revenue: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let mut orders = 0;
    for file in 0..4 {
        let text = read(&data.join(format!("orders/part-{file}.csv")));
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let (quantity, price): (f64, f64) = (f[4].parse().unwrap(), f[5].parse().unwrap());
            let entry = revenue.entry(f[2].to_string()).or_default();
            entry.0 += quantity * price;
            entry.1 += 1;
            orders += 1;
        }
    }
    assert_eq!(values(&run, "orders"), vec![orders.to_string()]);
    let shown: BTreeMap<String, (f64, u64)> = run
        .lines()
        .into_iter()
        .map(table_row)
        .filter(|cells| cells.len() == 3 && revenue.contains_key(cells[0]))
        .map(|c| {
            (
                c[0].to_string(),
                (c[1].parse().unwrap(), c[2].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(shown.len(), 4, "{}", run.stdout);
    for (region, (total, count)) in &revenue {
        let (shown_total, shown_count) = shown[region];
        assert_close(shown_total, (total * 100.0).round() / 100.0, region);
        assert_eq!(shown_count, *count, "{region}");
    }
    // The SQL cell: orders and units of the first half-year by (category, region), the five
    // with the most units.
    let categories = ["tools", "garden", "kitchen", "toys", "books"];
    let mut half_year: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for file in 0..4 {
        let text = read(&data.join(format!("orders/part-{file}.csv")));
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f[1].parse::<u64>().unwrap() >= 180 {
                continue;
            }
            let product: usize = f[3][1..].parse().unwrap();
            let key = (categories[product % 5].to_string(), f[2].to_string());
            let entry = half_year.entry(key).or_default();
            entry.0 += 1;
            entry.1 += f[4].parse::<u64>().unwrap();
        }
    }
    let mut expected: Vec<(String, String, u64, u64)> = half_year
        .into_iter()
        .map(|((category, region), (orders, units))| (category, region, orders, units))
        .collect();
    expected.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    expected.truncate(5);
    let busiest: Vec<(String, String, u64, u64)> = run
        .lines()
        .into_iter()
        .map(table_row)
        .filter(|cells| cells.len() == 4 && categories.contains(&cells[0]))
        .map(|c| {
            let number = |text: &str| text.parse::<u64>().unwrap();
            (
                c[0].to_string(),
                c[1].to_string(),
                number(c[2]),
                number(c[3]),
            )
        })
        .collect();
    assert_eq!(busiest, expected, "{}", run.stdout);
    // The plan shows the broadcast of the products table.
    assert!(
        run.stdout
            .contains("collected and broadcast to every executor"),
        "{}",
        run.stdout
    );
}
