//! The DAG and task schedulers driven against fake executors: retries, cache misses, failed
//! fetches, lost executors, cancellation and stage resubmission, each as a user would see it —
//! the job's answer or its error — and by the tasks the executors received.

use crate::dag::MAX_STAGE_ATTEMPTS;
use crate::error::DriverError;
use crate::fake_executor::{FakeCluster, Received, Scripted};
use crate::jobs::JobState;
use crate::lazy_inputs;
use crate::remote_executor::Notice;
use crate::scheduler::MAX_TASK_ATTEMPTS;
use crate::speculation::Speculation;
use crate::state::DriverState;
use crate::test_lineage;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tessera_plan::{RddId, ShuffleId, StorageLevel, TaskAction};

/// A driver with fake executors of two slots each, and no locality wait.
fn session(executors: &[&str]) -> (Arc<DriverState>, FakeCluster) {
    session_with(executors, None)
}

/// As [`session`], with speculation as `speculation` says.
fn session_with(
    executors: &[&str],
    speculation: Option<Speculation>,
) -> (Arc<DriverState>, FakeCluster) {
    let mut state = DriverState::new(
        &std::env::temp_dir().join("tessera-scheduling-tests"),
        "the executor logs".into(),
    )
    .unwrap();
    state.locality_wait = Duration::ZERO;
    state.speculation = speculation;
    let state = Arc::new(state);
    let cluster = FakeCluster::default();
    for id in executors {
        state.executors.add(cluster.executor(id, 2));
    }
    (state, cluster)
}

fn parallelize(state: &DriverState, partitions: u8) -> RddId {
    test_lineage::parallelize(&state.lineage, partitions)
}

fn map(state: &DriverState, parent: RddId) -> RddId {
    test_lineage::map(&state.lineage, parent)
}

fn shuffle(state: &DriverState, parent: RddId, partitions: u32) -> ShuffleId {
    test_lineage::shuffle(&state.lineage, parent, partitions)
}

/// Counts `rdd` as a cell does; the fakes answer each partition with `rdd/partition`.
async fn count(state: &Arc<DriverState>, rdd: RddId) -> Result<Vec<String>, DriverError> {
    let results =
        lazy_inputs::run_job(state.clone(), rdd, TaskAction::Count, None, "count".into()).await?;
    Ok(results
        .into_iter()
        .map(|r| String::from_utf8(r).unwrap())
        .collect())
}

fn answers(rdd: RddId, partitions: u32) -> Vec<String> {
    (0..partitions).map(|p| format!("{rdd}/{p}")).collect()
}

/// The map tasks of `shuffle` in `received`, as (executor, map partition).
fn map_tasks(received: &[Received], shuffle: ShuffleId) -> Vec<(String, u32)> {
    received
        .iter()
        .filter(|r| r.writes == Some(shuffle))
        .map(|r| (r.executor.clone(), r.partition))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test]
async fn a_job_runs_its_map_stage_first_and_later_jobs_reuse_the_map_outputs() {
    let (state, cluster) = session(&["a", "b"]);
    let words = parallelize(&state, 4);
    let counts = shuffle(&state, words, 3);
    assert_eq!(count(&state, counts).await.unwrap(), answers(counts, 3));
    let received = cluster.received();
    assert_eq!(received.len(), 7);
    assert!(received[..4].iter().all(|r| r.writes == Some(counts)));
    assert!(received[4..].iter().all(|r| r.writes.is_none()));
    let job = &state.jobs.list()[0];
    assert_eq!((job.stages, job.stages_planned), (2, 2));

    // The second job finds every map output and runs its result stage only.
    assert_eq!(count(&state, counts).await.unwrap(), answers(counts, 3));
    assert_eq!(cluster.received().len(), 10);
    assert_eq!(state.jobs.list()[1].stages, 1);
}

