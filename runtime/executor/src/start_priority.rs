//! An executor starts at a lower CPU priority and takes its own back once it has loaded what it
//! loads first, just before it registers with its driver and tasks come.
//!
//! Starting is work no task waits on yet — the runtime, the TLS handshakes, fetching and
//! loading libraries: about 10 ms of CPU (`scripts/replacement-price.sh`). On a host of its
//! own an executor starts as fast as before; on a host where executors run tasks (another
//! session's, or its own session's when it replaces one that was lost while a job ran), it
//! takes the CPU those tasks leave idle instead of slowing them. A nice value is what Linux
//! offers without privileges or cgroups; in cgroups mode an agent also bounds each executor to
//! its CPUs, which says nothing of who goes first on them.
//!
//! Linux keeps a nice value per thread, and a thread starts with its creator's: the main thread
//! lowers its priority before it starts any other ([`lower`]), and [`Lowered::restore`] sets
//! every thread of the process back. Raising a priority again needs `CAP_SYS_NICE` or an
//! `RLIMIT_NICE` that allows it, so an executor that could not take its priority back does not
//! lower it ([`may_restore`]). `TESSERA_EXECUTOR_START_NICE` sets the step (0: start at the
//! launcher's priority).

use std::io;

/// The variable that sets how much lower an executor starts (0 to 19; 0 turns it off).
pub const START_NICE_ENV: &str = "TESSERA_EXECUTOR_START_NICE";

/// How much lower an executor starts by default: a nice value's step of 10 is a tenth of the
/// CPU share against a busy thread at the old value.
pub const DEFAULT_STEP: i32 = 10;

/// The highest nice value: the lowest priority.
const LOWEST: i32 = 19;

/// `CAP_SYS_NICE`'s bit in the capability sets of `/proc/self/status`.
const CAP_SYS_NICE: u32 = 23;

/// A process whose threads run at a lowered priority until [`Lowered::restore`].
#[derive(Debug)]
pub struct Lowered {
    /// The nice value the process started with, and returns to.
    original: i32,
}

/// Whether a thread at nice value `original` may come back to it from a higher one: with
/// `CAP_SYS_NICE`, or where the soft `RLIMIT_NICE` (`20 - rlimit` is the lowest nice value it
/// allows) reaches it.
pub fn may_restore(original: i32, rlimit_nice: u64, cap_sys_nice: bool) -> bool {
    cap_sys_nice || 20 - i64::from(original) <= rlimit_nice as i64
}

/// The nice value an executor at `original` starts at, given the step asked for, or `None`
/// when it starts at `original` (a step of 0, or already the lowest priority).
pub fn start_nice(original: i32, step: i32) -> Option<i32> {
    let lowered = (original + step.clamp(0, LOWEST)).min(LOWEST);
    (lowered > original).then_some(lowered)
}

/// Whether the effective capabilities in `status` (the text of `/proc/self/status`) hold
/// `CAP_SYS_NICE`.
pub fn has_cap_sys_nice(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0)
}

/// [`START_NICE_ENV`] set to something other than a step from 0 to 19.
#[derive(Debug, thiserror::Error)]
#[error(
    "{START_NICE_ENV}={0:?} is not a step from 0 to 19: set a whole number (0 starts executors \
     at their launcher's priority), or unset it for the default, {DEFAULT_STEP}; this executor \
     starts at its launcher's priority"
)]
pub struct InvalidStep(String);

/// The step `value` (of [`START_NICE_ENV`]) asks for: [`DEFAULT_STEP`] when unset.
pub fn step(value: Option<&str>) -> Result<i32, InvalidStep> {
    match value.map(str::trim) {
        None => Ok(DEFAULT_STEP),
        Some(text) => match text.parse() {
            Ok(step) if (0..=LOWEST).contains(&step) => Ok(step),
            _ => Err(InvalidStep(text.to_string())),
        },
    }
}

/// The step [`START_NICE_ENV`] asks for.
pub fn step_from_env() -> Result<i32, InvalidStep> {
    step(std::env::var(START_NICE_ENV).ok().as_deref())
}

/// Lowers the calling thread's priority by `step`, if the process may take it back; threads
/// it starts afterwards inherit it. Call it before any other thread starts.
pub fn lower(step: i32) -> Option<Lowered> {
    let original = nice_of(0).ok()?;
    let lowered = start_nice(original, step)?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !may_restore(original, rlimit_nice()?, has_cap_sys_nice(&status)) {
        return None;
    }
    set_nice(0, lowered).ok()?;
    Some(Lowered { original })
}

