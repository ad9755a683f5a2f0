//! A partition being cached, kept as its batches come, and read back in pieces.
//!
//! Operators hand on batches of a few thousand records, each its own allocation. Kept as they
//! come, a cached partition is that many separate stretches of memory, and every pass over it
//! (every iteration of an iterative job) is a little slower than a pass over the same records
//! side by side: LR's tasks took 7.6–7.8 ns a point against 7.3–7.4 (`BENCHMARKS.md`, "Cached
//! partitions in runs"). Where the cell's table knows how ([`RunsVTable`]), the records are
//! copied into *runs* of several MiB as they come (the copy a cache step always made, now made
//! into a run), and read back in pieces of [`PIECE_RECORDS`], which idle slots can share
//! (`morsels.rs`) as they shared batches.
//!
//! A partition cached on disk goes to its block file as its records come instead
//! (`block_file.rs`), and so do the records of one that passes what the executor may cache
//! in memory ([`MemoryBound`]), where its level allows disk.

use crate::block_file::BlockFileWriter;
use crate::error::ExecutorError;
use crate::host_memory::{FileBlock, FileGathering, HostMemory};
use std::path::PathBuf;
use std::sync::Arc;
use tessera_plan::abi::{Batch, BatchVTable, FlatRecords, RunsVTable, SharedRecords};
use tessera_plan::{BatchCode, FileSplit, RddId, StorageLevel};

/// Records in a piece of a cached partition read in place: the size of the batches operators
/// hand on, so that a step reading a piece puts out what it would for a batch.
pub(crate) const PIECE_RECORDS: usize = 4096;

/// The alignment of a mapped file's start, which records of plain bytes need no more than.
const PAGE_BYTES: usize = 4096;

/// A partition a cache step kept: batches (or runs) of this process's memory, files of host
/// memory that outlive it (`host_memory.rs`), or a block file on this executor's disk
/// (`block_file.rs`).
pub(crate) enum Gathered {
    Batches(Vec<Batch>),
    InHostMemory(FileBlock),
    OnDisk(PathBuf),
}

/// A partition's records kept by a cache step while its task runs: written to a block file
/// for `DISK_ONLY`; copied into files of host memory where the records are plain bytes and
/// the executor has such memory; else into runs, or, for a table without runs, batch by batch,
/// within a [`MemoryBound`] at the memory levels.
pub(crate) struct Gathering {
    table: BatchVTable,
    /// The batches and runs with no room left.
    kept: Vec<Batch>,
    /// The run records go into next (null before the first).
    run: Batch,
    /// Where the records go instead, while they can.
    in_host_memory: Option<(Arc<HostMemory>, FileGathering)>,
    /// The block file the records go to instead, or why the partition is not cached after
    /// all (its file failed, or it passed its memory bound): what comes next is not kept.
    to_file: Option<Result<BlockFileWriter, ExecutorError>>,
    /// How much of the executor's memory the records kept in it may take.
    bound: Option<MemoryBound>,
}

/// What a partition gathered in this process's memory may take of it, and what it does past
/// that: its records go on to a block file (`MEMORY_AND_DISK`), written with those kept so
/// far, or the partition is not cached (`MEMORY_ONLY`). Spark's memory store gives up
/// unrolling a partition that does not fit the same way; here the bound is all the memory the
/// block manager may hold, the size past which it would not keep the partition in memory.
pub(crate) struct MemoryBound {
    /// The partition, as (rdd, partition), for the error that says it is not cached.
    key: (RddId, u32),
    /// Bytes of memory its records may take.
    limit: u64,
    /// Bytes of memory the records kept so far take.
    kept: u64,
    /// The block file past the bound, if the level allows disk.
    overflow: Option<PathBuf>,
}

impl MemoryBound {
    /// A bound of `limit` bytes for partition `key`, going on to a block file at `overflow`
    /// past it if given.
    pub(crate) fn new(key: (RddId, u32), limit: u64, overflow: Option<PathBuf>) -> MemoryBound {
        MemoryBound {
            key,
            limit,
            kept: 0,
            overflow,
        }
    }
}

