// %% [markdown]
// Log mining, the RDD paper's first example: load a log once, keep its error lines in
// executor memory, then ask several questions of them, each answered from the cache.
//
//     tessera run notebooks/log_mining.rs
//
// The log is `$TESSERA_EXAMPLE_INPUT` (default `notebooks/data/app.log`): one record a line,
// `LEVEL<TAB>TIME<TAB>COMPONENT<TAB>MESSAGE`.

// %%
let path = std::env::var("TESSERA_EXAMPLE_INPUT").unwrap_or_else(|_| "notebooks/data/app.log".to_string());
let lines = sc.text_file(&path, 4);
let errors = lines.filter(|line: &String| line.starts_with("ERROR")).cache();
println!("errors: {}", errors.count());

// %%
// Sub-queries run on the cached error lines, not on the file.
println!("mysql errors: {}", errors.filter(|line: &String| line.contains("mysql")).count());

// %%
let mut hdfs_times = errors
    .filter(|line: &String| line.split('\t').nth(2) == Some("hdfs"))
    .map(|line: String| line.split('\t').nth(1).unwrap_or("").to_string())
    .collect();
hdfs_times.sort();
println!("hdfs error times: {}", hdfs_times.join(","));

// %%
let mut by_component: Vec<(String, u64)> = errors
    .map(|line: String| (line.split('\t').nth(2).unwrap_or("").to_string(), 1u64))
    .reduce_by_key(|a: u64, b: u64| a + b)
    .collect();
by_component.sort();
for (component, count) in &by_component {
    println!("component {component}: {count}");
}
