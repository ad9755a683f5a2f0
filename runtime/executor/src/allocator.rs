//! The executor's allocator, mimalloc, and when it hands freed memory back to the system.
//!
//! Freed memory stays with the executor a while ([`PURGE_DELAY_MS`]), because the next task
//! mostly allocates as much again; but the executor's agent kills it past its memory limit
//! whether that memory is in use or only kept for reuse. So once the executor's resident
//! memory nears its limit ([`near_limit`]), freed memory goes back at once, until it is below
//! again.
//!
//! mimalloc carries out a delayed purge only when the thread that owns the memory frees or
//! allocates in the same place again, so a thread that goes quiet after a burst keeps what it
//! freed for good. Each thread therefore makes mimalloc purge at most once per delay, as it
//! parks (the runtime's) or ends a task (the slots'): [`purge_when_due`].

use std::cell::Cell;
use std::ffi::{c_int, c_long};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// mimalloc, with its `override` feature: it also replaces `malloc` and `free` for the whole
/// process, so the cell libraries the executor loads (each with its own standard library,
/// allocating through `malloc`) use it too. Their records are allocated and freed by the
/// million, from several task threads at once. Version 2 of mimalloc: on the LR benchmark it kept
/// the executors' resident memory within twice the size of the cached points, where version 3
/// held about a quarter more (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's own functions, linked with the allocator.
unsafe extern "C" {
    fn mi_collect(force: bool);
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc 2's `mimalloc.h`.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// How long memory freed by a task stays with the executor before mimalloc returns it to the
/// system, in milliseconds, unless `MIMALLOC_PURGE_DELAY` says otherwise (mimalloc's own
/// option, read when it starts; its default is 10 ms).
///
/// A DataFrame query's tasks free their columns, filters and hash tables and the next task, a
/// few milliseconds later, allocates as much again: with mimalloc's 10 ms the pages went back
/// to the kernel in between and came back as page faults, the kernel zeroing each one. Over
/// ten runs each of TPC-H Q3 and Q10 the executor took 610,000 to 640,000 page faults and 3.9 s
/// of CPU with 10 ms, and 170,000 faults and 2.9 s with 250 ms (1000 ms and never purging did
/// no better); the LR points' resident growth and the RDD workloads' times did not move
/// (BENCHMARKS.md).
const PURGE_DELAY_MS: c_long = 250;

/// The memory the executor is held to, in bytes, when its launcher holds it to some.
static LIMIT: OnceLock<u64> = OnceLock::new();
/// The purge delay in force away from the limit: [`PURGE_DELAY_MS`] or the environment's.
static RELAXED_DELAY: OnceLock<c_long> = OnceLock::new();
/// Whether freed memory goes back at once, because the executor is near its limit.
static PURGING_AT_ONCE: AtomicBool = AtomicBool::new(false);

/// Sets the allocator up before the executor starts work: transparent huge pages off, freed
/// memory kept [`PURGE_DELAY_MS`], and the `limit_mb` the executor's launcher holds it to.
pub fn set_up(limit_mb: Option<u64>) {
    tessera_memory::disable_transparent_huge_pages();
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set takes no pointers; options may be set at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
    // SAFETY: mi_option_get takes no pointers.
    let _ = RELAXED_DELAY.set(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) });
    if let Some(mb) = limit_mb.filter(|mb| *mb > 0) {
        let _ = LIMIT.set(mb << 20);
    }
}

/// Hands what the calling thread freed back to mimalloc's shared pool (and the system), so
/// that the next task on another thread reuses it: measured, executors then hold less memory
/// and run word count's map tasks faster (BENCHMARKS.md). Near the executor's limit, freed
/// memory goes back to the system at once from then on, on every thread; away from it, once
/// per purge delay, as [`purge_when_due`] says, or at once with `at_once`: where the thread will
/// not reuse what it freed, after a task that cached a partition (what it read and parsed to
/// compute it) and after a partition was copied to or from another executor (buffers as large
/// as the partition). The LR benchmark's executors then grew by 1.20x the cached points
/// instead of 1.24x. An executor killed in the chaos suite is mostly killed soon after its
/// copies, and the kernel frees a killed process's memory before it closes its sockets: the
/// less it holds, the sooner the driver sees it lost (BENCHMARKS.md).
pub fn release_freed_memory(at_once: bool) {
    // The limit is followed first, whatever else decides: it switches the purge delay.
    if follow_the_limit() || at_once || purge_due() {
        purge();
    } else {
        collect(false);
    }
}