#[tokio::test]
async fn a_failing_task_is_retried_and_fails_its_job_after_four_attempts() {
    let (state, cluster) = session(&["a", "b"]);
    let numbers = map(&state, parallelize(&state, 3));
    // Partition 2 fails twice, then succeeds: the job succeeds.
    let failures = Arc::new(AtomicU32::new(0));
    let seen = failures.clone();
    cluster.script(move |task| {
        (task.partition == 2 && seen.fetch_add(1, Ordering::SeqCst) < 2)
            .then(|| Scripted::Fail("flaky".into()))
    });
    assert_eq!(count(&state, numbers).await.unwrap(), answers(numbers, 3));
    assert_eq!(failures.load(Ordering::SeqCst), 3);

    // Partition 1 always fails: the job fails, naming it and the last executor's message.
    cluster.script(|task| (task.partition == 1).then(|| Scripted::Fail("boom".into())));
    let error = count(&state, numbers).await.unwrap_err();
    let DriverError::JobFailed { job: 1, cause } = &error else {
        panic!("{error}");
    };
    assert!(
        matches!(**cause, DriverError::TaskFailed { partition: 1, attempts: MAX_TASK_ATTEMPTS, ref message, .. } if message == "boom"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("Job 1 failed: task for partition 1 failed 4 times"),
        "{error}"
    );
    let job_received = |p| {
        cluster
            .received()
            .iter()
            .filter(|r| r.job_id == 1 && r.partition == p)
            .count()
    };
    assert_eq!(job_received(1), 4);
    assert!(matches!(state.jobs.list()[1].state, JobState::Failed(_)));
    let failed = state
        .failed_job
        .lock()
        .take()
        .expect("the failed job is on record");
    assert_eq!(failed.message, error.to_string());
    assert!(!failed.cancelled);
}

#[tokio::test]
async fn a_cache_miss_sends_the_task_again_with_its_source() {
    let (state, cluster) = session(&["a"]);
    let cached = map(&state, parallelize(&state, 2));
    state
        .lineage
        .set_persist(cached, Some(StorageLevel::MemoryOnly))
        .unwrap();
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 2));
    // Cached: the next tasks go without their source.
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 2));
    let sent = |job| {
        cluster
            .received()
            .iter()
            .filter(|r| r.job_id == job)
            .map(|r| r.with_source)
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(1), [false, false]);

    // The blocks went without the driver hearing of it: each task misses and goes again whole.
    cluster.evict_all("a");
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 2));
    assert_eq!(sorted(sent(2)), [false, false, true, true]);
    assert!(state.jobs.list()[2].state == JobState::Succeeded);
}

#[tokio::test]
async fn a_partition_cached_with_two_copies_is_read_from_the_copy_when_its_executor_dies() {
    for (level, recomputed_after_loss) in [
        (StorageLevel::MemoryOnly2, false),
        (StorageLevel::MemoryOnly, true),
    ] {
        let (state, cluster) = session(&["a", "b"]);
        let cached = map(&state, parallelize(&state, 4));
        state.lineage.set_persist(cached, Some(level)).unwrap();
        assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
        let holders = |p| state.blocks.locations(cached, p).len();
        let copies = level.replication();
        assert!((0..4).all(|p| holders(p) == copies), "{level}");

        cluster.kill("b");
        assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
        let again = cluster.received_in(1);
        assert!(again.iter().all(|r| r.executor == "a"));
        // With two copies, every partition is read from `a`'s cache: no task needs its source.
        assert_eq!(
            again.iter().any(|r| r.with_source),
            recomputed_after_loss,
            "{level}: {again:?}"
        );
        assert_eq!(again.len(), 4, "no cache miss: {again:?}");
    }
}

/// Caches 4 partitions at `MEMORY_ONLY` with a first count: the RDD, and the partitions
/// `executor` alone holds (some).
async fn cache_four_partitions(state: &Arc<DriverState>, executor: &str) -> (RddId, Vec<u32>) {
    let cached = map(state, parallelize(state, 4));
    state
        .lineage
        .set_persist(cached, Some(StorageLevel::MemoryOnly))
        .unwrap();
    assert_eq!(count(state, cached).await.unwrap(), answers(cached, 4));
    let held: Vec<u32> = (0..4)
        .filter(|&p| state.blocks.locations(cached, p) == [executor])
        .collect();
    assert!(!held.is_empty(), "{executor} cached some partitions");
    (cached, held)
}

