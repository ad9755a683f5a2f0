//! Closures capture as in Spark: a `move` closure passed to an RDD operation uses earlier
//! variables without `capture!`, the values travel to executor processes, and a variable that
//! cannot travel is a compile error that names it. Scripts run with `tessera run` on `local[2]`
//! (executors are separate processes there too); results are checked against values computed
//! here.

use tessera_e2e::{Scratch, tessera_run};

#[test]
fn move_closures_capture_earlier_variables_without_a_macro() {
    let dir = Scratch::new("auto-captures");
    let script = r#"
let k = 3u64;
let stop = vec!["the".to_string(), "a".to_string()];
let factor = 2.5f64;
let label = "n";
let weights: std::collections::HashMap<String, u64> = [("cat".to_string(), 4u64)].into_iter().collect();
// %%
let nums = sc.parallelize((1..=30u64).collect::<Vec<_>>(), 3);
println!("{}", nums.filter(move |x| x % k == 0).count());
// %%
let words = sc.parallelize(vec!["the".to_string(), "cat".to_string(), "a".to_string(), "dog".to_string()], 2);
let kept = words.filter(move |w| !stop.contains(w)).map(move |w| w.len() as f64 * factor).collect();
println!("{kept:?} {}", stop.len());
// %%
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Range { low: u64, high: u64 }
let range = Range { low: 5, high: 20 };
let named = nums.filter(move |x| *x >= range.low && *x <= range.high).map(move |x| format!("{label}{x}")).take(2);
println!("{named:?}");
// %%
let total = sc.accumulator::<u64>();
let first = sc.broadcast(vec![100u64]);
nums.foreach(move |x| total.add(x + first.value()[0]));
let weighted = words.map(move |w| *weights.get(&w).unwrap_or(&1)).collect();
println!("{} {weighted:?}", total.value());
// %%
let mut per_k = Vec::new();
for k in 2..=4u64 {
    let cutoff = 10u64;
    per_k.push(nums.filter(move |x| x % k == 0 && *x > cutoff).count());
}
println!("{per_k:?}");
// %%
k + range.high
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let nums: Vec<u64> = (1..=30).collect();
    let per_k: Vec<usize> = (2..=4)
        .map(|k| nums.iter().filter(|x| *x % k == 0 && **x > 10).count())
        .collect();
    assert_eq!(
        run.lines(),
        vec![
            nums.iter().filter(|x| *x % 3 == 0).count().to_string(),
            format!("{:?} 2", [7.5f64, 7.5]),
            format!("{:?}", ["n5", "n6"]),
            format!(
                "{} {:?}",
                nums.iter().map(|x| x + 100).sum::<u64>(),
                [1u64, 4, 1, 1]
            ),
            format!("{per_k:?}"),
            // The captured variables are still the session's.
            "23".to_string(),
        ]
    );
}

