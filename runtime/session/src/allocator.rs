//! The allocator of every process that hosts a session, and of the child that runs its cells:
//! mimalloc with its `override` feature, as the executors have it, so that it also serves the
//! `malloc` of the cell libraries the child loads, where actions bring their results.
//!
//! With the C library's allocator, collecting 100,000 pairs of a word and a count from cached
//! partitions took 10.0 ms (`local[2]`, release, means of 200), a fifth of it page faults: the
//! collect's buffers, past glibc's threshold for memory mapped on its own, were mapped and
//! unmapped again every time. With mimalloc it took 6.9 ms, and word count's job lost 5 ms
//! between its last task and the counts in the cell (7 ms against 12).
//!
//! Its huge pages are off, as the executors' are: [`crate::child_process_hook`], which every
//! such process runs first, turns them off through `tessera_memory`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
