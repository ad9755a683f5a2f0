//! Spilling to disk, for shuffles larger than memory (Spark's sort-based shuffle and external
//! sorter, adapted).
//!
//! An operator that gathers records — a shuffle writer, a reduce-side merge, group or sort —
//! estimates the memory it holds and, past the budget the executor gives each operator of a
//! task ([`SpillConfig`], from the ABI's `Host` table), writes what it holds to a spill file in
//! the executor's spill directory, as *record frames* (`tessera_plan::map_output`): the
//! encoding records cross the network in. At the end it merges its spill files and what is left
//! in memory: a writer by bucket into one map output, a sort or a combine by key through a k-way
//! merge of sorted runs ([`merge_runs`]). Spill files are removed when the operator that made
//! them is dropped; the executor removes its spill directory when it ends.
//!
//! In a cell (no executor), nothing spills.

use crate::batch::{BATCH_RECORDS, Stop};
use crate::op_error::OpError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use tessera_plan::abi::Host;
use tessera_plan::map_output::{FRAME_PREFIX, read_frames};

/// A record frame is closed past this many bytes.
pub(crate) const FRAME_BYTES: usize = 1 << 16;

/// What a merge of spilled runs hands on in one batch, at most (estimated): batches are
/// otherwise counted in records, and a record may be a group of many values.
pub(crate) const MERGED_BATCH_BYTES: u64 = 1 << 20;

/// Operators never spill with less than this in memory: a smaller budget would only make
/// more, smaller files.
pub(crate) const MIN_SPILL_BYTES: u64 = 256 << 10;

/// Whether an operator holding `held` bytes (estimated) should spill, given its `budget`.
pub(crate) fn should_spill(held: u64, budget: u64) -> bool {
    held >= budget.max(MIN_SPILL_BYTES)
}

/// How an operator of a running task may spill: its memory budget, where its files go, and
/// where it reports the bytes it wrote.
pub(crate) struct SpillConfig {
    budget: u64,
    dir: Option<PathBuf>,
    host: *const Host,
}

// SAFETY: `host` is the executor's table, valid and thread-safe while the task runs, which
// outlives every operator of the task; it is only read.
unsafe impl Send for SpillConfig {}

impl SpillConfig {
    /// The executor's settings while an operator opens on this thread; never spills in a cell.
    pub(crate) fn from_opening_host() -> SpillConfig {
        let host = crate::shared::opening_host();
        if host.is_null() {
            return SpillConfig::unlimited();
        }
        // SAFETY: the executor's host table is valid while the task runs.
        let table = unsafe { &*host };
        let dir = String::from_utf8_lossy(unsafe { table.spill_dir.as_slice() }).into_owned();
        SpillConfig {
            budget: table.spill_budget,
            dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
            host,
        }
    }

    pub(crate) fn unlimited() -> SpillConfig {
        SpillConfig {
            budget: u64::MAX,
            dir: None,
            host: std::ptr::null(),
        }
    }

    #[cfg(test)]
    pub(crate) fn in_dir(budget: u64, dir: PathBuf) -> SpillConfig {
        SpillConfig {
            budget,
            dir: Some(dir),
            host: std::ptr::null(),
        }
    }

    /// Whether an operator holding `held` bytes should spill now.
    pub(crate) fn over(&self, held: u64) -> bool {
        self.dir.is_some() && should_spill(held, self.budget)
    }

    fn report(&self, bytes: u64) {
        if !self.host.is_null() {
            // SAFETY: see `Send` above.
            let table = unsafe { &*self.host };
            unsafe { (table.spilled)(table.ctx, bytes) };
        }
    }

    /// A new spill file.
    pub(crate) fn file(&self) -> Result<SpillFile, Stop> {
        let dir = self.dir.as_ref().ok_or(OpError::NoSpillDirectory)?;
        SpillFile::create(dir).map_err(|source| {
            Stop::Failed(OpError::SpillCreate {
                dir: dir.clone(),
                source,
            })
        })
    }