#[tokio::test]
async fn partitions_a_lost_executor_kept_in_host_memory_are_read_where_they_were_adopted() {
    // `b`, on h1, is lost; `a` shares its host in the first round, not in the second.
    for (a_host, adopted) in [("h1", true), ("h2", false)] {
        let (state, cluster) = session(&[]);
        state
            .executors
            .add(cluster.executor_with_host_memory("a", 2, a_host));
        state
            .executors
            .add(cluster.executor_with_host_memory("b", 2, "h1"));
        let (cached, on_b) = cache_four_partitions(&state, "b").await;

        cluster.kill("b");
        assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
        let again = cluster.received_in(1);
        // A task that finds `b` gone is tried again on `a`: without its source if `a` adopted
        // the partition, with it (computed again from lineage) if not.
        let computed_again: Vec<u32> = again
            .iter()
            .filter(|r| r.with_source)
            .map(|r| r.partition)
            .collect();
        if adopted {
            assert!(computed_again.is_empty(), "{again:?}");
        } else {
            assert_eq!(sorted(computed_again), on_b, "{again:?}");
        }
        for p in 0..4 {
            assert_eq!(state.blocks.locations(cached, p), ["a"], "partition {p}");
        }
    }
}

#[tokio::test]
async fn the_replacement_of_an_executor_alone_on_its_host_adopts_what_it_left_before_any_task() {
    let (state, cluster) = session(&[]);
    state
        .executors
        .add(cluster.executor_with_host_memory("a", 2, "h1"));
    state.executors.add(cluster.executor("b", 2));
    let (cached, on_a) = cache_four_partitions(&state, "a").await;

    // Between jobs, `a` dies and the driver hears of it (from the master): nobody else runs
    // on h1, so what it left waits there. Its replacement registers on h1.
    cluster.kill("a");
    state.lose_executor("a").await;
    for p in &on_a {
        assert!(state.blocks.locations(cached, *p).is_empty());
    }
    state
        .welcome_executor(cluster.executor_with_host_memory("a2", 2, "h1"))
        .await;
    for p in &on_a {
        assert_eq!(state.blocks.locations(cached, *p), ["a2"], "partition {p}");
    }
    // The next job reads every partition from a cache: none needs its source.
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
    let again = cluster.received_in(1);
    assert!(again.iter().all(|r| !r.with_source), "{again:?}");
    // A later executor on h1 finds nothing left to adopt.
    state
        .welcome_executor(cluster.executor_with_host_memory("a3", 2, "h1"))
        .await;
    assert!(state.blocks.held_by("a3").is_empty());
}

#[tokio::test]
async fn a_task_lost_while_caching_carries_on_where_its_partial_partition_was_adopted() {
    let (mut state, cluster) = session(&[]);
    // Delay scheduling on, as by default: the task waits for the executor holding its part.
    Arc::get_mut(&mut state).unwrap().locality_wait = Duration::from_secs(5);
    for (id, host) in [("a", "h1"), ("b", "h2"), ("c", "h1")] {
        state
            .executors
            .add(cluster.executor_with_host_memory(id, 1, host));
    }
    let cached = map(&state, parallelize(&state, 3));
    state
        .lineage
        .set_persist(cached, Some(StorageLevel::MemoryOnly))
        .unwrap();
    // `a` dies partway through the first partition it caches; `c`, on its host, adopts the
    // part, but is busy a while with its own; `b`, elsewhere, comes first otherwise.
    cluster.script(|r| match r.executor.as_str() {
        "a" => Some(Scripted::Die),
        "c" => Some(Scripted::Slow(Duration::from_millis(200))),
        _ => None,
    });
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 3));
    let received = cluster.received_in(0);
    let lost = received
        .iter()
        .find(|r| r.executor == "a")
        .expect("a got a task")
        .partition;
    assert_eq!(
        cluster.carried_on(),
        [("c".to_string(), cached, lost)],
        "{received:?}"
    );
    assert_eq!(state.blocks.locations(cached, lost), ["c"]);
    assert_eq!(state.blocks.partial_holder(cached, lost), None);
}

