//! `CombineTable`: the hash table in which combining keeps one combiner per key (map-side
//! combining, `*_by_key` merges and groups), placing a batch of records at a time.
//!
//! Word count's map tasks spent a third of their time on loads that missed the cache, for its
//! hundred thousand distinct words: the control bytes and the entry of the record's key in
//! the table, then the bytes of the key stored there, each waited for before the next record
//! could start. Three things cut those misses:
//!
//! - A batch's hashes are all known before its first record is placed, so this table asks for
//!   what the records further on will read while it places one: the control bytes and home
//!   entry of a record `2 * FETCH_STEP` records ahead and, for text keys, the matching entry
//!   (found among its control bytes, there by then) of one [`FETCH_STEP`] ahead.
//! - A `String` key of up to 23 bytes is stored in its entry ([`TextKey`]), not behind a pointer:
//!   comparing a word with the one stored reads no other line. The word that came in is freed
//!   once placed, as it was when its key was already there.
//! - A combiner is stored as it is, not as an `Option` kept for an update that panics: an entry
//!   of a `String` key and a `u64` count takes 32 bytes, two to a cache line, not 40.
//!
//! Word count's pipeline standalone (a quarter of the benchmark's words, one thread, the
//! notebook's closure, batches of 4,096), ns a word over five rounds: 119–128 with `String` keys
//! and `Option` combiners, 112–118 with plain combiners, 104–113 with both changes.
//!
//! A text key is placed by [`text_hash`] of its bytes, not by [`key_hash`], which still gives
//! its partition: hashing words of random lengths with `key_hash` mispredicted its branches
//! for the length, and took a seventh of word count's map tasks. With `text_hash` their time
//! fell by 8% (the benchmark's four map tasks 683–706 ms in all against 744–771 ms, five
//! interleaved runs each, release, `local[2]`).
//!
//! The table is `HashMap`'s own, hashbrown's `RawTable` (SwissTable): its raw interface says
//! where a hash's probe starts and which entries it would compare, which `HashMap` does not. A
//! table of our own with the same layout took a quarter longer per record than hashbrown's on
//! keys of one number, half longer counting its growth.

mod text_key;

use crate::hash::{key_hash, text_hash};
use hashbrown::raw::{Bucket, RawDrain, RawTable};
use std::any::TypeId;
use std::hash::Hash;
use std::mem::{ManuallyDrop, MaybeUninit};
use text_key::TextKey;

/// How many records apart the fetches ahead of a record are: its control bytes and home entry
/// `2 * FETCH_STEP` records before it is placed, a text key's matching entry `FETCH_STEP`
/// before. Each step must give a load from memory time to arrive.
const FETCH_STEP: usize = 16;

/// What an update finds for a record's key: nothing yet (the key, new to the table), or the
/// key's combiner, which the update consumes and replaces.
pub(crate) enum Found<'k, K, C> {
    New(&'k K),
    Held(C),
}

/// Keys and their combiners.
///
/// A key is kept in a [`Slot`]: the key itself or, in a table of text keys (`K` is `String`),
/// the [`TextKey`] made of it, which has a `String`'s size and alignment. One table type for
/// both, rather than a table of `TextKey`s beside one of `K`s, so that a cell compiles the loop
/// that places records (with the closures it inlines) once per table: with two, the word count
/// notebook's cell took 1.96 s to compile for a notebook against 1.66 s before text keys; with
/// one, 1.79 s against 1.62 s.
pub(crate) struct CombineTable<K, C> {
    table: RawTable<(Slot<K>, C)>,
    /// Whether the slots hold [`TextKey`]s.
    text: bool,
    /// The hashes of the batch being placed, kept to be reused by the next.
    hashes: Vec<u64>,
}

/// A key as a table keeps it: a `K`, or a [`TextKey`] in its place (see [`CombineTable`]).
type Slot<K> = MaybeUninit<K>;

