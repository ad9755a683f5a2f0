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

use tessera_plan::abi::{Batch, BatchVTable, RunsVTable, SharedRecords};

/// Records in a piece of a cached partition read in place: the size of the batches operators
/// hand on, so that a step reading a piece puts out what it would for a batch.
pub(crate) const PIECE_RECORDS: usize = 4096;

/// A partition's records kept by a cache step while its task runs: copied into runs, or, for
/// a table without runs, batch by batch.
pub(crate) struct Gathering {
    table: BatchVTable,
    /// The batches and runs with no room left.
    kept: Vec<Batch>,
    /// The run records go into next (null before the first).
    run: Batch,
}

impl Gathering {
    /// Nothing kept yet, of batches made with `table`.
    pub(crate) fn new(table: BatchVTable) -> Gathering {
        Gathering {
            table,
            kept: Vec::new(),
            run: std::ptr::null_mut(),
        }
    }

    /// Keeps a copy of `batch`'s records; `batch` stays with the caller.
    ///
    /// # Safety
    /// `batch` must be a live batch of this gathering's table.
    pub(crate) unsafe fn keep(&mut self, batch: Batch) {
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
    }

    /// What was kept, the last run with no room to spare; nothing is left here.
    pub(crate) fn finish(&mut self) -> Vec<Batch> {
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
}

impl Drop for Gathering {
    fn drop(&mut self) {
        // What `finish` did not take: a failed task's partition, freed unsealed.
        let run = (!self.run.is_null()).then_some(self.run);
        for batch in self.kept.drain(..).chain(run) {
            // SAFETY: each was made by this table, and nothing else holds it.
            unsafe { (self.table.drop)(batch) };
        }
    }
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
    use tessera_plan::abi::{BatchSink, ByteSink, ErrorSink, RawBytes, STATUS_OK, Status};

    /// A table of batches of bytes (a `Vec<u8>` each) whose runs have room for 10,000.
    mod bytes {
        use super::*;

        const ROOM: usize = 10_000;

        pub fn batch(records: Vec<u8>) -> Batch {
            Box::into_raw(Box::new(records)) as Batch
        }
        pub fn records<'a>(batch: Batch) -> &'a mut Vec<u8> {
            unsafe { &mut *(batch as *mut Vec<u8>) }
        }
        unsafe extern "C" fn type_name() -> RawBytes {
            RawBytes::from_slice(b"u8")
        }
        unsafe extern "C" fn len(batch: Batch) -> usize {
            records(batch).len()
        }
        unsafe extern "C" fn clone(batch: Batch) -> Batch {
            self::batch(records(batch).clone())
        }
        unsafe extern "C" fn drop(batch: Batch) {
            std::mem::drop(unsafe { Box::from_raw(batch as *mut Vec<u8>) });
        }
        unsafe extern "C" fn encode(_: Batch, _: ByteSink, _: ErrorSink) -> Status {
            STATUS_OK
        }
        unsafe extern "C" fn decode(_: RawBytes, _: BatchSink, _: ErrorSink) -> Status {
            STATUS_OK
        }
        unsafe extern "C" fn gather(run: Batch, from: Batch) -> Batch {
            let from = records(from);
            if !run.is_null() && records(run).capacity() - records(run).len() >= from.len() {
                records(run).extend_from_slice(from);
                return run;
            }
            if !run.is_null() {
                records(run).shrink_to_fit();
            }
            let mut new = Vec::with_capacity(ROOM.max(from.len()));
            new.extend_from_slice(from);
            batch(new)
        }
        unsafe extern "C" fn seal(run: Batch) {
            records(run).shrink_to_fit();
        }
        unsafe extern "C" fn copy(piece: SharedRecords) -> Batch {
            batch(records(piece.batch)[piece.start..piece.start + piece.len].to_vec())
        }
        pub const TABLE: BatchVTable = BatchVTable {
            type_name,
            len,
            memory_bytes: len,
            clone,
            drop,
            encode,
            decode,
            runs: Some(RunsVTable { gather, seal, copy }),
        };
    }

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
            let mut gathering = Gathering::new(table);
            // As operators hand them on: 4096 records a batch, and a short one at each split.
            for part in records.chunks(6_000) {
                for batch in part.chunks(PIECE_RECORDS) {
                    let batch = bytes::batch(batch.to_vec());
                    unsafe { gathering.keep(batch) };
                    unsafe { (table.drop)(batch) };
                }
            }
            let kept = gathering.finish();
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