#[tokio::test]
async fn an_executor_lost_before_it_joined_is_lost_once_a_task_finds_it_gone() {
    // The master reports `x` lost while it is still being welcomed (adopting), before it
    // joined the live executors; it joins dead.
    let (state, cluster) = session(&["a"]);
    let x = cluster.executor("x", 2);
    cluster.kill("x");
    state.lose_executor("x").await;
    state.executors.add(x);
    let rdd = map(&state, parallelize(&state, 4));
    assert_eq!(count(&state, rdd).await.unwrap(), answers(rdd, 4));
    assert!(
        state.executors.get("x").is_none(),
        "x is gone from the books"
    );
}

#[tokio::test]
async fn copies_lost_with_an_executor_are_made_again_on_the_one_that_replaces_it() {
    let (mut state, cluster) = session(&["a", "b"]);
    Arc::get_mut(&mut state).unwrap().proactive_replication = true;
    let cached = map(&state, parallelize(&state, 4));
    state
        .lineage
        .set_persist(cached, Some(StorageLevel::MemoryOnly2))
        .unwrap();
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
    cluster.kill("b");
    state.executors.add(cluster.executor("c", 2));
    // The job after the loss starts the copies from `a` to `c` beside it.
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
    let holders = |p| sorted(state.blocks.locations(cached, p));
    for _ in 0..100 {
        if (0..4).all(|p| holders(p).len() == 2) {
            break;
        }
        tokio::task::yield_now().await;
    }
    for p in 0..4 {
        assert_eq!(holders(p), ["a", "c"], "partition {p}");
    }
    // The next job reads from both, no task recomputing its partition.
    let before = cluster.received().len();
    assert_eq!(count(&state, cached).await.unwrap(), answers(cached, 4));
    let now = &cluster.received()[before..];
    assert!(now.iter().all(|r| !r.with_source), "{now:?}");
    assert!(now.iter().any(|r| r.executor == "c"), "{now:?}");
}

#[tokio::test]
async fn a_failed_fetch_recomputes_the_lost_map_outputs_then_runs_the_task_again() {
    let (state, cluster) = session(&["a", "b"]);
    let counts = shuffle(&state, parallelize(&state, 4), 2);
    assert_eq!(count(&state, counts).await.unwrap(), answers(counts, 2));
    let on_b: Vec<u32> = map_tasks(&cluster.received(), counts)
        .into_iter()
        .filter(|(e, _)| e == "b")
        .map(|(_, p)| p)
        .collect();
    assert!(!on_b.is_empty(), "tasks spread over both executors");

    // `b` loses its shuffle files but keeps running: only its map partitions run again.
    cluster.lose_outputs("b");
    let before = cluster.received().len();
    assert_eq!(count(&state, counts).await.unwrap(), answers(counts, 2));
    let again: Vec<u32> = map_tasks(&cluster.received()[before..], counts)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(sorted(again), sorted(on_b));
    let job = &state.jobs.list()[1];
    assert_eq!(job.stages, 2, "the map stage was resubmitted");
    assert_eq!(job.state, JobState::Succeeded);
}

#[tokio::test]
async fn an_executor_that_dies_is_dropped_and_its_work_done_again_elsewhere() {
    let (state, cluster) = session(&["a", "b"]);
    let first = shuffle(&state, parallelize(&state, 4), 2);
    let second = shuffle(&state, map(&state, first), 2);
    assert_eq!(count(&state, second).await.unwrap(), answers(second, 2));
    let held_by_b = |shuffle| -> Vec<u32> {
        map_tasks(&cluster.received(), shuffle)
            .into_iter()
            .filter(|(e, _)| e == "b")
            .map(|(_, p)| p)
            .collect()
    };
    let (first_on_b, second_on_b) = (held_by_b(first), held_by_b(second));

    // `b` dies between jobs: both shuffles' outputs on it are recomputed, on `a`, the first's
    // before the second's map tasks that read it.
    cluster.kill("b");
    let before = cluster.received().len();
    assert_eq!(count(&state, second).await.unwrap(), answers(second, 2));
    let now = &cluster.received()[before..];
    let on_a = |shuffle| -> Vec<u32> {
        map_tasks(now, shuffle)
            .into_iter()
            .filter(|(e, _)| e == "a")
            .map(|(_, p)| p)
            .collect()
    };
    assert_eq!(sorted(on_a(first)), sorted(first_on_b));
    assert_eq!(sorted(on_a(second)), sorted(second_on_b));
    let ids: Vec<String> = state.executors.list().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["a"]);
    assert!(!state.map_outputs.holds_any("b"));

    // An executor that dies under a task: the task runs again on the other.
    let (state, cluster) = session(&["a", "b"]);
    let numbers = map(&state, parallelize(&state, 4));
    cluster.script(|task| (task.executor == "b").then_some(Scripted::Die));
    assert_eq!(count(&state, numbers).await.unwrap(), answers(numbers, 4));
    assert_eq!(state.executors.list().len(), 1);
}

