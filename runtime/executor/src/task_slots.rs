//! The executor's task slots: a thread of its own for each slot, started with the executor and
//! kept for its life, and a queue of the tasks waiting for one.
//!
//! A task sent ahead of a free core (the driver sends a job's next wave to wait on the
//! executor) waits in the queue, and a slot's thread that ends a task takes the next one from
//! it itself. Before, a task ended by waking the runtime thread that awaited it, which gave the
//! slot back, which woke the waiting task's, which handed its body to the slot's thread: wake-ups
//! between two waves of a job on cores busy with the wave's other tasks, 0.06-0.15 ms a wave
//! and at times over 1 ms on LR's iterations (`BENCHMARKS.md`, "Where a task's time goes").
//!
//! Tasks used to run on tokio's blocking pool, on whichever of its threads was idle (a new one
//! when none was). Jobs on cached data are waves of tasks of a millisecond or two, and with a
//! thread per slot instead an LR iteration's job took 2–10% less on average in interleaved
//! runs (`BENCHMARKS.md`, "Task slots"): fewer of its waves ran one task after the other. The
//! pool still serves shuffle buckets and replicas; as its threads no longer run tasks that
//! would reuse what they free, each of those jobs hands it back as it ends
//! ([`crate::allocator::spawn_blocking`]).
//!
//! A slot's thread with no task to run helps a running task that offers help
//! ([`TaskSlots::offer_help`], `morsels.rs`): it takes the task's next batches itself, at once,
//! instead of a helper thread being started when the task next looks for an idle slot.
//!
//! A running task makes way ([`TaskSlots::make_way`]) for a slot's thread woken to take a task
//! or give help that waits for its core (`cpu_moves.rs`).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use tessera_plan::panic_text::panic_text;
use tokio::sync::oneshot;

/// What a slot's thread is given to run.
type Job = Box<dyn FnOnce() + Send>;

/// The slots: their threads, the tasks waiting for them, and who may take one.
pub struct TaskSlots {
    state: Mutex<State>,
    /// Wakes a slot's thread: a task came, a core came back, or a task offered help.
    wake: Condvar,
    /// Wakes a task whose offer of help is withdrawn once its last helper has ended.
    helped: Condvar,
    /// Tasks in the queue, which come before any help ([`TaskSlots::offer_help`]); read without
    /// the lock.
    waiting: AtomicUsize,
    /// How many tasks were queued and offers of help made so far: a spinning slot's thread
    /// ([`SPIN_BEFORE_SLEEP`]) watches it without the lock.
    posted: AtomicUsize,
}

/// What the slots' threads share.
struct State {
    /// Tasks waiting for a core, first come first served, each with its number.
    queue: VecDeque<(u64, Job)>,
    /// The number the next task queued gets.
    next: u64,
    /// Cores neither running a task nor helping one. There is a thread per core, so a free
    /// core always has an idle thread.
    free: usize,
    /// Running tasks' offers of help, oldest first.
    offers: Vec<Offer>,
    /// The number the next offer gets.
    next_offer: u64,
    /// The slots' threads, by their ids.
    threads: Vec<libc::pid_t>,
    /// Since when a slot's thread was woken to take a task or give help and has not yet:
    /// [`TaskSlots::make_way`] looks where it waits once this is [`STRANDED_AFTER`] old, once.
    woken: Option<Woken>,
}

impl State {
    /// Work was queued or offered, and a slot's thread woken for it if a core is free: the
    /// wake-up is out from now, unless an earlier one still is.
    fn woke_a_thread(&mut self) {
        if self.free > 0 {
            self.woken.get_or_insert(Woken {
                at: Instant::now(),
                looked: false,
            });
        }
    }

    /// A slot's thread took a task or an offer: the wake-up it answered is answered, and
    /// another is still out if a task waits for a free core (its own wake-up woke another
    /// thread).
    fn took_work(&mut self) {
        self.woken = (!self.queue.is_empty() && self.free > 0).then(|| Woken {
            at: Instant::now(),
            looked: false,
        });
    }
}

