//! Encoded copies, in host memory, of cached partitions whose records own memory elsewhere.
//!
//! A partition of plain-byte records cached at a memory level is itself kept in host memory
//! (`host_memory.rs`), and outlives its executor. One of records that own memory (PageRank's
//! links, `(u64, Vec<u64>)`; strings) stays in the process's own memory, where tasks read it
//! fastest, and would be computed again from lineage if the executor died: PageRank's links
//! grouped again from a shuffle. So the block manager also writes, off the tasks' path, an
//! encoded copy of such a partition into host memory ([`RecordLayout::Encoded`]), with a
//! manifest; an executor that adopts it decodes it, for a fraction of what computing it again
//! costs.
//!
//! Spark keeps no such copy of a `MEMORY_ONLY` block. Here a copy costs memory the partition's
//! level did not ask for, so the block manager counts it against its limit, lets copies take a
//! quarter of it at most (the rest may be tasks' working memory), and drops copies before any
//! partition: a copy buys a faster recovery, never at the price of a cached partition.
//! Partitions kept at a replicated level get none: their other copy is on another executor.
//!
//! A copy is written and read a frame at a time (`block_encoding.rs`), a batch a frame: making
//! or adopting one takes no buffer of its size.

use crate::block_encoding::decode_from;
use crate::error::ExecutorError;
use crate::host_memory::{
    FoundManifest, HostMemory, file_beside, host_run, io_error, manifest_of, write_manifest,
};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use tessera_plan::abi::{Batch, BatchVTable};
use tessera_plan::host_block::{HostBlockManifest, ManifestKind, RecordLayout};
use tessera_plan::{BatchCode, RddId, StorageLevel};

/// An encoded copy of a cached partition in host memory, with its manifest; both go when it
/// does.
pub struct HostCopy {
    file: PathBuf,
    manifest: PathBuf,
    bytes: u64,
}

impl HostCopy {
    /// Writes into `memory` a copy of partition `key` (`records` records, kept at `level` with
    /// code `code`): `encode` writes the partition's records into the file it is given,
    /// encoded as a `MEMORY_ONLY_SER` block holds them, telling a failed write by the function
    /// it is given, and returns the bytes it wrote. If anything fails, nothing stays.
    pub fn write<W>(
        memory: &HostMemory,
        key: (RddId, u32),
        (level, code): (StorageLevel, &BatchCode),
        records: u64,
        encode: W,
    ) -> Result<HostCopy, ExecutorError>
    where
        W: FnOnce(
            &mut BufWriter<std::fs::File>,
            &dyn Fn(std::io::Error) -> ExecutorError,
        ) -> Result<u64, ExecutorError>,
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Its files go with it if what follows fails.
        let mut copy = HostCopy::new_in(memory, key, 0);
        let path = copy.file.clone();
        let write_error = io_error(&path);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy.file)
            .map_err(&write_error)?;
        let mut out = BufWriter::new(file);
        copy.bytes = encode(&mut out, &write_error)?;
        out.flush().map_err(&write_error)?;
        write_manifest(
            &copy.manifest,
            &copy.manifest_of(key, (level, code), records),
        )?;
        Ok(copy)
    }

    /// A copy of `bytes` bytes of partition `key` in `memory`, at new paths (nothing written).
    fn new_in(memory: &HostMemory, key: (RddId, u32), bytes: u64) -> HostCopy {
        HostCopy {
            file: memory.run_path(key.0, key.1),
            manifest: memory.manifest_path(ManifestKind::Block, key.0, key.1),
            bytes,
        }
    }

    /// Bytes of host memory it holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn manifest_of(
        &self,
        key: (RddId, u32),
        (level, code): (StorageLevel, &BatchCode),
        records: u64,
    ) -> HostBlockManifest {
        let layout = RecordLayout::Encoded { bytes: self.bytes };
        let runs = vec![host_run(&self.file, records)];
        manifest_of((layout, runs), key, level, code, None)
    }
}