#[tokio::test]
async fn a_cancelled_job_ends_at_once_and_every_executor_is_told() {
    let (state, cluster) = session(&["a", "b"]);
    let numbers = map(&state, parallelize(&state, 4));
    cluster.script(|_| Some(Scripted::Hang));
    let job = tokio::spawn({
        let state = state.clone();
        async move { count(&state, numbers).await }
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        while cluster.received().len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every task reaches an executor");
    assert_eq!(state.jobs.cancel_all(), 1);
    let error = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the job ends when cancelled")
        .unwrap()
        .unwrap_err();
    assert_eq!(error.to_string(), "Job 0 was cancelled");
    assert_eq!(
        sorted(cluster.notices()),
        [
            ("a".to_string(), Notice::CancelJob(0)),
            ("b".to_string(), Notice::CancelJob(0))
        ]
    );
    assert_eq!(state.jobs.list()[0].state, JobState::Cancelled);
    assert!(state.failed_job.lock().take().unwrap().cancelled);
    // Every slot was given back: the next job runs.
    cluster.script(|_| None);
    assert_eq!(count(&state, numbers).await.unwrap(), answers(numbers, 4));
}

#[tokio::test]
async fn map_outputs_that_never_arrive_fail_the_job_after_four_stage_attempts() {
    let (state, cluster) = session(&["a", "b"]);
    let counts = shuffle(&state, parallelize(&state, 2), 2);
    cluster.script(|task| (task.writes.is_none()).then_some(Scripted::FailFetch));
    let error = count(&state, counts).await.unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "could not fetch the output of shuffle {counts} {MAX_STAGE_ATTEMPTS} times"
        )),
        "{error}"
    );
    // The map stage ran at first and once after each of the first three failed rounds, for
    // the outputs of the executor that could not be reached.
    let map_rounds = map_tasks(&cluster.received(), counts).len();
    assert!((2 + 3..=2 + 3 * 2).contains(&map_rounds), "{map_rounds}");
}

#[tokio::test]
async fn what_no_root_reaches_is_dropped_and_computed_again_if_used_after_all() {
    let (state, cluster) = session(&["a", "b"]);
    let first = shuffle(&state, parallelize(&state, 2), 2);
    let cached = map(&state, parallelize(&state, 2));
    state
        .lineage
        .set_persist(cached, Some(StorageLevel::MemoryOnly))
        .unwrap();
    let second = shuffle(&state, parallelize(&state, 2), 2);
    for rdd in [first, cached, second] {
        count(&state, rdd).await.unwrap();
    }
    // Only `second` is held: the other shuffle's outputs and the cached partitions go.
    let gone = state.drop_unreachable(&[second]).await;
    assert_eq!((gone.shuffles, gone.persisted), (vec![first], vec![cached]));
    let mut notices = cluster.notices();
    notices.sort();
    assert_eq!(
        notices,
        [
            ("a".to_string(), Notice::DropRdd(cached)),
            ("a".to_string(), Notice::DropShuffle(first)),
            ("b".to_string(), Notice::DropRdd(cached)),
            ("b".to_string(), Notice::DropShuffle(first)),
        ]
    );
    assert!(state.blocks.cached_partitions(cached).is_empty());
    // Nothing more to drop, and `second` still reads its outputs without a map task.
    assert_eq!(
        state.drop_unreachable(&[second]).await,
        crate::cleaner::Unreachable::default()
    );
    let before = cluster.received().len();
    assert_eq!(count(&state, second).await.unwrap(), answers(second, 2));
    assert!(map_tasks(&cluster.received()[before..], second).is_empty());
    // A handle the session could not see uses `first` after all: its map stage runs again.
    assert_eq!(count(&state, first).await.unwrap(), answers(first, 2));
    assert_eq!(map_tasks(&cluster.received()[before..], first).len(), 2);
}

