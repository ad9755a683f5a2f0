//! Cached partitions that outlive this executor: records that are plain bytes
//! ([`FlatRecords`]), cached at a memory level, are kept in files of a memory-backed directory
//! the agent gives this executor (`TESSERA_MEMORY_DIR`, on tmpfs), mapped into this process and
//! read in place there as anonymous memory would be. Beside each partition's files goes a
//! manifest ([`HostBlockManifest`]).
//!
//! An executor that dies (killed, out of memory, aborted by a closure) takes its process's
//! memory with it, but not these files: the driver asks another executor on the same host to
//! *adopt* them ([`adopt`]), which moves them into its own directory and maps them, and the
//! partitions are read there in the next task as if nothing had happened — instead of being
//! computed again from lineage, which for LR's points (parsed text) costs about 55 times a
//! pass over them. Spark's external shuffle service serves a lost executor's disk-persisted
//! blocks for the same reason; here the blocks stay in memory. The agent removes what nobody
//! adopted a minute after its executor ended.
//!
//! Records that own memory elsewhere (strings, vectors) cannot be kept this way: their bytes
//! point into the process that made them. They stay in runs of the process's own memory
//! (`runs.rs`), as do partitions of an executor given no such directory; the block manager
//! keeps an encoded copy of them here instead (`host_copy.rs`).

use crate::error::ExecutorError;
use crate::runs::PIECE_RECORDS;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_plan::abi::{Batch, BatchVTable, FlatRecords, SharedRecords};
use tessera_plan::host_block::{
    HostBlockManifest, HostRun, ManifestKind, RecordLayout, ResumePoint, decode_host_block_manifest,
};
use tessera_plan::{BatchCode, FileSplit, RddId, StorageLevel};

/// The variable through which the agent names an executor's directory of host memory.
pub const MEMORY_DIR_ENV: &str = "TESSERA_MEMORY_DIR";

/// Bytes a file run is made with room for, as a run in the process's memory (`RUN_BYTES` of
/// the API's batches) is.
const RUN_BYTES: usize = 8 << 20;

/// Bytes a file's room grows by as records come: the memory is reserved before it is written,
/// so that a full directory is an error to handle, not a `SIGBUS` on a write to the mapping.
const RESERVE_STEP: usize = 2 << 20;

/// This executor's directory of host memory.
pub struct HostMemory {
    dir: PathBuf,
    /// Numbers the files, so that a partition computed again never shares its old files.
    next: AtomicU64,
    /// Partitions lost executors were computing, adopted for the task computing them here to
    /// carry on from ([`Partial`]).
    partials: parking_lot::Mutex<HashMap<(RddId, u32), Partial>>,
}

impl HostMemory {
    /// The directory `MEMORY_DIR_ENV` names, made if missing; `None` where it is not set.
    pub fn from_env() -> Result<Option<HostMemory>, ExecutorError> {
        match std::env::var_os(MEMORY_DIR_ENV) {
            Some(dir) if !dir.is_empty() => HostMemory::new(PathBuf::from(dir)).map(Some),
            _ => Ok(None),
        }
    }

    /// Keeps partitions in `dir`, made (readable by this user only) if missing.
    pub fn new(dir: PathBuf) -> Result<HostMemory, ExecutorError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| ExecutorError::HostMemory {
                path: dir.clone(),
                source,
            })?;
        Ok(HostMemory {
            dir,
            next: AtomicU64::new(0),
            partials: Default::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file's path for partition `partition` of `rdd`.
    pub(crate) fn run_path(&self, rdd: RddId, partition: u32) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("rdd-{rdd}-{partition}-{n}.run"))
    }

    /// A new manifest's path for partition `partition` of `rdd`.
    pub(crate) fn manifest_path(&self, kind: ManifestKind, rdd: RddId, partition: u32) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(HostBlockManifest::file_name(kind, rdd, partition, n))
    }

    /// The partial partition adopted here for partition `partition` of `rdd`, taken to carry
    /// on from, if it was computed from `split` with code `code`.
    pub(crate) fn take_partial(
        &self,
        (rdd, partition): (RddId, u32),
        split: &FileSplit,
        code: &BatchCode,
    ) -> Option<Partial> {
        let mut partials = self.partials.lock();
        let partial = partials.get(&(rdd, partition))?;
        if partial.resume.split != *split || partial.code != *code {
            return None;
        }
        partials.remove(&(rdd, partition))
    }

    /// Drops the partial partitions of `rdd` adopted here: nothing will carry them on.
    pub fn drop_partials(&self, rdd: RddId) {
        self.partials.lock().retain(|&(of, _), _| of != rdd);
    }

    /// Removes the directory, with what is in it: at a graceful end, nothing is to outlive us.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ExecutorError + Copy + '_ {
    move |source| ExecutorError::HostMemory {
        path: path.to_path_buf(),
        source,
    }
}

