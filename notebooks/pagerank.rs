// %% [markdown]
// PageRank, the classic formulation of Spark's example: links grouped by source (a hash-
// partitioned shuffle) and cached; every iteration joins them with the ranks, which share
// their partitioner, so the links never move again. Ranks are not normalised; as in Spark's
// example, a page without in-links drops out after the first iteration.
//
//     tessera run notebooks/pagerank.rs
//
// The graph is `$TESSERA_EXAMPLE_INPUT` (default `notebooks/data/graph.txt`): `SRC DST` a line.
//
// Reading the graph and the iterations are one cell, so that the time printed is the job's, as
// the PySpark script's is, and not also the compilation of a second cell (the REPL's own cost,
// which `tessera-bench` measures).

// %%
let path = std::env::var("TESSERA_EXAMPLE_INPUT").unwrap_or_else(|_| "notebooks/data/graph.txt".to_string());
let iterations: usize = std::env::var("TESSERA_EXAMPLE_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
let started = std::time::Instant::now();
let links = sc
    .text_file(&path, 4)
    .map(|line: String| {
        let mut ids = line.split_whitespace().map(|id| id.parse::<u64>().unwrap());
        (ids.next().unwrap(), ids.next().unwrap())
    })
    .distinct()
    .group_by_key()
    .cache();
// Counting the pages reads the graph and caches the links, so that the iterations are timed
// on links in memory, as a plain loop's would be.
let pages = links.count();
let loaded = started.elapsed();
let iterating = std::time::Instant::now();
let mut ranks = links.map_values(|_: Vec<u64>| 1.0f64);
for _ in 0..iterations {
    let contributions = links
        .join(&ranks)
        .values()
        .flat_map(|(urls, rank): (Vec<u64>, f64)| {
            let share = rank / urls.len() as f64;
            urls.into_iter().map(move |url| (url, share)).collect::<Vec<_>>()
        });
    ranks = contributions
        .reduce_by_key_with(links.partitioner().unwrap(), |a: f64, b: f64| a + b)
        .map_values(|sum: f64| 0.15 + 0.85 * sum);
}
let mut ranked = ranks.collect();
println!("pagerank took {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
println!(
    "links of {pages} pages read and cached in {:.1} ms; {iterations} iterations took {:.1} ms",
    loaded.as_secs_f64() * 1e3,
    iterating.elapsed().as_secs_f64() * 1e3
);
ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
println!("ranked pages: {}", ranked.len());
for (page, rank) in ranked.iter().take(5) {
    println!("top: {page} {rank:.6}");
}

// %%
// Every rank, for checking against another implementation.
if std::env::var("TESSERA_EXAMPLE_ALL").is_ok() {
    for (page, rank) in &ranked {
        println!("rank: {page} {rank:.9}");
    }
}
