//! The executors' table driven through real processes: launches checkpointed, adopted
//! executors watched and killed, kills that overtake launches, messages, library caches.

use super::*;
use crate::checkpoint::CheckpointedExecutor;
use std::collections::BTreeSet;
use std::path::Path;
use tessera_cluster_proto::master::CommandInfo;
use tokio::sync::mpsc::UnboundedReceiver;

fn setup() -> (
    tempfile::TempDir,
    Arc<Executors>,
    UnboundedReceiver<StatusUpdate>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (executors, _, rx) = Executors::for_tests(dir.path());
    (dir, executors, rx)
}

/// A process of its own group, not a child of the agent's tokio runtime: what an agent
/// restarted finds. Returns it (to reap) and its checkpoint entry.
fn orphan(
    dir: &Path,
    executor_id: &str,
    script: &str,
) -> (std::process::Child, CheckpointedExecutor) {
    use std::os::unix::process::CommandExt;
    let sandbox = dir.join("frameworks/F0/executors").join(executor_id);
    std::fs::create_dir_all(&sandbox).unwrap();
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .current_dir(&sandbox)
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let entry = CheckpointedExecutor {
        framework_id: "F0".into(),
        executor_id: executor_id.into(),
        pid,
        start_ticks: crate::processes::start_ticks(pid).unwrap(),
        cpus: 1.0,
        mem_mb: 64,
        ports: String::new(),
        sandbox: sandbox.display().to_string(),
        cgroup: String::new(),
        messages: 2,
    };
    (child, entry)
}

#[tokio::test]
async fn launches_are_checkpointed_with_their_process_and_ends_leave_the_checkpoint() {
    let (dir, ex, mut rx) = setup();
    ex.set_agent_id("S0");
    ex.launch(spec("cp", "while [ ! -e go ]; do sleep 0.02; done"))
        .unwrap();
    let saved = crate::checkpoint::load(dir.path())
        .unwrap()
        .expect("a checkpoint");
    assert_eq!(saved.agent_id, "S0");
    let [e] = &saved.executors[..] else {
        panic!("one executor: {saved:?}");
    };
    assert_eq!(
        (e.framework_id.as_str(), e.executor_id.as_str()),
        ("F0", "cp")
    );
    assert_eq!(e.sandbox, ex.sandbox("F0", "cp").display().to_string());
    assert_eq!(
        crate::recovery::liveness(
            &saved.boot_id,
            &crate::processes::boot_id(),
            e.pid,
            e.start_ticks
        ),
        crate::recovery::Liveness::Running
    );
    assert_eq!(saved.frameworks[0].principal, "alice");
    std::fs::write(ex.sandbox("F0", "cp").join("go"), "").unwrap();
    assert_eq!(
        run_to_end(&mut rx, "cp").await.last().unwrap().0,
        ExecutorState::Finished
    );
    let saved = crate::checkpoint::load(dir.path()).unwrap().unwrap();
    assert!(saved.executors.is_empty(), "{saved:?}");
}

#[tokio::test]
async fn adopted_executors_are_watched_killed_and_their_ends_reported() {
    let (dir, ex, mut rx) = setup();
    // One that ends by itself: its exit status cannot be known.
    let (mut quits, quits_entry) = orphan(
        dir.path(),
        "quits",
        "echo last words > stderr; while [ ! -e go ]; do sleep 0.02; done; exit 3",
    );
    ex.adopt("S0", &quits_entry, None);
    assert_eq!(ex.count(), 1);
    // Messages go on from the checkpointed number.
    let path = ex.deliver_message("F0", "quits", b"m").unwrap();
    assert!(path.ends_with("messages/0000000003"), "{}", path.display());
    std::fs::write(ex.sandbox("F0", "quits").join("go"), "").unwrap();
    let reaper = std::thread::spawn(move || quits.wait());
    let (state, message) = run_to_end(&mut rx, "quits").await.pop().unwrap();
    assert_eq!(state, ExecutorState::Failed);
    assert!(
        message.contains("its exit status is not known"),
        "{message}"
    );
    assert!(message.contains("last words"), "{message}");
    reaper.join().unwrap().unwrap();

    // One the framework kills, and one killed at adoption (past the recovery timeout).
    let (mut kept, kept_entry) = orphan(dir.path(), "kept", "exec sleep 30");
    let (mut late, late_entry) = orphan(dir.path(), "late", "exec sleep 30");
    ex.adopt("S0", &kept_entry, None);
    ex.adopt("S0", &late_entry, Some("away too long".into()));
    assert!(ex.kill_now("F0", "kept", "killed on request"));
    let reapers = [
        std::thread::spawn(move || kept.wait()),
        std::thread::spawn(move || late.wait()),
    ];
    // Their ends come in either order.
    let ends = ends_of(&mut rx, &["kept", "late"]).await;
    assert_eq!(
        ends["kept"],
        (ExecutorState::Killed, "killed on request".to_string())
    );
    assert_eq!(
        ends["late"],
        (ExecutorState::Lost, "away too long".to_string())
    );
    for r in reapers {
        r.join().unwrap().unwrap();
    }
    assert_eq!(ex.count(), 0);
}