/// A file of records, mapped into this process.
struct FileRun {
    /// Open while records are written; closed once it is sealed (the mapping outlives it), so
    /// that a cache of many partitions holds no descriptor for each file.
    file: Option<File>,
    path: PathBuf,
    /// The mapping: `mapped` bytes, of which the first `len` hold records and the first
    /// `reserved` are backed by memory.
    ptr: *mut u8,
    mapped: usize,
    reserved: usize,
    len: usize,
}

// SAFETY: the mapping is written only through `&mut self` and read while shared.
unsafe impl Send for FileRun {}
unsafe impl Sync for FileRun {}

impl FileRun {
    /// A new file at `path` with room for `room` bytes, none reserved yet.
    fn create(path: PathBuf, room: usize) -> Result<FileRun, ExecutorError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        file.set_len(room as u64).map_err(io_error(&path))?;
        let ptr = map(&file, room).map_err(io_error(&path))?;
        Ok(FileRun {
            file: Some(file),
            path,
            ptr,
            mapped: room,
            reserved: 0,
            len: 0,
        })
    }

    /// The file at `path`, of exactly `len` bytes of records (another executor's, adopted).
    fn open(path: PathBuf, len: usize) -> Result<FileRun, ExecutorError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let actual = file.metadata().map_err(io_error(&path))?.len();
        if actual != len as u64 || len == 0 {
            return Err(ExecutorError::HostMemoryDamaged {
                path,
                reason: format!("{actual} bytes where its manifest names {len}"),
            });
        }
        let ptr = map(&file, len).map_err(io_error(&path))?;
        Ok(FileRun {
            file: None,
            path,
            ptr,
            mapped: len,
            reserved: len,
            len,
        })
    }

    fn room(&self) -> usize {
        self.mapped - self.len
    }

    /// Copies `bytes.len` bytes from `bytes.ptr` after the records it holds.
    ///
    /// # Safety
    /// `bytes` must be readable, and fit in [`Self::room`].
    unsafe fn append(&mut self, ptr: *const u8, len: usize) -> Result<(), ExecutorError> {
        debug_assert!(len <= self.room());
        let end = self.len + len;
        if end > self.reserved {
            let reserved = end.next_multiple_of(RESERVE_STEP).min(self.mapped);
            let file = self
                .file
                .as_ref()
                .expect("a sealed run takes no more records");
            // SAFETY: the range is within the mapping.
            unsafe { reserve(file, self.ptr, self.reserved, reserved - self.reserved) }
                .map_err(io_error(&self.path))?;
            self.reserved = reserved;
        }
        // SAFETY: the range is within the mapping and backed by memory reserved above; the
        // bytes are copied as they are (padding included), never read as values.
        unsafe { std::ptr::copy_nonoverlapping(ptr, self.ptr.add(self.len), len) };
        self.len = end;
        Ok(())
    }

    /// Gives back the room it has to spare (the mapping stays; nothing past `len` is read).
    fn seal(&mut self) -> Result<(), ExecutorError> {
        if let Some(file) = self.file.take() {
            file.set_len(self.len as u64)
                .map_err(io_error(&self.path))?;
        }
        self.reserved = self.len;
        Ok(())
    }
}

impl Drop for FileRun {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing reads it any more (a block holds its runs
        // until the last task reading it lets go).
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.mapped) };
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Maps `len` bytes of `file`, shared (so that the file, not this process, holds them).
fn map(file: &File, len: usize) -> std::io::Result<*mut u8> {
    // SAFETY: a new mapping of a file we hold open; its pointer is checked below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ptr as *mut u8)
}

/// Backs `len` bytes of `file` from `offset` (mapped from `map`) with memory now, and maps them
/// in one call rather than a fault at a time as they are first written.
///
/// # Safety
/// `offset..offset + len` must be within the mapping at `map`.
unsafe fn reserve(file: &File, map: *mut u8, offset: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: the range is within the mapping. Populating a shared mapping of tmpfs allocates
    // its pages, and reports a full file system as an error rather than a `SIGBUS` later.
    let populated =
        unsafe { libc::madvise(map.add(offset).cast(), len, libc::MADV_POPULATE_WRITE) };
    if populated == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EINVAL) {
        return Err(error);
    }
    // A kernel older than 5.14: memory reserved now, mapped page by page as it is written.
    // SAFETY: a plain system call on a file we hold open.
    let status = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            0,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if status != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The records of each of `runs` (of records of `record_size` bytes), whole.