/// A wake-up of a slot's thread not answered yet.
#[derive(Clone, Copy, Debug)]
struct Woken {
    at: Instant,
    /// Whether a running task has looked where the woken thread waits.
    looked: bool,
}

/// How long a slot's thread woken for work may take to start it before a running task looks
/// whether it waits for its core: a woken thread starts within tens of microseconds on a free
/// core, and a task looks between chunks of its batches (about a quarter of a millisecond on
/// LR's points).
pub const STRANDED_AFTER: Duration = Duration::from_micros(200);

/// Whether a running task should look where the slot's thread `woken` waits, at `now`, with
/// `free` cores free: once, when a core is free for it and it has waited [`STRANDED_AFTER`].
fn stranded(woken: Option<Woken>, now: Instant, free: usize) -> bool {
    woken.is_some_and(|w| !w.looked && free > 0 && now.duration_since(w.at) >= STRANDED_AFTER)
}

/// How long a slot's thread that finds no work spins, yielding its core to any thread that wants
/// it, before it sleeps. An iterative job's next tasks come a few hundred microseconds after its
/// last one ends, after a hop through the driver and the cell; on these VMs a sleeping thread's
/// core halts, and each wake-up of a halted core costs tens of microseconds. Spinning (and
/// yielding) keeps the cores awake for those hops and the next tasks start on a running thread:
/// jobs on 1,000 points took 140 µs against 204 in the median (`BENCHMARKS.md`, "Slots spin
/// before they sleep"). Other threads lose little: the spinning one yields at every turn.
pub const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(300);

/// Whether a slot's thread that has spun for `spun`, since it saw `seen` tasks and offers
/// posted, spins on now that `posted` have been: until something new is posted or
/// [`SPIN_BEFORE_SLEEP`] is up.
fn keep_spinning(spun: Duration, seen: usize, posted: usize) -> bool {
    posted == seen && spun < SPIN_BEFORE_SLEEP
}

/// What a task asks of idle slots: called on a slot's thread, it takes the task's work until
/// none is left or a task waits for the slot ([`TaskSlots::task_waiting`]), and says which.
pub type Help<'a> = dyn Fn() -> HelpEnded + Sync + 'a;

/// Why a helper stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpEnded {
    /// The task's work is all taken: no other slot need come.
    NothingLeft,
    /// A task waits for the slot (tasks come before help).
    TaskWaiting,
}

/// One running task's offer.
struct Offer {
    number: u64,
    /// The task's help, its lifetime erased: [`OfferedHelp`]'s drop removes the offer only once
    /// `helpers` is back to 0, so no slot calls it after the task's frame is gone.
    help: HelpFn,
    /// Slots' threads running `help` now.
    helpers: usize,
    /// No slot takes it any more: its work is all taken, or the task withdrew it.
    closed: bool,
}