fn spec(executor_id: &str, script: &str) -> LaunchSpec {
    LaunchSpec {
        agent_id: "S0".into(),
        framework_id: "F0".into(),
        executor_id: executor_id.into(),
        command: Some(CommandInfo {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: [("GREETING".to_string(), "hi".to_string())].into(),
        }),
        cpus: 1.0,
        mem_mb: 64,
        ports: String::new(),
        files_address: None,
        framework: Some(FrameworkInfo {
            id: "F0".into(),
            principal: "alice".into(),
            ..FrameworkInfo::default()
        }),
    }
}

/// Collects updates until `executor` reaches a terminal state.
async fn run_to_end(
    rx: &mut UnboundedReceiver<StatusUpdate>,
    executor: &str,
) -> Vec<(ExecutorState, String)> {
    let mut out = Vec::new();
    loop {
        let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("status update in time")
            .expect("channel open");
        if u.executor_id != executor {
            continue;
        }
        let state = ExecutorState::try_from(u.state).unwrap();
        let end = state.is_terminal();
        out.push((state, u.message));
        if end {
            return out;
        }
    }
}

/// The terminal update of each of `executors`, whatever order they come in.
async fn ends_of(
    rx: &mut UnboundedReceiver<StatusUpdate>,
    executors: &[&str],
) -> std::collections::HashMap<String, (ExecutorState, String)> {
    let mut ends = std::collections::HashMap::new();
    while ends.len() < executors.len() {
        let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("status update in time")
            .expect("channel open");
        let state = ExecutorState::try_from(u.state).unwrap();
        if executors.contains(&u.executor_id.as_str()) && state.is_terminal() {
            ends.insert(u.executor_id, (state, u.message));
        }
    }
    ends
}

fn states(updates: &[(ExecutorState, String)]) -> Vec<ExecutorState> {
    updates.iter().map(|(s, _)| *s).collect()
}