impl<K: Hash + Eq + 'static, C> CombineTable<K, C> {
    pub(crate) fn new() -> Self {
        CombineTable {
            table: RawTable::new(),
            text: may_be_text::<K>() && TypeId::of::<K>() == TypeId::of::<String>(),
            hashes: Vec::new(),
        }
    }

    /// How many keys it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// Places `key`: `update` gets what the table holds for it and returns the key's combiner.
    /// If `update` panics, the key leaves the table with its combiner.
    pub(crate) fn upsert(&mut self, key: K, update: impl FnOnce(Found<'_, K, C>) -> C) {
        let hash = entry_hash(self.text, &key);
        self.place(hash, key, update);
    }

    /// Places each record's key as [`CombineTable::upsert`] does, with its value for `update`,
    /// fetching ahead what the records that come next will read.
    pub(crate) fn upsert_all<V>(
        &mut self,
        records: Vec<(K, V)>,
        mut update: impl FnMut(Found<'_, K, C>, V) -> C,
    ) {
        let text = self.text;
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.extend(records.iter().map(|(key, _)| entry_hash(text, key)));
        // Room for every record first: no entry moves while the batch is placed, so what was
        // fetched ahead is still where it was asked for.
        // SAFETY: every full slot of this table holds what `text` says.
        self.table
            .reserve(records.len(), |(slot, _)| unsafe { slot_hash(text, slot) });
        for (i, (key, value)) in records.into_iter().enumerate() {
            if let Some(&ahead) = hashes.get(i + 2 * FETCH_STEP) {
                self.fetch_home(ahead);
            }
            // This fetch finds its entry among the control bytes, a probe without a key
            // compared: for keys compared in place (numbers) that costs as much as the miss it
            // saves (PageRank's contributions, 64,000 pages).
            if const { may_be_text::<K>() }
                && text
                && let Some(&ahead) = hashes.get(i + FETCH_STEP)
            {
                self.fetch_entry(ahead);
            }
            self.place(hashes[i], key, |found| update(found, value));
        }
        self.hashes = hashes;
    }

    /// Takes every key and combiner out, leaving the table empty (its memory kept). What the
    /// iterator has not handed out when it is dropped is dropped with it.
    pub(crate) fn drain(&mut self) -> Drain<'_, K, C> {
        Drain {
            text: self.text,
            entries: self.table.drain(),
        }
    }

    /// Places `key` of hash `hash`.
    #[inline(always)]
    fn place(&mut self, hash: u64, key: K, update: impl FnOnce(Found<'_, K, C>) -> C) {
        let text = self.text;
        // SAFETY (both closures): every full slot of this table holds what `text` says.
        match self.table.find_or_find_insert_slot(
            hash,
            |(slot, _)| unsafe { slot_is(text, slot, &key) },
            |(slot, _)| unsafe { slot_hash(text, slot) },
        ) {
            Ok(found) => {
                let entry = found.as_ptr();
                // The combiner is moved out for `update`; if `update` panics, the guard takes
                // the key out of the table without dropping the combiner a second time.
                let guard = EraseOnUnwind {
                    table: &mut self.table,
                    bucket: found,
                    text,
                };
                // SAFETY: the bucket was just found full in this table, which nothing changed
                // since; its combiner is written back below or never read again (the guard).
                let held = unsafe { std::ptr::read(&(*entry).1) };
                let combined = update(Found::Held(held));
                std::mem::forget(guard);
                // SAFETY: as above; the place of the combiner moved out.
                unsafe { std::ptr::write(&mut (*entry).1, combined) };
            }
            Err(insert_at) => {
                let combiner = update(Found::New(&key));
                let slot = slot_of(text, key);
                // SAFETY: the slot was just found for this hash in this table; `update` could
                // not reach the table.
                unsafe { self.table.insert_in_slot(hash, insert_at, (slot, combiner)) };
            }
        }
    }

    /// Where the probe of hash `hash` starts in this table, if it has room at all: the home
    /// bucket's index, and the table's control bytes, which start where the entries end
    /// (hashbrown's layout).
    #[inline(always)]
    fn home(&self, hash: u64) -> Option<(usize, *const u8)> {
        if self.table.capacity() == 0 {
            return None;
        }
        let home = hash as usize & (self.table.buckets() - 1);
        Some((
            home,
            self.table.data_end().as_ptr().cast::<u8>().cast_const(),
        ))
    }

    /// Asks for the control bytes and the entry where the probe of hash `hash` starts.
    #[inline(always)]
    fn fetch_home(&self, hash: u64) {
        let Some((home, control)) = self.home(hash) else {
            return;
        };
        // A prefetch of the wrong place, were the layout to differ, would cost a load, never
        // a fault.
        prefetch(control.wrapping_add(home));
        // SAFETY: `home` is below the number of buckets of this allocated table.
        prefetch(unsafe { self.table.bucket(home) }.as_ptr());
    }

    /// Asks for the entry the probe of hash `hash` would compare first (its control bytes are
    /// there by now).
    ///
    /// On x86-64 the entry is found here, from the first group of control bytes, with hashbrown's
    /// layout (as [`CombineTable::fetch_home`] finds the home) rather than through `iter_hash`:
    /// its iterator was a call, not inlined, for every record of a text key, and word count's
    /// map tasks took 2% longer (medians of 169 against 165 ms, five interleaved rounds).
    /// Should the layout differ, the wrong line is fetched; nothing is read past the table.
    #[inline(always)]
    fn fetch_entry(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
            };
            let Some((home, control)) = self.home(hash) else {
                return;
            };
            // hashbrown's tag of a hash, kept in its control byte: the hash's top 7 bits.
            let tag = (hash >> 57) as i8;
            // SAFETY: an allocated table has `buckets + 16` control bytes after its entries
            // (hashbrown's layout, with SSE2's groups of 16), and `home` is below `buckets`.
            let matches = unsafe {
                let group = _mm_loadu_si128(control.add(home).cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(group, _mm_set1_epi8(tag))) as u32
            };
            if matches != 0 {
                let index = (home + matches.trailing_zeros() as usize) & (self.table.buckets() - 1);
                // SAFETY: `index` is below the number of buckets of this allocated table.
                prefetch(unsafe { self.table.bucket(index) }.as_ptr());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: the iterator is used before the table can change.
        if let Some(bucket) = unsafe { self.table.iter_hash(hash) }.next() {
            prefetch(bucket.as_ptr());
        }
    }
}

impl<K, C> Drop for CombineTable<K, C> {
    fn drop(&mut self) {
        // The table drops its combiners; the keys, in slots, are dropped here.
        if std::mem::needs_drop::<K>() {
            let text = self.text;
            // SAFETY: every full slot holds what `text` says, and is dropped once: the table
            // is not used after this.
            unsafe {
                for bucket in self.table.iter() {
                    drop_key(text, std::ptr::read(&(*bucket.as_ptr()).0));
                }
            }
        }
    }
}

/// Whether `K` may be `String`, as far as the compiler can tell where it generates a table's
/// code (a `TypeId` compared is not a constant there): a type of `String`'s size and alignment
/// that has a destructor. A [`TextKey`] fits in its slot. Each use of a text key is behind this
/// constant too, so that a table of other keys (numbers, pairs: most of them) has no code
/// generated for text keys at all.
const fn may_be_text<K>() -> bool {
    std::mem::size_of::<K>() == std::mem::size_of::<TextKey>()
        && std::mem::align_of::<K>() == std::mem::align_of::<TextKey>()
        && std::mem::needs_drop::<K>()
}

/// The slot that keeps `key`.
#[inline(always)]
fn slot_of<K>(text: bool, key: K) -> Slot<K> {
    if const { may_be_text::<K>() } && text {
        // SAFETY (both): a table holds text keys only if `K` is `String`, whose size and
        // alignment a `TextKey` has (`may_be_text`).
        let key = TextKey::new(unsafe { same_type::<K, String>(key) });
        unsafe { same_type::<TextKey, Slot<K>>(key) }
    } else {
        MaybeUninit::new(key)
    }
}

/// The key kept in `slot`.
///
/// # Safety
/// `slot` holds a `TextKey` if `text`, else a `K`; it is not used again.
#[inline(always)]
unsafe fn key_of<K>(text: bool, slot: Slot<K>) -> K {
    if const { may_be_text::<K>() } && text {
        // SAFETY: per the caller, the slot holds a `TextKey`, in a table of `String` keys.
        unsafe { same_type::<String, K>(same_type::<Slot<K>, TextKey>(slot).into_string()) }
    } else {
        // SAFETY: per the caller, the slot holds a `K`.
        unsafe { slot.assume_init() }
    }
}

/// Drops the key kept in `slot` (a text key as it is, not made a `String` first).
///
/// # Safety
/// As for [`key_of`].
#[inline(always)]
unsafe fn drop_key<K>(text: bool, slot: Slot<K>) {
    if const { may_be_text::<K>() } && text {
        // SAFETY: per the caller, the slot holds a `TextKey`.
        drop(unsafe { same_type::<Slot<K>, TextKey>(slot) });
    } else {
        // SAFETY: per the caller, the slot holds a `K`.
        drop(unsafe { slot.assume_init() });
    }
}

/// The text key `slot` keeps, in a table of text keys; `None` in any other.
///
/// # Safety
/// As for [`key_of`], except that the slot stays in use.
#[inline(always)]
unsafe fn stored_text<K>(text: bool, slot: &Slot<K>) -> Option<&TextKey> {
    // SAFETY: per the caller, the slot of a table of text keys holds a `TextKey`.
    (const { may_be_text::<K>() } && text).then(|| unsafe { &*slot.as_ptr().cast::<TextKey>() })
}

/// Whether `slot` keeps `key`.
///
/// # Safety
/// As for [`stored_text`].
#[inline(always)]
unsafe fn slot_is<K: Eq>(text: bool, slot: &Slot<K>, key: &K) -> bool {
    match unsafe { stored_text(text, slot) } {
        // SAFETY: a table of text keys has `String` keys.
        Some(stored) => stored.as_str() == unsafe { &*(key as *const K).cast::<String>() }.as_str(),
        // SAFETY: per the caller, the slot holds a `K`.
        None => unsafe { slot.assume_init_ref() == key },
    }
}

/// The hash that places `key` in a table whose slots hold text keys if `text`: [`text_hash`]
/// of a text key's bytes, [`key_hash`] of any other.
#[inline(always)]
fn entry_hash<K: Hash>(text: bool, key: &K) -> u64 {
    if const { may_be_text::<K>() } && text {
        // SAFETY: a table holds text keys only if `K` is `String` (`may_be_text`).
        text_hash(unsafe { &*(key as *const K).cast::<String>() }.as_bytes())
    } else {
        key_hash(key)
    }
}

/// [`entry_hash`] of the key `slot` keeps.
///
/// # Safety
/// As for [`stored_text`].
#[inline(always)]
unsafe fn slot_hash<K: Hash>(text: bool, slot: &Slot<K>) -> u64 {
    match unsafe { stored_text(text, slot) } {
        Some(stored) => text_hash(stored.as_str().as_bytes()),
        // SAFETY: per the caller, the slot holds a `K`.
        None => key_hash(unsafe { slot.assume_init_ref() }),
    }
}

/// The keys and combiners of a table, taken out.
pub(crate) struct Drain<'a, K, C> {
    entries: RawDrain<'a, (Slot<K>, C)>,
    text: bool,
}

