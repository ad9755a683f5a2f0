//! Moving a slot's thread off a core that another slot's thread waits for.
//!
//! The executor's runtime thread wakes the slots' threads for a job's tasks from the core it
//! runs on, and the kernel places a woken thread on a core that is idle at that moment: at
//! times both woken threads land on the same other core, one waiting behind the other, while
//! the runtime's core goes idle as soon as it is done and stays so for the whole task (the
//! kernel does not pull a thread that ran that recently). On LR's second iteration, the one
//! after the partitions were parsed, four tasks then ran one after the other on one core in
//! about half the runs (BENCHMARKS.md, "Slots' threads stacked on one core"). The running
//! thread, which sees the wake-up go unanswered, moves itself instead: its affinity leaves
//! out its core for a moment, which the kernel obeys at once, then is given back whole.

/// This thread's id, as `/proc` and the scheduler know it.
pub fn thread_id() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The core the calling thread runs on.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// Whether thread `tid` of this process waits for core `cpu`: runnable, and placed there. Called
/// from the thread running on `cpu`, so a runnable thread placed there is not running.
pub fn waits_on(tid: libc::pid_t, cpu: usize) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| state_and_cpu(&stat))
        .is_some_and(|(state, on)| state == 'R' && on == cpu)
}

/// A thread's scheduling state and the core it was last placed on, from its `/proc/.../stat`
/// line: the fields after the name (which may hold spaces and parentheses) are the state
/// (field 3) and, 36 further on, the processor (field 39).
fn state_and_cpu(stat: &str) -> Option<(char, usize)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let cpu = fields.nth(35)?.parse().ok()?;
    Some((state, cpu))
}

/// Moves the calling thread to another of the cores it may run on, and gives its affinity back
/// as it was; false where it may run on no other (or the kernel refused).
pub fn move_off_current_cpu() -> bool {
    let Some(cpu) = current_cpu() else {
        return false;
    };
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity and sched_setaffinity
    // read and write only the set given, of the size given, for the calling thread (pid 0).
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return false;
        }
        let mut elsewhere = allowed;
        libc::CPU_CLR(cpu, &mut elsewhere);
        if libc::CPU_COUNT(&elsewhere) == 0 || libc::sched_setaffinity(0, size, &elsewhere) != 0 {
            return false;
        }
        // The move is made before the call returns; given back, the affinity does not undo it.
        libc::sched_setaffinity(0, size, &allowed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_core_are_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tessera (task) 0) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 \
                    20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 1 37 38";
        assert_eq!(state_and_cpu(stat), Some(('R', 1)));
        assert_eq!(state_and_cpu("4242 (short) S 1 2"), None);
        assert_eq!(state_and_cpu("no name"), None);
    }

    #[test]
    fn this_thread_is_seen_running_where_it_runs() {
        // It may move between the two looks, rarely twice in a row.
        let seen = (0..5).any(|_| {
            let cpu = current_cpu().expect("the kernel says where a thread runs");
            waits_on(thread_id(), cpu)
        });
        assert!(seen);
    }

    /// The cores the calling thread may run on.
    fn allowed_cores() -> usize {
        // SAFETY: as in `move_off_current_cpu`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            libc::CPU_COUNT(&set) as usize
        }
    }

    #[test]
    fn a_thread_moved_off_its_core_runs_on_another_and_keeps_its_affinity() {
        let spawned = std::thread::spawn(|| {
            let allowed = allowed_cores();
            let before = current_cpu().unwrap();
            let moved = move_off_current_cpu();
            let after = current_cpu().unwrap();
            (allowed, before, moved, after, allowed_cores())
        });
        let (allowed, before, moved, after, allowed_after) = spawned.join().unwrap();
        assert_eq!(moved, allowed > 1, "moved with {allowed} core(s) allowed");
        if moved {
            assert_ne!(before, after);
        }
        assert_eq!(allowed_after, allowed, "the affinity is given back whole");
    }
}
