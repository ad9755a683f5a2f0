//! `tessera-bench`: measures the interactive path under a master URL (default
//! `local-cluster[2,2,1024]`) and prints a table of medians, each beside its baseline or goal:
//!
//! * the time from starting `tessera` to its prompt, and to the result of a first cell typed
//!   at once (the session starts behind the prompt; goal for both: 3 s once the first build is
//!   done);
//! * the round trip of a trivial cell (goal: 150 ms);
//! * `count()` of 1,000,000 integers in 8 partitions, first (computed, then cached) and again
//!   (served from executor memory), and their ratio;
//! * a job over one cached partition, whose executor's idle slots help with it
//!   (`runtime/executor/src/morsels.rs`), against the same job over the records in two
//!   partitions (what a Spark user does to use two cores): near 1 when help works, near 2
//!   without it;
//! * the same for a job that reads and parses a text file in one split, against the file in
//!   two splits (every session's first job over a file reads it so).
//!
//! Run it as `target/release/tessera-bench [MASTER] [TRIALS]` after
//! `cargo build --release --workspace --bins`. The same measures against evcxr's own REPL and
//! kernel, installed and timed in the same run, are `bench/interactive.py`'s.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_session::{Session, SessionConfig, parse_master_url};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// How long a person waits after starting `tessera`: until its prompt, and until the answer
/// to a first trivial cell typed at once (which waits for the session to start).
struct Startup {
    to_prompt: Duration,
    to_first_result: Duration,
}

fn startup_time(master: &str) -> anyhow::Result<Startup> {
    let exe = tessera_session::bin_dir().join("tessera");
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args(["--master", master])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut to_prompt = None;
    for line in stderr.by_ref() {
        if line?.starts_with(READY_BANNER_START) {
            to_prompt = Some(started.elapsed());
            break;
        }
    }
    let to_prompt = to_prompt.context("tessera exited before its prompt")?;
    // Keep reading: `tessera` must not find its stderr closed.
    std::thread::spawn(move || stderr.for_each(drop));
    let mut stdin = child.stdin.take().expect("piped");
    // A cell no session compiled before: compiled cells are kept per user.
    let n = fresh_number();
    writeln!(stdin, "({n} + 42) - {n}")?;
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines() {
        if line?.trim_end().ends_with("42") {
            let to_first_result = started.elapsed();
            drop(stdin);
            let _ = child.wait();
            return Ok(Startup {
                to_prompt,
                to_first_result,
            });
        }
    }
    bail!("tessera exited before answering its first cell")
}

/// The start of the line `tessera` prints just before its first prompt.
const READY_BANNER_START: &str = "Tessera: `sc` is your Context";

fn run(session: &mut Session, code: &str) -> anyhow::Result<String> {
    match session.execute(code) {
        Ok(out) => Ok(out.text().unwrap_or("").to_string()),
        Err(e) => bail!("cell `{code}` failed: {e}"),
    }
}

fn timed(session: &mut Session, code: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    run(session, code)?;
    Ok(started.elapsed())
}

fn main() -> anyhow::Result<()> {
    tessera_session::child_process_hook();
    let args: Vec<String> = std::env::args().collect();
    let master = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "local-cluster[2,2,1024]".into());
    let trials: usize = args.get(2).map(|t| t.parse()).transpose()?.unwrap_or(7);

    // Warm the build cache so that start-up is measured as a person sees it after the first time.
    let _ = startup_time(&master)?;
    let startups: Vec<Startup> = (0..trials.min(5))
        .map(|_| startup_time(&master))
        .collect::<Result<_, _>>()?;
    let to_prompt = median(startups.iter().map(|s| s.to_prompt).collect());
    let to_first_result = median(startups.iter().map(|s| s.to_first_result).collect());

    let config = SessionConfig::new(parse_master_url(&master)?);
    let mut session = Session::start(config, Arc::new(|_, _| {}))?;
    run(
        &mut session,
        "let data: Vec<i64> = (0..1_000_000).collect();",
    )?;
    // Each a cell no session compiled before, as compiled cells are kept per user.
    let trivial: Vec<Duration> = (0..trials)
        .map(|_| {
            let n = fresh_number();
            timed(&mut session, &format!("({n} + 1) - {n}"))
        })
        .collect::<Result<_, _>>()?;

    // Jobs are timed inside one cell each, so that compiling the cell is not counted.
    let mut first = Vec::new();
    let mut cached = Vec::new();
    for trial in 0..trials {
        let name = format!("r{trial}");
        run(
            &mut session,
            &format!("let {name} = sc.parallelize(data.clone(), 8).cache();"),
        )?;
        let seconds = run(
            &mut session,
            &format!(
                "format!(\"{{:?}}\", (0..4).map(|_| {{ let t = std::time::Instant::now(); {name}.count(); t.elapsed().as_secs_f64() }}).collect::<Vec<f64>>())"
            ),
        )?;
        // A list of numbers shows as a table: the cell gives its text instead.
        let seconds: Vec<f64> = seconds
            .trim_matches(|c| c == '"' || c == '[' || c == ']')
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("unexpected cell output {seconds:?}"))?;
        first.push(Duration::from_secs_f64(seconds[0]));
        cached.extend(seconds[1..].iter().map(|&s| Duration::from_secs_f64(s)));
        run(&mut session, &format!("{name}.unpersist();"))?;
    }
    run(
        &mut session,
        "fn spin(x: i64) -> i64 { (0..50u64).fold(x as u64, |h, i| (h ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23)) as i64 }",
    )?;
    let (one, two) = one_partition_against_two(&mut session, trials)?;
    let (one_split, two_splits) = one_split_against_two(&mut session, trials)?;
    let (trivial, first, cached) = (median(trivial), median(first), median(cached));
    println!("Tessera interactive path under {master} (medians of {trials} trials)\n");
    println!("| measure | median | baseline or goal | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| start-up to prompt | {} | goal 3000 ms | {:.2} |",
        ms(to_prompt),
        to_prompt.as_secs_f64() / 3.0
    );
    println!(
        "| start-up to the result of a first cell typed at once | {} | goal 3000 ms | {:.2} |",
        ms(to_first_result),
        to_first_result.as_secs_f64() / 3.0
    );
    println!(
        "| trivial cell round trip | {} | goal 150 ms | {:.2} |",
        ms(trivial),
        trivial.as_secs_f64() / 0.15
    );
    println!(
        "| first count, 1M ints / 8 partitions (computes, caches) | {} | | |",
        ms(first)
    );
    println!(
        "| count on cache | {} | first count {} | {:.2}x faster |",
        ms(cached),
        ms(first),
        first.as_secs_f64() / cached.as_secs_f64()
    );
    println!(
        "| a job over one cached partition (idle slots help) | {} | the same over two partitions {} | {:.2}x its time |",
        ms(one),
        ms(two),
        one.as_secs_f64() / two.as_secs_f64()
    );
    println!(
        "| a job reading a text file in one split (idle slots help) | {} | the same in two splits {} | {:.2}x its time |",
        ms(one_split),
        ms(two_splits),
        one_split.as_secs_f64() / two_splits.as_secs_f64()
    );
    Ok(())
}

