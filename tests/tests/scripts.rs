//! `tessera run` end to end: the evcxr child, the driver, executors acquired locally or through
//! offers from a real master and agents, compiled cell code loaded by executors, cached
//! partitions kept in executor memory. Results are checked against values computed here.

use std::collections::BTreeSet;
use tessera_e2e::{RunOutput, Scratch, log_file, tessera_run};

const CACHE_SCRIPT: &str = r#"
let lines = sc.text_file("app.log", 4);
let errors = lines.filter(|l: &String| l.starts_with("ERROR")).cache();
// %%
errors.count()
// %%
errors.count()
// %%
let numbers = errors.map(|l: String| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap());
let mut all = numbers.collect();
all.sort();
all.len()
// %%
all.iter().sum::<u64>()
"#;

fn expected_cache_results() -> Vec<String> {
    let errors: Vec<u64> = (1..=1000).filter(|i| i % 10 == 0).collect();
    vec![
        errors.len().to_string(),
        errors.len().to_string(),
        errors.len().to_string(),
        errors.iter().sum::<u64>().to_string(),
    ]
}

/// Runs the caching script under `master` and checks its results.
fn run_cache_script(name: &str, master: &str) -> RunOutput {
    let dir = Scratch::new(name);
    dir.write("app.log", &log_file());
    let run = tessera_run(&dir.0, CACHE_SCRIPT, master, &[]);
    run.expect_success();
    assert_eq!(
        run.lines(),
        expected_cache_results(),
        "stderr:\n{}",
        run.stderr
    );
    run
}

#[test]
fn cached_rdd_on_local_cluster_is_counted_from_executor_memory() {
    let run = run_cache_script("local-cluster", "local-cluster[2,2,1024]");

    // The first count computed every partition; the second found all of them cached.
    let first = run.job(0);
    let second = run.job(1);
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|t| t.origin == "computed"), "{first:?}");
    assert_eq!(second.len(), 4);
    assert!(
        second.iter().all(|t| t.origin.starts_with("cached:")),
        "{second:?}"
    );
    // Reading the file, every task ran on the file's host (all agents are on this one); on
    // the cached RDD, each ran in the executor caching its partition.
    assert!(
        first.iter().all(|t| t.locality == "NODE_LOCAL"),
        "{first:?}"
    );
    assert!(
        second.iter().all(|t| t.locality == "PROCESS_LOCAL"),
        "{second:?}"
    );

    // Tasks ran in two executor processes, launched by two agents through offers.
    let pids: BTreeSet<u64> = run.tasks.iter().map(|t| t.pid).collect();
    let executors: BTreeSet<&str> = run.tasks.iter().map(|t| t.executor.as_str()).collect();
    assert_eq!(pids.len(), 2, "{:?}", run.tasks);
    assert_eq!(executors.len(), 2, "{executors:?}");
    assert!(
        executors.iter().all(|e| e.starts_with("exec-")),
        "executors named by agent: {executors:?}"
    );
}

#[test]
fn the_same_script_gives_the_same_results_on_the_local_default() {
    let run = run_cache_script("local", "local[2]");
    assert!(
        run.job(1).iter().all(|t| t.origin.starts_with("cached:")),
        "{:?}",
        run.job(1)
    );
}

#[test]
fn closures_capture_values_from_earlier_cells() {
    let dir = Scratch::new("captures");
    let script = r#"
let keep: Vec<String> = vec!["apple".to_string(), "cherry".to_string()];
let factor: f64 = 2.5;
// %%
let fruit = sc.parallelize(vec!["apple".to_string(), "banana".to_string(), "cherry".to_string(), "apple".to_string()], 3);
let kept = fruit.filter(capture!([keep] move |f: &String| keep.contains(f)));
kept.count()
// %%
let scaled = sc.parallelize((1..=6).collect::<Vec<i64>>(), 2).map(capture!([factor] |x: i64| x as f64 * factor));
println!("{:?}", scaled.collect());
// %%
factor
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let scaled: Vec<f64> = (1..=6).map(|x| x as f64 * 2.5).collect();
    assert_eq!(
        run.lines(),
        vec!["3".to_string(), format!("{scaled:?}"), "2.5".to_string()]
    );
}

