//! `CombineTable`: the hash table in which combining keeps one combiner per key (map-side
//! combining, `*_by_key` merges and groups), placing a batch of records at a time.
//!
//! Word count's map tasks spent a third of their time on loads that missed the cache, for its
//! hundred thousand distinct words: the control bytes and the entry of the record's key in
//! the table, then the bytes of the key stored there, each waited for before the next record
//! could start. A batch's hashes are all known before its first record is placed, so this
//! table asks for those ahead while it places one record: the control bytes and home entry of
//! a record further on and, for `String` keys, the matching entry of a nearer one (found among
//! its control bytes, there by then) and the stored key's bytes of the next ones (read from
//! their entries, there by then), [`FETCH_STEP`] records apart.
//!
//! The table is `HashMap`'s own, hashbrown's `RawTable` (SwissTable): its raw interface says
//! where a hash's probe starts and which entries it would compare, which `HashMap` does not. A
//! table of our own with the same layout took a quarter longer per record than hashbrown's on
//! keys of one number, half longer counting its growth.

use crate::hash::key_hash;
use hashbrown::raw::RawTable;
use std::any::Any;
use std::hash::Hash;

/// How many records apart the three fetches ahead of a record are: its control bytes and home
/// entry `3 * FETCH_STEP` records before it is placed, its matching entry `2 * FETCH_STEP`
/// before, a `String` key's bytes `FETCH_STEP` before. Each step must give a load from memory
/// time to arrive.
const FETCH_STEP: usize = 16;

/// Keys and their combiners. A combiner is `None` only while its update runs: an update that
/// panics leaves its key with `None`, and the table stays sound.
pub(crate) struct CombineTable<K, C> {
    table: RawTable<(K, Option<C>)>,
    /// The hashes of the batch being placed, kept to be reused by the next.
    hashes: Vec<u64>,
}

