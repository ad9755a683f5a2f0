//! `tessera-baseline`: the physical baseline of the benchmarks — a single-threaded, plain-Rust
//! loop over data already in memory, with the same algorithm as the Tessera notebook and the
//! PySpark script. Loading and parsing are not timed, except for word count, whose work is
//! parsing: there it is the notebook's own code (an owned `String` per word, counted in a
//! hash map) over the file's bytes already read.
//!
//! ```sh
//! tessera-baseline lr POINTS_FILE [ITERATIONS]        # logistic regression, 10 features
//! tessera-baseline pagerank EDGES_FILE [ITERATIONS]   # Spark's classic PageRank
//! tessera-baseline wordcount TEXT_FILE
//! ```
//!
//! Prints one line `RESULT {json}` with the time of each iteration (LR) or of all of them
//! (PageRank, word count), in seconds.
//!
//! The loop calls the same `exp` as the closures on executors (tessera-libm's, linked here as
//! in the executor), so that the two sides do the same work; LR also runs its iterations again
//! with the C library's own `exp` and reports those times as `iter_s_c_library_exp`.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::time::Instant;

const D: usize = 10;

/// The `exp` of executors' closures, named so that the linker keeps it: `f64::exp` in this
/// binary then calls it, as a closure's does on an executor.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
static CLOSURES_EXP: extern "C" fn(f64) -> f64 = tessera_libm::exp;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(what), Some(path)) = (args.get(1), args.get(2)) else {
        bail!("usage: tessera-baseline lr|pagerank|wordcount FILE [ITERATIONS]");
    };
    let iterations: usize = args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(10);
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    match what.as_str() {
        "lr" => logistic_regression(&text, iterations),
        "pagerank" => pagerank(&text, iterations),
        "wordcount" => word_count(&text),
        other => bail!("unknown workload {other}: lr, pagerank or wordcount"),
    }
}

fn word_count(text: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect();
        for word in words {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    let total_s = started.elapsed().as_secs_f64();
    println!(
        "RESULT {{\"bench\":\"wordcount_baseline\",\"total_s\":{total_s},\"distinct_words\":{}}}",
        counts.len()
    );
    Ok(())
}

fn logistic_regression(text: &str, iterations: usize) -> anyhow::Result<()> {
    let points: Vec<(f64, [f64; D])> = text
        .lines()
        .map(|line| {
            let mut values = line.split(' ').map(|v| v.parse::<f64>().unwrap_or(0.0));
            let y = values.next().unwrap_or(0.0);
            let mut x = [0.0; D];
            for (slot, v) in x.iter_mut().zip(values) {
                *slot = v;
            }
            (y, x)
        })
        .collect();
    let (w, mean_loss, seconds) = descend(&points, iterations, f64::exp);
    let c_library_exp = tessera_libm::c_library_exp();
    let (other_w, _, seconds_c_library_exp) = descend(&points, iterations, |x| c_library_exp(x));
    anyhow::ensure!(
        w == other_w,
        "the two exps gave different weights: {w:?} against {other_w:?}"
    );
    println!(
        "RESULT {{\"bench\":\"lr_baseline\",\"points\":{},\"iter_s\":{seconds:?},\"iter_s_c_library_exp\":{seconds_c_library_exp:?},\"w0\":{},\"mean_loss\":{mean_loss}}}",
        points.len(),
        w[0]
    );
    Ok(())
}

/// Batch gradient descent from the notebook's start over `points`, with `exp` for the sigmoid
/// and the loss: the final weights, the last mean loss and each iteration's seconds.
fn descend(
    points: &[(f64, [f64; D])],
    iterations: usize,
    exp: impl Fn(f64) -> f64,
) -> ([f64; D], f64, Vec<f64>) {
    let mut w: [f64; D] = std::array::from_fn(|i| (i as f64 / D as f64) - 0.5);
    let mut seconds = Vec::new();
    let mut mean_loss = f64::NAN;
    for _ in 0..iterations {
        let started = Instant::now();
        let mut gradient = [0.0; D];
        // The notebook's job also sums the logistic loss (it prints and plots it), so the
        // loop does too: the same work on both sides.
        let mut loss = 0.0;
        for (y, x) in points {
            let dot: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            let scale = (1.0 / (1.0 + exp(-y * dot)) - 1.0) * y;
            for (g, xi) in gradient.iter_mut().zip(x) {
                *g += xi * scale;
            }
            let margin = y * dot;
            loss += (-margin).max(0.0) + exp(-margin.abs()).ln_1p();
        }
        mean_loss = loss / points.len() as f64;
        for (wi, g) in w.iter_mut().zip(&gradient) {
            *wi -= g;
        }
        seconds.push(started.elapsed().as_secs_f64());
    }
    (w, mean_loss, seconds)
}

fn pagerank(text: &str, iterations: usize) -> anyhow::Result<()> {
    let mut links: HashMap<u64, Vec<u64>> = HashMap::new();
    for line in text.lines() {
        let mut ids = line
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        if let (Some(src), Some(dst)) = (ids.next(), ids.next()) {
            links.entry(src).or_default().push(dst);
        }
    }
    for urls in links.values_mut() {
        urls.sort_unstable();
        urls.dedup();
    }
    let started = Instant::now();
    let mut ranks: HashMap<u64, f64> = links.keys().map(|&k| (k, 1.0)).collect();
    for _ in 0..iterations {
        let mut sums: HashMap<u64, f64> = HashMap::with_capacity(ranks.len());
        for (src, urls) in &links {
            if let Some(rank) = ranks.get(src) {
                let share = rank / urls.len() as f64;
                for url in urls {
                    *sums.entry(*url).or_default() += share;
                }
            }
        }
        ranks = sums
            .into_iter()
            .map(|(k, s)| (k, 0.15 + 0.85 * s))
            .collect();
    }
    let total = started.elapsed().as_secs_f64();
    let rank_sum: f64 = ranks.values().sum();
    println!(
        "RESULT {{\"bench\":\"pagerank_baseline\",\"total_s\":{total},\"n_ranked\":{},\"rank_sum\":{rank_sum}}}",
        ranks.len()
    );
    Ok(())
}