fn whole(runs: &[FileRun], record_size: usize) -> Vec<SharedRecords> {
    runs.iter()
        .map(|run| SharedRecords {
            batch: std::ptr::null_mut(),
            start: 0,
            len: run.len / record_size,
            first: run.ptr,
        })
        .collect()
}

/// How many records of `record_size` bytes `runs` hold.
fn records_in(runs: &[FileRun], record_size: usize) -> u64 {
    runs.iter().map(|run| (run.len / record_size) as u64).sum()
}

/// The records of `runs` (of records of `record_size` bytes) in pieces of [`PIECE_RECORDS`]
/// from each file's start.
fn pieces(runs: &[FileRun], record_size: usize) -> Vec<SharedRecords> {
    runs.iter()
        .flat_map(|run| {
            let records = run.len / record_size;
            (0..records).step_by(PIECE_RECORDS).map(move |start| {
                // SAFETY: `start` is a record within the file's mapping.
                let first = unsafe { run.ptr.add(start * record_size) };
                SharedRecords {
                    batch: std::ptr::null_mut(),
                    start: 0,
                    len: PIECE_RECORDS.min(records - start),
                    first,
                }
            })
        })
        .collect()
}

/// Writes `manifest` at `path` (under another name first, so that an adopter never reads half
/// of one).
pub(crate) fn write_manifest(
    path: &Path,
    manifest: &HostBlockManifest,
) -> Result<(), ExecutorError> {
    let bytes = bincode::serialize(manifest).expect("a manifest serializes");
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(io_error(&partial))?;
    std::fs::rename(&partial, path).map_err(io_error(path))
}

/// A partition's records kept in files of host memory, with its manifest.
pub struct FileBlock {
    runs: Vec<FileRun>,
    record_size: usize,
    manifest: PathBuf,
}

impl FileBlock {
    /// Bytes of memory its records hold.
    pub fn bytes(&self) -> u64 {
        self.runs.iter().map(|r| r.len as u64).sum()
    }

    /// The pieces to read it in: each file in pieces of [`PIECE_RECORDS`] records from its
    /// start, as the runs of `runs.rs` are read.
    pub fn pieces(&self) -> Vec<SharedRecords> {
        pieces(&self.runs, self.record_size)
    }

    /// Each file's records whole, to copy into batches of their own.
    pub fn whole_runs(&self) -> Vec<SharedRecords> {
        whole(&self.runs, self.record_size)
    }

    /// Its files, its manifest removed.
    fn into_runs(mut self) -> Vec<FileRun> {
        std::mem::take(&mut self.runs)
    }
}

impl Drop for FileBlock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// A partition being cached in host memory while its task runs.
pub(crate) struct FileGathering {
    flat: FlatRecords,
    rdd: RddId,
    partition: u32,
    runs: Vec<FileRun>,
    /// Where the task reads a text split: resume manifests written as it goes.
    checkpoints: Option<Checkpoints>,
}

/// What a gathering's resume manifests say besides its files.
struct Checkpoints {
    split: FileSplit,
    level: StorageLevel,
    code: BatchCode,
    /// Where they are written, each over the last.
    manifest: ResumeManifest,
}

/// A resume manifest's path; the manifest goes when this does. A task that fails or finishes
/// drops it: nobody is to carry its partition on. An executor that dies drops nothing, and
/// leaves the manifest for another to adopt.
struct ResumeManifest(PathBuf);

impl Drop for ResumeManifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl FileGathering {
    /// Nothing kept yet of partition `partition` of `rdd`, whose records are `flat`.
    pub(crate) fn new(flat: FlatRecords, rdd: RddId, partition: u32) -> FileGathering {
        FileGathering {
            flat,
            rdd,
            partition,
            runs: Vec::new(),
            checkpoints: None,
        }
    }

    /// As [`Self::new`], for a partition computed from `split` through recordwise steps, to be
    /// kept at `level` with code `code`: it writes a resume manifest at each
    /// [`Self::checkpoint`]. It starts from `partial`, adopted from a lost executor, if given.
    pub(crate) fn with_checkpoints(
        flat: FlatRecords,
        memory: &HostMemory,
        (rdd, partition): (RddId, u32),
        (level, code): (StorageLevel, &BatchCode),
        split: &FileSplit,
        partial: Option<Partial>,
    ) -> FileGathering {
        let (runs, manifest) = match partial {
            Some(Partial { runs, manifest, .. }) => (runs, manifest),
            None => (
                Vec::new(),
                ResumeManifest(memory.manifest_path(ManifestKind::Resume, rdd, partition)),
            ),
        };
        FileGathering {
            flat,
            rdd,
            partition,
            runs,
            checkpoints: Some(Checkpoints {
                split: split.clone(),
                level,
                code: code.clone(),
                manifest,
            }),
        }
    }

