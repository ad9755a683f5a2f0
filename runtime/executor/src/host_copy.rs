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

use crate::error::ExecutorError;
use crate::host_memory::{
    FoundManifest, HostMemory, file_beside, host_run, io_error, manifest_of, write_manifest,
};
use std::path::PathBuf;
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
    /// Writes `encoded` (a partition's `records` records, encoded as a `MEMORY_ONLY_SER` block
    /// holds them) into `memory` as a copy of partition `key`, kept at `level` with code `code`.
    pub fn write(
        memory: &HostMemory,
        key: (RddId, u32),
        (level, code): (StorageLevel, &BatchCode),
        encoded: &[u8],
        records: u64,
    ) -> Result<HostCopy, ExecutorError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let copy = HostCopy::new_in(memory, key, encoded.len() as u64);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy.file)
            .and_then(|mut file| file.write_all(encoded))
            .map_err(io_error(&copy.file))?;
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
/// as this executor's: its encoded records, to decode, and the copy. Its file is moved, not
/// copied: on one tmpfs, a rename.
pub fn adopt(
    memory: &HostMemory,
    found: FoundManifest,
) -> Result<(Vec<u8>, HostCopy), ExecutorError> {
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
    std::fs::rename(&from, &copy.file).map_err(io_error(&copy.file))?;
    let encoded = std::fs::read(&copy.file).map_err(io_error(&copy.file))?;
    if encoded.len() as u64 != bytes {
        return Err(ExecutorError::HostMemoryDamaged {
            path: copy.file.clone(),
            reason: format!("{} bytes where its manifest names {bytes}", encoded.len()),
        });
    }
    let moved = copy.manifest_of(key, (manifest.level, &manifest.code), run.records);
    write_manifest(&copy.manifest, &moved)?;
    let _ = std::fs::remove_file(&found.path);
    Ok((encoded, copy))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn another_executor_adopts_a_copy_and_reads_the_same_bytes_and_level() {
        let (lost, adopter) = (scratch("lost"), scratch("adopter"));
        let memory = HostMemory::new(lost.clone()).unwrap();
        let encoded: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let copy = HostCopy::write(
            &memory,
            (4, 3),
            (StorageLevel::MemoryAndDisk, &code()),
            &encoded,
            77,
        )
        .unwrap();
        assert_eq!(copy.bytes(), 10_000);
        // The executor dies: its copy's files stay.
        std::mem::forget(copy);

        let found = Manifests::list(&lost).unwrap().read((4, 3)).unwrap();
        assert_eq!(found.manifest.level, StorageLevel::MemoryAndDisk);
        assert_eq!(found.manifest.code, code());
        assert_eq!(found.manifest.runs[0].records, 77);
        let here = HostMemory::new(adopter.clone()).unwrap();
        let (read, copy) = adopt(&here, found).unwrap();
        assert_eq!(read, encoded);
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
    fn a_copy_cut_short_or_named_outside_its_directory_is_refused_with_what_is_wrong() {
        let (lost, adopter) = (scratch("cut"), scratch("cut-adopter"));
        let memory = HostMemory::new(lost.clone()).unwrap();
        let how = (StorageLevel::MemoryOnly, &code());
        std::mem::forget(HostCopy::write(&memory, (1, 0), how, &[7; 300], 3).unwrap());
        let here = HostMemory::new(adopter.clone()).unwrap();

        let mut found = Manifests::list(&lost).unwrap().read((1, 0)).unwrap();
        let file = found.manifest.runs[0].file.clone();
        found.manifest.runs[0].file = format!("../{file}");
        let error = adopt(&here, found).err().unwrap().to_string();
        assert!(error.contains("a file named \"../"), "{error}");

        let run = lost.join(&file);
        std::fs::write(&run, [7; 100]).unwrap();
        let found = Manifests::list(&lost).unwrap().read((1, 0)).unwrap();
        let error = adopt(&here, found).err().unwrap().to_string();
        assert!(
            error.contains("100 bytes where its manifest names 300"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(lost);
        let _ = std::fs::remove_dir_all(adopter);
    }
}