impl<K: Hash + Eq + 'static, C> CombineTable<K, C> {
    pub(crate) fn new() -> Self {
        CombineTable {
            table: RawTable::new(),
            hashes: Vec::new(),
        }
    }

    /// How many keys it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// Places `key`: `update` gets the key if it is new to the table (None if it was there)
    /// and its combiner (None if new).
    pub(crate) fn upsert(&mut self, key: K, update: impl FnOnce(Option<&K>, &mut Option<C>)) {
        let hash = key_hash(&key);
        self.place(hash, key, update);
    }

    /// Places each record's key as [`CombineTable::upsert`] does, with its value for `update`,
    /// fetching ahead what the records that come next will read.
    pub(crate) fn upsert_all<V>(
        &mut self,
        records: Vec<(K, V)>,
        mut update: impl FnMut(Option<&K>, &mut Option<C>, V),
    ) {
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.extend(records.iter().map(|(key, _)| key_hash(key)));
        // Room for every record first: no entry moves while the batch is placed, so what was
        // fetched ahead is still where it was asked for.
        self.table.reserve(records.len(), |(key, _)| key_hash(key));
        for (i, (key, value)) in records.into_iter().enumerate() {
            if let Some(&ahead) = hashes.get(i + 3 * FETCH_STEP) {
                self.fetch_home(ahead);
            }
            // The two later fetches find their entry among the control bytes, a probe without
            // a key compared: for keys compared in place (numbers) that costs as much as the
            // misses it saves (PageRank's contributions, 64,000 pages), so only keys whose
            // bytes lie apart from the table take them.
            if holds_text::<K>() {
                if let Some(&ahead) = hashes.get(i + 2 * FETCH_STEP) {
                    self.fetch_entry(ahead);
                }
                if let Some(&ahead) = hashes.get(i + FETCH_STEP) {
                    self.fetch_key(ahead);
                }
            }
            self.place(hashes[i], key, |new, combiner| update(new, combiner, value));
        }
        self.hashes = hashes;
    }

    /// Takes every key and combiner out, leaving the table empty (its memory kept). What the
    /// iterator has not handed out when it is dropped is dropped with it.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, Option<C>)> + '_ {
        self.table.drain()
    }

    /// Places `key` of hash `hash`.
    #[inline(always)]
    fn place(&mut self, hash: u64, key: K, update: impl FnOnce(Option<&K>, &mut Option<C>)) {
        match self
            .table
            .find_or_find_insert_slot(hash, |(k, _)| *k == key, |(k, _)| key_hash(k))
        {
            Ok(found) => {
                // SAFETY: the bucket was just found in this table, which nothing changed since.
                let (_, combiner) = unsafe { found.as_mut() };
                update(None, combiner);
            }
            Err(slot) => {
                // SAFETY: the slot was just found for this hash in this table, unchanged since.
                let placed = unsafe { self.table.insert_in_slot(hash, slot, (key, None)) };
                // SAFETY: the bucket was just filled in this table.
                let (key, combiner) = unsafe { placed.as_mut() };
                update(Some(key), combiner);
            }
        }
    }

    /// Asks for the control bytes and the entry where the probe of hash `hash` starts.
    #[inline(always)]
    fn fetch_home(&self, hash: u64) {
        if self.table.capacity() == 0 {
            return;
        }
        let home = hash as usize & (self.table.buckets() - 1);
        // The control bytes start where the entries end (hashbrown's layout; a prefetch of
        // the wrong place would cost a load, never a fault).
        prefetch(
            self.table
                .data_end()
                .as_ptr()
                .cast::<u8>()
                .wrapping_add(home),
        );
        // SAFETY: `home` is below the number of buckets of this allocated table.
        prefetch(unsafe { self.table.bucket(home) }.as_ptr());
    }

    /// The first entry that the probe of hash `hash` would compare, if any.
    #[inline(always)]
    fn first_candidate(&self, hash: u64) -> Option<*mut (K, Option<C>)> {
        // SAFETY: the iterator is used before the table can change.
        unsafe { self.table.iter_hash(hash) }
            .next()
            .map(|bucket| bucket.as_ptr())
    }

    /// Asks for the entry the probe of hash `hash` would compare first (its control bytes are
    /// there by now).
    #[inline(always)]
    fn fetch_entry(&self, hash: u64) {
        if let Some(entry) = self.first_candidate(hash) {
            prefetch(entry);
        }
    }

    /// Asks for the bytes of the `String` key in the entry [`CombineTable::fetch_entry`]
    /// fetched (there by now).
    #[inline(always)]
    fn fetch_key(&self, hash: u64) {
        if let Some(entry) = self.first_candidate(hash) {
            // SAFETY: a bucket the table's iterator yields is full.
            let key = unsafe { &(*entry).0 };
            if let Some(text) = (key as &dyn Any).downcast_ref::<String>() {
                prefetch(text.as_ptr());
            }
        }
    }
}

/// Whether keys of type `K` are `String`s, whose bytes lie apart from the table: the keys most
/// maps of words hold, and the only ones [`CombineTable::fetch_key`] fetches.
fn holds_text<K: 'static>() -> bool {
    std::any::TypeId::of::<K>() == std::any::TypeId::of::<String>()
}