impl Gathering {
    /// Nothing kept yet of partition `partition` of `rdd`, of batches made with `table`, to be
    /// kept at `level`; in `memory` where it can be.
    pub(crate) fn new(
        table: BatchVTable,
        memory: Option<Arc<HostMemory>>,
        (rdd, partition): (RddId, u32),
        level: StorageLevel,
    ) -> Gathering {
        let in_host_memory = in_host_memory(&table, memory, level)
            .map(|(memory, flat)| (memory, FileGathering::new(flat, rdd, partition)));
        Gathering::with(table, in_host_memory)
    }

    /// As [`Gathering::new`], for the first cache step of a task that reads text split `split`
    /// through recordwise steps, its records made by `code`: kept in host memory, it notes at
    /// each [`Gathering::checkpoint`] how far into the split it got, so that another executor
    /// can carry it on if this one dies. It carries on itself from the part a lost executor
    /// left, if one was adopted here ([`CarriedOn`]).
    pub(crate) fn with_checkpoints(
        table: BatchVTable,
        memory: Option<Arc<HostMemory>>,
        key: (RddId, u32),
        (level, code): (StorageLevel, &BatchCode),
        split: &FileSplit,
    ) -> (Gathering, Option<CarriedOn>) {
        let Some((memory, flat)) = in_host_memory(&table, memory, level) else {
            return (Gathering::with(table, None), None);
        };
        let partial = memory.take_partial(key, split, code);
        let from = partial.as_ref().map(|p| p.consumed_to());
        let files =
            FileGathering::with_checkpoints(flat, &memory, key, (level, code), split, partial);
        let carried_on = from.map(|from| CarriedOn {
            from,
            records: files.records(),
        });
        (Gathering::with(table, Some((memory, files))), carried_on)
    }

    /// Nothing kept yet of a partition written to `file` as its records come (`DISK_ONLY`):
    /// none of them stays in memory.
    pub(crate) fn on_disk(table: BatchVTable, file: BlockFileWriter) -> Gathering {
        let mut gathering = Gathering::with(table, None);
        gathering.to_file = Some(Ok(file));
        gathering
    }

    /// This gathering, keeping what it keeps in this process's memory within `bound`.
    pub(crate) fn within(mut self, bound: MemoryBound) -> Gathering {
        self.bound = Some(bound);
        self
    }

    fn with(table: BatchVTable, in_host_memory: Option<(Arc<HostMemory>, FileGathering)>) -> Self {
        Gathering {
            table,
            kept: Vec::new(),
            run: std::ptr::null_mut(),
            in_host_memory,
            to_file: None,
            bound: None,
        }
    }

    /// Notes that what it keeps is what the lines of its split before `consumed_to` make, for
    /// an executor that adopts it to carry on from ([`Gathering::with_checkpoints`]). A note
    /// that cannot be written is a warning: the task goes on, and only another's carrying it
    /// on is lost.
    pub(crate) fn checkpoint(&mut self, consumed_to: u64) {
        if let Some((_, files)) = &self.in_host_memory
            && let Err(e) = files.checkpoint(consumed_to)
        {
            tracing::warn!("{e}");
            self.leave_host_memory();
        }
    }

    /// What it kept so far in host memory in pieces: before any record came, the part a lost
    /// executor left that it started from, to push on to the steps after the cache.
    pub(crate) fn carried_on(&self) -> Vec<SharedRecords> {
        match &self.in_host_memory {
            Some((_, files)) => files.pieces(),
            None => Vec::new(),
        }
    }