impl Drop for HostCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The copy `found` (a lost executor's manifest of an encoded copy) names, moved into `memory`
/// as this executor's: its records, decoded with `table`, and the copy. Its file is moved, not
/// copied (on one tmpfs, a rename), and read a frame at a time.
pub fn adopt(
    memory: &HostMemory,
    found: FoundManifest,
    table: &BatchVTable,
) -> Result<(Vec<Batch>, HostCopy), ExecutorError> {
    let manifest = &found.manifest;
    let damaged = |reason: String| ExecutorError::HostMemoryDamaged {
        path: found.path.clone(),
        reason,
    };
    let (RecordLayout::Encoded { bytes }, [run]) = (manifest.layout, manifest.runs.as_slice())
    else {
        return Err(damaged("not one file of an encoded copy".into()));
    };
    let from = file_beside(&found, &run.file)?;
    let key = (manifest.rdd, manifest.partition);
    let copy = HostCopy::new_in(memory, key, bytes);
    let read_error = io_error(&copy.file);
    std::fs::rename(&from, &copy.file).map_err(&read_error)?;
    let file = std::fs::File::open(&copy.file).map_err(&read_error)?;
    let found_bytes = file.metadata().map_err(&read_error)?.len();
    if found_bytes != bytes {
        return Err(ExecutorError::HostMemoryDamaged {
            path: copy.file.clone(),
            reason: format!("{found_bytes} bytes where its manifest names {bytes}"),
        });
    }
    let batches = decode_from(std::io::BufReader::new(file), bytes, table, read_error)?;
    let moved = copy.manifest_of(key, (manifest.level, &manifest.code), run.records);
    if let Err(e) = write_manifest(&copy.manifest, &moved) {
        crate::blocks::free(batches, table);
        return Err(e);
    }
    let _ = std::fs::remove_file(&found.path);
    Ok((batches, copy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_encoding::tests::{VTABLE, batches_of, contents_of};
    use crate::block_encoding::{Framing, encode_into};
    use crate::blocks::free;
    use crate::host_memory::Manifests;
    use tessera_plan::CodeRef;

    fn code() -> BatchCode {
        BatchCode::Operator(CodeRef {
            library: "ab".repeat(32),
            offset: 128,
        })
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-host-copy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn files_in(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    /// Writes a copy of partition `key` holding byte batches of `contents`.
    fn write_copy(
        memory: &HostMemory,
        key: (RddId, u32),
        level: StorageLevel,
        contents: &[Vec<u8>],
    ) -> HostCopy {
        let batches = batches_of(contents);
        let copy = HostCopy::write(memory, key, (level, &code()), 77, |out, write_error| {
            encode_into(&batches, &VTABLE, Framing::Batches, out, write_error)
        })
        .unwrap();
        free(batches, &VTABLE);
        copy
    }

    #[test]
    fn another_executor_adopts_a_copy_and_reads_the_same_records_and_level() {
        let (lost, adopter) = (scratch("lost"), scratch("adopter"));
        let memory = HostMemory::new(lost.clone()).unwrap();
        let records: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 1000]).collect();
        let copy = write_copy(&memory, (4, 3), StorageLevel::MemoryAndDisk, &records);
        assert_eq!(copy.bytes(), 10 * 1008);
        // The executor dies: its copy's files stay.
        std::mem::forget(copy);

        let found = Manifests::list(&lost).unwrap().read((4, 3)).unwrap();
        assert_eq!(found.manifest.level, StorageLevel::MemoryAndDisk);
        assert_eq!(found.manifest.code, code());
        assert_eq!(found.manifest.runs[0].records, 77);
        let here = HostMemory::new(adopter.clone()).unwrap();
        let (read, copy) = adopt(&here, found, &VTABLE).unwrap();
        assert_eq!(contents_of(read), records);
        assert_eq!(files_in(&lost), 0, "the file and manifest moved");
        assert_eq!(files_in(&adopter), 2);
        // Adopted again, from the adopter, if it dies in turn.
        let again = Manifests::list(&adopter).unwrap().read((4, 3)).unwrap();
        assert_eq!(again.manifest.runs[0].records, 77);
        drop(copy);
        assert_eq!(files_in(&adopter), 0, "a copy's files go with it");
        let _ = std::fs::remove_dir_all(lost);
        let _ = std::fs::remove_dir_all(adopter);
    }

    #[test]
    fn a_copy_that_cannot_be_encoded_leaves_nothing() {
        let dir = scratch("failed");
        let memory = HostMemory::new(dir.clone()).unwrap();
        let failed = HostCopy::write(
            &memory,
            (2, 0),
            (StorageLevel::MemoryOnly, &code()),
            1,
            |out, _| {
                out.write_all(b"half a frame").unwrap();
                Err(ExecutorError::CacheEncode {
                    message: "a record would not encode".into(),
                })
            },
        );
        let error = failed.err().unwrap().to_string();
        assert!(error.contains("a record would not encode"), "{error}");
        assert_eq!(files_in(&dir), 0, "no file or manifest stays");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_copy_cut_short_or_named_outside_its_directory_is_refused_with_what_is_wrong() {
        let (lost, adopter) = (scratch("cut"), scratch("cut-adopter"));
        let memory = HostMemory::new(lost.clone()).unwrap();
        let records = vec![vec![7; 292]];
        std::mem::forget(write_copy(
            &memory,
            (1, 0),
            StorageLevel::MemoryOnly,
            &records,
        ));
        let here = HostMemory::new(adopter.clone()).unwrap();

        let mut found = Manifests::list(&lost).unwrap().read((1, 0)).unwrap();
        let file = found.manifest.runs[0].file.clone();
        found.manifest.runs[0].file = format!("../{file}");
        let error = adopt(&here, found, &VTABLE).err().unwrap().to_string();
        assert!(error.contains("a file named \"../"), "{error}");

        let run = lost.join(&file);
        std::fs::write(&run, [7; 100]).unwrap();
        let found = Manifests::list(&lost).unwrap().read((1, 0)).unwrap();
        let error = adopt(&here, found, &VTABLE).err().unwrap().to_string();
        assert!(
            error.contains("100 bytes where its manifest names 300"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(lost);
        let _ = std::fs::remove_dir_all(adopter);
    }
}
