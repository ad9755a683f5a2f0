//! The block manager: cached partitions of RDDs, kept between jobs at their storage level —
//! deserialized batches in memory (`MEMORY_ONLY`, `MEMORY_AND_DISK`), encoded bytes in memory
//! (`MEMORY_ONLY_SER`) or on this executor's disk (`DISK_ONLY`, written by the task as its
//! records come, `block_file.rs`) — within a memory limit.
//!
//! When memory runs over the limit, the least recently used blocks go first: to disk if their
//! level allows, otherwise dropped. A dropped block is no error: a task that wanted it is told
//! it is missing and its partition is recomputed from lineage, as in Spark.
//!
//! Where the agent gives the executor host memory, a block of records that own memory, cached
//! at a memory level, also gets an encoded copy there, written by a thread of its own
//! (`host_copy.rs`): copies count against the limit, take a quarter of it at most, and go
//! before any block does.

use crate::block_encoding::{
    Framing, collect, decode, decode_each, decode_each_from, encode, encode_into, encode_owned,
};
use crate::block_file::BlockFileWriter;
use crate::error::ExecutorError;
use crate::host_copy::HostCopy;
use crate::host_memory::{FileBlock, FoundManifest, HostMemory};
use crate::runs::Gathered;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use tessera_plan::abi::{Batch, BatchVTable, SharedRecords};
use tessera_plan::host_block::RecordLayout;
use tessera_plan::{BatchCode, RddId, StorageLevel};

/// Where a block's records are.
enum Stored {
    Deserialized(Vec<Batch>),
    /// In files of host memory, which outlive this executor (`host_memory.rs`).
    InHostMemory(FileBlock),
    /// One encoded batch after another, each preceded by its length (u64, little-endian).
    Serialized(Vec<u8>),
    OnDisk(PathBuf),
}

/// One cached partition, with the functions (from the library that produced its batches) to
/// clone, encode, decode and free them.
pub struct Block {
    stored: Stored,
    vtable: BatchVTable,
    /// Where `vtable` comes from: another executor loads it to decode a copy.
    code: BatchCode,
    /// Bytes of memory it holds (none on disk).
    pub bytes: u64,
    /// Its encoded copy in host memory, if it has one (`host_copy.rs`).
    copy: Mutex<Option<HostCopy>>,
}

// SAFETY: a batch is a `Vec<T>` with `T: Send + Sync` (the API's `Data` bound); the executor
// only clones it (shared access) and frees it once, when the last reference goes.
unsafe impl Send for Block {}
unsafe impl Sync for Block {}

fn memory_bytes(batches: &[Batch], vtable: &BatchVTable) -> u64 {
    // SAFETY: the batches were produced with this table.
    batches
        .iter()
        .map(|&b| unsafe { (vtable.memory_bytes)(b) } as u64)
        .sum()
}

impl Block {
    fn new(stored: Stored, vtable: BatchVTable, code: BatchCode, bytes: u64) -> Block {
        Block {
            stored,
            vtable,
            code,
            bytes,
            copy: Mutex::new(None),
        }
    }

    /// Bytes of host memory its encoded copy holds, if it has one.
    fn copy_bytes(&self) -> u64 {
        self.copy.lock().as_ref().map_or(0, HostCopy::bytes)
    }

    /// How many records it holds, where they are kept deserialized (else 0).
    fn records(&self) -> u64 {
        match &self.stored {
            // SAFETY: the batches are live batches of this table.
            Stored::Deserialized(batches) => batches
                .iter()
                .map(|&b| unsafe { (self.vtable.len)(b) } as u64)
                .sum(),
            _ => 0,
        }
    }

    pub fn vtable(&self) -> &BatchVTable {
        &self.vtable
    }

    pub fn code(&self) -> &BatchCode {
        &self.code
    }

    /// Its block file, where it is kept on disk: a copy of it is sent from there a piece at a
    /// time, and kept in a file of its own there ([`BlockManager::put_block_file`]).
    pub fn file(&self) -> Option<&std::path::Path> {
        match &self.stored {
            Stored::OnDisk(path) => Some(path),
            _ => None,
        }
    }