    /// Keeps a copy of `batch`'s records; `batch` stays with the caller.
    ///
    /// # Safety
    /// `batch` must be a live batch of this gathering's table.
    pub(crate) unsafe fn keep(&mut self, batch: Batch) {
        if let Some((memory, files)) = &mut self.in_host_memory {
            match unsafe { files.keep(memory, batch) } {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("{e}");
                    self.leave_host_memory();
                }
            }
        }
        unsafe { self.keep_here(batch) };
    }

    /// Keeps `batch`'s records in this process's memory, within its bound, or in the block
    /// file they go to.
    unsafe fn keep_here(&mut self, batch: Batch) {
        if let Some(to_file) = &mut self.to_file {
            // A write that fails removes the file; the records that come after go nowhere.
            if let Ok(file) = to_file
                && let Err(e) = file.write(std::slice::from_ref(&batch))
            {
                *to_file = Err(e);
            }
            return;
        }
        match self.table.runs {
            Some(RunsVTable { gather, .. }) => {
                let run = unsafe { gather(self.run, batch) };
                if run != self.run && !self.run.is_null() {
                    self.kept.push(self.run);
                }
                self.run = run;
            }
            None => self.kept.push(unsafe { (self.table.clone)(batch) }),
        }
        if let Some(bound) = &mut self.bound {
            // SAFETY: a live batch of this table.
            bound.kept += unsafe { (self.table.memory_bytes)(batch) } as u64;
            if bound.kept > bound.limit {
                self.past_bound();
            }
        }
    }

    /// The records kept passed the bound: they go on to its block file, written with what was
    /// kept so far, or, where the level does not allow disk, the partition is not cached.
    /// Either way nothing stays in memory.
    fn past_bound(&mut self) {
        let Some(bound) = self.bound.take() else {
            return;
        };
        let kept = self.take_sealed();
        self.to_file = Some(match bound.overflow {
            Some(path) => BlockFileWriter::create(path, self.table)
                .and_then(|mut file| file.write(&kept).map(|()| file)),
            None => Err(ExecutorError::PartitionTooLarge {
                rdd: bound.key.0,
                partition: bound.key.1,
                limit: bound.limit,
            }),
        });
        crate::blocks::free(kept, &self.table);
    }

    /// Goes on in this process's memory, with copies of what host memory holds so far.
    fn leave_host_memory(&mut self) {
        let Some((_, files)) = self.in_host_memory.take() else {
            return;
        };
        for records in files.kept_so_far() {
            // SAFETY: the records are in the gathering's files, alive until it drops below;
            // only tables with flat records, and so with runs, keep files.
            let batch = unsafe { copy(&self.table, records) };
            unsafe { self.keep_here(batch) };
            unsafe { (self.table.drop)(batch) };
        }
    }

    /// What was kept, the last run with no room to spare; nothing is left here. A partition
    /// kept in host memory gets its manifest, written as `level` and `code` say. Fails where
    /// its block file could not be written, or it passed its bound at a level without disk.
    pub(crate) fn finish(
        &mut self,
        level: StorageLevel,
        code: &BatchCode,
    ) -> Result<Gathered, ExecutorError> {
        if let Some(to_file) = self.to_file.take() {
            return Ok(Gathered::OnDisk(to_file?.finish()?));
        }
        if let Some((memory, files)) = &mut self.in_host_memory {
            match files.finish(memory, level, code) {
                Ok(block) => {
                    self.in_host_memory = None;
                    return Ok(Gathered::InHostMemory(block));
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    self.leave_host_memory();
                }
            }
        }
        Ok(Gathered::Batches(self.take_sealed()))
    }

    /// What it kept in this process's memory, the last run sealed; nothing is left here.
    fn take_sealed(&mut self) -> Vec<Batch> {
        if !self.run.is_null() {
            if let Some(runs) = self.table.runs {
                // SAFETY: the run was made by this table's `gather`, and is ours.
                unsafe { (runs.seal)(self.run) };
            }
            self.kept
                .push(std::mem::replace(&mut self.run, std::ptr::null_mut()));
        }
        std::mem::take(&mut self.kept)
    }

    /// What it gathered since it last gave it up, the last run sealed: a chunk's records, for
    /// a gathering outside host memory ([`crate::open_chain::Keeping::Chunk`]).
    pub(crate) fn take_chunk(&mut self) -> KeptChunk {
        debug_assert!(
            self.in_host_memory.is_none() && self.to_file.is_none(),
            "a chunk's records are in runs"
        );
        KeptChunk {
            table: self.table,
            batches: self.take_sealed(),
        }
    }

    /// Keeps a copy of a chunk's records ([`Gathering::take_chunk`]) after what it kept so far,
    /// and frees the chunk's.
    pub(crate) fn keep_chunk(&mut self, chunk: KeptChunk) {
        for &batch in &chunk.batches {
            // SAFETY: the chunk's batches are live batches of the same table (the same steps
            // made them), which the chunk frees as it drops.
            unsafe { self.keep(batch) };
        }
    }
}

