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
// A fixed starting point, so that runs can be compared. An array, as each point's features are:
// its length is known where the closure is compiled, so the dot product is unrolled.
let mut w: [f64; D] = std::array::from_fn(|i| (i as f64 / D as f64) - 0.5);
println!("points: {} partitions, not read yet", points.num_partitions());

// %%
// Each iteration sums the gradient and the logistic loss (at the current w) in one job.
let mut losses: Vec<(usize, f64)> = Vec::new();
for iteration in 1..=iterations {
    let started = std::time::Instant::now();
    let (gradient, loss, count) = points
        .map(move |point: (f64, [f64; D])| {
            let (y, x) = point;
            let dot: f64 = x.iter().zip(w.iter()).map(|(a, b)| a * b).sum();
            let scale = (1.0 / (1.0 + (-y * dot).exp()) - 1.0) * y;
            let mut g = [0.0f64; D];
            for (gi, xi) in g.iter_mut().zip(x.iter()) {
                *gi = xi * scale;
            }
            // ln(1 + e^-m), without overflowing e^-m when the margin m is very negative.
            let margin = y * dot;
            let loss = (-margin).max(0.0) + (-margin.abs()).exp().ln_1p();
            (g, loss, 1u64)
        })
        .reduce(|mut a: ([f64; D], f64, u64), b: ([f64; D], f64, u64)| {
            for (ai, bi) in a.0.iter_mut().zip(b.0.iter()) {
                *ai += bi;
            }
            (a.0, a.1 + b.1, a.2 + b.2)
        });
    for (wi, gi) in w.iter_mut().zip(gradient.iter()) {
        *wi -= gi;
    }
    losses.push((iteration, loss / count as f64));
    println!(
        "iteration {iteration}: {:.1} ms, mean loss {:.6}",
        started.elapsed().as_secs_f64() * 1e3,
        loss / count as f64
    );
}
println!("w: {}", w.iter().map(|v| format!("{v:.9}")).collect::<Vec<_>>().join(" "));

// %%
// The loss by iteration (the first step, the whole summed gradient as in Spark's example,
// overshoots; later ones descend). A notebook shows the chart; a terminal prints the SVG file
// it wrote.
tessera::plot::line_xy(&losses)
    .title("logistic regression: mean loss by iteration")
    .x_label("iteration")
    .y_label("mean logistic loss")

// %%
// The cached points: partitions, bytes in executor memory, and where.
:storage
