//! A cached partition's file on this executor's disk, being written: its frames
//! (`block_encoding.rs`) go to the file as its batches come, and a file not finished goes when
//! its writer does.
//!
//! A task caching a partition `DISK_ONLY` writes each batch here as its records reach the
//! cache step, as Spark's `DiskStore` writes a block's values as they are computed: caching
//! it never holds the partition in memory, so a partition larger than the executor's memory
//! can still be kept on its disk. A partition that goes to disk from memory (one evicted, or
//! one larger than the memory there is) is written through the same writer, its batches at
//! once, and so is a copy another executor sends of its block file, its frames as they come.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tessera_plan::abi::{Batch, BatchVTable};

use crate::block_encoding::{Framing, encode_into};
use crate::error::ExecutorError;

/// A block file being written, removed when dropped unless [`BlockFileWriter::finish`]ed.
pub(crate) struct BlockFileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    vtable: BatchVTable,
    finished: bool,
}

/// What a failed write of the block file at `path` (or of its directory) is.
fn write_error(path: &Path) -> impl Fn(std::io::Error) -> ExecutorError + Copy + '_ {
    move |source| ExecutorError::CacheWrite {
        path: path.to_path_buf(),
        source,
    }
}

impl BlockFileWriter {
    /// Starts the file `path` (which must not exist; its directory is made if missing) for
    /// batches of `vtable`.
    pub(crate) fn create(path: PathBuf, vtable: BatchVTable) -> Result<Self, ExecutorError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(write_error(&path))?;
        Ok(BlockFileWriter {
            out: BufWriter::new(file),
            path,
            vtable,
            finished: false,
        })
    }

    /// Writes `batches` (live batches of its table, which stay the caller's) after what it
    /// wrote so far, a run a piece at a time ([`Framing::Pieces`]).
    pub(crate) fn write(&mut self, batches: &[Batch]) -> Result<(), ExecutorError> {
        let error = write_error(&self.path);
        encode_into(batches, &self.vtable, Framing::Pieces, &mut self.out, error)?;
        Ok(())
    }

    /// Writes `bytes`, frames as [`BlockFileWriter::write`] writes them (a copy another
    /// executor sends of its block file), after what it wrote so far.
    pub(crate) fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), ExecutorError> {
        self.out.write_all(bytes).map_err(write_error(&self.path))
    }

    /// Flushes what it wrote, and hands the finished file on: the caller's to remove from
    /// now on.
    pub(crate) fn finish(mut self) -> Result<PathBuf, ExecutorError> {
        self.out.flush().map_err(write_error(&self.path))?;
        self.finished = true;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for BlockFileWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::block_encoding::decode_from;
    use crate::block_encoding::tests::{VTABLE, batches_of, contents_of};
    use crate::blocks::free;

    /// The contents of the byte batches (of `vtable`, a table of `Box<Vec<u8>>` batches) in
    /// the block file at `path`.
    pub(crate) fn read_back(path: &Path, vtable: &BatchVTable) -> Vec<Vec<u8>> {
        let file = std::io::BufReader::new(File::open(path).unwrap());
        let len = std::fs::metadata(path).unwrap().len();
        contents_of(decode_from(file, len, vtable, |e| panic!("{e}")).unwrap())
    }

    #[test]
    fn batches_written_as_they_come_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks").join("rdd-1-0-0");
        let mut writer = BlockFileWriter::create(path.clone(), VTABLE).unwrap();
        let first = batches_of(&[b"abc".to_vec(), b"de".to_vec()]);
        let second = batches_of(&[b"fghij".to_vec()]);
        writer.write(&first).unwrap();
        writer.write(&second).unwrap();
        assert_eq!(writer.finish().unwrap(), path);
        free(first, &VTABLE);
        free(second, &VTABLE);
        assert_eq!(
            read_back(&path, &VTABLE),
            [b"abc".to_vec(), b"de".to_vec(), b"fghij".to_vec()]
        );
    }

    #[test]
    fn a_file_not_finished_is_removed_and_an_existing_one_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rdd-1-0-0");
        let mut writer = BlockFileWriter::create(path.clone(), VTABLE).unwrap();
        let batches = batches_of(&[b"abc".to_vec()]);
        writer.write(&batches).unwrap();
        free(batches, &VTABLE);
        assert!(path.exists());
        assert!(matches!(
            BlockFileWriter::create(path.clone(), VTABLE),
            Err(ExecutorError::CacheWrite { path: p, .. }) if p == path
        ));
        drop(writer);
        assert!(!path.exists(), "a task that failed leaves no block file");
    }
}