/// Whether the executor is near its limit, so that freed memory goes back at once; switches
/// mimalloc's purge delay as it comes near or goes back below. Resident memory is read only
/// where there is a limit to be near.
fn follow_the_limit() -> bool {
    let at_once = LIMIT
        .get()
        .is_some_and(|limit| resident_bytes().is_some_and(|resident| near_limit(resident, *limit)));
    if PURGING_AT_ONCE.swap(at_once, Ordering::Relaxed) != at_once {
        let delay = if at_once {
            0
        } else {
            RELAXED_DELAY.get().copied().unwrap_or(PURGE_DELAY_MS)
        };
        tracing::debug!(
            delay_ms = delay,
            "freed memory goes back to the system after this delay"
        );
        // SAFETY: mi_option_set takes no pointers; options may be set at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, delay) }
    }
    at_once
}

/// Makes mimalloc hand back to the system what it keeps that this thread freed, if the purge
/// delay has passed since the thread last did; the executor's runtime calls it as each of its
/// threads parks, so it happens on the next activity after the delay. Measured on the LR
/// notebook's 200,000 points at `MEMORY_ONLY_2` (`local-cluster[2,2,1024]`, each executor
/// caching all four partitions, 17.6 MB): 80–87 MB of anonymous memory resident in an executor
/// without it, 25–27 MB with it (a purge delay of 0 gives 23 MB). The buffers that had copied
/// the partitions between executors were freed on runtime threads that then allocated little
/// (BENCHMARKS.md).
pub fn purge_when_due() {
    if purge_due() {
        purge();
    }
}

thread_local! {
    /// When this thread last made mimalloc purge, or first asked whether it should.
    static LAST_PURGE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Has mimalloc hand back to the system everything it keeps that this thread freed, and notes
/// when.
fn purge() {
    LAST_PURGE.set(Some(Instant::now()));
    collect(true);
}

/// mimalloc's `mi_collect`: hands this thread's freed memory back to its shared pool and, with
/// `force`, everything free back to the system at once.
fn collect(force: bool) {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    unsafe { mi_collect(force) }
}

/// Whether this thread's purge delay has passed since it last purged ([`purge_is_due`]).
fn purge_due() -> bool {
    let now = Instant::now();
    // A thread's first call starts its clock instead of purging: a purge at the first park
    // came as word count's first tasks arrived, and started them 2-5 ms later.
    let last = LAST_PURGE.get().unwrap_or_else(|| {
        LAST_PURGE.set(Some(now));
        now
    });
    let delay = RELAXED_DELAY.get().copied().unwrap_or(PURGE_DELAY_MS);
    purge_is_due(now.duration_since(last), delay)
}

/// Whether a thread that last purged `since` ago purges again, with a purge delay of
/// `delay_ms`: once the delay has passed; never with a negative delay (mimalloc's "never").
fn purge_is_due(since: Duration, delay_ms: c_long) -> bool {
    u64::try_from(delay_ms).is_ok_and(|ms| since >= Duration::from_millis(ms))
}

/// Runs `work` on tokio's blocking pool (serving a shuffle's buckets, encoding or storing a
/// replica), then hands everything it freed back to the system at once: the executor's jobs on
/// the pool go through here. Tasks run on their slots' own threads (`task_slots.rs`), so no
/// task comes to reuse what a thread of the pool keeps for its own next allocations, and kept,
/// it stays resident: an executor's peak in the e2e test that groups and sorts ten times its
/// shuffle memory was 123-141 MiB with it kept, 102-126 MiB with it handed back as a task's end
/// does ([`release_freed_memory`]), 87-110 MiB with it handed back at once (BENCHMARKS.md,
/// "Task slots").
pub fn spawn_blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> tokio::task::JoinHandle<R> {
    tokio::task::spawn_blocking(move || {
        let result = work();
        collect(true);
        result
    })
}

/// Whether an executor with `resident` bytes is near its `limit`: past three quarters of it,
/// what mimalloc keeps for reuse (up to a few tens of MiB, measured with polars' sorts and
/// joins on 100,000-row partitions) could take it past.
fn near_limit(resident: u64, limit: u64) -> bool {
    resident >= limit / 4 * 3
}

/// This process's resident memory, from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_at_once_only_in_the_last_quarter_before_the_limit() {
        let limit = 160 << 20;
        assert!(!near_limit(100 << 20, limit));
        assert!(!near_limit((120 << 20) - 1, limit));
        assert!(near_limit(120 << 20, limit));
        assert!(near_limit(200 << 20, limit));
    }

    #[test]
    fn a_thread_purges_once_the_delay_has_passed_and_never_with_a_negative_delay() {
        let ms = Duration::from_millis;
        assert!(!purge_is_due(ms(249), 250));
        assert!(purge_is_due(ms(250), 250));
        assert!(purge_is_due(ms(0), 0));
        assert!(!purge_is_due(ms(60_000), -1));
    }

    #[test]
    fn this_process_has_resident_memory() {
        let resident = resident_bytes().expect("/proc/self/statm reads");
        assert!(resident > 1 << 20, "{resident}");
    }
}