impl<K, C> Iterator for Drain<'_, K, C> {
    type Item = (K, C);

    fn next(&mut self) -> Option<(K, C)> {
        let (slot, combiner) = self.entries.next()?;
        // SAFETY: the table's slots hold what `text` says; each is taken out once.
        Some((unsafe { key_of(self.text, slot) }, combiner))
    }
}

impl<K, C> Drop for Drain<'_, K, C> {
    fn drop(&mut self) {
        // What was not handed out: the keys are in slots, which do not drop them.
        self.for_each(drop);
    }
}

/// While an update runs on a combiner moved out of its entry: if the update panics, takes the
/// entry out of the table, dropping its key but not the combiner (the update had it).
struct EraseOnUnwind<'a, K, C> {
    table: &'a mut RawTable<(Slot<K>, C)>,
    bucket: Bucket<(Slot<K>, C)>,
    text: bool,
}

impl<K, C> Drop for EraseOnUnwind<'_, K, C> {
    fn drop(&mut self) {
        // SAFETY: the bucket is full in this table, as when the guard was made, and its slot
        // holds what `text` says.
        let ((slot, combiner), _) = unsafe { self.table.remove(self.bucket.clone()) };
        std::mem::forget(combiner);
        unsafe { drop_key(self.text, slot) };
    }
}