    /// Writes `records`, in their order, to `file` as one run; reports the bytes written.
    pub(crate) fn write_run<T: Serialize>(
        &self,
        file: &mut SpillFile,
        records: impl IntoIterator<Item = T>,
    ) -> Result<Range<u64>, Stop> {
        let range = file.write_run(records)?;
        self.report(range.end - range.start);
        Ok(range)
    }

    /// Reports bytes written to a spill file outside [`SpillConfig::write_run`].
    pub(crate) fn note_spilled(&self, bytes: u64) {
        self.report(bytes);
    }
}

fn io_failed(path: &std::path::Path, source: std::io::Error) -> Stop {
    Stop::Failed(OpError::SpillIo {
        path: path.to_path_buf(),
        source,
    })
}

/// A file an operator spills to, written at its end and removed when dropped.
pub(crate) struct SpillFile {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
}

impl SpillFile {
    fn create(dir: &std::path::Path) -> std::io::Result<SpillFile> {
        std::fs::create_dir_all(dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut attempt = 0u32;
        loop {
            let path = dir.join(format!("spill-{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(SpillFile {
                        path,
                        out: BufWriter::with_capacity(1 << 16, file),
                        len: 0,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends `bytes`; where they are in the file.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<Range<u64>, Stop> {
        self.out
            .write_all(bytes)
            .map_err(|e| io_failed(&self.path, e))?;
        let start = self.len;
        self.len += bytes.len() as u64;
        Ok(start..self.len)
    }

    /// Appends `records` as frames (see [`FrameBuilder::full`]).
    fn write_run<T: Serialize>(
        &mut self,
        records: impl IntoIterator<Item = T>,
    ) -> Result<Range<u64>, Stop> {
        let start = self.len;
        let mut frame = FrameBuilder::default();
        for record in records {
            frame.add(&record)?;
            if frame.full() {
                let bytes = frame.close();
                self.append(&bytes)?;
            }
        }
        let bytes = frame.close();
        self.append(&bytes)?;
        Ok(start..self.len)
    }

    /// Makes what was appended readable; call before reading.
    pub(crate) fn flush(&mut self) -> Result<(), Stop> {
        self.out.flush().map_err(|e| io_failed(&self.path, e))
    }

    /// Copies `range` of the file to `out`, a piece at a time.
    pub(crate) fn copy_range(
        &self,
        range: Range<u64>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Stop> {
        let mut copy = || -> std::io::Result<()> {
            let mut file = File::open(&self.path)?;
            file.seek(SeekFrom::Start(range.start))?;
            let mut file = file.take(range.end - range.start);
            let mut piece = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut piece)?;
                if n == 0 {
                    return Ok(());
                }
                out(&piece[..n]);
            }
        };
        copy().map_err(|e| io_failed(&self.path, e))
    }

    /// The records of a run written by [`SpillFile::write_run`], read a frame at a time.
    pub(crate) fn read_run<T: DeserializeOwned>(
        &self,
        range: Range<u64>,
    ) -> Result<RunReader<T>, Stop> {
        let mut file = File::open(&self.path).map_err(|e| io_failed(&self.path, e))?;
        file.seek(SeekFrom::Start(range.start))
            .map_err(|e| io_failed(&self.path, e))?;
        Ok(RunReader {
            file: BufReader::with_capacity(1 << 16, file),
            path: self.path.clone(),
            left: range.end - range.start,
            current: Vec::new().into_iter(),
        })
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A run of records, on disk or in memory, for [`merge_runs`].
pub(crate) type Run<R> = Box<dyn Iterator<Item = Result<R, OpError>>>;

/// The sorted runs an operator spilled, all in one spill file made with the first.
pub(crate) struct SpilledRuns {
    pub(crate) spill: SpillConfig,
    file: Option<SpillFile>,
    ranges: Vec<Range<u64>>,
}

impl SpilledRuns {
    pub(crate) fn new(spill: SpillConfig) -> SpilledRuns {
        SpilledRuns {
            spill,
            file: None,
            ranges: Vec::new(),
        }
    }

    /// How many runs were spilled.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Writes `records`, in their order, as one more run.
    pub(crate) fn write<T: Serialize>(
        &mut self,
        records: impl IntoIterator<Item = T>,
    ) -> Result<(), Stop> {
        if self.file.is_none() {
            self.file = Some(self.spill.file()?);
        }
        let file = self.file.as_mut().expect("made above");
        let range = self.spill.write_run(file, records)?;
        self.ranges.push(range);
        Ok(())
    }

    /// A reader of every run, in the order they were written.
    pub(crate) fn readers<T: DeserializeOwned + 'static>(&mut self) -> Result<Vec<Run<T>>, Stop> {
        let Some(file) = &mut self.file else {
            return Ok(Vec::new());
        };
        file.flush()?;
        let mut runs: Vec<Run<T>> = Vec::new();
        for range in &self.ranges {
            runs.push(Box::new(file.read_run::<T>(range.clone())?));
        }
        Ok(runs)
    }
}

/// Encodes records one at a time into one record frame (a length, then a `Vec`'s bincode).
#[derive(Default)]
pub(crate) struct FrameBuilder {
    bytes: Vec<u8>,
    records: u64,
}

impl FrameBuilder {
    /// Adds `record`; the bytes the frame grew by.
    pub(crate) fn add<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<u64, Stop> {
        if self.bytes.is_empty() {
            // The frame's length and the vector's, filled in by `close`.
            self.bytes.resize(FRAME_PREFIX + 8, 0);
        }
        let before = self.bytes.len();
        bincode::serialize_into(&mut self.bytes, record).map_err(|source| {
            OpError::RecordsEncode {
                type_name: std::any::type_name::<T>(),
                source,
            }
        })?;
        self.records += 1;
        Ok((self.bytes.len() - before) as u64)
    }

    /// Whether the frame should be closed: a batch of records, or [`FRAME_BYTES`]. Bounding
    /// the bytes bounds what a reader of many runs holds, one decoded frame per run, whatever
    /// the size of a record (a group of many values is one record).
    pub(crate) fn full(&self) -> bool {
        self.records as usize >= BATCH_RECORDS || self.bytes.len() >= FRAME_BYTES
    }

    /// The finished frame (empty if no record was added); the builder starts again.
    pub(crate) fn close(&mut self) -> Vec<u8> {
        if self.records == 0 {
            return Vec::new();
        }
        let mut bytes = std::mem::take(&mut self.bytes);
        let len = (bytes.len() - FRAME_PREFIX) as u64;
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.records.to_le_bytes());
        self.records = 0;
        bytes
    }
}

/// Records of a run on disk, one frame decoded at a time.
pub(crate) struct RunReader<T> {
    file: BufReader<File>,
    path: PathBuf,
    left: u64,
    current: std::vec::IntoIter<T>,
}

impl<T: DeserializeOwned> Iterator for RunReader<T> {
    type Item = Result<T, OpError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.current.next() {
                return Some(Ok(record));
            }
            if self.left == 0 {
                return None;
            }
            let mut decoded = None;
            let mut bytes_read = 0;
            let read = read_frames(&mut self.file, self.left, |frame| {
                bytes_read = (FRAME_PREFIX + frame.len()) as u64;
                decoded = Some(crate::encoding::decode::<Vec<T>>(frame));
                false
            });
            self.left = self.left.saturating_sub(bytes_read);
            let mut failed = |source: std::io::Error| {
                self.left = 0;
                Some(Err(OpError::SpillReadBack {
                    path: self.path.clone(),
                    source,
                }))
            };
            // A run's frames and records were written by this operator: bytes that do not
            // decode are damaged data, as a malformed frame is.
            use std::io::{Error, ErrorKind};
            match (read, decoded) {
                (Err(e), _) => return failed(e),
                (Ok(()), Some(Ok(records))) => self.current = records.into_iter(),
                (Ok(()), Some(Err(e))) => return failed(Error::new(ErrorKind::InvalidData, e)),
                (Ok(()), None) => {
                    return failed(Error::new(ErrorKind::UnexpectedEof, "it ends early"));
                }
            }
        }
    }
}

/// An estimate of the memory records held by an operator take: their number times an average
/// size measured on a sample (every 16th record's encoded size, plus its size in place), as
/// Spark's `SizeTracker` samples.
#[derive(Default)]
pub(crate) struct SizeEstimate {
    records: u64,
    sampled: u64,
    sampled_bytes: u64,
}

/// Bytes `records` take if the `samples` measured took `sampled_bytes` of encoding each
/// `inline` bytes in place besides.
pub(crate) fn estimated_bytes(records: u64, samples: u64, sampled_bytes: u64, inline: u64) -> u64 {
    let average = sampled_bytes.checked_div(samples).unwrap_or(0);
    records.saturating_mul(average + inline)
}

impl SizeEstimate {
    pub(crate) fn add<T: Serialize>(&mut self, record: &T) {
        if self.records.is_multiple_of(16) {
            self.sampled += 1;
            self.sampled_bytes += bincode::serialized_size(record).unwrap_or(0);
        }
        self.records += 1;
    }

    pub(crate) fn bytes<T>(&self) -> u64 {
        estimated_bytes(
            self.records,
            self.sampled,
            self.sampled_bytes,
            std::mem::size_of::<T>() as u64,
        )
    }

    pub(crate) fn clear(&mut self) {
        *self = SizeEstimate::default();
    }
}

/// Merges runs, each in order by `cmp`, into one run in that order; of equal records, those of
/// earlier runs come first (so a merge of a stable sort's runs is stable). The first error of
/// a run ends the merge.
pub(crate) fn merge_runs<T, I, C>(runs: Vec<I>, cmp: C) -> MergeRuns<T, I, C>
where
    I: Iterator<Item = Result<T, OpError>>,
    C: Fn(&T, &T) -> Ordering,
{
    MergeRuns {
        runs,
        heads: Vec::new(),
        started: false,
        failed: false,
        error: None,
        cmp,
    }
}

/// The iterator of [`merge_runs`]: a binary heap of each run's next record.
pub(crate) struct MergeRuns<T, I, C> {
    runs: Vec<I>,
    /// (record, run) heap, least first.
    heads: Vec<(T, usize)>,
    started: bool,
    failed: bool,
    /// A run's error, returned after the record taken before it.
    error: Option<OpError>,
    cmp: C,
}

impl<T, I, C> MergeRuns<T, I, C>
where
    I: Iterator<Item = Result<T, OpError>>,
    C: Fn(&T, &T) -> Ordering,
{
    fn less(&self, a: usize, b: usize) -> bool {
        let ((x, i), (y, j)) = (&self.heads[a], &self.heads[b]);
        match (self.cmp)(x, y) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => i < j,
        }
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.less(at, parent) {
                break;
            }
            self.heads.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if left < self.heads.len() && self.less(left, least) {
                least = left;
            }
            if right < self.heads.len() && self.less(right, least) {
                least = right;
            }
            if least == at {
                return;
            }
            self.heads.swap(at, least);
            at = least;
        }
    }

