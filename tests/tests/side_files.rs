//! Data a session brings to its executors: files sent with `sc.add_file` and read on executors
//! through `tessera::files::get`, as Spark's `addFile` and `SparkFiles.get`; and a `text_file`
//! that an executor's host cannot read, which fails naming that host and loses nothing cached;
//! and where a local executor keeps what it receives, and what a session's directory keeps
//! after it ends.

use tessera_e2e::{Scratch, tessera_run};

#[test]
fn an_added_file_is_read_by_code_on_executors_and_replaced_when_added_again() {
    let dir = Scratch::new("add-file");
    std::fs::create_dir_all(dir.0.join("data")).unwrap();
    dir.write("data/levels.txt", "ERROR 3\nWARN 2\nINFO 1\n");
    let script = r#"
fn weight(level: &str) -> u64 {
    let table = std::fs::read_to_string(tessera::files::get("levels.txt")).unwrap();
    table.lines().find_map(|l| l.strip_prefix(level)?.trim().parse().ok()).unwrap_or(0)
}
sc.add_file("data/levels.txt");
let levels = sc.parallelize(vec!["ERROR", "INFO", "WARN", "ERROR"].into_iter().map(String::from).collect::<Vec<_>>(), 4);
println!("{:?}", levels.map(|l: String| weight(&l)).collect());
// %%
weight("WARN")
// %%
std::fs::write("data/levels.txt", "ERROR 30\nWARN 20\nINFO 10\n").unwrap();
sc.add_file("data/levels.txt");
println!("{:?}", levels.map(|l: String| weight(&l)).collect());
// %%
sc.add_file("data/missing.txt");
// %%
levels.map(|l: String| std::fs::read_to_string(tessera::files::get("other.txt")).unwrap().len()).count()
"#;
    let run = tessera_run(&dir.0, script, "local-cluster[2,1,512]", &["--keep-going"]);
    // Executors of two agents read the file; the session's cells too; an edited file added
    // again reaches them with their next task.
    assert_eq!(
        run.lines()[..3],
        ["[3, 1, 2, 3]", "2", "[30, 10, 20, 30]"],
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let executors: std::collections::BTreeSet<u64> = run.job(0).iter().map(|t| t.pid).collect();
    assert_eq!(executors.len(), 2, "{:?}", run.tasks);
    // A file that is not there, and a name that was never added: errors that name them.
    assert!(
        run.stderr.contains("cannot add data/missing.txt")
            && run.stderr.contains("pass the path of a readable file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("no file \"other.txt\" was added to this session"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_text_file_an_executor_cannot_read_fails_naming_its_host_and_keeps_the_cache() {
    let dir = Scratch::new("unreadable");
    dir.write("kept.log", "a\nb\nc\n");
    dir.write("gone.log", "x\ny\n");
    let script = r#"
let kept = sc.text_file("kept.log", 2).cache();
kept.count()
// %%
let gone = sc.text_file("gone.log", 2);
std::fs::remove_file("gone.log").unwrap();
gone.count()
// %%
kept.count()
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &["--keep-going"]);
    assert!(!run.success);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        run.stderr.contains("gone.log")
            && run.stderr.contains(&format!("on host {}", host.trim()))
            && run.stderr.contains("shared file system"),
        "{}",
        run.stderr
    );
    assert_eq!(run.lines(), ["3", "3"]);
    assert!(
        run.job(2).iter().all(|t| t.origin.starts_with("cached:")),
        "{:?}",
        run.job(2)
    );
}

#[test]
fn a_local_executors_files_are_in_the_sessions_directory_and_go_with_the_session() {
    // There, an executor killed before its files could be removed (with its session, say)
    // leaves nothing in the temporary directory: the session's directory is swept once it has
    // long ended. A session that ends removes them itself (they were a few megabytes of
    // fetched libraries each) and keeps the executor's log.
    let dir = Scratch::new("local-executor-files");
    let script = r#"
let dirs = sc.parallelize(vec![1u8], 1).map(|_| std::env::var("TESSERA_FILES_DIR").unwrap());
for dir in dirs.collect() { println!("{dir}"); }
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    let line = run.lines().first().cloned().unwrap_or_default();
    assert!(
        line.contains("/tessera/sessions/") && line.contains("/executor-local-0/"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let files = std::path::Path::new(&line);
    let work_dir = files
        .parent()
        .expect("the files are in the executor's directory");
    assert!(
        !work_dir.exists(),
        "{} is left after the session",
        work_dir.display()
    );
    let session_dir = work_dir.parent().expect("in the session's directory");
    assert!(
        session_dir.join("executor-local-0.log").is_file(),
        "the executor's log is kept"
    );
}

#[test]
fn a_session_on_a_cluster_leaves_no_directory_of_its_own_behind() {
    // Its executors keep their files and logs in their agents' sandboxes, so the session's own
    // directory holds nothing once it ends, and goes with it (each session had left one).
    let dir = Scratch::new("cluster-session-dir");
    let script = r#"
println!("{}", std::env::var("TESSERA_FILES_DIR").unwrap());
println!("records: {}", sc.parallelize(vec![1u8, 2, 3], 2).count());
"#;
    let run = tessera_run(&dir.0, script, "local-cluster[1,1,512]", &[]);
    let lines = run.lines();
    assert!(
        lines.contains(&"records: 3"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let files = std::path::Path::new(lines[0]);
    let session_dir = files
        .parent()
        .expect("the side files are in the session's directory");
    assert!(
        session_dir
            .parent()
            .is_some_and(|p| p.ends_with("tessera/sessions")),
        "{}",
        files.display()
    );
    assert!(
        !session_dir.exists(),
        "{} is left after the session",
        session_dir.display()
    );
}