#[tokio::test]
async fn a_frameworks_shared_directories_go_once_none_of_its_executors_runs() {
    let (_dir, ex, mut rx) = setup();
    let cached = ex.library_cache("F0").join("lib.so");
    // What an executor keeps in host memory outlives it, in a directory of its own.
    let kept = ex
        .host_memory("F0")
        .unwrap()
        .join("e1")
        .join("rdd-1-0.block");
    ex.launch(spec(
        "e1",
        r#"mkdir -p "$TESSERA_LIBRARY_CACHE" "$TESSERA_MEMORY_DIR" &&
           echo block > "$TESSERA_MEMORY_DIR/rdd-1-0.block" &&
           echo code > "$TESSERA_LIBRARY_CACHE/lib.so" && sleep 1"#,
    ))
    .unwrap();
    for _ in 0..200 {
        if cached.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        cached.exists(),
        "the executor wrote to {}",
        cached.display()
    );
    assert!(kept.exists(), "the executor wrote to {}", kept.display());
    assert!(
        !ex.remove_framework_dirs_if_unused("F0"),
        "kept while an executor of its framework runs"
    );
    ex.launch(spec("e2", r#"test -f "$TESSERA_LIBRARY_CACHE/lib.so""#))
        .unwrap();
    let ends = ends_of(&mut rx, &["e1", "e2"]).await;
    assert_eq!(
        ends["e2"].0,
        ExecutorState::Finished,
        "the second executor finds what the first left: {}",
        ends["e2"].1
    );
    assert!(kept.exists(), "what e1 kept outlives it");
    assert!(ex.remove_framework_dirs_if_unused("F0"));
    assert!(!ex.library_cache("F0").exists());
    assert!(!ex.host_memory("F0").unwrap().exists());
    assert!(
        ex.sandbox("F0", "e1").exists(),
        "the sandboxes stay, with their logs"
    );
}

#[tokio::test]
async fn what_an_ended_executor_left_in_host_memory_goes_after_a_grace_while_others_run_on() {
    let (_dir, ex, _rx) = setup();
    let memory = ex.host_memory("F0").unwrap();
    for executor in ["lost", "replacement"] {
        std::fs::create_dir_all(memory.join(executor)).unwrap();
        std::fs::write(memory.join(executor).join("rdd-1-0-0.run"), b"records").unwrap();
    }
    ex.remove_host_memory_after("F0", "lost", Duration::from_millis(50));
    assert!(
        memory.join("lost").exists(),
        "kept for another executor to adopt"
    );
    for _ in 0..200 {
        if !memory.join("lost").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!memory.join("lost").exists(), "gone after the grace");
    assert!(memory.join("replacement").join("rdd-1-0-0.run").exists());
}

#[tokio::test]
async fn runs_in_its_sandbox_and_finishes() {
    let (_dir, ex, mut rx) = setup();
    ex.launch(spec("ok", "echo $GREETING $TESSERA_EXECUTOR_ID > out; pwd"))
        .unwrap();
    let updates = run_to_end(&mut rx, "ok").await;
    use ExecutorState::*;
    assert_eq!(states(&updates), [Starting, Running, Finished]);
    let sandbox = ex.sandbox("F0", "ok");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("out")).unwrap(),
        "hi ok\n"
    );
    let pwd = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(pwd.trim(), sandbox.display().to_string());
}

#[tokio::test]
async fn non_zero_exit_fails_with_status_and_stderr() {
    let (_dir, ex, mut rx) = setup();
    ex.launch(spec("bad", "echo first >&2; echo oops >&2; exit 3"))
        .unwrap();
    let updates = run_to_end(&mut rx, "bad").await;
    let (state, message) = updates.last().unwrap();
    assert_eq!(*state, ExecutorState::Failed);
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(message.contains("first\noops"), "{message}");
}

#[tokio::test]
async fn an_executor_past_its_memory_is_killed_and_fails_saying_so() {
    let (_dir, ex, mut rx) = setup();
    // 64 MiB given; the shell holds about 100 MB, then sleeps.
    ex.launch(spec(
        "hog",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 30",
    ))
    .unwrap();
    let updates = run_to_end(&mut rx, "hog").await;
    assert_eq!(
        updates.last().unwrap(),
        &(
            ExecutorState::Failed,
            "memory limit 64 MiB exceeded".to_string()
        )
    );
    assert_eq!(ex.count(), 0);
}

#[tokio::test]
async fn messages_appear_whole_and_in_order_in_the_sandbox() {
    let (_dir, ex, mut rx) = setup();
    assert!(matches!(
        ex.deliver_message("F0", "m", b"early"),
        Err(MessageError::NotRunning { .. })
    ));
    ex.launch(spec(
        "m",
        "while [ ! -e messages/0000000002 ]; do sleep 0.02; done; cat messages/* > got",
    ))
    .unwrap();
    // Wait until it runs.
    while ex.count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ex.deliver_message("F0", "m", b"one ").unwrap();
    let second = ex.deliver_message("F0", "m", b"two").unwrap();
    assert!(
        second.ends_with("messages/0000000002"),
        "{}",
        second.display()
    );
    let updates = run_to_end(&mut rx, "m").await;
    assert_eq!(updates.last().unwrap().0, ExecutorState::Finished);
    let got = std::fs::read_to_string(ex.sandbox("F0", "m").join("got")).unwrap();
    assert_eq!(got, "one two");
}

