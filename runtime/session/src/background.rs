//! Threads for the session's work that the user does not wait for: loading rust-analyzer,
//! clearing what old sessions and cells left behind. They run below the session's other
//! threads, so that they take no core from a job or a cell's compile that could use it.
//!
//! Clearing the cache looked at 26,000 files on a busy machine, 80 ms of a core spent during
//! the session's first job, which on two cores it slowed by as much as 40 ms.

use std::thread::JoinHandle;

/// How far below the session's other threads a background thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Below {
    /// Loading rust-analyzer: a completion asked for soon after waits on it.
    Somewhat,
    /// Clearing old files: it waits for an idle core, however long that takes.
    Far,
}

/// Runs `work` on a new thread named `name`, scheduled `below` the session's other threads.
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    below: Below,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_this_thread(below);
            work()
        })
}

/// Puts this thread `below` the others. Linux schedules threads, not processes, and takes a
/// thread's id where these calls ask for a process's: the session's other threads keep their
/// place. If the system refuses, the thread runs as it was: slower jobs are better than none.
fn lower_this_thread(below: Below) {
    // SAFETY: gettid, setpriority and sched_setscheduler read only the parameters given and
    // change only this thread's scheduling.
    unsafe {
        let this = libc::gettid();
        match below {
            // A nice value of 10: about a tenth of a busy thread's share of a core.
            Below::Somewhat => {
                libc::setpriority(libc::PRIO_PROCESS, this as libc::id_t, 10);
            }
            // SCHED_IDLE, below every nice value: at nice 19, clearing the cache still took
            // 22 ms of a core during word count's first job.
            Below::Far => {
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(this, libc::SCHED_IDLE, &param);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's scheduling policy and nice value.
    fn scheduling_of_this_thread() -> (i32, i32) {
        // SAFETY: as above; these only read.
        unsafe {
            let this = libc::gettid();
            (
                libc::sched_getscheduler(this),
                libc::getpriority(libc::PRIO_PROCESS, this as libc::id_t),
            )
        }
    }

    #[test]
    fn background_work_runs_below_the_session_and_leaves_its_caller_as_it_was() {
        let before = scheduling_of_this_thread();
        assert_eq!(before.0, libc::SCHED_OTHER);
        let far = spawn("test-far", Below::Far, scheduling_of_this_thread).unwrap();
        let somewhat = spawn("test-somewhat", Below::Somewhat, || {
            (
                scheduling_of_this_thread(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
        assert_eq!(far.join().unwrap().0, libc::SCHED_IDLE);
        assert_eq!(
            somewhat.join().unwrap(),
            ((libc::SCHED_OTHER, 10), Some("test-somewhat".to_string()))
        );
        assert_eq!(
            scheduling_of_this_thread(),
            before,
            "the caller's thread is untouched"
        );
    }
}