    /// Copies `batch`'s records after those kept.
    ///
    /// # Safety
    /// `batch` must be a live batch of the table `flat` is of.
    pub(crate) unsafe fn keep(
        &mut self,
        memory: &HostMemory,
        batch: Batch,
    ) -> Result<(), ExecutorError> {
        let bytes = unsafe { (self.flat.bytes)(batch) };
        if bytes.len == 0 {
            return Ok(());
        }
        if self.runs.last().is_none_or(|run| run.room() < bytes.len) {
            if let Some(full) = self.runs.last_mut() {
                full.seal()?;
            }
            let room = (RUN_BYTES / self.flat.size * self.flat.size).max(bytes.len);
            let path = memory.run_path(self.rdd, self.partition);
            self.runs.push(FileRun::create(path, room)?);
        }
        let run = self.runs.last_mut().expect("made above");
        unsafe { run.append(bytes.ptr, bytes.len) }
    }

    /// Notes in its resume manifest that what it keeps is what the lines of its split before
    /// `consumed_to` make; nothing for a gathering without checkpoints.
    pub(crate) fn checkpoint(&self, consumed_to: u64) -> Result<(), ExecutorError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(());
        };
        let resume = ResumePoint {
            split: checkpoints.split.clone(),
            consumed_to,
        };
        let manifest = manifest_of(
            flat_contents(&self.runs, self.flat.size),
            (self.rdd, self.partition),
            checkpoints.level,
            &checkpoints.code,
            Some(resume),
        );
        write_manifest(&checkpoints.manifest.0, &manifest)
    }

    /// The records kept so far, each file whole, for a gathering that cannot go on in files to
    /// copy into batches of their own ([`Self::keep`] failed).
    pub(crate) fn kept_so_far(&self) -> Vec<SharedRecords> {
        whole(&self.runs, self.flat.size)
    }

    /// The records kept so far in pieces of [`PIECE_RECORDS`], as a block of them is read.
    pub(crate) fn pieces(&self) -> Vec<SharedRecords> {
        pieces(&self.runs, self.flat.size)
    }

    /// How many records it kept so far.
    pub(crate) fn records(&self) -> u64 {
        records_in(&self.runs, self.flat.size)
    }

    /// The partition kept, its last file sealed and its manifest written. On failure what was
    /// kept stays here ([`Self::kept_so_far`]).
    pub(crate) fn finish(
        &mut self,
        memory: &HostMemory,
        level: StorageLevel,
        code: &BatchCode,
    ) -> Result<FileBlock, ExecutorError> {
        if let Some(last) = self.runs.last_mut() {
            last.seal()?;
        }
        let block = FileBlock {
            runs: std::mem::take(&mut self.runs),
            record_size: self.flat.size,
            manifest: memory.manifest_path(ManifestKind::Block, self.rdd, self.partition),
        };
        let key = (self.rdd, self.partition);
        let manifest = manifest_of(
            flat_contents(&block.runs, block.record_size),
            key,
            level,
            code,
            None,
        );
        if let Err(e) = write_manifest(&block.manifest, &manifest) {
            self.runs = block.into_runs();
            return Err(e);
        }
        // Whole now: nobody is to carry it on.
        self.checkpoints = None;
        Ok(block)
    }
}

/// The manifest of partition `key`, whose files hold its records as `layout` and `runs` say.
pub(crate) fn manifest_of(
    (layout, runs): (RecordLayout, Vec<HostRun>),
    (rdd, partition): (RddId, u32),
    level: StorageLevel,
    code: &BatchCode,
    resume: Option<ResumePoint>,
) -> HostBlockManifest {
    HostBlockManifest {
        rdd,
        partition,
        level,
        code: code.clone(),
        layout,
        runs,
        resume,
    }
}

/// How `runs` (of records of `record_size` bytes) hold their records, as a manifest says.
fn flat_contents(runs: &[FileRun], record_size: usize) -> (RecordLayout, Vec<HostRun>) {
    let layout = RecordLayout::Flat {
        size: record_size as u64,
    };
    let runs = runs
        .iter()
        .map(|run| host_run(&run.path, (run.len / record_size) as u64))
        .collect();
    (layout, runs)
}

/// The file at `path`, holding `records` records, as a manifest names it (beside itself).
pub(crate) fn host_run(path: &Path, records: u64) -> HostRun {
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
    HostRun {
        file: file.unwrap_or_default(),
        records,
    }
}