#[tokio::test]
async fn messages_sent_at_once_each_get_a_file_of_their_own() {
    let (_dir, ex, _rx) = setup();
    ex.launch(spec("many", "exec sleep 30")).unwrap();
    while ex.count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let senders: Vec<_> = (0..16)
        .map(|i| {
            let ex = ex.clone();
            std::thread::spawn(move || ex.deliver_message("F0", "many", &[i]).unwrap())
        })
        .collect();
    let paths: BTreeSet<PathBuf> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(paths.len(), 16);
    let mut bytes: Vec<u8> = paths.iter().map(|p| std::fs::read(p).unwrap()[0]).collect();
    bytes.sort();
    assert_eq!(bytes, (0..16).collect::<Vec<u8>>());
    assert!(ex.kill_now("F0", "many", "done"));
}

#[tokio::test]
async fn kill_now_does_not_wait_for_an_executor_that_ignores_sigterm() {
    let (_dir, ex, mut rx) = setup();
    ex.launch(spec(
        "stubborn",
        "trap '' TERM; while :; do sleep 0.05; done",
    ))
    .unwrap();
    while ex.count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    assert!(ex.kill_now("F0", "stubborn", "killed now"));
    let updates = run_to_end(&mut rx, "stubborn").await;
    assert_eq!(
        updates.last().unwrap(),
        &(ExecutorState::Killed, "killed now".to_string())
    );
    assert!(started.elapsed() < KILL_GRACE, "{:?}", started.elapsed());
}

#[tokio::test]
async fn killed_executor_and_its_children_are_gone() {
    let (_dir, ex, mut rx) = setup();
    ex.launch(spec("k", "sleep 30 & echo $! > child; wait"))
        .unwrap();
    let child_file = ex.sandbox("F0", "k").join("child");
    let mut child = None;
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(&child_file)
            && let Ok(pid) = t.trim().parse::<i32>()
        {
            child = Some(pid);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let child = child.expect("the script wrote its child's pid");
    assert!(ex.kill("F0", "k", "test kill"));
    let updates = run_to_end(&mut rx, "k").await;
    assert_eq!(
        updates.last().unwrap(),
        &(ExecutorState::Killed, "test kill".to_string())
    );
    // The background child was in the same process group.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Gone, or a zombie: `start_ticks` answers neither.
    let alive = crate::processes::start_ticks(child).is_some();
    assert!(!alive, "the executor's child survived the kill");
    assert_eq!(ex.count(), 0);
}

#[tokio::test]
async fn kills_and_shutdowns_that_overtake_the_launch_win() {
    let (_dir, ex, mut rx) = setup();
    assert!(!ex.kill("F0", "early", "test kill"));
    ex.launch(spec("early", "sleep 30")).unwrap();
    let updates = run_to_end(&mut rx, "early").await;
    assert_eq!(states(&updates), [ExecutorState::Killed]);
    // The early kill is used up: launching the id again works.
    ex.launch(spec("early", "exit 0")).unwrap();
    assert_eq!(
        run_to_end(&mut rx, "early").await.last().unwrap().0,
        ExecutorState::Finished
    );

    assert_eq!(ex.kill_framework("F0", "shutdown"), 0);
    ex.launch(spec("late", "sleep 30")).unwrap();
    assert_eq!(
        states(&run_to_end(&mut rx, "late").await),
        [ExecutorState::Killed]
    );
    assert_eq!(ex.count(), 0);
}

#[tokio::test]
async fn a_missing_program_fails_and_bad_ids_are_refused() {
    let (_dir, ex, mut rx) = setup();
    let mut s = spec("missing", "");
    s.command.as_mut().unwrap().program = "/nonexistent/program".into();
    ex.launch(s).unwrap();
    let updates = run_to_end(&mut rx, "missing").await;
    assert_eq!(updates.last().unwrap().0, ExecutorState::Failed);
    assert!(
        updates
            .last()
            .unwrap()
            .1
            .contains("cannot start `/nonexistent/program`")
    );
    for bad in ["", ".", "..", "a/b"] {
        let err = ex.launch(spec(bad, "true")).unwrap_err();
        assert!(matches!(err, LaunchError::BadId { .. }), "{err}");
    }
}
