//! Map outputs this executor wrote: for each (shuffle, map partition), one encoded bucket per
//! reduce partition (framed as a [`MapOutput`]), kept for reducers to fetch until the driver
//! drops the shuffle (no live RDD reads it any more) or the executor ends. Outputs stay in memory while they fit in the store's budget; past it, the oldest
//! shuffles' outputs are written unchanged to one file each in the executor's shuffle directory
//! (their bucket ranges kept here, as Spark's sort shuffle writes a data file and an index),
//! and buckets are read from there. A map task whose output is larger than its memory budget
//! streams it straight to such a file ([`ShuffleStore::put_file`]).
//!
//! Under an agent that serves the session's sandbox files, every map output is also copied,
//! as it is kept, to [`served_path`] in the executor's sandbox (a hard link where the output
//! is a file already): the agent serves that copy to reducers once the executor is gone, as
//! Spark's external shuffle service serves the files of executors that died.
//!
//! A bucket is read a piece or a record frame at a time ([`Bucket::read_pieces`],
//! [`Bucket::read_frames`]), from memory or from its file, so that serving or reading a bucket
//! never holds more of it than one piece.

use crate::error::ExecutorError;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_plan::ShuffleId;
use tessera_plan::map_output::{MapOutput, read_frames, read_index, served_path, split_frame};

/// Where one map output is kept.
enum Stored {
    Memory(Arc<MapOutput>),
    /// `ranges[r]` is where bucket `r` is in the file.
    Disk {
        file: Arc<BucketFile>,
        ranges: Vec<Range<usize>>,
    },
}

pub struct ShuffleStore {
    outputs: Mutex<Outputs>,
    /// Bytes of map output kept in memory before outputs go to disk.
    memory_limit: u64,
    dir: PathBuf,
    /// The sandbox the agent serves copies of map outputs from, if it does.
    served_root: Option<PathBuf>,
}

#[derive(Default)]
struct Outputs {
    /// Ordered by shuffle id, so the oldest shuffles come first.
    by_map: BTreeMap<(ShuffleId, u32), Stored>,
    memory_used: u64,
}

impl Outputs {
    /// Keeps `stored` as the output of `key`, in place of any earlier one.
    fn replace(&mut self, key: (ShuffleId, u32), stored: Stored) {
        if let Stored::Memory(output) = &stored {
            self.memory_used += memory_size(output);
        }
        if let Some(Stored::Memory(old)) = self.by_map.insert(key, stored) {
            self.memory_used -= memory_size(&old);
        }
    }
}

/// A bucket a reducer reads: part of a map output held in memory here, bytes fetched from a
/// peer, or a range of a file (a map output on this executor's disk, or a fetched bucket kept
/// on disk).
pub enum Bucket {
    Local(Arc<MapOutput>, Range<usize>),
    Owned(Vec<u8>),
    File(Arc<BucketFile>, Range<u64>),
}

/// A file buckets are read from; removed when the last bucket of it goes, if it is the
/// reducer's own.
pub struct BucketFile {
    pub path: PathBuf,
    pub remove_when_dropped: bool,
}

