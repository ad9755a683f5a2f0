// %% [markdown]
// Logistic regression by batch gradient descent over points cached in executor memory (the
// RDD paper's iterative example): the first iteration reads and parses the file; every later
// one runs on the cache.
//
//     tessera run notebooks/logistic_regression.rs
//
// The points are `$TESSERA_EXAMPLE_INPUT` (default `notebooks/data/points.txt`): `Y X1 .. X10`
// a line, Y in {-1, 1}.

// %%
const D: usize = 10;
let path = std::env::var("TESSERA_EXAMPLE_INPUT").unwrap_or_else(|_| "notebooks/data/points.txt".to_string());
let iterations: usize = std::env::var("TESSERA_EXAMPLE_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
let points = sc
    .text_file(&path, 4)
    .map(|line: String| {
        let mut values = line.split(' ').map(|v| v.parse::<f64>().unwrap());
        let y = values.next().unwrap();
        let mut x = [0.0f64; D];
        for (slot, v) in x.iter_mut().zip(values) {
            *slot = v;
        }
        (y, x)
    })
    .cache();
// A fixed starting point, so that runs can be compared.
let mut w: Vec<f64> = (0..D).map(|i| (i as f64 / D as f64) - 0.5).collect();
println!("points: {} partitions, not read yet", points.num_partitions());

// %%
for iteration in 1..=iterations {
    let started = std::time::Instant::now();
    let gradient = points
        .map(capture!([w] |point: (f64, [f64; D])| {
            let (y, x) = point;
            let dot: f64 = x.iter().zip(w.iter()).map(|(a, b)| a * b).sum();
            let scale = (1.0 / (1.0 + (-y * dot).exp()) - 1.0) * y;
            let mut g = [0.0f64; D];
            for (gi, xi) in g.iter_mut().zip(x.iter()) {
                *gi = xi * scale;
            }
            g
        }))
        .reduce(|mut a: [f64; D], b: [f64; D]| {
            for (ai, bi) in a.iter_mut().zip(b.iter()) {
                *ai += bi;
            }
            a
        });
    for (wi, gi) in w.iter_mut().zip(gradient.iter()) {
        *wi -= gi;
    }
    println!("iteration {iteration}: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
}
println!("w: {}", w.iter().map(|v| format!("{v:.9}")).collect::<Vec<_>>().join(" "));

// %%
// The cached points: partitions, bytes in executor memory, and where.
:storage