/// [`Help`] with its borrow erased (see [`Offer::help`]).
struct HelpFn(*const Help<'static>);

// SAFETY: the pointee is `Sync` (`Help` says so), and it is only called while its owner waits
// for its helpers (see `Offer::help`).
unsafe impl Send for HelpFn {}

/// An offer of help, open until dropped; dropping it waits for the slots helping to end.
pub struct OfferedHelp<'a> {
    slots: &'a TaskSlots,
    number: u64,
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
    pub fn start(count: usize) -> std::io::Result<std::sync::Arc<TaskSlots>> {
        let count = count.max(1);
        let slots = std::sync::Arc::new(TaskSlots {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                next: 0,
                free: count,
                offers: Vec::new(),
                next_offer: 0,
                threads: Vec::new(),
                woken: None,
            }),
            wake: Condvar::new(),
            helped: Condvar::new(),
            waiting: AtomicUsize::new(0),
            posted: AtomicUsize::new(0),
        });
        for index in 0..count {
            let slots = slots.clone();
            std::thread::Builder::new()
                .name(format!("tessera-task-{index}"))
                .spawn(move || slots.serve())?;
        }
        Ok(slots)
    }

    /// A slot's thread: runs the queue's tasks while a core is free for them, the next as soon
    /// as the last ends, and helps a running task that offers help when no task waits.
    fn serve(&self) {
        let mut state = self.state.lock();
        state.threads.push(crate::cpu_moves::thread_id());
        // Whether the thread has spun since it last found work or was woken: it spins once, then
        // sleeps.
        let mut spun = false;
        loop {
            if state.free > 0
                && state.queue.is_empty()
                && let Some(offer) = state.offers.iter_mut().find(|offer| !offer.closed)
            {
                offer.helpers += 1;
                spun = false;
                let (number, help) = (offer.number, offer.help.0);
                state.free -= 1;
                state.took_work();
                drop(state);
                // SAFETY: the offer stays until `helpers` is back to 0 (`Offer::help`).
                let help = unsafe { &*help };
                // A bug in a helper must not take the slot's thread or leave the task
                // waiting for it: it counts as the end of the help.
                let ended = std::panic::catch_unwind(AssertUnwindSafe(help))
                    .unwrap_or(HelpEnded::NothingLeft);
                state = self.state.lock();
                state.free += 1;
                if let Some(offer) = state.offers.iter_mut().find(|o| o.number == number) {
                    offer.helpers -= 1;
                    offer.closed |= ended == HelpEnded::NothingLeft;
                }
                self.helped.notify_all();
                continue;
            }
            if state.free == 0 || state.queue.is_empty() {
                if state.free > 0 && !spun {
                    // Read under the lock, so that no task or offer posted after it is missed.
                    let seen = self.posted.load(Ordering::SeqCst);
                    MutexGuard::unlocked(&mut state, || self.spin_for_work(seen));
                    spun = true;
                    continue;
                }
                spun = false;
                self.wake.wait(&mut state);
                continue;
            }
            spun = false;
            let (_, job) = state.queue.pop_front().expect("a task is queued");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            state.free -= 1;
            state.took_work();
            drop(state);
            job();
            // What the task's end woke (the runtime thread that sends its result) runs first,
            // on the core the task leaves. Taking the next task at once instead had that work
            // preempt it mid-run: LR's tasks took 7-10% longer, its iterations 6% longer.
            std::thread::yield_now();
            state = self.state.lock();
            state.free += 1;
        }
    }

    /// Spins before sleeping, yielding the core at every turn, until something is posted after
    /// the `seen`th task or offer or [`SPIN_BEFORE_SLEEP`] is up: what comes next is often one
    /// hop away.
    fn spin_for_work(&self, seen: usize) {
        let started = Instant::now();
        while keep_spinning(started.elapsed(), seen, self.posted.load(Ordering::SeqCst)) {
            std::thread::yield_now();
        }
    }

    /// Runs `body` on a slot's thread once one is free (at once, if one is) and gives back what
    /// it returns, with how long it waited for the slot.
    pub async fn run<R: Send + 'static>(
        &self,
        body: impl FnOnce() -> R + Send + 'static,
    ) -> Result<(R, Duration), SlotError> {
        let queued = Instant::now();
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let waited = queued.elapsed();
            // The thread outlives a panic, so that the slot keeps a thread.
            let ran = std::panic::catch_unwind(AssertUnwindSafe(body));
            let _ = done.send(ran.map(|value| (value, waited)));
        });
        let place = {
            let mut state = self.state.lock();
            let number = state.next;
            state.next += 1;
            state.queue.push_back((number, job));
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.posted.fetch_add(1, Ordering::SeqCst);
            state.woke_a_thread();
            Place {
                slots: self,
                number,
            }
        };
        self.wake.notify_one();
        let ran = result.await;
        drop(place);
        match ran {
            Ok(Ok(ran)) => Ok(ran),
            Ok(Err(panic)) => Err(SlotError::Panicked(
                panic_text(panic.as_ref())
                    .unwrap_or_else(|| "a panic without a message".to_string()),
            )),
            Err(_) => Err(SlotError::Stopped),
        }
    }

    /// Offers `help` to the slots no task wants, until the returned guard is dropped: a slot's
    /// thread that has no task to run calls it (at once, if one is idle now), and more than
    /// one may. Dropping the guard waits for the helpers to end.
    pub fn offer_help<'a>(&'a self, help: &'a Help<'a>) -> OfferedHelp<'a> {
        // SAFETY: only the lifetime changes; `OfferedHelp`'s drop keeps `help` from being
        // called once `'a` may have ended (`Offer::help`).
        let help: *const Help<'static> = unsafe { std::mem::transmute(help as *const Help<'a>) };
        let number = {
            let mut state = self.state.lock();
            let number = state.next_offer;
            state.next_offer += 1;
            state.offers.push(Offer {
                number,
                help: HelpFn(help),
                helpers: 0,
                closed: false,
            });
            state.woke_a_thread();
            self.posted.fetch_add(1, Ordering::SeqCst);
            number
        };
        self.wake.notify_all();
        OfferedHelp {
            slots: self,
            number,
        }
    }

    /// Called by a running task between chunks of its work: if a slot's thread woken for work
    /// has not started it within [`STRANDED_AFTER`] and waits for this thread's core, moves
    /// this thread to another (`cpu_moves.rs`). Says whether it moved.
    pub fn make_way(&self) -> bool {
        let threads = {
            let mut state = self.state.lock();
            if !stranded(state.woken, Instant::now(), state.free) {
                return false;
            }
            if let Some(woken) = &mut state.woken {
                woken.looked = true;
            }
            state.threads.clone()
        };
        let (me, Some(cpu)) = (
            crate::cpu_moves::thread_id(),
            crate::cpu_moves::current_cpu(),
        ) else {
            return false;
        };
        let waits_here = threads
            .iter()
            .any(|&thread| thread != me && crate::cpu_moves::waits_on(thread, cpu));
        let moved = waits_here && crate::cpu_moves::move_off_current_cpu();
        if moved {
            tracing::debug!(
                cpu,
                "a slot's thread woken for work waited for this core: moved off it"
            );
        }
        moved
    }

    /// Whether a task waits for a slot: help stops, and gives its slot back, when one does.
    pub fn task_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// A task's place in the queue until dropped: a task whose caller gives up waiting (its
