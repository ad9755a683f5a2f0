//! The executor's task slots: a thread of its own for each slot, started with the executor and
//! kept for its life.
//!
//! Tasks used to run on tokio's blocking pool, on whichever of its threads was idle (a new one
//! when none was). Jobs on cached data are waves of tasks of a millisecond or two, and with a
//! thread per slot instead an LR iteration's job took 2–10% less on average in interleaved
//! runs (`BENCHMARKS.md`, "Task slots"): fewer of its waves ran one task after the other. The
//! pool still serves shuffle buckets and replicas; as its threads no longer run tasks that
//! would reuse what they free, each of those jobs hands it back as it ends
//! ([`crate::allocator::spawn_blocking`]).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use parking_lot::Mutex;
use tessera_plan::panic_text::panic_text;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// What a slot's thread is given to run.
type Job = Box<dyn FnOnce() + Send>;

/// The slots: their threads, and who may take one.
pub struct TaskSlots {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<mpsc::Sender<Job>>>,
    /// Tasks waiting in [`TaskSlots::take`], which come before any help ([`IdleSlot`]).
    waiting: AtomicUsize,
}

/// A slot no task wanted, taken to help a running task with its records (`morsels.rs`): its
/// core, not its thread. Dropping it gives the slot back.
pub struct IdleSlot {
    _permit: OwnedSemaphorePermit,
}

/// A slot taken: its thread runs a task's body. Dropping it gives the slot back.
pub struct TaskSlot<'a> {
    slots: &'a TaskSlots,
    thread: Option<mpsc::Sender<Job>>,
    _permit: OwnedSemaphorePermit,
}

/// Why a slot could not run a task's body.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The executor is stopping.
    #[error("the executor is stopping; the driver runs the task elsewhere")]
    Stopped,
    /// The body panicked outside the operators, which catch the panics of user code.
    #[error(
        "a task panicked outside its operators: {0}. This is a bug in Tessera; please report it \
         with the executor's log"
    )]
    Panicked(String),
}

impl TaskSlots {
    /// `count` slots (at least one), each with its thread started now.
    pub fn start(count: usize) -> std::io::Result<TaskSlots> {
        let count = count.max(1);
        let mut idle = Vec::with_capacity(count);
        for index in 0..count {
            let (jobs, queue) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name(format!("tessera-task-{index}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                })?;
            idle.push(jobs);
        }
        Ok(TaskSlots {
            permits: Arc::new(Semaphore::new(count)),
            idle: Mutex::new(idle),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Waits for a free slot.
    pub async fn take(&self) -> Result<TaskSlot<'_>, SlotError> {
        let _waiting = Waiting::count(&self.waiting);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SlotError::Stopped)?;
        let thread = self.idle.lock().pop();
        Ok(TaskSlot {
            slots: self,
            thread: Some(thread.expect("a permit is held for each idle slot thread")),
            _permit: permit,
        })
    }

    /// A slot free now that no task waits for, if there is one. A task that then comes waits
    /// until the help gives it back ([`TaskSlots::task_waiting`]).
    pub fn take_idle(&self) -> Option<IdleSlot> {
        if self.task_waiting() {
            return None;
        }
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(IdleSlot { _permit: permit })
    }

    /// Whether a task waits for a slot: help stops, and gives its slot back, when one does.
    pub fn task_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// One task counted in [`TaskSlots::task_waiting`] until dropped, however its wait ends (the
/// call's future dropped included).
struct Waiting<'a>(&'a AtomicUsize);

impl Waiting<'_> {
    fn count(waiting: &AtomicUsize) -> Waiting<'_> {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TaskSlot<'_> {
    /// Runs `body` on the slot's thread and gives back what it returns.
    pub async fn run<R: Send + 'static>(
        &self,
        body: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, SlotError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The thread outlives a panic, so that the slot keeps a thread.
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(body)));
        });
        let thread = self
            .thread
            .as_ref()
            .expect("a slot holds its thread until dropped");
        thread.send(job).map_err(|_| SlotError::Stopped)?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(SlotError::Panicked(
                panic_text(panic.as_ref())
                    .unwrap_or_else(|| "a panic without a message".to_string()),
            )),
            Err(_) => Err(SlotError::Stopped),
        }
    }
}

impl Drop for TaskSlot<'_> {
    fn drop(&mut self) {
        // The thread goes back before the permit (a field, dropped after this), so that whoever
        // the permit wakes finds it.
        if let Some(thread) = self.thread.take() {
            self.slots.idle.lock().push(thread);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn slots_run_at_once_each_on_its_thread() {
        let slots = TaskSlots::start(2).unwrap();
        let (a, b) = (slots.take().await.unwrap(), slots.take().await.unwrap());
        // Each body waits for the other to have started: they run at the same time.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (x, y) = (barrier.clone(), barrier);
        let name = || {
            std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string()
        };
        let (ra, rb) = tokio::join!(
            a.run(move || {
                x.wait();
                name()
            }),
            b.run(move || {
                y.wait();
                name()
            })
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.starts_with("tessera-task-"), "{ra}");
        assert_ne!(ra, rb, "two slots, two threads");
    }

    #[tokio::test]
    async fn a_task_waits_for_a_slot_given_back() {
        let slots = TaskSlots::start(1).unwrap();
        let first = slots.take().await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.take()).await;
        assert!(
            waiting.is_err(),
            "no second slot while the only one is taken"
        );
        drop(first);
        let second = slots.take().await.unwrap();
        assert_eq!(second.run(|| 6 * 7).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn an_idle_slot_helps_only_while_no_task_waits() {
        let slots = TaskSlots::start(2).unwrap();
        let running = slots.take().await.unwrap();
        let helping = slots.take_idle().expect("the second slot is idle");
        assert!(slots.take_idle().is_none(), "no third slot");
        // A task that comes waits for the helper's slot, and is seen waiting.
        let mut coming = Box::pin(slots.take());
        let now = tokio::time::timeout(Duration::from_millis(20), &mut coming).await;
        assert!(now.is_err(), "both slots are taken");
        assert!(slots.task_waiting());
        drop(helping);
        let task = coming.await.unwrap();
        assert!(!slots.task_waiting());
        drop(running);
        assert!(
            slots.take_idle().is_some(),
            "a slot given back by a task is idle again"
        );
        drop(task);
    }

    #[tokio::test]
    async fn a_waiting_task_that_gives_up_is_no_longer_counted() {
        let slots = TaskSlots::start(1).unwrap();
        let running = slots.take().await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(20), slots.take()).await;
        assert!(gave_up.is_err());
        assert!(!slots.task_waiting());
        drop(running);
        assert!(slots.take_idle().is_some());
    }

    #[tokio::test]
    async fn a_panic_is_reported_and_the_slot_keeps_its_thread() {
        let slots = TaskSlots::start(1).unwrap();
        let slot = slots.take().await.unwrap();
        let panicked = slot.run(|| -> u32 { panic!("broken invariant") }).await;
        match panicked {
            Err(SlotError::Panicked(message)) => assert_eq!(message, "broken invariant"),
            other => panic!("expected a panic report, got {other:?}"),
        }
        assert_eq!(slot.run(|| 1 + 1).await.unwrap(), 2);
    }
}