/// The records a chunk of a shared task cached, in the batches or runs they were gathered in
/// ([`Gathering::take_chunk`]); freed as it drops.
pub(crate) struct KeptChunk {
    table: BatchVTable,
    batches: Vec<Batch>,
}

// SAFETY: the batches are the chunk's own, made by the cell's table for records that are `Send`
// (operators' outputs move between the threads of a task), and used by one thread at a time.
unsafe impl Send for KeptChunk {}

impl Drop for KeptChunk {
    fn drop(&mut self) {
        for batch in self.batches.drain(..) {
            // SAFETY: each was made by this table, and nothing else holds it.
            unsafe { (self.table.drop)(batch) };
        }
    }
}

impl Drop for Gathering {
    fn drop(&mut self) {
        // What `finish` did not take: a failed task's partition, freed unsealed (its files,
        // if any, go with `in_host_memory`).
        let run = (!self.run.is_null()).then_some(self.run);
        for batch in self.kept.drain(..).chain(run) {
            // SAFETY: each was made by this table, and nothing else holds it.
            unsafe { (self.table.drop)(batch) };
        }
    }
}

/// The part of a partition a gathering starts from, which a lost executor left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CarriedOn {
    /// The offset in the split to read on from.
    pub(crate) from: u64,
    /// The records it holds.
    pub(crate) records: u64,
}

/// Where partitions of records of `table` kept at `level` go to host memory: the memory and
/// how the records are laid out.
fn in_host_memory(
    table: &BatchVTable,
    memory: Option<Arc<HostMemory>>,
    level: StorageLevel,
) -> Option<(Arc<HostMemory>, FlatRecords)> {
    let deserialized = matches!(
        level.one_copy(),
        StorageLevel::MemoryOnly | StorageLevel::MemoryAndDisk
    );
    // Files are mapped at a page's start, and records laid out one after another from it.
    let flat = table
        .runs
        .and_then(|runs| runs.flat)
        .filter(|flat| flat.align <= PAGE_BYTES)?;
    Some((memory?, flat)).filter(|_| deserialized)
}

/// The pieces to read `batches` (made with `table`) in: each batch in pieces of
/// [`PIECE_RECORDS`] records from its start, the last piece of each batch shorter, where the
/// table reads and copies records by range (it has runs); otherwise each batch whole.
pub(crate) fn pieces(batches: &[Batch], table: &BatchVTable) -> Vec<SharedRecords> {
    let piece_records = if table.runs.is_some() {
        PIECE_RECORDS
    } else {
        usize::MAX
    };
    // SAFETY: the batches are live batches of `table` (the caller's block holds them).
    let lens = batches.iter().map(|&batch| unsafe { (table.len)(batch) });
    batches
        .iter()
        .zip(lens)
        .flat_map(|(&batch, len)| {
            piece_starts(len, piece_records).map(move |start| SharedRecords {
                batch,
                start,
                len: piece_records.min(len - start),
                first: std::ptr::null(),
            })
        })
        .collect()
}

/// Where the pieces of `piece_records` of a batch of `len` records start.
fn piece_starts(len: usize, piece_records: usize) -> impl Iterator<Item = usize> {
    (0..len).step_by(piece_records)
}