    /// Puts run `run`'s next record on the heap; an error of the run.
    fn refill(&mut self, run: usize) -> Result<(), OpError> {
        if let Some(next) = self.runs[run].next() {
            self.heads.push((next?, run));
            let last = self.heads.len() - 1;
            self.sift_up(last);
        }
        Ok(())
    }
}

impl<T, I, C> Iterator for MergeRuns<T, I, C>
where
    I: Iterator<Item = Result<T, OpError>>,
    C: Fn(&T, &T) -> Ordering,
{
    type Item = Result<T, OpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.failed = true;
            return Some(Err(e));
        }
        if !self.started {
            self.started = true;
            for run in 0..self.runs.len() {
                if let Err(e) = self.refill(run) {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        if self.heads.is_empty() {
            return None;
        }
        let last = self.heads.len() - 1;
        self.heads.swap(0, last);
        let (record, run) = self.heads.pop().expect("not empty");
        self.sift_down(0);
        if let Err(e) = self.refill(run) {
            self.error = Some(e);
        }
        Some(Ok(record))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory of its own for a test's spill files, removed at its end.
    pub(crate) struct TestDir(pub PathBuf);
    impl TestDir {
        pub(crate) fn new(name: &str) -> TestDir {
            let dir =
                std::env::temp_dir().join(format!("tessera-spill-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TestDir(dir)
        }
        pub(crate) fn files(&self) -> usize {
            std::fs::read_dir(&self.0).map_or(0, |d| d.count())
        }
    }
    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn spilling_waits_for_the_budget_and_never_below_the_minimum() {
        assert!(!should_spill(10 << 20, 20 << 20));
        assert!(should_spill(20 << 20, 20 << 20));
        assert!(!should_spill(MIN_SPILL_BYTES - 1, 1));
        assert!(should_spill(MIN_SPILL_BYTES, 1));
        assert!(!SpillConfig::unlimited().over(u64::MAX - 1));
    }

    #[test]
    fn estimates_scale_the_sampled_average() {
        assert_eq!(estimated_bytes(100, 0, 0, 8), 800);
        assert_eq!(estimated_bytes(100, 4, 40, 8), 1800);
        let mut estimate = SizeEstimate::default();
        for i in 0..32u64 {
            estimate.add(&(i, "abcd".to_string()));
        }
        // Sampled two of (8 + 8 + 4) encoded bytes; a (u64, String) is 32 bytes in place.
        assert_eq!(estimate.bytes::<(u64, String)>(), 32 * (20 + 32));
        estimate.clear();
        assert_eq!(estimate.bytes::<u64>(), 0);
    }

    fn run(items: &[u32]) -> std::vec::IntoIter<Result<u32, OpError>> {
        items.iter().map(|&x| Ok(x)).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn merged_runs_come_out_in_order_and_stable_across_runs() {
        let merged: Vec<u32> = merge_runs(
            vec![
                run(&[1, 4, 9]),
                run(&[]),
                run(&[2, 3, 10, 11]),
                run(&[0, 4]),
            ],
            |a: &u32, b: &u32| a.cmp(b),
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(merged, vec![0, 1, 2, 3, 4, 4, 9, 10, 11]);
        // Equal keys keep run order: compare by tens only, values tell the runs apart.
        let by_tens = |a: &u32, b: &u32| (a / 10).cmp(&(b / 10));
        let merged: Vec<u32> = merge_runs(vec![run(&[10, 11, 20]), run(&[12, 21])], by_tens)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(merged, vec![10, 11, 12, 20, 21]);
        let gone = OpError::SpillReadBack {
            path: "/spill/gone".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let failing = vec![Ok(1), Err(gone), Ok(5)].into_iter();
        let merged: Vec<Result<u32, String>> =
            merge_runs(vec![run(&[2, 3]), failing], |a: &u32, b: &u32| a.cmp(b))
                .map(|r| r.map_err(|e| e.to_string()))
                .collect();
        assert!(
            matches!(&merged[..], [Ok(1), Err(e)] if e.contains("/spill/gone")),
            "{merged:?}"
        );
    }

    #[test]
    fn runs_written_to_a_spill_file_read_back_and_the_file_goes_with_its_owner() {
        let dir = TestDir::new("runs");
        let config = SpillConfig::in_dir(1, dir.0.clone());
        let mut file = config.file().unwrap();
        let first: Vec<(u64, String)> = (0..10_000).map(|i| (i, format!("v{i}"))).collect();
        let a = config.write_run(&mut file, first.iter()).unwrap();
        let b = config
            .write_run(&mut file, [(7u64, "x".to_string())])
            .unwrap();
        let empty = config
            .write_run(&mut file, Vec::<(u64, String)>::new())
            .unwrap();
        file.flush().unwrap();
        assert_eq!(empty.start, empty.end);
        let back: Vec<(u64, String)> = file.read_run(a).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, first);
        let back: Vec<(u64, String)> = file
            .read_run(b.clone())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![(7, "x".to_string())]);
        // Read as the wrong type, a run is an error that names the file, not a panic.
        let wrong: Vec<Result<(String, String), OpError>> = file.read_run(b).unwrap().collect();
        assert!(
            matches!(&wrong[..], [Err(e @ OpError::SpillReadBack { .. })]
                if e.to_string().contains("spill file")),
            "{wrong:?}"
        );
        assert_eq!(dir.files(), 1);
        drop(file);
        assert_eq!(dir.files(), 0);
    }
}
