// %% [markdown]
// Word count: the lines of a text file split into words, counted with a shuffle that combines
// counts on the map side first.
//
//     tessera run notebooks/word_count.rs
//
// The text is `$TESSERA_EXAMPLE_INPUT` (default `notebooks/data/words.txt`).

// %%
let path = std::env::var("TESSERA_EXAMPLE_INPUT").unwrap_or_else(|_| "notebooks/data/words.txt".to_string());
let started = std::time::Instant::now();
let counts = sc
    .text_file(&path, 4)
    .flat_map(|line: String| line.split(' ').filter(|w| !w.is_empty()).map(String::from).collect::<Vec<_>>())
    .map(|word: String| (word, 1u64))
    .reduce_by_key(|a: u64, b: u64| a + b)
    .collect();
println!("word count took {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
println!("distinct words: {}", counts.len());

// %%
println!("total words: {}", counts.iter().map(|(_, c)| c).sum::<u64>());
let mut by_count: Vec<(u64, String)> = counts.iter().map(|(w, c)| (*c, w.clone())).collect();
by_count.sort_by(|a, b| b.cmp(a));
for (count, word) in by_count.iter().take(5) {
    println!("top: {word} {count}");
}