    /// Its records encoded, as [`BlockManager::put_encoded`] takes them on another executor.
    pub fn encoded(&self) -> Result<Vec<u8>, ExecutorError> {
        match &self.stored {
            Stored::Deserialized(batches) => encode(batches, &self.vtable),
            Stored::InHostMemory(_) => {
                let batches = self.batches()?;
                let encoded = encode(&batches, &self.vtable);
                free(batches, &self.vtable);
                encoded
            }
            Stored::Serialized(bytes) => Ok(bytes.clone()),
            Stored::OnDisk(path) => {
                std::fs::read(path).map_err(|source| ExecutorError::CacheRead {
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    /// Whether its records are kept as records, for a task to read in place.
    pub fn read_in_place(&self) -> bool {
        matches!(
            self.stored,
            Stored::Deserialized(_) | Stored::InHostMemory(_)
        )
    }

    /// The pieces to read its records in place in, while the task holds the block, when they
    /// are kept as records.
    pub fn pieces(&self) -> Option<Vec<SharedRecords>> {
        match &self.stored {
            Stored::Deserialized(batches) => Some(crate::runs::pieces(batches, &self.vtable)),
            Stored::InHostMemory(block) => Some(block.pieces()),
            Stored::Serialized(_) | Stored::OnDisk(_) => None,
        }
    }

    /// A fresh copy of every batch, for a task to consume.
    pub fn batches(&self) -> Result<Vec<Batch>, ExecutorError> {
        match &self.stored {
            // SAFETY: cloning reads the batch; the block keeps its own.
            Stored::Deserialized(batches) => Ok(batches
                .iter()
                .map(|&b| unsafe { (self.vtable.clone)(b) })
                .collect()),
            // SAFETY: the block's files hold records of its table, which has runs (it keeps
            // only flat records there) and copies them.
            Stored::InHostMemory(block) => Ok(block
                .whole_runs()
                .into_iter()
                .map(|records| unsafe { crate::runs::copy(&self.vtable, records) })
                .collect()),
            Stored::Serialized(_) | Stored::OnDisk(_) => {
                collect(&self.vtable, |keep| self.each_batch(keep))
            }
        }
    }

    /// Hands `each` a fresh copy of every batch, for a task to consume, until it returns
    /// false. Records kept serialized or on disk are decoded a frame at a time as they are
    /// handed on: reading the partition never holds all of its records at once.
    pub fn each_batch(&self, mut each: impl FnMut(Batch) -> bool) -> Result<(), ExecutorError> {
        match &self.stored {
            Stored::Serialized(bytes) => decode_each(bytes, &self.vtable, each),
            Stored::OnDisk(path) => {
                let (file, len) = open_on_disk(path)?;
                decode_each_from(file, len, &self.vtable, disk_read_error(path), each)
            }
            Stored::Deserialized(_) | Stored::InHostMemory(_) => {
                let mut batches = self.batches()?.into_iter();
                while let Some(batch) = batches.next() {
                    if !each(batch) {
                        free(batches.collect(), &self.vtable);
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

/// What a failed read of the block file at `path` is.
fn disk_read_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> ExecutorError + Copy + '_ {
    move |source| ExecutorError::CacheRead {
        path: path.to_path_buf(),
        source,
    }
}

/// The block file at `path`, buffered, and its length.
fn open_on_disk(
    path: &std::path::Path,
) -> Result<(std::io::BufReader<std::fs::File>, u64), ExecutorError> {
    let read_error = disk_read_error(path);
    let file = std::fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    Ok((std::io::BufReader::new(file), len))
}

impl Drop for Block {
    fn drop(&mut self) {
        match &self.stored {
            Stored::Deserialized(batches) => {
                for &batch in batches {
                    // SAFETY: each batch is owned by this block and freed once.
                    unsafe { (self.vtable.drop)(batch) };
                }
            }
            Stored::OnDisk(path) => {
                let _ = std::fs::remove_file(path);
            }
            // Its files go with it.
            Stored::Serialized(_) | Stored::InHostMemory(_) => {}
        }
    }
}

struct Entry {
    block: Arc<Block>,
    level: StorageLevel,
    /// When it was last stored or read, for least-recently-used eviction.
    last_used: u64,
}

/// What happened to the blocks of a `put`: kept (with the bytes of memory each holds), and
/// blocks of other partitions dropped to make room.
#[derive(Default)]
pub struct PutOutcome {
    pub kept: Option<u64>,
    pub dropped: Vec<(RddId, u32)>,
}

/// Cached partitions by (rdd, partition).
type Blocks = HashMap<(RddId, u32), Entry>;

/// Bytes of memory `blocks` and their copies in host memory hold.
fn used(blocks: &Blocks) -> u64 {
    blocks
        .values()
        .map(|e| e.block.bytes + e.block.copy_bytes())
        .sum()
}

/// The share of the block manager's limit copies in host memory may take at most, one in
/// this many: they are memory the user's storage level did not ask for, which tasks may need.
const COPY_SHARE: u64 = 4;

/// Whether a copy of `bytes` fits beside `blocks` and their copies within `limit`.
fn copy_fits(blocks: &Blocks, limit: u64, bytes: u64) -> bool {
    let copies: u64 = blocks.values().map(|e| e.block.copy_bytes()).sum();
    used(blocks) + bytes <= limit && copies + bytes <= limit / COPY_SHARE
}

/// A block for the copier to write an encoded copy of, if it is still cached when its turn
/// comes.
struct CopyJob {
    block: Weak<Block>,
    key: (RddId, u32),
    level: StorageLevel,
}

/// The copier: writes the encoded copies of the blocks it is sent, one after another, at a
/// lower priority than the tasks, whose path it stays off. Ends when the block manager goes.
fn spawn_copier(
    blocks: Arc<Mutex<Blocks>>,
    limit: u64,
    memory: Arc<HostMemory>,
) -> std::sync::mpsc::Sender<CopyJob> {
    let (jobs, received) = std::sync::mpsc::channel::<CopyJob>();
    let copier = move || {
        // SAFETY: plain system calls on this thread; a priority that cannot be lowered leaves
        // it as it is.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        for job in received {
            if let Err(e) = write_copy(&blocks, limit, &memory, job) {
                tracing::warn!("{e}");
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("host-copies".into())
        .spawn(copier)
    {
        tracing::warn!("cannot start the thread that copies cached partitions to host memory: {e}");
    }
    jobs
}

/// Writes the copy `job` asks for, and gives it to its block, if the block is still cached
/// without one and there is room for it.
fn write_copy(
    blocks: &Mutex<Blocks>,
    limit: u64,
    memory: &HostMemory,
    job: CopyJob,
) -> Result<(), ExecutorError> {
    let Some(block) = job.block.upgrade() else {
        return Ok(());
    };
    let wanted = |blocks: &Blocks, bytes: u64| {
        let cached = blocks
            .get(&job.key)
            .is_some_and(|e| Arc::ptr_eq(&e.block, &block));
        // Apart: `copy_fits` takes this block's lock too.
        let has_copy = block.copy.lock().is_some();
        cached && !has_copy && copy_fits(blocks, limit, bytes)
    };
    if !wanted(&blocks.lock(), 0) {
        return Ok(());
    }
    let Stored::Deserialized(batches) = &block.stored else {
        // Only records kept deserialized are copied (`copy_later`).
        return Ok(());
    };
    // Written a frame at a time; its size is known once written, and a copy that finds no
    // room then goes again (its files with it). A batch a frame: a copy is only worth having
    // once written, and an executor killed before then loses it, so it is written the fastest
    // way; its frames are at most a run, never the whole partition.
    let code = (job.level, block.code());
    let copy = HostCopy::write(
        memory,
        job.key,
        code,
        block.records(),
        |out, write_error| encode_into(batches, &block.vtable, Framing::Batches, out, write_error),
    )?;
    let blocks = blocks.lock();
    if wanted(&blocks, copy.bytes()) {
        *block.copy.lock() = Some(copy);
    }
    Ok(())
}

/// Cached partitions by (rdd, partition), within `limit` bytes of memory.
pub struct BlockManager {
    blocks: Arc<Mutex<Blocks>>,
    clock: std::sync::atomic::AtomicU64,
    limit: u64,
    disk_dir: PathBuf,
    /// Dropped to make room for copies other executors sent, not yet told to the driver.
    unreported_drops: Mutex<Vec<(RddId, u32)>>,
    /// Where partitions of plain-byte records, and copies of others, are kept, if the agent
    /// gave any.
    host_memory: Option<Arc<HostMemory>>,
    /// Where blocks to copy to host memory go: the copier, started with the first (an
    /// executor that caches no records that own memory starts none).
    copier: std::sync::OnceLock<std::sync::mpsc::Sender<CopyJob>>,
}

impl BlockManager {
    pub fn new(
        limit: u64,
        disk_dir: PathBuf,
        host_memory: Option<Arc<HostMemory>>,
    ) -> BlockManager {
        BlockManager {
            blocks: Default::default(),
            clock: Default::default(),
            limit,
            disk_dir,
            unreported_drops: Mutex::default(),
            host_memory,
            copier: Default::default(),
        }
    }

    /// Where partitions of plain-byte records are kept, if anywhere.
    pub fn host_memory(&self) -> Option<Arc<HostMemory>> {
        self.host_memory.clone()
    }

    /// Bytes of memory it may hold.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn tick(&self) -> u64 {
        self.clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn get(&self, rdd: RddId, partition: u32) -> Option<Arc<Block>> {
        self.get_with_level(rdd, partition).map(|(block, _)| block)
    }

    /// The block and the level it is kept at.
    pub fn get_with_level(&self, rdd: RddId, partition: u32) -> Option<(Arc<Block>, StorageLevel)> {
        let now = self.tick();
        let mut blocks = self.blocks.lock();
        let entry = blocks.get_mut(&(rdd, partition))?;
        entry.last_used = now;
        Some((entry.block.clone(), entry.level))
    }

    /// A new file for a block: a block that replaces another never shares its file, which
    /// the old block deletes when the last task reading it lets go.
    pub(crate) fn disk_path(&self, rdd: RddId, partition: u32) -> PathBuf {
        self.disk_dir
            .join(format!("rdd-{rdd}-{partition}-{}", self.tick()))
    }

    /// A new block file for partition `partition` of `rdd` on this executor's disk, to write
    /// the partition to as it comes: from a task caching it on disk, a copy another executor
    /// sends, or a partition going to disk from memory.
    pub(crate) fn block_file_writer(
        &self,
        rdd: RddId,
        partition: u32,
        vtable: BatchVTable,
    ) -> Result<BlockFileWriter, ExecutorError> {
        BlockFileWriter::create(self.disk_path(rdd, partition), vtable)
    }

    /// Writes `batches` (encoded) to this executor's disk.
    fn to_disk(
        &self,
        rdd: RddId,
        partition: u32,
        batches: &[Batch],
        vtable: &BatchVTable,
    ) -> Result<Stored, ExecutorError> {
        let mut file = self.block_file_writer(rdd, partition, *vtable)?;
        file.write(batches)?;
        Ok(Stored::OnDisk(file.finish()?))
    }

    /// Writes partition `key`'s records, kept as `block`, to this executor's disk: from the
    /// batches it keeps, not from a copy of them, as memory runs short.
    fn block_to_disk(&self, key: (RddId, u32), block: &Block) -> Result<Stored, ExecutorError> {
        if let Stored::Deserialized(batches) = &block.stored {
            return self.to_disk(key.0, key.1, batches, &block.vtable);
        }
        let batches = block.batches()?;
        let stored = self.to_disk(key.0, key.1, &batches, &block.vtable);
        free(batches, &block.vtable);
        stored
    }

    /// Caches a copy another executor sent: `bytes` as [`Block::encoded`] wrote them, decoded
    /// with `vtable` (from `code`). Blocks dropped to make room are told to the driver with
    /// the next task's metrics ([`BlockManager::take_unreported_drops`]).
    pub fn put_encoded(
        &self,
        rdd: RddId,
        partition: u32,
        level: StorageLevel,
        bytes: &[u8],
        vtable: BatchVTable,
        code: BatchCode,
    ) -> Result<Option<u64>, ExecutorError> {
        let batches = decode(bytes, &vtable)?;
        let batches = Gathered::Batches(batches);
        self.put_outside_a_task(rdd, partition, level, batches, vtable, code)
    }

    /// Caches the block file `file` wrote, a copy another executor sent a piece at a time of
    /// a partition it keeps on disk, as partition `partition` of `rdd` at `level`: each frame
    /// is decoded with `vtable` (from `code`) first, a frame at a time, so that a damaged copy
    /// is refused here, not found by a task. The bytes of memory it holds: none.
    pub(crate) fn put_block_file(
        &self,
        (rdd, partition, level): (RddId, u32, StorageLevel),
        file: BlockFileWriter,
        vtable: BatchVTable,
        code: BatchCode,
    ) -> Result<Option<u64>, ExecutorError> {
        let path = file.finish()?;
        let checked = open_on_disk(&path).and_then(|(from, len)| {
            decode_each_from(from, len, &vtable, disk_read_error(&path), |batch| {
                free(vec![batch], &vtable);
                true
            })
        });
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let gathered = Gathered::OnDisk(path);
        self.put_outside_a_task(rdd, partition, level, gathered, vtable, code)
    }

    /// As [`Self::put`], for what arrives outside a task (a copy, an adopted partition): the
    /// bytes kept, if kept; blocks dropped to make room are told to the driver with the next
    /// task's metrics ([`BlockManager::take_unreported_drops`]).
    fn put_outside_a_task(
        &self,
        rdd: RddId,
        partition: u32,
        level: StorageLevel,
        gathered: Gathered,
        vtable: BatchVTable,
        code: BatchCode,
    ) -> Result<Option<u64>, ExecutorError> {
        let outcome = self.put(rdd, partition, level, gathered, vtable, code)?;
        self.unreported_drops.lock().extend(outcome.dropped);
        Ok(outcome.kept)
    }

    /// Adopts the partition `found` names, which a lost executor kept in host memory
    /// ([`crate::host_memory::adopt`]; `table` is its records' table): the bytes it holds here,
    /// or `None` where there is no room for it. Blocks dropped to make room are told to the
    /// driver with the next task's metrics.
    pub fn adopt(
        &self,
        found: FoundManifest,
        table: BatchVTable,
    ) -> Result<Option<u64>, ExecutorError> {
        let memory = self
            .host_memory
            .as_ref()
            .ok_or(ExecutorError::NoHostMemory)?;
        let (rdd, partition) = (found.manifest.rdd, found.manifest.partition);
        match found.manifest.layout {
            RecordLayout::Encoded { .. } => {
                let (level, code) = (found.manifest.level, found.manifest.code.clone());
                let (batches, copy) = crate::host_copy::adopt(memory, found, &table)?;
                let gathered = Gathered::Batches(batches);
                let kept = self.put_outside_a_task(rdd, partition, level, gathered, table, code)?;
                self.attach_copy((rdd, partition), copy);
                Ok(kept)
            }
            RecordLayout::Flat { .. } => {
                let adopted = crate::host_memory::adopt(memory, found, table)?;
                let gathered = Gathered::InHostMemory(adopted.block);
                let (level, table, code) = (adopted.level, adopted.table, adopted.code);
                self.put_outside_a_task(rdd, partition, level, gathered, table, code)
            }
        }
    }

    /// Adopts the part of a partition a lost executor was computing, which `found` (its
    /// resume manifest) names, for the task computing it here to carry on from
    /// ([`crate::host_memory::adopt_partial`]): the partition and the records it holds.
    pub fn adopt_partial(
        &self,
        found: FoundManifest,
        table: BatchVTable,
    ) -> Result<((RddId, u32), u64), ExecutorError> {
        let memory = self
            .host_memory
            .as_ref()
            .ok_or(ExecutorError::NoHostMemory)?;
        crate::host_memory::adopt_partial(memory, found, table)
    }

    /// Blocks dropped outside a task since the last call, for the driver to forget.
    pub fn take_unreported_drops(&self) -> Vec<(RddId, u32)> {
        std::mem::take(&mut *self.unreported_drops.lock())
    }

    /// Caches `gathered` (records of `vtable`, from `code`) as partition `partition` of `rdd`
    /// at `level`, making room by eviction if memory runs over the limit. Takes the records.
    pub fn put(
        &self,
        rdd: RddId,
        partition: u32,
        level: StorageLevel,
        gathered: Gathered,
        vtable: BatchVTable,
        code: BatchCode,
    ) -> Result<PutOutcome, ExecutorError> {
        let batches = match gathered {
            Gathered::Batches(batches) => batches,
            Gathered::OnDisk(path) => {
                let block = Block::new(Stored::OnDisk(path), vtable, code, 0);
                return Ok(self.insert(rdd, partition, level, block));
            }
            Gathered::InHostMemory(block) => {
                let bytes = block.bytes();
                let block = Block::new(Stored::InHostMemory(block), vtable, code, bytes);
                if block.bytes <= self.limit {
                    return Ok(self.insert(rdd, partition, level, block));
                }
                // Larger than all the memory there is: to disk if the level allows, as below.
                let batches = block.batches()?;
                let code = block.code.clone();
                return self.put(
                    rdd,
                    partition,
                    level,
                    Gathered::Batches(batches),
                    vtable,
                    code,
                );
            }
        };
        let stored = match level.one_copy() {
            StorageLevel::MemoryOnly | StorageLevel::MemoryAndDisk => {
                let bytes = memory_bytes(&batches, &vtable);
                if bytes <= self.limit {
                    (Stored::Deserialized(batches), bytes)
                } else if level.one_copy() == StorageLevel::MemoryAndDisk {
                    let stored = self.to_disk(rdd, partition, &batches, &vtable);
                    free(batches, &vtable);
                    (stored?, 0)
                } else {
                    // Larger than all the memory there is: not cached, as in Spark.
                    free(batches, &vtable);
                    return Ok(PutOutcome::default());
                }
            }
            StorageLevel::MemoryOnlySer => {
                // Room for about what the records take, so that the bytes are not copied as
                // they grow (records encode to about their size in memory, or less).
                let room = memory_bytes(&batches, &vtable);
                let encoded = encode_owned(batches, &vtable, room as usize)?;
                let bytes = encoded.len() as u64;
                if bytes > self.limit {
                    return Ok(PutOutcome::default());
                }
                (Stored::Serialized(encoded), bytes)
            }
            _ => {
                let stored = self.to_disk(rdd, partition, &batches, &vtable);
                free(batches, &vtable);
                (stored?, 0)
            }
        };
        let (stored, bytes) = stored;
        let deserialized = matches!(stored, Stored::Deserialized(_));
        let block = Block::new(stored, vtable, code, bytes);
        let outcome = self.insert(rdd, partition, level, block);
        if deserialized && outcome.kept.is_some() && level.replication() == 1 {
            self.copy_later((rdd, partition), level);
        }
        Ok(outcome)
    }

    /// Has the copier write an encoded copy in host memory of the block just kept as
    /// partition `key` at `level`, where the executor has host memory.
    fn copy_later(&self, key: (RddId, u32), level: StorageLevel) {
        let Some(memory) = &self.host_memory else {
            return;
        };
        let copier = self
            .copier
            .get_or_init(|| spawn_copier(self.blocks.clone(), self.limit, memory.clone()));
        if let Some(entry) = self.blocks.lock().get(&key) {
            let block = Arc::downgrade(&entry.block);
            let _ = copier.send(CopyJob { block, key, level });
        }
    }

    /// Gives the block kept as partition `key` `copy`, its encoded copy in host memory, if it
    /// has none and there is room for it (otherwise the copy goes).
    fn attach_copy(&self, key: (RddId, u32), copy: HostCopy) {
        let blocks = self.blocks.lock();
        if let Some(entry) = blocks.get(&key)
            && copy_fits(&blocks, self.limit, copy.bytes())
        {
            entry.block.copy.lock().get_or_insert(copy);
        }
    }

    /// Keeps `block` as partition `partition` of `rdd` at `level`, evicting others to make
    /// room.
    fn insert(&self, rdd: RddId, partition: u32, level: StorageLevel, block: Block) -> PutOutcome {
        let block = Arc::new(block);
        let now = self.tick();
        let mut blocks = self.blocks.lock();
        blocks.insert(
            (rdd, partition),
            Entry {
                block,
                level,
                last_used: now,
            },
        );
        let dropped = self.evict(&mut blocks, (rdd, partition));
        PutOutcome {
            kept: blocks.get(&(rdd, partition)).map(|e| e.block.bytes),
            dropped,
        }
    }

    /// Frees memory, least recently used blocks first, until it is within the limit:
    /// `MEMORY_AND_DISK` blocks move to disk, others are dropped (returned). As in Spark, blocks
    /// of the RDD being stored are not evicted for it (a scan over an RDD larger than memory
    /// would otherwise evict each partition before it is read again); if that is not enough,
    /// the new block itself goes (to disk, or is not kept).
    fn evict(&self, blocks: &mut Blocks, keep: (RddId, u32)) -> Vec<(RddId, u32)> {
        let mut dropped = Vec::new();
        loop {
            if used(blocks) <= self.limit {
                return dropped;
            }
            // A copy buys only a faster recovery: the least recently used goes before any block.
            if let Some(entry) = blocks
                .values()
                .filter(|e| e.block.copy.lock().is_some())
                .min_by_key(|e| e.last_used)
            {
                entry.block.copy.lock().take();
                continue;
            }
            let victim = blocks
                .iter()
                .filter(|(key, e)| key.0 != keep.0 && e.block.bytes > 0)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(key, _)| *key)
                .unwrap_or(keep);
            let entry = blocks.remove(&victim).expect("found above");
            if entry.level.one_copy() == StorageLevel::MemoryAndDisk {
                let stored = self.block_to_disk(victim, &entry.block);
                if let Ok(stored) = stored {
                    let (vtable, code) = (entry.block.vtable, entry.block.code.clone());
                    let block = Arc::new(Block::new(stored, vtable, code, 0));
                    blocks.insert(
                        victim,
                        Entry {
                            block,
                            level: entry.level,
                            last_used: entry.last_used,
                        },
                    );
                    continue;
                }
            }
            tracing::debug!(
                rdd = victim.0,
                partition = victim.1,
                "evicted a cached partition"
            );
            if victim == keep {
                return dropped;
            }
            dropped.push(victim);
        }
    }

    /// Drops every partition of `rdd`, and the parts of its partitions adopted from lost
    /// executors; tasks still reading one keep it until they finish.
    pub fn drop_rdd(&self, rdd: RddId) -> usize {
        if let Some(memory) = &self.host_memory {
            memory.drop_partials(rdd);
        }
        let mut blocks = self.blocks.lock();
        let before = blocks.len();
        blocks.retain(|(id, _), _| *id != rdd);
        before - blocks.len()
    }
}

pub(crate) fn free(batches: Vec<Batch>, vtable: &BatchVTable) {
    for batch in batches {
        // SAFETY: the caller owns these batches and does not use them again.
        unsafe { (vtable.drop)(batch) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::block_encoding::tests::{VTABLE, drop_batch, len};

    fn batch(bytes: usize) -> Vec<Batch> {
        vec![Box::into_raw(Box::new(vec![7u8; bytes])) as Batch]
    }

    fn code() -> BatchCode {
        BatchCode::Operator(tessera_plan::CodeRef {
            library: "cell".into(),
            offset: 64,
        })
    }

    fn manager(limit: u64) -> (BlockManager, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("tessera-blocks-{}-{limit}", std::process::id()));
        (BlockManager::new(limit, dir.clone(), None), dir)
    }

    #[test]
    fn a_copy_of_a_block_file_is_checked_before_it_is_cached_and_a_damaged_one_leaves_nothing() {
        let (blocks, dir) = manager(3 << 20);
        let records = batch(3000);
        let frames = encode(&records, &VTABLE).unwrap();
        free(records, &VTABLE);
        // Pieces as they come from the other executor: the file is the copy's frames.
        let mut file = blocks.block_file_writer(5, 0, VTABLE).unwrap();
        file.write_encoded(&frames[..10]).unwrap();
        file.write_encoded(&frames[10..]).unwrap();
        let key = (5, 0, StorageLevel::DiskOnly2);
        assert!(blocks.put_block_file(key, file, VTABLE, code()).is_ok());
        let block = blocks.get(5, 0).expect("the copy is cached");
        assert!(block.file().is_some(), "on disk");
        let read = crate::block_encoding::tests::contents_of(block.batches().unwrap());
        assert_eq!(read, [vec![7u8; 3000]]);
        // A copy cut short is refused: not cached, and its file removed.
        let mut file = blocks.block_file_writer(5, 1, VTABLE).unwrap();
        file.write_encoded(&frames[..frames.len() - 1]).unwrap();
        let key = (5, 1, StorageLevel::DiskOnly2);
        assert!(blocks.put_block_file(key, file, VTABLE, code()).is_err());
        assert!(blocks.get(5, 1).is_none());
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("rdd-5-1-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn the_least_recently_used_block_of_another_rdd_goes_first() {
        let (blocks, _) = manager(300);
        let put = |rdd, p| {
            blocks
                .put(
                    rdd,
                    p,
                    StorageLevel::MemoryOnly,
                    Gathered::Batches(batch(100)),
                    VTABLE,
                    code(),
                )
                .unwrap()
        };
        put(1, 0);
        put(1, 1);
        put(2, 0);
        // Reading rdd 1 partition 0 makes partition 1 the least recently used.
        assert!(blocks.get(1, 0).is_some());
        let outcome = put(3, 0);
        assert_eq!(outcome.kept, Some(100));
        assert_eq!(outcome.dropped, vec![(1, 1)]);
        assert!(blocks.get(1, 1).is_none());
        assert_eq!(blocks.get(1, 0).unwrap().batches().unwrap().len(), 1);
    }

    #[test]
    fn a_block_that_does_not_fit_beside_its_own_rdd_is_not_kept_or_goes_to_disk() {
        let (blocks, dir) = manager(250);
        let put = |p, level| {
            blocks
                .put(9, p, level, Gathered::Batches(batch(100)), VTABLE, code())
                .unwrap()
        };
        put(0, StorageLevel::MemoryOnly);
        put(1, StorageLevel::MemoryOnly);
        let outcome = put(2, StorageLevel::MemoryOnly);
        assert_eq!((outcome.kept, outcome.dropped), (None, vec![]));
        assert!(blocks.get(9, 0).is_some() && blocks.get(9, 1).is_some());

        let outcome = put(3, StorageLevel::MemoryAndDisk);
        assert_eq!(outcome.kept, Some(0), "kept on disk");
        let read = blocks.get(9, 3).unwrap().batches().unwrap();
        assert_eq!(unsafe { len(read[0]) }, 100);
        for b in read {
            unsafe { drop_batch(b) };
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_copy_keeps_the_records_and_the_code_of_the_block_it_copies() {
        let (first, _) = manager(1000);
        first
            .put(
                4,
                1,
                StorageLevel::MemoryOnly2,
                Gathered::Batches(batch(100)),
                VTABLE,
                code(),
            )
            .unwrap();
        let encoded = first.get(4, 1).unwrap().encoded().unwrap();
        let (second, _) = manager(150);
        second
            .put(
                5,
                0,
                StorageLevel::MemoryOnly,
                Gathered::Batches(batch(100)),
                VTABLE,
                code(),
            )
            .unwrap();
        let kept = second
            .put_encoded(4, 1, StorageLevel::MemoryOnly2, &encoded, VTABLE, code())
            .unwrap();
        assert_eq!(kept, Some(100));
        let copy = second.get(4, 1).unwrap();
        assert_eq!(copy.code(), &code());
        let read = copy.batches().unwrap();
        assert_eq!(unsafe { &*(read[0] as *const Vec<u8>) }, &vec![7u8; 100]);
        free(read, &VTABLE);
        // The block the copy displaced is told to the driver once, with a later task.
        assert_eq!(second.take_unreported_drops(), vec![(5, 0)]);
        assert!(second.take_unreported_drops().is_empty());
    }

    /// A block manager of `limit` bytes with host memory in a directory of its own.
    fn with_host_memory(name: &str, limit: u64) -> (BlockManager, Arc<HostMemory>) {
        let dir =
            std::env::temp_dir().join(format!("tessera-blocks-host-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let memory = Arc::new(HostMemory::new(dir.clone()).unwrap());
        let blocks = BlockManager::new(limit, dir.join("disk"), Some(memory.clone()));
        (blocks, memory)
    }

    /// Waits (at most ten seconds) until the copier has given partition `key` a copy.
    fn copied(blocks: &BlockManager, key: (RddId, u32)) -> u64 {
        for _ in 0..1000 {
            let bytes = blocks.get(key.0, key.1).map_or(0, |b| b.copy_bytes());
            if bytes > 0 {
                return bytes;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("partition {key:?} got no copy in host memory");
    }

    fn read(block: &Block) -> Vec<u8> {
        let batches = block.batches().unwrap();
        let read = batches
            .iter()
            .flat_map(|&b| unsafe { (*(b as *const Vec<u8>)).clone() })
            .collect();
        free(batches, &VTABLE);
        read
    }

    #[test]
    fn a_block_of_records_that_own_memory_is_copied_to_host_memory_for_another_to_adopt() {
        let (lost, lost_memory) = with_host_memory("lost", 1000);
        let records: Vec<u8> = (0..100).collect();
        let batches = vec![Box::into_raw(Box::new(records.clone())) as Batch];
        let level = StorageLevel::MemoryAndDisk;
        lost.put(6, 2, level, Gathered::Batches(batches), VTABLE, code())
            .unwrap();
        assert_eq!(
            copied(&lost, (6, 2)),
            108,
            "one frame: its length and its bytes"
        );
        // The executor dies: what it kept in its own memory goes, its copy stays.
        std::mem::forget(lost);

        let (adopter, memory) = with_host_memory("adopter", 1000);
        let found = crate::host_memory::Manifests::list(lost_memory.dir())
            .unwrap()
            .read((6, 2))
            .unwrap();
        assert_eq!(adopter.adopt(found, VTABLE).unwrap(), Some(100));
        let (block, kept_at) = adopter.get_with_level(6, 2).unwrap();
        assert_eq!((read(&block), kept_at), (records, level));
        assert!(
            block.read_in_place(),
            "decoded, as the lost executor kept it"
        );
        assert_eq!(
            block.copy_bytes(),
            108,
            "the adopted copy is the adopter's now"
        );
        drop(block);
        adopter.drop_rdd(6);
        let left: Vec<_> = std::fs::read_dir(memory.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "disk")
            .collect();
        assert!(left.is_empty(), "the copy goes with its block: {left:?}");
        for memory in [lost_memory, memory] {
            let _ = std::fs::remove_dir_all(memory.dir());
        }
    }

    #[test]
    fn copies_take_a_quarter_of_the_limit_at_most_and_go_before_any_block() {
        let (blocks, memory) = with_host_memory("limit", 440);
        let put = |rdd, level| {
            blocks
                .put(rdd, 0, level, Gathered::Batches(batch(100)), VTABLE, code())
                .unwrap()
        };
        let job = |rdd| CopyJob {
            block: Arc::downgrade(&blocks.get(rdd, 0).unwrap()),
            key: (rdd, 0),
            level: StorageLevel::MemoryOnly,
        };
        let copy_bytes = |rdd| blocks.get(rdd, 0).unwrap().copy_bytes();
        put(1, StorageLevel::MemoryOnly);
        assert_eq!(copied(&blocks, (1, 0)), 108);
        // A quarter of the limit, 110 bytes, holds one copy: the next blocks get none.
        put(2, StorageLevel::MemoryOnly);
        put(3, StorageLevel::MemoryOnly);
        for rdd in [2, 3] {
            write_copy(&blocks.blocks, blocks.limit, &memory, job(rdd)).unwrap();
            assert_eq!(copy_bytes(rdd), 0);
        }
        // Four blocks of 100 bytes and a copy of 108 are over the limit: the copy goes, not
        // a block.
        let outcome = put(4, StorageLevel::MemoryOnly);
        assert_eq!((outcome.kept, outcome.dropped), (Some(100), vec![]));
        assert_eq!(copy_bytes(1), 0);
        // Nor is there room left for another.
        write_copy(&blocks.blocks, blocks.limit, &memory, job(4)).unwrap();
        assert_eq!(copy_bytes(4), 0);
        let _ = std::fs::remove_dir_all(memory.dir());
    }

    #[test]
    fn a_block_kept_at_a_replicated_level_gets_no_copy() {
        // A block kept at a replicated level has its other copy on another executor.
        let (replicated, memory) = with_host_memory("replicated", 1000);
        let put = |rdd, level, bytes| {
            let batches = Gathered::Batches(batch(bytes));
            replicated
                .put(rdd, 0, level, batches, VTABLE, code())
                .unwrap()
        };
        put(3, StorageLevel::MemoryOnly2, 100);
        put(4, StorageLevel::MemoryOnly, 10);
        // Copies are written in turn: once the later block has one, the earlier was passed by.
        copied(&replicated, (4, 0));
        assert_eq!(replicated.get(3, 0).unwrap().copy_bytes(), 0);
        let _ = std::fs::remove_dir_all(memory.dir());
    }
}