/// Part of a partition a lost executor was computing from a text split when it died, adopted
/// ([`adopt_partial`]) for the task that computes the partition here to carry on from: the
/// records of the split's lines before its resume point. While it waits it is not counted
/// against the block manager's limit: it is part of a partition the task caches, and counted
/// once the partition is whole; it goes with its RDD ([`HostMemory::drop_partials`]) or with
/// the executor.
pub(crate) struct Partial {
    runs: Vec<FileRun>,
    /// Its resume manifest here.
    manifest: ResumeManifest,
    resume: ResumePoint,
    code: BatchCode,
}

impl Partial {
    /// The offset in its split of the first line it does not hold.
    pub(crate) fn consumed_to(&self) -> u64 {
        self.resume.consumed_to
    }
}

/// A partition a lost executor kept, adopted ([`adopt`]).
pub struct Adopted {
    pub block: FileBlock,
    pub level: StorageLevel,
    pub code: BatchCode,
    pub table: BatchVTable,
}

/// A lost executor's manifest, and where it is.
pub struct FoundManifest {
    pub(crate) path: PathBuf,
    pub manifest: HostBlockManifest,
}

/// The manifests a lost executor left in `from` (its directory of host memory): for each
/// partition and kind, the number of the last it wrote, if it cached the partition more than
/// once. Read once for all the partitions an adoption asks for.
pub struct Manifests {
    from: PathBuf,
    last: HashMap<(ManifestKind, (RddId, u32)), u64>,
}

impl Manifests {
    /// Lists `from`.
    pub fn list(from: &Path) -> Result<Manifests, ExecutorError> {
        let mut last = HashMap::new();
        for entry in std::fs::read_dir(from).map_err(io_error(from))?.flatten() {
            let name = entry.file_name();
            if let Some((kind, key, n)) = name.to_str().and_then(HostBlockManifest::parse_name) {
                let kept = last.entry((kind, key)).or_insert(n);
                *kept = (*kept).max(n);
            }
        }
        Ok(Manifests {
            from: from.to_path_buf(),
            last,
        })
    }

    /// The manifest of partition `partition` of `rdd`. Not there (a `NotFound` error): the
    /// lost executor kept the partition in its own memory.
    pub fn read(&self, key: (RddId, u32)) -> Result<FoundManifest, ExecutorError> {
        let kind = ManifestKind::Block;
        read_manifest(
            &self.from,
            (kind, key),
            self.last.get(&(kind, key)).copied(),
        )
    }

    /// The resume manifests of the partitions the lost executor was computing when it died.
    pub fn partials(&self) -> Vec<Result<FoundManifest, ExecutorError>> {
        self.last
            .iter()
            .filter(|((kind, _), _)| *kind == ManifestKind::Resume)
            .map(|(&(kind, key), &n)| read_manifest(&self.from, (kind, key), Some(n)))
            .collect()
    }
}

/// The `n`th manifest of kind `kind` of partition `key` in `from`, `None` where there is none.
fn read_manifest(
    from: &Path,
    (kind, (rdd, partition)): (ManifestKind, (RddId, u32)),
    n: Option<u64>,
) -> Result<FoundManifest, ExecutorError> {
    let Some(n) = n else {
        let name = HostBlockManifest::file_name(kind, rdd, partition, 0);
        return Err(io_error(&from.join(name))(
            std::io::ErrorKind::NotFound.into(),
        ));
    };
    let path = from.join(HostBlockManifest::file_name(kind, rdd, partition, n));
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    let manifest = decode_host_block_manifest(&bytes)?;
    let reason = if (manifest.rdd, manifest.partition) != (rdd, partition) {
        Some(format!(
            "it names partition {} of RDD {}",
            manifest.partition, manifest.rdd
        ))
    } else if manifest.resume.is_some() != (kind == ManifestKind::Resume) {
        Some("its name and its resume point disagree on whether it is whole".to_string())
    } else if matches!(manifest.layout, RecordLayout::Encoded { .. })
        && (manifest.resume.is_some() || manifest.runs.len() != 1)
    {
        Some("an encoded copy is one file of a whole partition".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ExecutorError::HostMemoryDamaged { path, reason }),
        None => Ok(FoundManifest { path, manifest }),
    }
}