impl Drop for BucketFile {
    fn drop(&mut self) {
        if self.remove_when_dropped {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Bucket {
    pub fn len(&self) -> u64 {
        match self {
            Bucket::Local(_, range) => range.len() as u64,
            Bucket::Owned(bytes) => bytes.len() as u64,
            Bucket::File(_, range) => range.end - range.start,
        }
    }

    /// Hands the bucket's bytes to `each` in pieces of at most `piece` bytes, until it says
    /// stop.
    pub fn read_pieces(
        &self,
        piece: usize,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> std::io::Result<()> {
        let bytes = match self {
            Bucket::Local(output, range) => &output.bytes()[range.clone()],
            Bucket::Owned(bytes) => &bytes[..],
            Bucket::File(file, range) => {
                let mut reader = open_range(&file.path, range)?;
                let mut buffer = vec![0u8; piece.min(self.len() as usize).max(1)];
                loop {
                    let n = reader.read(&mut buffer)?;
                    if n == 0 || !each(&buffer[..n]) {
                        return Ok(());
                    }
                }
            }
        };
        for chunk in bytes.chunks(piece.max(1)) {
            if !each(chunk) {
                break;
            }
        }
        Ok(())
    }

    /// Hands each record frame of the bucket to `each`, until it says stop.
    pub fn read_frames(&self, mut each: impl FnMut(&[u8]) -> bool) -> std::io::Result<()> {
        let bytes = match self {
            Bucket::Local(output, range) => &output.bytes()[range.clone()],
            Bucket::Owned(bytes) => &bytes[..],
            Bucket::File(file, range) => {
                let reader =
                    std::io::BufReader::with_capacity(1 << 16, open_range(&file.path, range)?);
                return read_frames(reader, self.len(), each);
            }
        };
        let mut rest = bytes;
        while let Some((frame, after)) = split_frame(rest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        {
            if !each(frame) {
                break;
            }
            rest = after;
        }
        Ok(())
    }
}

fn open_range(path: &Path, range: &Range<u64>) -> std::io::Result<std::io::Take<std::fs::File>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    Ok(file.take(range.end - range.start))
}

/// Distinct in this process: names a partial file.
fn unique_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn memory_size(output: &MapOutput) -> u64 {
    output.bytes().len() as u64
}

impl ShuffleStore {
    /// A store that keeps `memory_limit` bytes of map output in memory and the rest in `dir`;
    /// with `served_root`, a copy of every output under it as well.
    pub fn new(memory_limit: u64, dir: PathBuf, served_root: Option<PathBuf>) -> ShuffleStore {
        ShuffleStore {
            outputs: Mutex::default(),
            memory_limit,
            dir,
            served_root,
        }
    }

    fn served_copy(&self, shuffle: ShuffleId, map_partition: u32) -> Option<PathBuf> {
        let root = self.served_root.as_ref()?;
        Some(root.join(served_path(shuffle, map_partition)))
    }

    /// Makes the served copy of an output: `write` puts it at the path it is given, which then
    /// replaces any earlier copy at once (a reader sees the old copy or the new, whole).
    fn make_served_copy(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        write: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), ExecutorError> {
        let Some(path) = self.served_copy(shuffle, map_partition) else {
            return Ok(());
        };
        let partial = path.with_extension(format!("partial-{}", unique_suffix()));
        let made = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write(&partial))
            .and_then(|()| std::fs::rename(&partial, &path));
        made.map_err(|source| {
            let _ = std::fs::remove_file(&partial);
            ExecutorError::ServedCopyWrite { path, source }
        })
    }

    /// Keeps the output of `map_partition` in memory; when that takes the store past its
    /// budget, the outputs of the oldest shuffles go to disk first (an iterative job reads the
    /// shuffle it just wrote, rarely one of many iterations ago). A task that ran again
    /// replaces its earlier output.
    pub fn put(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        output: MapOutput,
    ) -> Result<(), ExecutorError> {
        self.make_served_copy(shuffle, map_partition, |copy| {
            std::fs::write(copy, output.bytes())
        })?;
        let mut outputs = self.outputs.lock();
        outputs.replace((shuffle, map_partition), Stored::Memory(Arc::new(output)));
        let Outputs {
            by_map,
            memory_used,
        } = &mut *outputs;
        while *memory_used > self.memory_limit {
            let Some((&key, output)) = by_map.iter().find_map(|(key, stored)| match stored {
                Stored::Memory(output) => Some((key, output.clone())),
                Stored::Disk { .. } => None,
            }) else {
                break;
            };
            let on_disk = self.write_file(key.0, key.1, &output)?;
            *memory_used -= memory_size(&output);
            by_map.insert(key, on_disk);
        }
        Ok(())
    }

    fn write_file(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        output: &MapOutput,
    ) -> Result<Stored, ExecutorError> {
        let path = self
            .dir
            .join(format!("shuffle-{shuffle}-map-{map_partition}.data"));
        // The served copy has the same bytes: a link to it writes nothing.
        let linked = |path: &Path| {
            let copy = self.served_copy(shuffle, map_partition)?;
            std::fs::hard_link(copy, path).ok()
        };
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| match linked(&path) {
                Some(()) => Ok(()),
                None => std::fs::write(&path, output.bytes()),
            })
            .map_err(|source| ExecutorError::MapOutputSpill {
                path: path.clone(),
                source,
            })?;
        tracing::debug!(shuffle, map_partition, path = %path.display(), "map output spilled to disk");
        let ranges = (0..output.buckets())
            .map(|r| output.range(r).expect("r < buckets"))
            .collect();
        Ok(Stored::Disk {
            file: Arc::new(BucketFile {
                path,
                remove_when_dropped: true,
            }),
            ranges,
        })
    }

    /// Drops every map output of `shuffle` (no live RDD reads it any more, the driver says):
    /// memory is freed at once, files once no reducer reads them. Returns how many went.
    pub fn drop_shuffle(&self, shuffle: ShuffleId) -> usize {
        let mut outputs = self.outputs.lock();
        let keys: Vec<(ShuffleId, u32)> = outputs
            .by_map
            .range((shuffle, 0)..=(shuffle, u32::MAX))
            .map(|(key, _)| *key)
            .collect();
        for key in &keys {
            if let Some(Stored::Memory(output)) = outputs.by_map.remove(key) {
                outputs.memory_used -= memory_size(&output);
            }
            if let Some(copy) = self.served_copy(key.0, key.1) {
                let _ = std::fs::remove_file(copy);
            }
        }
        keys.len()
    }

    /// Bucket `reduce` of the output of `map_partition`, if this executor holds it.
    pub fn bucket(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        reduce: u32,
    ) -> Result<Bucket, ExecutorError> {
        let missing = || ExecutorError::NoMapOutput {
            shuffle,
            map_partition,
        };
        match self.outputs.lock().by_map.get(&(shuffle, map_partition)) {
            None => Err(missing()),
            Some(Stored::Memory(output)) => output
                .range(reduce as usize)
                .map(|range| Bucket::Local(output.clone(), range))
                .ok_or_else(missing),
            Some(Stored::Disk { file, ranges }) => match ranges.get(reduce as usize) {
                Some(range) => Ok(Bucket::File(
                    file.clone(),
                    range.start as u64..range.end as u64,
                )),
                None => Err(missing()),
            },
        }
    }

    /// A new file for a map output that `put_file` will keep.
    pub fn output_path(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
    ) -> Result<PathBuf, ExecutorError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ExecutorError::ShuffleDir {
            dir: self.dir.clone(),
            source,
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(self.dir.join(format!(
            "shuffle-{shuffle}-map-{map_partition}-{nanos}.data"
        )))
    }

    /// Keeps the map output a task streamed to `path` (its table first, as [`MapOutput`]
    /// lays it out), replacing an earlier output of the same map partition.
    pub fn put_file(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        path: PathBuf,
    ) -> Result<u64, ExecutorError> {
        let file = Arc::new(BucketFile {
            path,
            remove_when_dropped: true,
        });
        let read = || -> std::io::Result<_> {
            let opened = std::fs::File::open(&file.path)?;
            let total = opened.metadata()?.len();
            let ranges = read_index(std::io::BufReader::new(opened), total)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            Ok(ranges)
        };
        let ranges = read().map_err(|source| ExecutorError::MapOutputReadBack {
            path: file.path.clone(),
            source,
        })?;
        // A link writes nothing; a copy where the work directory is on another file system.
        self.make_served_copy(shuffle, map_partition, |copy| {
            std::fs::hard_link(&file.path, copy)
                .or_else(|_| std::fs::copy(&file.path, copy).map(drop))
        })?;
        let payload = ranges.last().map_or(0, |r| r.end) - ranges.first().map_or(0, |r| r.start);
        let ranges = ranges
            .into_iter()
            .map(|r| r.start as usize..r.end as usize)
            .collect();
        self.outputs
            .lock()
            .replace((shuffle, map_partition), Stored::Disk { file, ranges });
        Ok(payload)
    }

    /// Bytes of map output held in memory and on disk.
    #[cfg(test)]
    fn usage(&self) -> (u64, u64) {
        let outputs = self.outputs.lock();
        let on_disk = outputs
            .by_map
            .values()
            .map(|stored| match stored {
                Stored::Disk { file, .. } => std::fs::metadata(&file.path).unwrap().len(),
                Stored::Memory(_) => 0,
            })
            .sum();
        (outputs.memory_used, on_disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::map_output::frame;

    fn buckets(map: u8) -> Vec<Vec<u8>> {
        (0..3u8).map(|r| vec![map * 10 + r; 100]).collect()
    }

    fn output(buckets: &[Vec<u8>]) -> MapOutput {
        MapOutput::parse(frame(buckets)).unwrap()
    }

    /// A bucket's bytes, read in pieces of 7 bytes.
    fn all_bytes(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket
            .read_pieces(7, |piece| {
                assert!(piece.len() <= 7);
                bytes.extend_from_slice(piece);
                true
            })
            .unwrap();
        assert_eq!(bytes.len() as u64, bucket.len());
        bytes
    }

    #[test]
    fn a_streamed_output_file_is_kept_read_by_frames_and_removed_once_replaced_and_unread() {
        let dir = std::env::temp_dir().join(format!("tessera-shuffle-file-{}", std::process::id()));
        let store = ShuffleStore::new(1 << 20, dir.clone(), None);
        let framed = |frames: &[&[u8]]| {
            let mut bucket = Vec::new();
            for frame in frames {
                tessera_plan::map_output::push_frame(&mut bucket, frame);
            }
            bucket
        };
        let buckets = vec![framed(&[b"one", b"two"]), Vec::new(), framed(&[b"three"])];
        let path = store.output_path(3, 1).unwrap();
        std::fs::write(&path, frame(&buckets)).unwrap();
        assert_eq!(store.put_file(3, 1, path.clone()).unwrap(), 35);
        let mut frames = Vec::new();
        for reduce in 0..3 {
            let bucket = store.bucket(3, 1, reduce).unwrap();
            assert_eq!(all_bytes(&bucket), buckets[reduce as usize]);
            bucket
                .read_frames(|f| {
                    frames.push(f.to_vec());
                    true
                })
                .unwrap();
        }
        assert_eq!(
            frames,
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        // A rerun of the map task replaces the output; a reducer still reading a bucket of the
        // old one keeps its file, which goes with the last reader.
        let reading = store.bucket(3, 1, 0).unwrap();
        let again = store.output_path(3, 1).unwrap();
        std::fs::write(&again, frame(&buckets)).unwrap();
        store.put_file(3, 1, again.clone()).unwrap();
        assert!(path.exists());
        assert_eq!(all_bytes(&reading), buckets[0]);
        drop(reading);
        assert!(!path.exists() && again.exists());
        // A file that is not a map output is refused, not kept.
        let bad = store.output_path(4, 0).unwrap();
        std::fs::write(&bad, b"not a map output").unwrap();
        assert!(
            store
                .put_file(4, 0, bad)
                .unwrap_err()
                .to_string()
                .contains("cannot read back")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_dropped_shuffle_frees_its_memory_and_files_and_leaves_the_others() {
        let dir = std::env::temp_dir().join(format!("tessera-drop-shuffle-{}", std::process::id()));
        let output_bytes = memory_size(&output(&buckets(1)));
        // Room for one output in memory: the older shuffle's goes to disk.
        let store = ShuffleStore::new(output_bytes, dir.clone(), None);
        store.put(1, 0, output(&buckets(1))).unwrap();
        store.put(2, 0, output(&buckets(2))).unwrap();
        store.put(2, 1, output(&buckets(3))).unwrap();
        let files = || std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert!(files() >= 1, "the first shuffle went to disk");
        assert_eq!(store.drop_shuffle(1), 1);
        assert!(store.bucket(1, 0, 0).is_err());
        assert_eq!(all_bytes(&store.bucket(2, 1, 0).unwrap()), buckets(3)[0]);
        let spilled_of_2 = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("shuffle-2-")
            })
            .count();
        assert_eq!(files(), spilled_of_2, "no file of shuffle 1 is left");
        assert_eq!(store.drop_shuffle(2), 2);
        assert_eq!(store.usage(), (0, 0));
        assert_eq!(files(), 0);
        assert_eq!(store.drop_shuffle(2), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_oldest_outputs_go_to_disk_past_the_budget_and_read_back_the_same() {
        let dir =
            std::env::temp_dir().join(format!("tessera-shuffle-store-{}", std::process::id()));
        // Outputs of 300 bytes of buckets and a 40-byte frame each, 700 in memory at most.
        let store = ShuffleStore::new(700, dir.clone(), None);
        for map in 0..4 {
            let shuffle = 7 + map as u64 / 2;
            store
                .put(shuffle, map, output(&buckets(map as u8)))
                .unwrap();
        }
        // The two outputs of the older shuffle (7) were written to disk; the newer shuffle's
        // stay in memory.
        assert_eq!(store.usage(), (680, 680));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["shuffle-7-map-0.data", "shuffle-7-map-1.data"]);
        for map in 0..4 {
            for reduce in 0..3 {
                let bucket = store.bucket(7 + map as u64 / 2, map, reduce).unwrap();
                assert_eq!(all_bytes(&bucket), buckets(map as u8)[reduce as usize]);
            }
        }
        assert!(
            matches!(store.bucket(7, 9, 0), Err(e) if e.to_string().contains("map partition 9"))
        );
        assert!(store.bucket(7, 0, 3).is_err());
        // A rerun of a map task replaces its output and frees the memory the old one held.
        store.put(8, 2, output(&[vec![1; 10]])).unwrap();
        assert_eq!(store.usage(), (340 + 34, 680));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn under_a_serving_agent_every_output_has_a_whole_copy_until_its_shuffle_is_dropped() {
        let root =
            std::env::temp_dir().join(format!("tessera-served-copies-{}", std::process::id()));
        let dir = root.join("work").join("shuffle");
        // 700 bytes in memory: the third output sends the first two to disk.
        let store = ShuffleStore::new(700, dir.clone(), Some(root.clone()));
        for map in 0..3 {
            store.put(5, map, output(&buckets(map as u8))).unwrap();
        }
        let streamed = store.output_path(5, 3).unwrap();
        std::fs::write(&streamed, frame(&buckets(3))).unwrap();
        store.put_file(5, 3, streamed).unwrap();
        let copy = |map: u32| root.join(served_path(5, map));
        for map in 0..4u32 {
            // What a reducer reads through the agent: the table's start, then the bucket.
            let bytes = std::fs::read(copy(map)).unwrap();
            for reduce in 0..3u32 {
                let prefix = tessera_plan::map_output::table_prefix_len(reduce) as usize;
                let range =
                    tessera_plan::map_output::bucket_in_table(&bytes[..prefix], reduce).unwrap();
                assert_eq!(
                    bytes[range.start as usize..range.end as usize],
                    buckets(map as u8)[reduce as usize]
                );
            }
        }
        // A rerun replaces the copy whole.
        store.put(5, 0, output(&[vec![9; 4]])).unwrap();
        assert_eq!(std::fs::read(copy(0)).unwrap(), frame(&[vec![9; 4]]));
        let names = |dir: &Path| std::fs::read_dir(dir).map_or(0, |d| d.count());
        assert_eq!(names(&root.join("shuffle")), 4, "no partial file is left");
        assert_eq!(store.drop_shuffle(5), 4);
        assert_eq!(names(&root.join("shuffle")), 0);
        std::fs::remove_dir_all(root).unwrap();
    }
}