/// Asks the processor to bring the cache line at `at` closer; never faults.
#[inline(always)]
fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::rc::Rc;

    /// Counts by key in the table, as word count's combining does.
    fn count(table: &mut CombineTable<String, u64>, words: Vec<String>) {
        let records = words.into_iter().map(|w| (w, 1u64)).collect();
        table.upsert_all(records, |_, combiner, one| {
            *combiner = Some(combiner.take().unwrap_or(0) + one)
        });
    }

    #[test]
    fn batches_of_words_are_counted_as_a_hash_map_counts_them() {
        let mut table = CombineTable::new();
        let mut expected: HashMap<String, u64> = HashMap::new();
        let mut state = 7u64;
        for batch in 0..40 {
            let words: Vec<String> = (0..1000)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Ever more distinct words, so that the table grows between batches.
                    format!("w{}", (state >> 33) % (50 + batch * 250))
                })
                .collect();
            for w in &words {
                *expected.entry(w.clone()).or_default() += 1;
            }
            count(&mut table, words);
            assert_eq!(table.len(), expected.len());
        }
        let mut counted: HashMap<String, u64> = table
            .drain()
            .map(|(word, n)| (word, n.expect("every combiner is set")))
            .collect();
        assert_eq!(counted, expected);
        assert_eq!(table.len(), 0);
        assert_eq!(table.drain().count(), 0, "drained means empty");
        // The table is used again after a drain.
        count(&mut table, vec!["again".to_string(), "again".to_string()]);
        counted = table.drain().map(|(w, n)| (w, n.unwrap())).collect();
        assert_eq!(counted, HashMap::from([("again".to_string(), 2)]));
    }

    /// A key every instance of which hashes alike: every key probes the same chain.
    #[derive(PartialEq, Eq, Debug, Clone, Copy)]
    struct Colliding(u32);
    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            state.write_u8(1)
        }
    }

    #[test]
    fn keys_of_one_hash_stay_apart() {
        let mut table = CombineTable::new();
        for round in 0..3 {
            let records = (0..100).map(|i| (Colliding(i), i as u64)).collect();
            table.upsert_all(records, |new, combiner: &mut Option<u64>, v| {
                assert_eq!(new.is_some(), round == 0);
                *combiner = Some(combiner.unwrap_or(0) + v);
            });
        }
        table.upsert(Colliding(5), |new, combiner| {
            assert!(new.is_none());
            *combiner = Some(combiner.unwrap() + 1000)
        });
        let mut sums: Vec<(u32, u64)> = table.drain().map(|(k, c)| (k.0, c.unwrap())).collect();
        sums.sort();
        let expected: Vec<(u32, u64)> = (0..100)
            .map(|i| (i, 3 * i as u64 + if i == 5 { 1000 } else { 0 }))
            .collect();
        assert_eq!(sums, expected);
    }

    /// Counts its drops in a shared counter.
    struct Tracked(Rc<Cell<usize>>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1)
        }
    }

    #[test]
    fn every_key_and_combiner_is_dropped_once_whether_drained_or_not() {
        let drops = Rc::new(Cell::new(0));
        let mut table: CombineTable<u32, Tracked> = CombineTable::new();
        let records: Vec<(u32, ())> = (0..500).map(|i| (i % 200, ())).collect();
        table.upsert_all(records, |_, combiner, ()| {
            // Replacing a combiner drops the one it held.
            *combiner = Some(Tracked(drops.clone()));
        });
        assert_eq!(table.len(), 200);
        assert_eq!(drops.get(), 300, "the combiners replaced");
        // Half drained and kept, a quarter taken but dropped with the iterator, the rest left.
        let kept: Vec<_> = table.drain().take(100).collect();
        assert_eq!(
            drops.get(),
            300 + 100,
            "the drain's drop drops what it had not handed out"
        );
        assert_eq!(table.len(), 0);
        drop(kept);
        assert_eq!(drops.get(), 500);
        table.upsert(7, |_, c| *c = Some(Tracked(drops.clone())));
        drop(table);
        assert_eq!(drops.get(), 501, "the table's drop drops what it holds");
    }

    #[test]
    fn an_update_that_panics_leaves_the_table_sound() {
        let drops = Rc::new(Cell::new(0));
        let mut table: CombineTable<String, Tracked> = CombineTable::new();
        let records: Vec<(String, u32)> = (0..100).map(|i| (format!("k{}", i % 40), i)).collect();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            table.upsert_all(records, |_, combiner, i| {
                if i == 70 {
                    panic!("a merge that fails");
                }
                *combiner = Some(Tracked(drops.clone()));
            })
        }));
        assert!(panicked.is_err());
        // k30 was met at 70: its combiner was taken by nobody and stays as it was.
        assert_eq!(table.len(), 40);
        let left: Vec<(String, Option<Tracked>)> = table.drain().collect();
        assert!(left.iter().all(|(_, c)| c.is_some()));
        drop(left);
        assert_eq!(drops.get(), 70, "each combiner made was dropped once");
    }
}