#[tokio::test]
async fn a_broadcast_side_no_root_reaches_is_released_and_collected_again_if_used_after_all() {
    use tessera_plan::builtin::{BroadcastJoinParams, Builtin};
    use tessera_plan::frame::{DataType, Field, JoinKind, JoinOn, Schema};
    let (state, cluster) = session(&["a", "b"]);
    let schema = Schema {
        fields: vec![Field {
            name: "id".into(),
            dtype: DataType::Int64,
        }],
    };
    let small = parallelize(&state, 2);
    state.frames.insert(small, schema.clone());
    let empty_side = tessera_frame::ipc::empty(&schema).unwrap();
    let broadcast = state
        .shared_values
        .broadcast(empty_side.clone(), "the small side of q".into());
    let large = parallelize(&state, 2);
    let params = BroadcastJoinParams {
        on: JoinOn {
            left_on: vec!["id".into()],
            right_on: vec!["id".into()],
            how: JoinKind::Inner,
        },
        broadcast,
        small_side: small,
        broadcast_right: true,
        partition_schema: schema.clone(),
        before: None,
    };
    let join = test_lineage::define(
        &state.lineage,
        tessera_plan::RddKind::Narrow {
            parent: large,
            op: Builtin::BroadcastJoin.with_params(&params),
            preserves_partitioning: false,
        },
    );
    assert_eq!(count(&state, join).await.unwrap(), answers(join, 2));
    // The join is held: its side stays.
    assert!(state.drop_unreachable(&[join]).await.broadcasts.is_empty());
    // Only the large side is held: the side goes, from the driver and from every executor.
    let gone = state.drop_unreachable(&[large]).await;
    assert_eq!(gone.broadcasts, [broadcast]);
    assert_eq!(state.shared_values.broadcast_value(broadcast), None);
    let dropped: Vec<_> = cluster
        .notices()
        .into_iter()
        .filter(|(_, n)| *n == Notice::DropBroadcast(broadcast))
        .map(|(executor, _)| executor)
        .collect();
    assert_eq!(dropped, ["a", "b"]);
    assert!(state.shared_values.held().is_empty());
    assert!(state.drop_unreachable(&[large]).await.broadcasts.is_empty());

    // A handle the session could not see uses the join after all: its small side is
    // collected again, by a job of its own, before the join's tasks run.
    cluster.script(move |task| (task.rdd == small).then(|| Scripted::Answer(empty_side.clone())));
    let before = cluster.received().len();
    assert_eq!(count(&state, join).await.unwrap(), answers(join, 2));
    let side_tasks = cluster.received()[before..]
        .iter()
        .filter(|t| t.rdd == small)
        .count();
    assert_eq!(side_tasks, 2);
    let restored = state.shared_values.broadcast_value(broadcast).unwrap();
    let side = tessera_frame::ipc::decode(&restored, "the side").unwrap();
    assert_eq!(side.get_column_names(), ["id"]);
    assert!(!state.shared_values.any_released());
}

/// Copies once half the stage's tasks finished, for a task past twice their median and 20 ms.
fn speculating() -> Option<Speculation> {
    Some(Speculation {
        quantile: 0.5,
        multiplier: 2.0,
        min_runtime: Duration::from_millis(20),
    })
}

/// The executors that received the task of `partition`, in order.
fn ran_on(cluster: &FakeCluster, partition: u32) -> Vec<String> {
    cluster
        .received()
        .into_iter()
        .filter(|t| t.partition == partition)
        .map(|t| t.executor)
        .collect()
}