/// The partition `found` (a lost executor's manifest of a whole partition) names, moved into
/// `memory` and mapped here; `table` is the table of its code. Files are moved, not copied: on
/// one tmpfs, a rename.
pub fn adopt(
    memory: &HostMemory,
    found: FoundManifest,
    table: BatchVTable,
) -> Result<Adopted, ExecutorError> {
    let (runs, record_size) = move_runs(memory, &found, &table)?;
    let manifest = found.manifest;
    let key = (manifest.rdd, manifest.partition);
    let block = FileBlock {
        runs,
        record_size,
        manifest: memory.manifest_path(ManifestKind::Block, key.0, key.1),
    };
    let moved = manifest_of(
        flat_contents(&block.runs, record_size),
        key,
        manifest.level,
        &manifest.code,
        None,
    );
    write_manifest(&block.manifest, &moved)?;
    let _ = std::fs::remove_file(&found.path);
    Ok(Adopted {
        block,
        level: manifest.level,
        code: manifest.code,
        table,
    })
}

/// As [`adopt`], for a partition the lost executor was still computing (`found` is a resume
/// manifest): kept in `memory` for the task that computes the partition here to carry on
/// from ([`HostMemory::take_partial`]). Returns the partition and the records it holds.
pub fn adopt_partial(
    memory: &HostMemory,
    found: FoundManifest,
    table: BatchVTable,
) -> Result<((RddId, u32), u64), ExecutorError> {
    let (runs, record_size) = move_runs(memory, &found, &table)?;
    let manifest = found.manifest;
    let key = (manifest.rdd, manifest.partition);
    let resume = manifest.resume.expect("read_manifest checked");
    let partial = Partial {
        manifest: ResumeManifest(memory.manifest_path(ManifestKind::Resume, key.0, key.1)),
        runs,
        resume,
        code: manifest.code,
    };
    let moved = manifest_of(
        flat_contents(&partial.runs, record_size),
        key,
        manifest.level,
        &partial.code,
        Some(partial.resume.clone()),
    );
    write_manifest(&partial.manifest.0, &moved)?;
    let _ = std::fs::remove_file(&found.path);
    let records = records_in(&partial.runs, record_size);
    memory.partials.lock().insert(key, partial);
    Ok((key, records))
}

/// The file `name`, which `found` names, in the directory of `found`: a plain name, never a
/// path that leads out of it.
pub(crate) fn file_beside(found: &FoundManifest, name: &str) -> Result<PathBuf, ExecutorError> {
    let path = Path::new(name);
    if path.components().count() != 1 || path.file_name() != Some(path.as_os_str()) {
        return Err(ExecutorError::HostMemoryDamaged {
            path: found.path.clone(),
            reason: format!("a file named {name:?}"),
        });
    }
    let from = found.path.parent().unwrap_or(Path::new("/"));
    Ok(from.join(path))
}