/// `value` as type `B`.
///
/// # Safety
/// `B` is `A` itself (a `TypeId` compared says so), or a type with `A`'s size for which `A`'s
/// bytes are valid.
#[inline(always)]
unsafe fn same_type<A, B>(value: A) -> B {
    let value = ManuallyDrop::new(value);
    // SAFETY: per the caller, `value`'s bytes are a `B`; `value` is not dropped here.
    unsafe { std::ptr::read((&*value as *const A).cast::<B>()) }
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
    fn count<K: Hash + Eq + 'static>(table: &mut CombineTable<K, u64>, words: Vec<K>) {
        let records = words.into_iter().map(|w| (w, 1u64)).collect();
        table.upsert_all(records, |found, one| match found {
            Found::New(_) => one,
            Found::Held(n) => n + one,
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
                    // Ever more distinct words, so that the table grows between batches; some
                    // too long to be kept in place.
                    let n = (state >> 33) % (50 + batch * 250);
                    if n.is_multiple_of(7) {
                        format!("a word of more than twenty-three bytes, {n}")
                    } else {
                        format!("w{n}")
                    }
                })
                .collect();
            for w in &words {
                *expected.entry(w.clone()).or_default() += 1;
            }
            count(&mut table, words);
            assert_eq!(table.len(), expected.len());
        }
        let mut counted: HashMap<String, u64> = table.drain().collect();
        assert_eq!(counted, expected);
        assert_eq!(table.len(), 0);
        assert_eq!(table.drain().count(), 0, "drained means empty");
        // The table is used again after a drain.
        count(&mut table, vec!["again".to_string(), "again".to_string()]);
        counted = table.drain().collect();
        assert_eq!(counted, HashMap::from([("again".to_string(), 2)]));
    }

    #[test]
    fn numbers_and_text_keys_of_other_types_are_counted_too() {
        let mut numbers = CombineTable::new();
        count(&mut numbers, (0..5000u64).map(|i| i % 300).collect());
        let mut counted: Vec<(u64, u64)> = numbers.drain().collect();
        counted.sort();
        let expected: Vec<(u64, u64)> = (0..300)
            .map(|k| (k, if k < 200 { 17 } else { 16 }))
            .collect();
        assert_eq!(counted, expected);
        // `&str` keys are not `String`s: stored as they are.
        let mut borrowed = CombineTable::new();
        count(&mut borrowed, vec!["b", "a", "b"]);
        let mut counted: Vec<(&str, u64)> = borrowed.drain().collect();
        counted.sort();
        assert_eq!(counted, vec![("a", 1), ("b", 2)]);
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
            table.upsert_all(records, |found, v| {
                assert_eq!(matches!(found, Found::New(_)), round == 0);
                match found {
                    Found::New(_) => v,
                    Found::Held(sum) => sum + v,
                }
            });
        }
        table.upsert(Colliding(5), |found| match found {
            Found::New(_) => panic!("5 is there"),
            Found::Held(sum) => sum + 1000,
        });
        let mut sums: Vec<(u32, u64)> = table.drain().map(|(k, c)| (k.0, c)).collect();
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

    /// Every key and combiner is dropped once, drained or not, for keys stored as they are
    /// and for `String` keys, short and long.
    fn drops_once<K: Hash + Eq + 'static>(key: impl Fn(u32) -> K) {
        let drops = Rc::new(Cell::new(0));
        let mut table: CombineTable<K, Tracked> = CombineTable::new();
        let records: Vec<(K, ())> = (0..500).map(|i| (key(i % 200), ())).collect();
        table.upsert_all(records, |found, ()| {
            // Replacing a combiner drops the one it held.
            drop(found);
            Tracked(drops.clone())
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
        table.upsert(key(7), |_| Tracked(drops.clone()));
        drop(table);
        assert_eq!(drops.get(), 501, "the table's drop drops what it holds");
    }

    #[test]
    fn every_key_and_combiner_is_dropped_once_whether_drained_or_not() {
        drops_once(|i| i);
        drops_once(|i| format!("k{i}"));
        drops_once(|i| format!("a key long enough to live on the heap, number {i}"));
    }

    #[test]
    fn an_update_that_panics_takes_its_key_out_and_leaves_the_table_sound() {
        for long in [false, true] {
            let drops = Rc::new(Cell::new(0));
            let mut table: CombineTable<String, Tracked> = CombineTable::new();
            let key = |i: u32| match long {
                false => format!("k{}", i % 40),
                true => format!("a key long enough to live on the heap, {}", i % 40),
            };
            let records: Vec<(String, u32)> = (0..100).map(|i| (key(i), i)).collect();
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                table.upsert_all(records, |found, i| {
                    if i == 70 {
                        panic!("a merge that fails");
                    }
                    drop(found);
                    Tracked(drops.clone())
                })
            }));
            assert!(panicked.is_err());
            // k30 was met at 70: its combiner went with the update that failed, and its key
            // left the table.
            assert_eq!(
                drops.get(),
                30 + 1,
                "the combiners replaced, and the one lost"
            );
            assert_eq!(table.len(), 39);
            let left: Vec<(String, Tracked)> = table.drain().collect();
            assert!(!left.iter().any(|(k, _)| *k == key(30)));
            drop(left);
            assert_eq!(drops.get(), 31 + 39, "each combiner dropped once");
            // The table goes on being used.
            table.upsert(key(30), |found| {
                assert!(matches!(found, Found::New(_)));
                Tracked(drops.clone())
            });
            assert_eq!(table.len(), 1);
        }
    }
}
