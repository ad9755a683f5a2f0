//! How Tessera's processes take memory from the system. Executors and every process that hosts
//! a session (and the child that runs its cells) allocate through mimalloc, which asks the
//! kernel for transparent huge pages on its arenas; [`disable_transparent_huge_pages`] turns
//! them off for the whole process.
//!
//! A huge page is resident whole and zeroed whole at its first touch, 2 MiB at a time, however
//! little of it is used:
//!
//! * on an executor, the LR points' resident growth was 1.42x to 1.63x their raw size with huge
//!   pages and 1.30x to 1.51x without, with later iterations as fast;
//! * in a session's host, the driver zeroed huge pages for the buffers that took the reduce
//!   tasks' results of word count (a third of its time while they came in); in four
//!   interleaved rounds the job took 324–397 ms with them and 319–323 ms without
//!   (BENCHMARKS.md).
//!
//! Redis and MongoDB advise the same.

#![deny(missing_docs)]

/// Turns transparent huge pages off for this process and the processes it starts, unless
/// `MIMALLOC_ALLOW_THP` says otherwise (mimalloc's own option, read when it starts). Call it
/// before the process allocates much: memory already backed by huge pages stays so.
pub fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        tracing::debug!(
            "transparent huge pages stay as the system sets them: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_takes_no_huge_pages_after_it() {
        // SAFETY: PR_GET_THP_DISABLE takes no pointers.
        let before = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        disable_transparent_huge_pages();
        // SAFETY: as above.
        let after = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            assert_eq!(after, before);
        } else {
            assert_eq!(after, 1);
        }
    }
}