#[test]
fn capturing_a_value_that_cannot_be_serialized_is_an_error_naming_it() {
    let dir = Scratch::new("unserializable");
    let script = r#"
let counter = std::rc::Rc::new(5u32);
let numbers = sc.parallelize(vec![1u32, 2, 3], 1);
numbers.map(capture!([counter] |x: u32| x + *counter)).count()
"#;
    let run = tessera_run(&dir.0, script, "local[1]", &[]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("cannot be captured by a closure that runs on executors"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("counter"),
        "the error names the variable:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("error in cell 1"), "{}", run.stderr);
}

#[test]
fn a_panicking_closure_fails_its_job_and_keeps_the_cache() {
    let dir = Scratch::new("panic");
    let script = r#"
let cached = sc.parallelize((1..=100).collect::<Vec<i64>>(), 4).cache();
cached.count()
// %%
cached.map(|x: i64| if x == 50 { panic!("bad record {x}") } else { x }).count()
// %%
cached.count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &["--keep-going"]);
    assert!(!run.success, "a failed cell makes the run fail");
    assert!(
        run.stderr.contains("closure panicked: bad record 50"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("error in cell 2"), "{}", run.stderr);
    // The task panics on every attempt: the job fails after the fourth, as Spark's does.
    assert!(
        run.stderr.contains("task for partition 1 failed 4 times"),
        "{}",
        run.stderr
    );
    assert_eq!(run.lines(), vec!["100", "100"]);
    let last = run.job(2);
    assert_eq!(last.len(), 4);
    assert!(
        last.iter().all(|t| t.origin.starts_with("cached:")),
        "the cache survived: {last:?}"
    );
}

/// Asserts that a run's errors hold the panic of the scripts below, whose closures parse a
/// field with `expect("a number")`, and the line where it happened.
fn assert_parse_panic_at(stderr: &str, place: &str) {
    assert!(
        stderr.contains("closure panicked: a number: ParseIntError"),
        "{stderr}"
    );
    assert!(stderr.contains(place), "{place}\nnot in:\n{stderr}");
}

#[test]
fn a_closure_that_panics_on_a_line_of_a_file_names_the_file_the_line_and_the_record() {
    let dir = Scratch::new("bad-line");
    // Line 3217 of 5000 has a field that is not a number, and is longer than what is shown.
    let bad_line = format!("3217,not a number {}", "z".repeat(300));
    let text: String = (1..=5000u64)
        .map(|i| match i {
            3217 => format!("{bad_line}\n"),
            _ => format!("{i},{}\n", i * 2),
        })
        .collect();
    let path = dir.write("numbers.csv", &text);
    // The cell that fails reads the file through filter, flat_map and map; the one before
    // caches an RDD of the good lines, which must still be there after.
    let script = r#"
let lines = sc.text_file("numbers.csv", 3);
let good = lines.filter(|l: &String| !l.contains("not")).cache();
good.count()
// %%
lines.filter(|l: &String| !l.is_empty())
    .flat_map(|l: String| l.split(',').map(|f| f.to_string()).collect::<Vec<String>>())
    .map(|f: String| f.parse::<u64>().expect("a number"))
    .count()
// %%
good.count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &["--keep-going"]);
    assert!(!run.success, "a failed cell makes the run fail");
    let shown: String = bad_line.chars().take(200).collect();
    let place = format!(
        "while processing line 3217 of {}: \"{shown}…\"",
        path.display()
    );
    assert_parse_panic_at(&run.stderr, &place);
    assert!(run.stderr.contains("error in cell 2"), "{}", run.stderr);
    assert_eq!(run.lines(), vec!["4999", "4999"], "{}", run.stderr);
    assert!(
        run.job(2).iter().all(|t| t.origin.starts_with("cached:")),
        "the cache survived: {:?}",
        run.job(2)
    );
}

#[test]
fn a_panic_on_a_line_of_coalesced_files_names_the_file_and_the_line() {
    let dir = Scratch::new("bad-line-coalesced");
    // Two files, each in two splits, coalesced into one partition: the task concatenates four
    // chains, and the bad line is in the second file.
    let numbers = |from: u64, bad: Option<u64>| -> String {
        (from..from + 2000)
            .map(|i| match bad {
                Some(b) if b == i => format!("{i},oops\n"),
                _ => format!("{i},{}\n", i * 2),
            })
            .collect()
    };
    dir.write("a.csv", &numbers(0, None));
    let second = dir.write("b.csv", &numbers(2000, Some(3500)));
    let script = r#"
sc.text_file("*.csv", 4).coalesce(1)
    .map(|l: String| l.split(',').nth(1).unwrap().parse::<u64>().expect("a number"))
    .count()
"#;
    let run = tessera_run(&dir.0, script, "local[1]", &["--keep-going"]);
    assert!(!run.success, "a failed cell makes the run fail");
    let place = format!(
        "while processing line 1501 of {}: \"3500,oops\"",
        second.display()
    );
    assert_parse_panic_at(&run.stderr, &place);
}

#[test]
fn a_panic_in_a_map_fused_with_its_reduce_names_the_line() {
    let dir = Scratch::new("bad-line-fused");
    let text: String = (1..=3000u64)
        .map(|i| match i {
            1234 => "1234,twelve\n".to_string(),
            _ => format!("{i},{}\n", i * 2),
        })
        .collect();
    let path = dir.write("numbers.csv", &text);
    // On a variable of an earlier cell, the session runs `map` and `reduce` as one action
    // (`:expand` shows it): the search for the line runs that action again.
    let script = r#"
let lines = sc.text_file("numbers.csv", 3);
// %%
:expand lines.map(|l: String| l.len() as u64).reduce(|a: u64, b: u64| a + b)
// %%
lines.map(|l: String| l.split(',').nth(1).unwrap().parse::<u64>().expect("a number"))
    .reduce(|a: u64, b: u64| a + b)
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &["--keep-going"]);
    assert!(!run.success, "a failed cell makes the run fail");
    assert!(
        run.stdout
            .contains("lines.map_reduce(|l: String| l.len() as u64,|a: u64, b: u64| a + b)"),
        "{}",
        run.stdout
    );
    let place = format!(
        "while processing line 1234 of {}: \"1234,twelve\"",
        path.display()
    );
    assert_parse_panic_at(&run.stderr, &place);
}