/// Moves the files `found` names into `memory` and maps them; returns them with the size of
/// a record of `table`, which must be the manifest's. The files of a resume manifest may hold
/// more than it names (records kept after its last checkpoint): they are cut to what it names.
fn move_runs(
    memory: &HostMemory,
    found: &FoundManifest,
    table: &BatchVTable,
) -> Result<(Vec<FileRun>, usize), ExecutorError> {
    let manifest = &found.manifest;
    let damaged = |reason: String| ExecutorError::HostMemoryDamaged {
        path: found.path.clone(),
        reason,
    };
    let flat = table
        .runs
        .and_then(|runs| runs.flat)
        .ok_or_else(|| damaged("the code's records are not plain bytes".into()))?;
    match manifest.layout {
        RecordLayout::Flat { size } if size == flat.size as u64 => {}
        RecordLayout::Flat { size } => {
            return Err(damaged(format!(
                "records of {size} bytes where the code's are {}",
                flat.size
            )));
        }
        RecordLayout::Encoded { .. } => {
            return Err(damaged(
                "an encoded copy, not records to read in place".into(),
            ));
        }
    }
    let mut runs = Vec::with_capacity(manifest.runs.len());
    for run in &manifest.runs {
        let name = file_beside(found, &run.file)?;
        let len = usize::try_from(run.records)
            .ok()
            .and_then(|records| records.checked_mul(flat.size))
            .ok_or_else(|| damaged(format!("{} records", run.records)))?;
        let to = memory.run_path(manifest.rdd, manifest.partition);
        std::fs::rename(name, &to).map_err(io_error(&to))?;
        let cut = || -> std::io::Result<()> {
            let file = std::fs::OpenOptions::new().write(true).open(&to)?;
            if file.metadata()?.len() > len as u64 {
                file.set_len(len as u64)?;
            }
            Ok(())
        };
        let opened = match manifest.resume {
            Some(_) => cut().map_err(io_error(&to)),
            None => Ok(()),
        }
        .and_then(|()| FileRun::open(to.clone(), len));
        match opened {
            Ok(run) => runs.push(run),
            Err(e) => {
                let _ = std::fs::remove_file(&to);
                return Err(e);
            }
        }
    }
    Ok((runs, flat.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_table::bytes;
    use tessera_plan::CodeRef;

    fn code() -> BatchCode {
        BatchCode::Operator(CodeRef {
            library: "ef".repeat(32),
            offset: 64,
        })
    }
    fn flat() -> FlatRecords {
        bytes::FLAT.runs.unwrap().flat.unwrap()
    }
    fn read(pieces: &[SharedRecords]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|p| unsafe { std::slice::from_raw_parts(p.first, p.len) })
            .copied()
            .collect()
    }
    fn records(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-host-memory-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn adopt_from(
        memory: &HostMemory,
        from: &Path,
        key: (RddId, u32),
        table: BatchVTable,
    ) -> Result<Adopted, ExecutorError> {
        adopt(memory, Manifests::list(from)?.read(key)?, table)
    }

    /// Has `gathering` keep `records` in batches of 4096.
    fn keep_all(memory: &HostMemory, gathering: &mut FileGathering, records: &[u8]) {
        for chunk in records.chunks(4096) {
            let from = bytes::batch(chunk.to_vec());
            unsafe { gathering.keep(memory, from) }.unwrap();
            unsafe { (bytes::FLAT.drop)(from) };
        }
    }

    /// Keeps `records` in batches of 4096 as partition 2 of RDD 5.
    fn gathered(memory: &HostMemory, records: &[u8]) -> FileBlock {
        let mut gathering = FileGathering::new(flat(), 5, 2);
        keep_all(memory, &mut gathering, records);
        gathering
            .finish(memory, StorageLevel::MemoryOnly, &code())
            .unwrap()
    }

    /// A gathering of partition 2 of RDD 5 from `split` that notes where it got.
    fn checkpointed(
        memory: &HostMemory,
        split: &FileSplit,
        partial: Option<Partial>,
    ) -> FileGathering {
        let how = (StorageLevel::MemoryOnly, &code());
        FileGathering::with_checkpoints(flat(), memory, (5, 2), how, split, partial)
    }

    #[test]
    fn a_partition_a_lost_executor_was_computing_is_carried_on_from_its_last_checkpoint() {
        let root = scratch("partial");
        let lost = HostMemory::new(root.join("lost")).unwrap();
        let split = FileSplit {
            path: "/data/points.txt".into(),
            start: 100,
            end: 900,
        };
        let records = records(RUN_BYTES + 3 * 4096);
        // Two chunks of lines are taken in whole and noted (the first fills a file); a third
        // is under way when the executor dies.
        let mut gathering = checkpointed(&lost, &split, None);
        keep_all(&lost, &mut gathering, &records[..RUN_BYTES]);
        gathering.checkpoint(300).unwrap();
        keep_all(&lost, &mut gathering, &records[RUN_BYTES..RUN_BYTES + 4096]);
        gathering.checkpoint(500).unwrap();
        keep_all(&lost, &mut gathering, &records[RUN_BYTES + 4096..]);
        std::mem::forget(gathering);

        let manifests = Manifests::list(lost.dir()).unwrap();
        assert!(manifests.read((5, 2)).is_err(), "no whole partition");
        let mut partials = manifests.partials();
        assert_eq!(partials.len(), 1);
        let adopter = HostMemory::new(root.join("adopter")).unwrap();
        let found = partials.pop().unwrap().unwrap();
        let held = RUN_BYTES as u64 + 4096;
        assert_eq!(
            adopt_partial(&adopter, found, bytes::FLAT).unwrap(),
            ((5, 2), held)
        );
        // Only a task reading the same split carries it on.
        let other = FileSplit {
            start: 0,
            ..split.clone()
        };
        assert!(adopter.take_partial((5, 2), &other, &code()).is_none());
        let partial = adopter.take_partial((5, 2), &split, &code()).unwrap();
        assert_eq!(partial.consumed_to(), 500);

        let mut carried = checkpointed(&adopter, &split, Some(partial));
        assert_eq!(read(&carried.pieces()), records[..held as usize]);
        keep_all(&adopter, &mut carried, &records[held as usize..]);
        let block = carried
            .finish(&adopter, StorageLevel::MemoryOnly, &code())
            .unwrap();
        drop(carried);
        assert_eq!(read(&block.pieces()), records);
        // Whole now: another adoption would find the block, and no part of it.
        let manifests = Manifests::list(adopter.dir()).unwrap();
        assert!(manifests.partials().is_empty());
        assert_eq!(manifests.read((5, 2)).unwrap().manifest.resume, None);
        drop(block);
        let left: Vec<_> = std::fs::read_dir(adopter.dir()).unwrap().collect();
        assert!(left.is_empty(), "a dropped block leaves nothing: {left:?}");

        // A task that fails (its gathering dropped) leaves nothing to carry on.
        let mut failed = checkpointed(&adopter, &split, None);
        keep_all(&adopter, &mut failed, &records[..4096]);
        failed.checkpoint(300).unwrap();
        drop(failed);
        assert!(
            Manifests::list(adopter.dir())
                .unwrap()
                .partials()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_partition_kept_in_files_is_read_back_in_pieces_in_order() {
        let root = scratch("pieces");
        let memory = HostMemory::new(root.join("a")).unwrap();
        let records = records(RUN_BYTES + 5000);
        let block = gathered(&memory, &records);
        assert_eq!(block.runs.len(), 2, "a file holds {RUN_BYTES} records");
        assert_eq!(block.bytes(), records.len() as u64);
        let pieces = block.pieces();
        assert!(
            pieces
                .iter()
                .all(|p| p.len <= PIECE_RECORDS && p.batch.is_null())
        );
        assert_eq!(read(&pieces), records);
        assert_eq!(read(&block.whole_runs()), records);
        // The last file keeps no room to spare.
        let last = std::fs::metadata(&block.runs[1].path).unwrap().len();
        assert_eq!(last, 5000);
        drop(block);
        let left: Vec<_> = std::fs::read_dir(memory.dir()).unwrap().collect();
        assert!(left.is_empty(), "a dropped block leaves nothing: {left:?}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn another_executor_adopts_what_a_lost_one_kept_and_reads_the_same_records() {
        let root = scratch("adopt");
        let lost = HostMemory::new(root.join("lost")).unwrap();
        let records = records(10_000);
        // The lost executor's process ends without dropping anything.
        std::mem::forget(gathered(&lost, &records));

        let adopter = HostMemory::new(root.join("adopter")).unwrap();
        let adopted = adopt_from(&adopter, lost.dir(), (5, 2), bytes::FLAT).expect("adopted");
        assert_eq!(adopted.level, StorageLevel::MemoryOnly);
        assert_eq!(adopted.code, code());
        assert_eq!(read(&adopted.block.pieces()), records);
        assert!(
            adopted
                .block
                .runs
                .iter()
                .all(|r| r.path.starts_with(adopter.dir()))
        );
        assert!(
            Manifests::list(adopter.dir()).unwrap().read((5, 2)).is_ok(),
            "the adopter writes a manifest of its own, for the next loss"
        );
        // Asked again (the files moved), or for a partition not kept: an error, no panic.
        assert!(adopt_from(&adopter, lost.dir(), (5, 2), bytes::FLAT).is_err());
        assert!(adopt_from(&adopter, lost.dir(), (5, 3), bytes::FLAT).is_err());
        drop(adopted);
        let left: Vec<_> = std::fs::read_dir(adopter.dir()).unwrap().collect();
        assert!(
            left.is_empty(),
            "an adopted block drops as its own: {left:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_damaged_manifest_or_file_is_refused_with_what_is_wrong() {
        let root = scratch("damaged");
        let lost = HostMemory::new(root.join("lost")).unwrap();
        let adopter = HostMemory::new(root.join("adopter")).unwrap();
        std::mem::forget(gathered(&lost, &records(100)));
        let adopt_with = |table: BatchVTable| {
            adopt_from(&adopter, lost.dir(), (5, 2), table)
                .err()
                .expect("refused")
                .to_string()
        };
        // Records the code does not keep as bytes, or of another size.
        let error = adopt_with(bytes::TABLE);
        assert!(error.contains("not plain bytes"), "{error}");
        let mut wide = bytes::FLAT;
        if let Some(runs) = &mut wide.runs {
            runs.flat = Some(FlatRecords { size: 2, ..flat() });
        }
        let error = adopt_with(wide);
        assert!(error.contains("records of 1 bytes"), "{error}");
        // A file shorter than its manifest says.
        let found = Manifests::list(lost.dir()).unwrap().read((5, 2)).unwrap();
        let (manifest, decoded) = (found.path, found.manifest);
        std::fs::OpenOptions::new()
            .write(true)
            .open(lost.dir().join(&decoded.runs[0].file))
            .unwrap()
            .set_len(80)
            .unwrap();
        let error = adopt_with(bytes::FLAT);
        assert!(error.contains("80 bytes"), "{error}");
        // A manifest naming a file elsewhere.
        let mut escaping = decoded.clone();
        escaping.runs[0].file = "../adopter/x.run".into();
        std::fs::write(&manifest, bincode::serialize(&escaping).unwrap()).unwrap();
        let error = adopt_with(bytes::FLAT);
        assert!(error.contains("a file named"), "{error}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
