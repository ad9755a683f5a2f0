// %% [markdown]
// k-means (Lloyd's algorithm) over points cached in executor memory: each iteration assigns
// every point to its closest centre and averages the points of each centre with a shuffle.
//
//     tessera run notebooks/kmeans.rs
//
// The points are `$TESSERA_EXAMPLE_INPUT` (default `notebooks/data/clusters.txt`): `X Y` a
// line. The first K points are the starting centres.

// %%
const K: usize = 3;
let path = std::env::var("TESSERA_EXAMPLE_INPUT").unwrap_or_else(|_| "notebooks/data/clusters.txt".to_string());
let iterations: usize = std::env::var("TESSERA_EXAMPLE_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
let points = sc
    .text_file(&path, 4)
    .map(|line: String| {
        let mut v = line.split(' ').map(|v| v.parse::<f64>().unwrap());
        (v.next().unwrap(), v.next().unwrap())
    })
    .cache();
let mut centres: Vec<(f64, f64)> = points.take(K);

// %%
for _ in 0..iterations {
    let sums = points
        .map(move |p: (f64, f64)| {
            let distance = |c: &(f64, f64)| (p.0 - c.0).powi(2) + (p.1 - c.1).powi(2);
            let closest = (0..centres.len())
                .min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b])))
                .unwrap();
            (closest, (p.0, p.1, 1u64))
        })
        .reduce_by_key(|a: (f64, f64, u64), b: (f64, f64, u64)| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
        .collect();
    for (i, (x, y, n)) in sums {
        centres[i] = (x / n as f64, y / n as f64);
    }
}
for (i, (x, y)) in centres.iter().enumerate() {
    println!("centre {i}: {x:.9} {y:.9}");
}

// %%
// The points coloured by the centre they are closest to, and the centres.
let assigned: Vec<(usize, (f64, f64))> = points
    .map(move |p: (f64, f64)| {
        let distance = |c: &(f64, f64)| (p.0 - c.0).powi(2) + (p.1 - c.1).powi(2);
        let closest = (0..centres.len())
            .min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b])))
            .unwrap();
        (closest, p)
    })
    .collect();
let mut clusters = tessera::plot::Plot::new().title("k-means clusters").x_label("x").y_label("y");
for k in 0..K {
    let members: Vec<(f64, f64)> = assigned.iter().filter(|(c, _)| *c == k).map(|(_, p)| *p).collect();
    clusters = clusters.scatter_series(Some(&format!("cluster {k}")), &members);
}
clusters.marker_series(Some("centres"), &centres)
