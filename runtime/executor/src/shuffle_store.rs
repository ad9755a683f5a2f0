//! Map outputs this executor wrote: for each (shuffle, map partition), one encoded bucket per
//! reduce partition (framed as a [`MapOutput`]), kept for reducers to fetch until the executor
//! ends. Outputs stay in memory while they fit in the store's budget; past it, the oldest
//! shuffles' outputs are written unchanged to one file each in the executor's shuffle directory
//! (their bucket ranges kept here, as Spark's sort shuffle writes a data file and an index),
//! and buckets are read from there.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_plan::ShuffleId;
use tessera_plan::map_output::MapOutput;

/// Where one map output is kept.
enum Stored {
    Memory(Arc<MapOutput>),
    /// `ranges[r]` is where bucket `r` is in the file.
    Disk {
        path: PathBuf,
        ranges: Vec<Range<usize>>,
    },
}

pub struct ShuffleStore {
    outputs: Mutex<Outputs>,
    /// Bytes of map output kept in memory before outputs go to disk.
    memory_limit: u64,
    dir: PathBuf,
}

#[derive(Default)]
struct Outputs {
    /// Ordered by shuffle id, so the oldest shuffles come first.
    by_map: BTreeMap<(ShuffleId, u32), Stored>,
    memory_used: u64,
}

/// A bucket a reducer reads: part of a map output held in memory here, or bytes read from this
/// executor's disk or fetched from a peer.
pub enum Bucket {
    Local(Arc<MapOutput>, Range<usize>),
    Owned(Vec<u8>),
}

impl Bucket {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Bucket::Local(output, range) => &output.bytes()[range.clone()],
            Bucket::Owned(bytes) => bytes,
        }
    }
}

fn memory_size(output: &MapOutput) -> u64 {
    output.bytes().len() as u64
}

impl ShuffleStore {
    pub fn new(memory_limit: u64, dir: PathBuf) -> ShuffleStore {
        ShuffleStore {
            outputs: Mutex::default(),
            memory_limit,
            dir,
        }
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
    ) -> Result<(), String> {
        let mut outputs = self.outputs.lock();
        let Outputs {
            by_map,
            memory_used,
        } = &mut *outputs;
        *memory_used += memory_size(&output);
        if let Some(Stored::Memory(old)) =
            by_map.insert((shuffle, map_partition), Stored::Memory(Arc::new(output)))
        {
            *memory_used -= memory_size(&old);
        }
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
    ) -> Result<Stored, String> {
        let path = self
            .dir
            .join(format!("shuffle-{shuffle}-map-{map_partition}.data"));
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&path, output.bytes()))
            .map_err(|e| {
                format!(
                    "cannot write shuffle output to {} ({e}); free disk space there, or give \
                     executors more memory",
                    path.display()
                )
            })?;
        tracing::debug!(shuffle, map_partition, path = %path.display(), "map output spilled to disk");
        let ranges = (0..output.buckets())
            .map(|r| output.range(r).expect("r < buckets"))
            .collect();
        Ok(Stored::Disk { path, ranges })
    }

    /// Bucket `reduce` of the output of `map_partition`, if this executor holds it.
    pub fn bucket(
        &self,
        shuffle: ShuffleId,
        map_partition: u32,
        reduce: u32,
    ) -> Result<Bucket, String> {
        let missing = || format!("no output of map partition {map_partition} of shuffle {shuffle}");
        let (path, range) = match self.outputs.lock().by_map.get(&(shuffle, map_partition)) {
            None => return Err(missing()),
            Some(Stored::Memory(output)) => {
                return output
                    .range(reduce as usize)
                    .map(|range| Bucket::Local(output.clone(), range))
                    .ok_or_else(missing);
            }
            Some(Stored::Disk { path, ranges }) => match ranges.get(reduce as usize) {
                Some(range) => (path.clone(), range.clone()),
                None => return Err(missing()),
            },
        };
        let read = || {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(range.start as u64))?;
            let mut bytes = vec![0; range.len()];
            file.read_exact(&mut bytes)?;
            Ok::<_, std::io::Error>(bytes)
        };
        read()
            .map(Bucket::Owned)
            .map_err(|e| format!("cannot read shuffle output {}: {e}", path.display()))
    }

    /// Bytes of map output held in memory and on disk.
    #[cfg(test)]
    fn usage(&self) -> (u64, u64) {
        let outputs = self.outputs.lock();
        let on_disk = outputs
            .by_map
            .values()
            .map(|stored| match stored {
                Stored::Disk { path, .. } => std::fs::metadata(path).unwrap().len(),
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

    #[test]
    fn the_oldest_outputs_go_to_disk_past_the_budget_and_read_back_the_same() {
        let dir =
            std::env::temp_dir().join(format!("tessera-shuffle-store-{}", std::process::id()));
        // Outputs of 300 bytes of buckets and a 40-byte frame each, 700 in memory at most.
        let store = ShuffleStore::new(700, dir.clone());
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
                assert_eq!(bucket.bytes(), &buckets(map as u8)[reduce as usize][..]);
            }
        }
        assert!(matches!(store.bucket(7, 9, 0), Err(e) if e.contains("map partition 9")));
        assert!(store.bucket(7, 0, 3).is_err());
        // A rerun of a map task replaces its output and frees the memory the old one held.
        store.put(8, 2, output(&[vec![1; 10]])).unwrap();
        assert_eq!(store.usage(), (340 + 34, 680));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