/// The median time of a job over the 1,000,000 integers cached in one partition and over the
/// same cached in two, each job some work on every record, the two taking turns; the answers
/// must agree.
fn one_partition_against_two(
    session: &mut Session,
    trials: usize,
) -> anyhow::Result<(Duration, Duration)> {
    run(
        session,
        "let one = sc.parallelize(data.clone(), 1).cache(); let two = sc.parallelize(data.clone(), 2).cache(); (one.count(), two.count())",
    )?;
    let times = one_against_two(session, trials, |name| {
        format!("{name}.map(|x: i64| spin(x)).reduce(|a: i64, b: i64| a ^ b)")
    })?;
    run(session, "one.unpersist(); two.unpersist();")?;
    Ok(times)
}

/// The median time of a job that reads the 1,000,000 integers from a text file in one split
/// and of the same job over the file in two splits, each parsing every line and doing the same
/// work on it, the two taking turns; the answers must agree. Nothing is cached: each job reads
/// and parses its splits anew, as every session's first job over a file does.
fn one_split_against_two(
    session: &mut Session,
    trials: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let splits = run(
        session,
        "let numbers_txt = std::env::temp_dir().join(format!(\"tessera-bench-{}.txt\", std::process::id())); std::fs::write(&numbers_txt, data.iter().map(|x| format!(\"{x}\\n\")).collect::<String>()).unwrap(); let path = numbers_txt.to_string_lossy().into_owned(); let one = sc.text_file(&path, 1); let two = sc.text_file(&path, 2); (one.num_partitions(), two.num_partitions())",
    )?;
    if splits.trim() != "(1, 2)" {
        bail!("the file was read in {splits} splits, not (1, 2)");
    }
    let times = one_against_two(session, trials, |name| {
        format!(
            "{name}.map(|line: String| spin(line.parse::<i64>().unwrap())).reduce(|a: i64, b: i64| a ^ b)"
        )
    })?;
    run(session, "std::fs::remove_file(&numbers_txt).unwrap();")?;
    Ok(times)
}

/// The median times of `job` over the RDDs `one` and `two`, taking turns; their answers must
/// agree.
fn one_against_two(
    session: &mut Session,
    trials: usize,
    job: impl Fn(&str) -> String,
) -> anyhow::Result<(Duration, Duration)> {
    let timed_job = |name: &str| {
        format!(
            "{{ let t = std::time::Instant::now(); let h = {}; (t.elapsed().as_secs_f64(), h) }}",
            job(name)
        )
    };
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let mut answers = Vec::new();
        for (name, times) in [("one", &mut one), ("two", &mut two)] {
            let out = run(session, &timed_job(name))?;
            let (seconds, answer) = out
                .trim_matches(|c| c == '(' || c == ')')
                .split_once(',')
                .with_context(|| format!("unexpected cell output {out:?}"))?;
            times.push(Duration::from_secs_f64(seconds.trim().parse()?));
            answers.push(answer.trim().to_string());
        }
        if answers[0] != answers[1] {
            bail!(
                "one partition gave {} and two gave {}",
                answers[0],
                answers[1]
            );
        }
    }
    Ok((median(one), median(two)))
}

/// A number no earlier run used, for cells that must be compiled, not found compiled.
fn fresh_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64 % 1_000_000_000)
        .unwrap_or(0);
    base + NEXT.fetch_add(1, Ordering::SeqCst)
}