/// future dropped) leaves the queue, and is no longer counted as waiting.
struct Place<'a> {
    slots: &'a TaskSlots,
    number: u64,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock();
        if let Some(at) = state.queue.iter().position(|(n, _)| *n == self.number) {
            state.queue.remove(at);
            self.slots.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for OfferedHelp<'_> {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock();
        let at = |state: &State| state.offers.iter().position(|o| o.number == self.number);
        if let Some(i) = at(&state) {
            state.offers[i].closed = true;
        }
        while let Some(i) = at(&state) {
            if state.offers[i].helpers == 0 {
                state.offers.remove(i);
                break;
            }
            self.slots.helped.wait(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    /// A task's thread name and how long it waited for its slot, once it has run.
    type Ran = tokio::task::JoinHandle<Result<(String, Duration), SlotError>>;

    /// A task on `slots` that runs until `release` is given a message.
    fn held(slots: &Arc<TaskSlots>) -> (mpsc::Sender<()>, Ran) {
        let (release, until) = mpsc::channel::<()>();
        let slots = slots.clone();
        let task = tokio::spawn(async move {
            slots
                .run(move || {
                    let _ = until.recv();
                    thread_name()
                })
                .await
        });
        (release, task)
    }

    /// Polls until `slots` counts a task waiting (or not).
    async fn until_waiting(slots: &TaskSlots, waiting: bool) {
        while slots.task_waiting() != waiting {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn slots_run_at_once_each_on_its_thread() {
        let slots = TaskSlots::start(2).unwrap();
        // Each body waits for the other to have started: they run at the same time.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (x, y) = (barrier.clone(), barrier);
        let (ra, rb) = tokio::join!(
            slots.run(move || {
                x.wait();
                thread_name()
            }),
            slots.run(move || {
                y.wait();
                thread_name()
            })
        );
        let ((ra, _), (rb, _)) = (ra.unwrap(), rb.unwrap());
        assert!(ra.starts_with("tessera-task-"), "{ra}");
        assert_ne!(ra, rb, "two slots, two threads");
    }

    #[tokio::test]
    async fn a_waiting_task_starts_as_the_one_before_ends_without_the_runtime() {
        let slots = TaskSlots::start(1).unwrap();
        let (release, first) = held(&slots);
        let (started, has_started) = mpsc::channel::<String>();
        let second = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.run(move || started.send(thread_name())).await })
        };
        until_waiting(&slots, true).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(has_started.try_recv().is_err(), "one slot, taken");
        // The runtime's only thread is kept busy here from now on: the slot's thread itself
        // takes the waiting task as the first ends.
        release.send(()).unwrap();
        let thread = has_started
            .recv_timeout(Duration::from_secs(10))
            .expect("the waiting task started while the runtime was busy");
        assert!(thread.starts_with("tessera-task-"), "{thread}");
        first.await.unwrap().unwrap();
        let (_, waited) = second.await.unwrap().unwrap();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(!slots.task_waiting());
    }

    /// Polls until `count` slots are free: neither running a task nor helping.
    async fn until_free(slots: &TaskSlots, count: usize) {
        while slots.state.lock().free != count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sets its flag when dropped: a helper that watches the flag then ends, so that a failed
    /// assertion does not leave the offer's drop waiting for it.
    struct SetOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_slot_helps_a_task_that_offers_help_until_a_task_comes() {
        let slots = TaskSlots::start(2).unwrap();
        let (release, running) = held(&slots);
        until_free(&slots, 1).await;
        let (helping, helps) = mpsc::channel::<String>();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let help = || {
            let _ = helping.send(thread_name());
            loop {
                if stop.load(Ordering::SeqCst) {
                    return HelpEnded::NothingLeft;
                }
                if slots.task_waiting() {
                    return HelpEnded::TaskWaiting;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let offered = slots.offer_help(&help);
        let _stop = SetOnDrop(&stop);
        let helper = helps
            .recv_timeout(Duration::from_secs(10))
            .expect("the idle slot's thread helps at once");
        assert!(helper.starts_with("tessera-task-"), "{helper}");
        assert_eq!(slots.state.lock().free, 0, "the helping slot is taken");
        // A task that comes gets the helper's slot: the help ends, and the task runs on it.
        let (started, has_started) = mpsc::channel::<String>();
        let (release_coming, until) = mpsc::channel::<()>();
        let coming = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .run(move || {
                        let _ = started.send(thread_name());
                        let _ = until.recv();
                    })
                    .await
            })
        };
        let thread = has_started
            .recv_timeout(Duration::from_secs(10))
            .expect("the task that came took the helping slot");
        assert_eq!(thread, helper, "on the thread that was helping");
        assert!(!slots.task_waiting());
        // Once the task ends, the slot helps again while the offer stands.
        release_coming.send(()).unwrap();
        coming.await.unwrap().unwrap();
        let again = helps
            .recv_timeout(Duration::from_secs(10))
            .expect("the slot helps again after its task");
        assert_eq!(again, helper);
        stop.store(true, Ordering::SeqCst);
        drop(offered);
        assert!(slots.state.lock().offers.is_empty(), "the offer is gone");
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        until_free(&slots, 2).await;
    }

    #[tokio::test]
    async fn withdrawing_an_offer_waits_for_its_helper_and_a_closed_one_is_not_taken() {
        let slots = TaskSlots::start(1).unwrap();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let calls = AtomicUsize::new(0);
        let help = || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            let _ = ended_tx.send(());
            HelpEnded::NothingLeft
        };
        let offered = slots.offer_help(&help);
        while calls.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(offered);
        assert!(
            ended.try_recv().is_ok(),
            "the guard's drop returned only once the helper had ended"
        );
        until_free(&slots, 1).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "work said to be all taken is not offered again"
        );
    }

    #[tokio::test]
    async fn a_waiting_task_that_gives_up_is_no_longer_counted() {
        let slots = TaskSlots::start(1).unwrap();
        let (release, running) = held(&slots);
        until_free(&slots, 0).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), slots.run(|| ())).await;
        assert!(gave_up.is_err());
        assert!(!slots.task_waiting());
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        until_free(&slots, 1).await;
    }

    #[tokio::test]
    async fn a_panic_is_reported_and_the_slot_keeps_its_thread() {
        let slots = TaskSlots::start(1).unwrap();
        let panicked = slots.run(|| -> u32 { panic!("broken invariant") }).await;
        match panicked {
            Err(SlotError::Panicked(message)) => assert_eq!(message, "broken invariant"),
            other => panic!("expected a panic report, got {other:?}"),
        }
        assert_eq!(slots.run(|| 1 + 1).await.unwrap().0, 2);
    }

    #[test]
    fn an_idle_slots_thread_spins_until_work_is_posted_or_its_time_is_up() {
        assert!(keep_spinning(Duration::ZERO, 3, 3), "nothing new yet");
        assert!(keep_spinning(SPIN_BEFORE_SLEEP / 2, 3, 3));
        assert!(
            !keep_spinning(SPIN_BEFORE_SLEEP / 2, 3, 4),
            "a task or an offer came"
        );
        assert!(!keep_spinning(SPIN_BEFORE_SLEEP, 3, 3), "its time is up");
    }

    #[tokio::test]
    async fn tasks_queued_while_the_slots_spin_and_after_they_sleep_all_run() {
        let slots = TaskSlots::start(2).unwrap();
        for round in 0..20u32 {
            // Right after the last ones ended (the threads spin), or once they sleep.
            if round % 2 == 1 {
                std::thread::sleep(SPIN_BEFORE_SLEEP * 3);
            }
            let both =
                async { tokio::join!(slots.run(move || round), slots.run(move || round + 1)) };
            let (a, b) = tokio::time::timeout(Duration::from_secs(10), both)
                .await
                .expect("a task queued while the slots spun was left waiting");
            assert_eq!((a.unwrap().0, b.unwrap().0), (round, round + 1));
        }
    }

    #[test]
    fn a_running_task_looks_once_where_a_thread_woken_long_enough_ago_waits() {
        let at = Instant::now();
        let woken = |looked| Some(Woken { at, looked });
        let later = |by| at + by;
        assert!(
            !stranded(None, later(STRANDED_AFTER * 2), 1),
            "no one was woken"
        );
        assert!(
            !stranded(woken(false), later(STRANDED_AFTER / 2), 1),
            "not yet"
        );
        assert!(stranded(woken(false), later(STRANDED_AFTER), 1));
        assert!(
            !stranded(woken(true), later(STRANDED_AFTER * 2), 1),
            "looked already"
        );
        assert!(
            !stranded(woken(false), later(STRANDED_AFTER * 2), 0),
            "no core for it"
        );
    }

    #[tokio::test]
    async fn a_wake_up_is_out_until_a_slots_thread_takes_the_work() {
        let slots = TaskSlots::start(2).unwrap();
        // Queued with both cores free: a wake-up goes out, until a thread takes the task.
        let (release, running) = held(&slots);
        until_free(&slots, 1).await;
        assert!(
            slots.state.lock().woken.is_none(),
            "the thread woken took it"
        );
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
    }
}
