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
    .cache();
println!("distinct words: {}", counts.count());
println!("word count took {} ms", started.elapsed().as_millis());

// %%
println!("total words: {}", counts.values().sum());
for (count, word) in counts.map(|(w, c): (String, u64)| (c, w)).top(5) {
    println!("top: {word} {count}");
}