impl Lowered {
    /// Sets every thread of this process back to the priority it started with; returns how
    /// many it set. Threads started while it runs are seen by another pass.
    pub fn restore(self) -> io::Result<usize> {
        let mut restored = 0;
        loop {
            let mut changed = 0;
            for entry in std::fs::read_dir("/proc/self/task")? {
                let Some(tid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                match nice_of(tid) {
                    Ok(nice) if nice != self.original => match set_nice(tid, self.original) {
                        Ok(()) => changed += 1,
                        // The thread ended since the directory was read.
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(e) => return Err(e),
                    },
                    _ => {}
                }
            }
            restored += changed;
            if changed == 0 {
                return Ok(restored);
            }
        }
    }
}

/// The soft `RLIMIT_NICE` of this process.
fn rlimit_nice() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NICE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// The nice value of thread `tid` (0: the calling thread).
fn nice_of(tid: libc::id_t) -> io::Result<i32> {
    // getpriority may return -1 as a value: errno tells it from an error.
    // SAFETY: __errno_location returns this thread's errno; getpriority takes plain values.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        match *libc::__errno_location() {
            0 => Ok(nice),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// Sets the nice value of thread `tid` (0: the calling thread).
fn set_nice(tid: libc::id_t, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain values.
    match unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_lowers_its_priority_only_where_it_may_take_it_back() {
        assert!(may_restore(0, 0, true), "CAP_SYS_NICE allows any");
        assert!(
            !may_restore(0, 0, false),
            "the default RLIMIT_NICE allows none"
        );
        assert!(may_restore(0, 20, false), "20 allows nice 0");
        assert!(!may_restore(-5, 20, false), "but not below it");
        assert!(may_restore(5, 15, false));
    }

    #[test]
    fn the_step_is_a_whole_number_from_0_to_19() {
        assert_eq!(step(None).unwrap(), DEFAULT_STEP);
        assert_eq!(step(Some(" 0 ")).unwrap(), 0);
        assert_eq!(step(Some("19")).unwrap(), 19);
        for bad in ["20", "-1", "ten", ""] {
            let e = step(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains(START_NICE_ENV) && e.contains("from 0 to 19"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_step_is_bounded_by_the_lowest_priority() {
        assert_eq!(start_nice(0, 10), Some(10));
        assert_eq!(start_nice(15, 10), Some(19));
        assert_eq!(start_nice(19, 10), None, "already the lowest");
        assert_eq!(start_nice(0, 0), None, "turned off");
        assert_eq!(start_nice(0, -5), None, "never raised");
        assert_eq!(start_nice(-20, 50), Some(-1));
    }

    #[test]
    fn cap_sys_nice_is_read_from_the_effective_set() {
        let status = |eff: &str| format!("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t{eff}\n");
        assert!(has_cap_sys_nice(&status("000001ffffffffff")));
        assert!(has_cap_sys_nice(&status("0000000000800000")));
        assert!(
            !has_cap_sys_nice(&status("00000000a80425fb")),
            "docker's default set"
        );
        assert!(!has_cap_sys_nice("Name:\tx\n"), "no set read: none");
    }

    /// In a thread of its own (nice values are per thread): lowered, a thread it starts
    /// inherits the lowered priority, and restoring sets both back. Where this process could not
    /// take its priority back, it is not lowered at all.
    #[test]
    fn restoring_sets_every_thread_back() {
        std::thread::spawn(|| {
            let original = nice_of(0).unwrap();
            let Some(lowered) = lower(DEFAULT_STEP) else {
                let status = std::fs::read_to_string("/proc/self/status").unwrap();
                assert!(
                    start_nice(original, DEFAULT_STEP).is_none()
                        || !may_restore(
                            original,
                            rlimit_nice().unwrap(),
                            has_cap_sys_nice(&status)
                        ),
                    "lower() declined although it could restore"
                );
                assert_eq!(nice_of(0).unwrap(), original);
                return;
            };
            assert!(nice_of(0).unwrap() > original);
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let child = std::thread::spawn(move || {
                // SAFETY: gettid takes nothing.
                tid_tx
                    .send(unsafe { libc::gettid() } as libc::id_t)
                    .unwrap();
                done_rx.recv().unwrap();
            });
            let child_tid = tid_rx.recv().unwrap();
            assert!(nice_of(child_tid).unwrap() > original, "inherited");
            assert!(lowered.restore().unwrap() >= 2);
            assert_eq!(nice_of(0).unwrap(), original);
            assert_eq!(nice_of(child_tid).unwrap(), original);
            done_tx.send(()).unwrap();
            child.join().unwrap();
        })
        .join()
        .unwrap();
    }
}