#[tokio::test]
async fn with_speculation_a_task_stuck_on_its_executor_runs_again_on_another_and_the_job_ends() {
    let (state, cluster) = session_with(&["a", "b"], speculating());
    let rdd = parallelize(&state, 4);
    // The first attempt of partition 3 never answers, as on an executor that was killed and
    // whose connections have not closed yet.
    let stuck = std::sync::atomic::AtomicBool::new(false);
    cluster.script(move |task| {
        (task.partition == 3 && !stuck.swap(true, Ordering::SeqCst)).then_some(Scripted::Hang)
    });
    let answered = tokio::time::timeout(Duration::from_secs(20), count(&state, rdd))
        .await
        .expect("the job ends without the stuck attempt")
        .unwrap();
    assert_eq!(answered, answers(rdd, 4));
    let executors = ran_on(&cluster, 3);
    assert_eq!(executors.len(), 2, "{executors:?}");
    assert_ne!(
        executors[0], executors[1],
        "the copy runs on another executor"
    );
}

#[tokio::test]
async fn a_copied_task_counts_its_accumulator_updates_once() {
    let (state, cluster) = session_with(&["a", "b"], speculating());
    let accumulator = state.shared_values.accumulator();
    cluster.add_partitions_to(accumulator);
    let rdd = parallelize(&state, 4);
    // Partition 3's first attempt answers after 60 ms, long after its copy did, while the
    // stage still runs (every attempt of partition 0 takes 200 ms): it must not count again.
    let slow = std::sync::atomic::AtomicBool::new(false);
    cluster.script(move |task| match task.partition {
        0 => Some(Scripted::Slow(Duration::from_millis(200))),
        3 if !slow.swap(true, Ordering::SeqCst) => Some(Scripted::Slow(Duration::from_millis(60))),
        _ => None,
    });
    assert_eq!(count(&state, rdd).await.unwrap(), answers(rdd, 4));
    assert_eq!(ran_on(&cluster, 3).len(), 2);
    let mut partials: Vec<u32> = state
        .shared_values
        .partials(accumulator)
        .unwrap()
        .into_iter()
        .map(|bytes| u32::from_le_bytes(bytes.try_into().unwrap()))
        .collect();
    partials.sort_unstable();
    assert_eq!(partials, [0, 1, 2, 3]);
}

#[tokio::test]
async fn without_speculation_a_slow_task_is_waited_for_and_not_copied() {
    let (state, cluster) = session(&["a", "b"]);
    let rdd = parallelize(&state, 4);
    cluster
        .script(|task| (task.partition == 3).then_some(Scripted::Slow(Duration::from_millis(100))));
    assert_eq!(count(&state, rdd).await.unwrap(), answers(rdd, 4));
    for partition in 0..4 {
        assert_eq!(ran_on(&cluster, partition).len(), 1);
    }
}

#[tokio::test]
async fn every_task_is_sent_ahead_to_wait_for_a_core_shuffle_readers_too() {
    let (state, cluster) = session(&["a"]);
    let words = parallelize(&state, 6);
    let counts = shuffle(&state, words, 6);
    // Every task takes 500 ms; the executor has two cores.
    cluster.script(|_| Some(Scripted::Slow(Duration::from_millis(500))));
    let job = tokio::spawn({
        let state = state.clone();
        async move { count(&state, counts).await }
    });
    // What the executor holds once the driver has sent all it will before a task ends.
    let settled = |reached: fn(&[Received]) -> bool| {
        let cluster = cluster.clone();
        async move {
            while !reached(&cluster.received()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            cluster.received()
        }
    };
    // The map tasks: two for the cores, two more sent ahead, which wait for a core there as
    // others would here: the session wants more executors.
    assert_eq!(settled(|r| r.len() >= 2).await.len(), 4);
    assert!(state.executors_wanted.load(Ordering::SeqCst));
    // Past the map stage (two waves), the reduce tasks, which fetch map outputs, are sent
    // ahead as well: two for the cores and two to wait (an executor fetches a task's input
    // only once a core is free for it).
    let received = settled(|r| r.iter().any(|t| t.writes.is_none())).await;
    assert_eq!(map_tasks(&received, counts).len(), 6);
    assert_eq!(received.len(), 10, "{received:?}");
    assert_eq!(job.await.unwrap().unwrap(), answers(counts, 6));
}
