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
//! (`runs.rs`), as do partitions of an executor given no such directory.

use crate::error::ExecutorError;
use crate::runs::PIECE_RECORDS;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_plan::abi::{Batch, BatchVTable, FlatRecords, SharedRecords};
use tessera_plan::host_block::{HostBlockManifest, HostRun, decode_host_block_manifest};
use tessera_plan::{BatchCode, RddId, StorageLevel};

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
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file's path for partition `partition` of `rdd`.
    fn run_path(&self, rdd: RddId, partition: u32) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("rdd-{rdd}-{partition}-{n}.run"))
    }

    /// A new manifest's path for partition `partition` of `rdd`.
    fn manifest_path(&self, rdd: RddId, partition: u32) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(HostBlockManifest::file_name(rdd, partition, n))
    }

    /// Removes the directory, with what is in it: at a graceful end, nothing is to outlive us.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ExecutorError + '_ {
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
        self.runs
            .iter()
            .flat_map(|run| {
                let records = run.len / self.record_size;
                (0..records).step_by(PIECE_RECORDS).map(move |start| {
                    // SAFETY: `start` is a record within the file's mapping.
                    let first = unsafe { run.ptr.add(start * self.record_size) };
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

    /// Each file's records whole, to copy into batches of their own.
    pub fn whole_runs(&self) -> Vec<SharedRecords> {
        whole(&self.runs, self.record_size)
    }

    /// Writes its manifest (under another name first, so that an adopter never reads half of
    /// one).
    fn write_manifest(&self, manifest: &HostBlockManifest) -> Result<(), ExecutorError> {
        let bytes = bincode::serialize(manifest).expect("a manifest serializes");
        let partial = self.manifest.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(io_error(&partial))?;
        std::fs::rename(&partial, &self.manifest).map_err(io_error(&self.manifest))
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
}

impl FileGathering {
    /// Nothing kept yet of partition `partition` of `rdd`, whose records are `flat`.
    pub(crate) fn new(flat: FlatRecords, rdd: RddId, partition: u32) -> FileGathering {
        FileGathering {
            flat,
            rdd,
            partition,
            runs: Vec::new(),
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

    /// The records kept so far, each file whole, for a gathering that cannot go on in files to
    /// copy into batches of its own ([`Self::keep`] failed).
    pub(crate) fn kept_so_far(&self) -> Vec<SharedRecords> {
        whole(&self.runs, self.flat.size)
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
        let mut block = FileBlock {
            runs: std::mem::take(&mut self.runs),
            record_size: self.flat.size,
            manifest: memory.manifest_path(self.rdd, self.partition),
        };
        let manifest = manifest_of(&block, self.rdd, self.partition, level, code);
        if let Err(e) = block.write_manifest(&manifest) {
            self.runs = std::mem::take(&mut block.runs);
            return Err(e);
        }
        Ok(block)
    }
}

fn manifest_of(
    block: &FileBlock,
    rdd: RddId,
    partition: u32,
    level: StorageLevel,
    code: &BatchCode,
) -> HostBlockManifest {
    HostBlockManifest {
        rdd,
        partition,
        level,
        code: code.clone(),
        record_size: block.record_size as u64,
        runs: block
            .runs
            .iter()
            .map(|run| HostRun {
                file: run
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                records: (run.len / block.record_size) as u64,
            })
            .collect(),
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
    path: PathBuf,
    pub manifest: HostBlockManifest,
}

/// The manifests a lost executor left in `from` (its directory of host memory): for each
/// partition, the number of the last it wrote, if it cached the partition more than once. Read
/// once for all the partitions an adoption asks for.
pub struct Manifests {
    from: PathBuf,
    last: std::collections::HashMap<(RddId, u32), u64>,
}

impl Manifests {
    /// Lists `from`.
    pub fn list(from: &Path) -> Result<Manifests, ExecutorError> {
        let mut last = std::collections::HashMap::new();
        for entry in std::fs::read_dir(from).map_err(io_error(from))?.flatten() {
            let name = entry.file_name();
            if let Some((key, n)) = name.to_str().and_then(HostBlockManifest::parse_name) {
                let kept = last.entry(key).or_insert(n);
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
    pub fn read(&self, (rdd, partition): (RddId, u32)) -> Result<FoundManifest, ExecutorError> {
        read_manifest(
            &self.from,
            (rdd, partition),
            self.last.get(&(rdd, partition)).copied(),
        )
    }
}

/// The `n`th manifest of partition `partition` of `rdd` in `from`, `None` where there is none.
fn read_manifest(
    from: &Path,
    (rdd, partition): (RddId, u32),
    n: Option<u64>,
) -> Result<FoundManifest, ExecutorError> {
    let Some(n) = n else {
        let name = HostBlockManifest::file_name(rdd, partition, 0);
        return Err(io_error(&from.join(name))(
            std::io::ErrorKind::NotFound.into(),
        ));
    };
    let path = from.join(HostBlockManifest::file_name(rdd, partition, n));
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    let manifest = decode_host_block_manifest(&bytes)?;
    if (manifest.rdd, manifest.partition) != (rdd, partition) {
        return Err(ExecutorError::HostMemoryDamaged {
            path,
            reason: format!(
                "it names partition {} of RDD {}",
                manifest.partition, manifest.rdd
            ),
        });
    }
    Ok(FoundManifest { path, manifest })
}

/// The partition `found` (a lost executor's manifest) names, moved into `memory` and mapped
/// here; `table` is the table of its code. Files are moved, not copied: on one tmpfs, a rename.
pub fn adopt(
    memory: &HostMemory,
    found: FoundManifest,
    table: BatchVTable,
) -> Result<Adopted, ExecutorError> {
    let FoundManifest {
        path: manifest_path,
        manifest,
    } = found;
    let (rdd, partition) = (manifest.rdd, manifest.partition);
    let from = manifest_path.parent().unwrap_or(Path::new("/"));
    let damaged = |reason: String| ExecutorError::HostMemoryDamaged {
        path: manifest_path.clone(),
        reason,
    };
    let flat = table
        .runs
        .and_then(|runs| runs.flat)
        .ok_or_else(|| damaged("the code's records are not plain bytes".into()))?;
    if flat.size as u64 != manifest.record_size {
        return Err(damaged(format!(
            "records of {} bytes where the code's are {}",
            manifest.record_size, flat.size
        )));
    }
    let mut runs = Vec::with_capacity(manifest.runs.len());
    for run in &manifest.runs {
        let name = Path::new(&run.file);
        if name.components().count() != 1 || name.file_name() != Some(name.as_os_str()) {
            return Err(damaged(format!("a file named {:?}", run.file)));
        }
        let len = usize::try_from(run.records)
            .ok()
            .and_then(|records| records.checked_mul(flat.size))
            .ok_or_else(|| damaged(format!("{} records", run.records)))?;
        let to = memory.run_path(rdd, partition);
        std::fs::rename(from.join(name), &to).map_err(io_error(&to))?;
        match FileRun::open(to.clone(), len) {
            Ok(run) => runs.push(run),
            Err(e) => {
                let _ = std::fs::remove_file(&to);
                return Err(e);
            }
        }
    }
    let block = FileBlock {
        runs,
        record_size: flat.size,
        manifest: memory.manifest_path(rdd, partition),
    };
    block.write_manifest(&manifest_of(
        &block,
        rdd,
        partition,
        manifest.level,
        &manifest.code,
    ))?;
    let _ = std::fs::remove_file(&manifest_path);
    Ok(Adopted {
        block,
        level: manifest.level,
        code: manifest.code,
        table,
    })
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

    /// Keeps `records` in batches of 4096 as partition 2 of RDD 5.
    fn gathered(memory: &HostMemory, records: &[u8]) -> FileBlock {
        let mut gathering = FileGathering::new(flat(), 5, 2);
        for chunk in records.chunks(4096) {
            let from = bytes::batch(chunk.to_vec());
            unsafe { gathering.keep(memory, from) }.unwrap();
            unsafe { (bytes::FLAT.drop)(from) };
        }
        gathering
            .finish(memory, StorageLevel::MemoryOnly, &code())
            .unwrap()
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