#[test]
fn a_capture_that_cannot_be_sent_is_a_compile_error_naming_it_and_the_fix() {
    let dir = Scratch::new("auto-capture-error");
    let script = r#"
let nums = sc.parallelize(vec![1u64, 2, 3], 2).cache();
println!("{}", nums.count());
// %%
let counter = std::rc::Rc::new(5u64);
// A closure that stays in the cell may capture it.
let local: Vec<u64> = (1..3u64).map(move |x| x * *counter).collect();
println!("{local:?}");
// %%
let shared = std::rc::Rc::new(5u64);

nums.map(move |x| x + *shared).count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    assert!(!run.success, "{}", run.stderr);
    assert_eq!(run.lines(), vec!["3".to_string(), "[5, 10]".to_string()]);
    for expected in [
        "error in cell 3",
        "the closure on line 3 runs on executors but captures `shared` (a `Rc<u64>`)",
        "Serialize and Deserialize",
        "#[derive(Serialize, Deserialize)]",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(
        !run.stderr.contains("__tessera"),
        "the rewrite stays out of sight:\n{}",
        run.stderr
    );
}

#[test]
fn a_capture_neither_copy_nor_clone_that_cannot_travel_is_named_with_what_to_do() {
    let dir = Scratch::new("auto-capture-uncopied");
    let script = r#"
let nums = sc.parallelize(vec![1u64, 2, 3], 2).cache();
println!("{}", nums.count());
// %%
let guarded = std::sync::Mutex::new(7u64);
nums.map(move |x| x + *guarded.lock().unwrap()).count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    assert!(!run.success, "{}", run.stderr);
    assert_eq!(run.lines(), vec!["3".to_string()]);
    for expected in [
        "error in cell 2",
        // The API's own error, which the session recognises (its `UNSENDABLE_CAPTURES`)...
        "that Tessera cannot send to executors",
        // ...and what the session adds: which capture, of what type, and what to do.
        "the closure on line 2 captures `guarded` (a `",
        "Mutex<u64>`), which is neither Copy nor Clone",
        "make the value inside the closure",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
}

#[test]
fn closures_the_rewrite_does_not_fit_run_as_written_and_expand_shows_the_rewrite() {
    let dir = Scratch::new("auto-capture-fallback");
    let script = r#"
// A body that mutates its capture, and a capture that is not Clone: Rust's own `move`.
{
    let mut sum = 0u64;
    let mut add = move |x: u64| { sum += x; sum };
    add(2);
    println!("{}", add(3));
}
let guarded = std::sync::Mutex::new(7u64);
let read = std::thread::spawn(move || *guarded.lock().unwrap()).join().unwrap();
println!("{read}");
// %%
let k = 4u64;
// %%
:expand sc.parallelize(vec![1u64], 1).map(move |x| x * k)
// %%
let nums = sc.parallelize(vec![1u64, 2], 1);
// %%
// Still the explicit form.
println!("{:?}", nums.map(capture!([k] move |x: u64| x + k)).collect());
"#;
    let run = tessera_run(&dir.0, script, "local[1]", &[]);
    run.expect_success();
    let lines = run.lines();
    assert_eq!(lines[..2], ["5".to_string(), "7".to_string()]);
    assert!(
        lines[2].contains("sc.parallelize(vec![1u64], 1).map({ ")
            && lines[2].contains("Probe(&k)")
            && lines[2].contains("move |x| { ")
            && lines[2].contains("x * (*::tessera::__private::auto::Slot::place("),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "[5, 6]");
}

#[test]
fn a_map_and_the_reduce_after_it_on_an_rdd_variable_give_what_they_give_apart() {
    let dir = Scratch::new("fused-map-reduce");
    // Each chain runs fused (the session's rewrite, shown by `:expand`) or, where the rewrite
    // cannot be sure, as written; the answers are the same either way.
    let script = r#"
let nums = sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4);
let points = sc.parallelize((0..500).map(|i| (i as f64 / 10.0, [1.0f64, i as f64])).collect::<Vec<_>>(), 3).cache();
let k = 3u64;
// %%
:expand nums.map(move |x| x * k).reduce(|a, b| a + b)
// %%
let tripled = nums.map(move |x| x * k).reduce(|a, b| a + b);
// A reduce closure that captures: run as a map, then a reduce.
let capped = nums.map(|x| x % 97).reduce(move |a, b| a.max(b).min(90 + k));
let mut w = [0.5f64, -0.25];
for _ in 0..3 {
    let (g, n) = points
        .map(move |(y, x): (f64, [f64; 2])| {
            let dot = x[0] * w[0] + x[1] * w[1];
            ([x[0] * (dot - y), x[1] * (dot - y)], 1u64)
        })
        .reduce(|a, b| ([a.0[0] + b.0[0], a.0[1] + b.0[1]], a.1 + b.1));
    w = [w[0] - 1e-6 * g[0] / n as f64, w[1] - 1e-6 * g[1] / n as f64];
}
// On a chain of RDD methods itself.
let halves = nums.filter(|x| x % 2 == 0).map(|x| x / 2).reduce(|a, b| a + b);
println!("{tripled} {capped} {:.9} {:.9} {halves}", w[0], w[1]);
// %%
:expand let squares = sc.parallelize(vec![2u64], 1).map(|x| x * x).cache(); squares.map(|x| x + 1).reduce(|a, b| a + b)
// %%
// An RDD the cell itself makes, as a script without cells does.
let squares = sc.parallelize((1..=100u64).collect::<Vec<_>>(), 3).map(|x| x * x).cache();
let plus_one = squares.map(|x| x + 1).reduce(|a, b| a + b);
println!("{plus_one}");
// %%
// Bound again in the cell: an iterator's map and reduce, left alone.
let nums = (1..=4u64).into_iter();
println!("{}", nums.map(|x| x * 2).reduce(|a, b| a + b).unwrap());
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let lines = run.lines();
    assert!(
        lines[0].starts_with("nums.map_reduce({ ") && lines[0].ends_with(",|a, b| a + b)"),
        "{}",
        lines[0]
    );
    let mut w = [0.5f64, -0.25];
    for _ in 0..3 {
        let (g, n) = (0..500)
            .map(|i| (i as f64 / 10.0, [1.0f64, i as f64]))
            .map(|(y, x)| {
                let dot = x[0] * w[0] + x[1] * w[1];
                ([x[0] * (dot - y), x[1] * (dot - y)], 1u64)
            })
            .fold(([0.0, 0.0], 0u64), |a, b| {
                ([a.0[0] + b.0[0], a.0[1] + b.0[1]], a.1 + b.1)
            });
        w = [w[0] - 1e-6 * g[0] / n as f64, w[1] - 1e-6 * g[1] / n as f64];
    }
    assert!(
        lines[2].contains("squares.map_reduce(|x| x + 1,|a, b| a + b)"),
        "{}",
        lines[2]
    );
    assert_eq!(
        [lines[1], lines[3], lines[4]],
        [
            format!(
                "{} {} {:.9} {:.9} {}",
                (1..=1000u64).map(|x| x * 3).sum::<u64>(),
                93,
                w[0],
                w[1],
                (1..=500u64).sum::<u64>()
            ),
            (1..=100u64).map(|x| x * x + 1).sum::<u64>().to_string(),
            "20".to_string(),
        ]
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
}
