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
    /// Clearing old files: it may wait for an idle core however long that takes.
    Far,
}

impl Below {
    /// The nice value: 10, a tenth of a core's share beside a busy thread; 19, about 1.5%.
    fn nice(self) -> i32 {
        match self {
            Below::Somewhat => 10,
            Below::Far => 19,
        }
    }
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
            lower_this_thread(below.nice());
            work()
        })
}

/// Gives this thread (not the whole process: Linux schedules threads, and takes a thread's id
/// where `setpriority` asks for a process's) the nice value `nice`. If the system refuses, the
/// thread runs as it was: slower jobs are better than none.
fn lower_this_thread(nice: i32) {
    // SAFETY: setpriority and gettid take no pointers and change only this thread's priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as above; getpriority only reads.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn background_work_runs_below_the_session_and_leaves_its_caller_as_it_was() {
        let before = nice_of_this_thread();
        let far = spawn("test-far", Below::Far, nice_of_this_thread).unwrap();
        let somewhat = spawn("test-somewhat", Below::Somewhat, || {
            (
                nice_of_this_thread(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
        assert_eq!(far.join().unwrap(), 19);
        assert_eq!(
            somewhat.join().unwrap(),
            (10, Some("test-somewhat".to_string()))
        );
        assert_eq!(
            nice_of_this_thread(),
            before,
            "the caller's thread is untouched"
        );
    }
}