#[test]
fn a_panic_on_a_record_not_read_from_a_file_names_no_line() {
    let dir = Scratch::new("bad-record-no-file");
    dir.write("words.txt", "a\nb\nb\nc\n");
    // Records shipped from the session, and records of the file that a shuffle moved: neither
    // is a line the task read.
    let script = r#"
sc.parallelize(vec![1u32, 2, 3], 1).map(|x: u32| if x == 2 { panic!("two") } else { x }).count()
// %%
sc.text_file("words.txt", 1).map(|w: String| (w, 1u32)).reduce_by_key(|a: u32, b: u32| a + b)
    .map(|(w, n): (String, u32)| if n == 2 { panic!("twice: {w}") } else { n }).count()
"#;
    let run = tessera_run(&dir.0, script, "local[1]", &["--keep-going"]);
    assert!(
        run.stderr.contains("closure panicked: two"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("closure panicked: twice: b"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("while processing line"),
        "records not read from a file in the task name no line:\n{}",
        run.stderr
    );
}

#[test]
fn a_colon_cell_in_a_script_runs_the_repl_command() {
    let dir = Scratch::new("script-commands");
    dir.write("app.log", &log_file());
    let script = r#"
let errors = sc.text_file("app.log", 4).filter(|l: &String| l.starts_with("ERROR")).cache();
errors.count()
// %%
:storage
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    // The table of cached RDDs: the filtered RDD, its level, all 4 partitions cached.
    let row = run
        .lines()
        .into_iter()
        .find(|l| l.contains("MEMORY_ONLY"))
        .unwrap_or_else(|| panic!("no storage row in:\n{}", run.stdout))
        .to_string();
    assert!(row.contains("4/4") && row.contains("filter"), "{row}");
}

#[test]
fn a_trailing_let_without_a_semicolon_runs_as_in_a_repl() {
    let dir = Scratch::new("trailing-let");
    let script = r#"
let numbers = sc.parallelize((1..=10u64).collect::<Vec<_>>(), 2)
// %%
let total = numbers.reduce(|a: u64, b: u64| a + b) // the sum
// %%
total * 2
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    assert_eq!(run.lines(), vec!["110"], "{}", run.stderr);
}

#[test]
fn display_shows_values_before_the_cell_ends_and_a_terminal_prints_their_text() {
    let dir = Scratch::new("display");
    let script = r#"
display(&vec![1, 2, 3]);
display_html("<b>bold</b>");
sc.display_data(&[("image/svg+xml", "<svg/>")]);
clear_output();
"done"
"#;
    let run = tessera_run(&dir.0, script, "local[1]", &[]);
    run.expect_success();
    assert_eq!(
        run.lines(),
        vec![
            "[",
            "1,",
            "2,",
            "3,",
            "]",
            "<b>bold</b>",
            "(image/svg+xml output, shown in notebooks)",
            "\"done\""
        ],
        "{}",
        run.stderr
    );
}

#[test]
fn input_reads_a_line_of_standard_input_and_its_end_is_an_error_saying_so() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = Scratch::new("input");
    let script = r#"
let name = input("name? ");
let times: u64 = input("times? ").parse().unwrap();
println!("hello {name}, {}", sc.parallelize(vec![1u64; 4], 2).map(move |x| x * times).reduce(|a, b| a + b));
// %%
input("more? ")
"#;
    std::fs::write(dir.0.join("script.rs"), script).unwrap();
    let mut child = Command::new(tessera_e2e::bin("tessera"))
        .current_dir(&dir.0)
        .args(["--master", "local[1]", "run", "script.rs"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera runs");
    // Two answers, then the end of the input.
    child.stdin.take().unwrap().write_all(b"Ada\n3\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the third input() fails");
    assert!(
        stdout.contains("name? times? hello Ada, 12"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("more? "), "{stdout}");
    assert!(
        stderr.contains("error in cell 2") && stderr.contains("reached the end of the input"),
        "{stderr}"
    );
}

#[test]
fn logs_redirected_to_a_file_are_plain_text() {
    // A user keeps a run's log: `RUST_LOG=info tessera run script.rs 2> run.log`. Its lines
    // then carry no terminal colour codes.
    let dir = Scratch::new("plain-logs");
    let script = dir.write(
        "script.rs",
        "println!(\"{}\", sc.parallelize(vec![1u64, 2, 3], 2).count());\n",
    );
    let log = std::fs::File::create(dir.0.join("run.log")).unwrap();
    let output = std::process::Command::new(tessera_e2e::bin("tessera"))
        .current_dir(&dir.0)
        .args(["--master", "local-cluster[1,1,512]", "run"])
        .arg(&script)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(log)
        .output()
        .expect("tessera runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap();
    assert!(output.status.success(), "{stdout}\n{log}");
    assert!(stdout.contains('3'), "{stdout}");
    assert!(
        log.contains("the driver listens for its executors") && log.contains("INFO"),
        "the log has the session's lines: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes in the log: {log:?}"
    );
}