/// A batch of its own holding the records `records` names, of a batch made with `table`.
///
/// # Safety
/// `records.batch` must be a live batch of `table`, and `records` one of its [`pieces`].
pub(crate) unsafe fn copy(table: &BatchVTable, records: SharedRecords) -> Batch {
    match table.runs {
        Some(runs) => unsafe { (runs.copy)(records) },
        // A table without runs is read in whole batches ([`pieces`]).
        None => unsafe { (table.clone)(records.batch) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_table::bytes;

    #[test]
    fn a_partition_kept_in_runs_is_read_back_in_pieces_with_every_record_in_order() {
        let records: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
        for table in [
            bytes::TABLE,
            BatchVTable {
                runs: None,
                ..bytes::TABLE
            },
        ] {
            let kept = match gather(table, None, &records) {
                Gathered::Batches(kept) => kept,
                Gathered::InHostMemory(_) => panic!("no host memory was given"),
                Gathered::OnDisk(_) => panic!("kept at a memory level"),
            };
            let lens: Vec<usize> = kept.iter().map(|&b| bytes::records(b).len()).collect();
            if table.runs.is_some() {
                // A run takes batches while they fit in its room, then the next one starts; the
                // last is sealed to what it holds.
                assert_eq!(lens, [6_000, 6_000, 6_000, 7_000]);
                assert_eq!(bytes::records(kept[3]).capacity(), 7_000);
            } else {
                assert_eq!(lens.len(), 9, "kept as they came: {lens:?}");
            }
            let pieces = pieces(&kept, &table);
            assert!(pieces.iter().all(|p| (1..=PIECE_RECORDS).contains(&p.len)));
            let read: Vec<u8> = pieces
                .iter()
                .flat_map(|&p| {
                    let copy = unsafe { copy(&table, p) };
                    let records = std::mem::take(bytes::records(copy));
                    unsafe { (table.drop)(copy) };
                    records
                })
                .collect();
            assert_eq!(read, records);
            for batch in kept {
                unsafe { (table.drop)(batch) };
            }
        }
    }

    /// `records` gathered with `table` (into `memory` where it can) as operators hand them on:
    /// 4096 records a batch, and a short one every 6,000.
    fn gather(table: BatchVTable, memory: Option<Arc<HostMemory>>, records: &[u8]) -> Gathered {
        let mut gathering = Gathering::new(table, memory, (1, 0), StorageLevel::MemoryOnly);
        keep_as_operators_hand_on(&mut gathering, table, records);
        gathering.finish(StorageLevel::MemoryOnly, &code()).unwrap()
    }

    fn keep_as_operators_hand_on(gathering: &mut Gathering, table: BatchVTable, records: &[u8]) {
        for part in records.chunks(6_000) {
            for batch in part.chunks(PIECE_RECORDS) {
                let batch = bytes::batch(batch.to_vec());
                unsafe { gathering.keep(batch) };
                unsafe { (table.drop)(batch) };
            }
        }
    }

    fn code() -> BatchCode {
        BatchCode::Source(tessera_plan::CodeRef {
            library: "12".repeat(32),
            offset: 8,
        })
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tessera-runs-{name}-{}", std::process::id()))
    }

    /// Byte batches gathered into runs that encode as their bytes.
    const ENCODED: BatchVTable = BatchVTable {
        runs: bytes::TABLE.runs,
        ..crate::block_encoding::tests::VTABLE
    };

    #[test]
    fn a_partition_cached_on_disk_goes_to_its_file_as_it_comes_and_none_stays_in_memory() {
        let records: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let path = scratch("on-disk").join("rdd-1-0-0");
        let file = BlockFileWriter::create(path.clone(), ENCODED).unwrap();
        let mut gathering = Gathering::on_disk(ENCODED, file);
        keep_as_operators_hand_on(&mut gathering, ENCODED, &records);
        // Before the task ends: all but what the file's buffer holds is written, and nothing
        // is kept in memory.
        let written = std::fs::metadata(&path).unwrap().len();
        assert!(
            written >= 90_000,
            "{written} bytes written as the records came"
        );
        assert!(gathering.kept.is_empty() && gathering.run.is_null());
        let Gathered::OnDisk(finished) = gathering.finish(StorageLevel::DiskOnly, &code()).unwrap()
        else {
            panic!("a partition cached on disk is a block file");
        };
        assert_eq!(finished, path);
        assert_eq!(read_file(&path), records);
    }

    /// The records of the block file at `path`, which it removes.
    fn read_file(path: &std::path::Path) -> Vec<u8> {
        let read = crate::block_file::tests::read_back(path, &ENCODED).concat();
        std::fs::remove_file(path).unwrap();
        read
    }

    #[test]
    fn a_partition_past_its_memory_bound_goes_on_to_disk_with_what_it_had_kept() {
        let records: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let path = scratch("past-bound").join("rdd-1-0-0");
        // Within a bound it does not pass, it stays in memory.
        let bound = MemoryBound::new((1, 0), 100_000, Some(path.clone()));
        let gathering = Gathering::new(ENCODED, None, (1, 0), StorageLevel::MemoryAndDisk);
        let mut gathering = gathering.within(bound);
        keep_as_operators_hand_on(&mut gathering, ENCODED, &records);
        assert!(!path.exists());
        match gathering
            .finish(StorageLevel::MemoryAndDisk, &code())
            .unwrap()
        {
            Gathered::Batches(kept) => crate::blocks::free(kept, &ENCODED),
            _ => panic!("a partition within its bound is kept in memory"),
        }
        // Past a bound of 30,000 bytes: what was kept goes to the file, then all that comes.
        let bound = MemoryBound::new((1, 0), 30_000, Some(path.clone()));
        let gathering = Gathering::new(ENCODED, None, (1, 0), StorageLevel::MemoryAndDisk);
        let mut gathering = gathering.within(bound);
        keep_as_operators_hand_on(&mut gathering, ENCODED, &records);
        assert!(gathering.kept.is_empty() && gathering.run.is_null());
        let Gathered::OnDisk(finished) = gathering
            .finish(StorageLevel::MemoryAndDisk, &code())
            .unwrap()
        else {
            panic!("a partition past its bound at a level that allows disk goes to disk");
        };
        assert_eq!(finished, path);
        assert_eq!(read_file(&path), records);
    }

    #[test]
    fn a_partition_past_its_memory_bound_at_a_memory_level_is_not_cached_and_says_what_to_do() {
        let records: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bound = MemoryBound::new((4, 2), 30_000, None);
        let gathering = Gathering::new(ENCODED, None, (4, 2), StorageLevel::MemoryOnly);
        let mut gathering = gathering.within(bound);
        keep_as_operators_hand_on(&mut gathering, ENCODED, &records);
        // Nothing stays in memory past the bound.
        assert!(gathering.kept.is_empty() && gathering.run.is_null());
        let error = match gathering.finish(StorageLevel::MemoryOnly, &code()) {
            Err(e @ ExecutorError::PartitionTooLarge { .. }) => e.to_string(),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a partition past its bound was cached"),
        };
        for says in [
            "partition 2 of rdd 4",
            "30000 bytes",
            "MemoryAndDisk",
            "--executor-memory-mb",
        ] {
            assert!(error.contains(says), "{error:?} says {says:?}");
        }
    }

    unsafe extern "C" fn failing_encode(
        _: Batch,
        _: tessera_plan::abi::ByteSink,
        _: tessera_plan::abi::ErrorSink,
    ) -> i32 {
        tessera_plan::abi::STATUS_ERROR
    }

    #[test]
    fn a_partition_whose_file_cannot_be_written_is_not_cached_and_leaves_no_file() {
        let failing = BatchVTable {
            encode: failing_encode,
            ..ENCODED
        };
        let path = scratch("on-disk-failing").join("rdd-1-0-0");
        let file = BlockFileWriter::create(path.clone(), failing).unwrap();
        let mut gathering = Gathering::on_disk(failing, file);
        keep_as_operators_hand_on(&mut gathering, failing, &[1, 2, 3]);
        assert!(!path.exists(), "the file goes as soon as a write fails");
        assert!(matches!(
            gathering.finish(StorageLevel::DiskOnly, &code()),
            Err(ExecutorError::CacheEncode { .. })
        ));
    }

    #[test]
    fn plain_bytes_go_to_host_memory_where_there_is_some_and_runs_where_it_fails() {
        let records: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
        let memory = Arc::new(HostMemory::new(scratch("host")).unwrap());
        let Gathered::InHostMemory(block) = gather(bytes::FLAT, Some(memory.clone()), &records)
        else {
            panic!("plain bytes, with host memory, are kept there");
        };
        let read: Vec<u8> = block
            .pieces()
            .iter()
            .flat_map(|p| unsafe { std::slice::from_raw_parts(p.first, p.len) }.to_vec())
            .collect();
        assert_eq!(read, records);
        drop(block);
        // Records that are not plain bytes stay in runs.
        assert!(matches!(
            gather(bytes::TABLE, Some(memory.clone()), &records),
            Gathered::Batches(_)
        ));
        // Host memory that fails (its directory gone) loses nothing: the records go on in runs.
        memory.remove();
        let Gathered::Batches(kept) = gather(bytes::FLAT, Some(memory), &records) else {
            panic!("kept in runs when host memory fails");
        };
        let read: Vec<u8> = kept
            .iter()
            .flat_map(|&b| bytes::records(b).clone())
            .collect();
        assert_eq!(read, records);
        for batch in kept {
            unsafe { (bytes::TABLE.drop)(batch) };
        }
    }

    #[test]
    fn chunks_gathered_apart_and_kept_in_their_order_make_the_partition() {
        let records: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
        let memory = Arc::new(HostMemory::new(scratch("chunks")).unwrap());
        // Chunks of 3,000 records, each gathered by a chain of its own (as threads sharing a
        // task do), taken in an order of their own, then kept in chunk order.
        let mut taken: Vec<(usize, KeptChunk)> = records
            .chunks(3_000)
            .enumerate()
            .map(|(index, chunk)| {
                let mut apart = Gathering::new(bytes::FLAT, None, (1, 0), StorageLevel::MemoryOnly);
                for batch in chunk.chunks(1_000) {
                    let batch = bytes::batch(batch.to_vec());
                    unsafe { apart.keep(batch) };
                    unsafe { (bytes::FLAT.drop)(batch) };
                }
                (index, apart.take_chunk())
            })
            .collect();
        taken.reverse();
        taken.sort_by_key(|(index, _)| *index);
        for host_memory in [Some(memory.clone()), None] {
            let mut partition =
                Gathering::new(bytes::FLAT, host_memory, (1, 0), StorageLevel::MemoryOnly);
            for (_, chunk) in &taken {
                let copy = KeptChunk {
                    table: chunk.table,
                    batches: chunk
                        .batches
                        .iter()
                        .map(|&b| unsafe { (chunk.table.clone)(b) })
                        .collect(),
                };
                partition.keep_chunk(copy);
            }
            let read: Vec<u8> = match partition.finish(StorageLevel::MemoryOnly, &code()).unwrap() {
                Gathered::InHostMemory(block) => block
                    .pieces()
                    .iter()
                    .flat_map(|p| unsafe { std::slice::from_raw_parts(p.first, p.len) }.to_vec())
                    .collect(),
                Gathered::Batches(kept) => {
                    let read = kept
                        .iter()
                        .flat_map(|&b| bytes::records(b).clone())
                        .collect();
                    for batch in kept {
                        unsafe { (bytes::FLAT.drop)(batch) };
                    }
                    read
                }
                Gathered::OnDisk(_) => unreachable!("gathered in memory"),
            };
            assert_eq!(read, records);
        }
        memory.remove();
    }

    #[test]
    fn a_batch_is_read_in_pieces_of_a_batch_s_size_from_its_start() {
        assert_eq!(piece_starts(0, PIECE_RECORDS).count(), 0);
        assert_eq!(piece_starts(100, PIECE_RECORDS).collect::<Vec<_>>(), [0]);
        assert_eq!(piece_starts(4096, PIECE_RECORDS).collect::<Vec<_>>(), [0]);
        assert_eq!(
            piece_starts(10_000, PIECE_RECORDS).collect::<Vec<_>>(),
            [0, 4096, 8192]
        );
    }

    #[test]
    fn a_batch_of_a_table_without_runs_is_one_piece_however_long() {
        // A DataFrame's batch: its table copies only whole batches.
        let table = BatchVTable {
            runs: None,
            ..bytes::TABLE
        };
        let batches = [bytes::batch(vec![1; 10_000]), bytes::batch(vec![2; 100])];
        let pieces = pieces(&batches, &table);
        let shape: Vec<(usize, usize)> = pieces.iter().map(|p| (p.start, p.len)).collect();
        assert_eq!(shape, [(0, 10_000), (0, 100)]);
        for batch in batches {
            unsafe { (table.drop)(batch) };
        }
    }
}
