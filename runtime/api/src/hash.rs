//! Hashing of keys: the same in every process and every run (the shuffle's hash partitioner
//! depends on it, as does the co-partitioning of two RDDs that are joined), and fast for the
//! short keys that shuffles and `*_by_key` maps see most.

use std::hash::{Hash, Hasher};

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// A multiply-rotate hasher with a final avalanche, so that the low bits (which pick the
/// partition) depend on every input bit. Not resistant to chosen keys; shuffles don't need it.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        // The last 1 to 7 bytes in at most two loads (overlapping when there are fewer than 8)
        // rather than a copy into a buffer: most keys are short words. The length is mixed in,
        // so that "a" and "a\0" differ.
        let rest = chunks.remainder();
        let n = rest.len();
        let last = match n {
            0 => return,
            1..=3 => rest[0] as u64 | (rest[n / 2] as u64) << 8 | (rest[n - 1] as u64) << 16,
            _ => {
                let low = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
                let high = u32::from_le_bytes(rest[n - 4..].try_into().expect("4 bytes"));
                low as u64 | (high as u64) << 32
            }
        };
        self.add(last ^ ((n as u64) << 59));
    }

    fn write_u8(&mut self, n: u8) {
        self.add(n as u64)
    }
    fn write_u16(&mut self, n: u16) {
        self.add(n as u64)
    }
    fn write_u32(&mut self, n: u32) {
        self.add(n as u64)
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n)
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64)
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The hash of `key` that shuffles and combining use: its partition, the order of spilled runs,
/// its place in a table of combiners.
pub(crate) fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = KeyHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The constants [`text_hash`] mixes into what it multiplies (wyhash's): odd, their bits mixed.
const TEXT_SEEDS: [u64; 2] = [0xA076_1D64_78BD_642F, 0xE703_7ED1_A0B4_28DB];

/// The 128-bit product of `a` and `b`, its two halves folded together: one multiplication
/// that mixes every bit of both into the result.
#[inline(always)]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = a as u128 * b as u128;
    product as u64 ^ (product >> 64) as u64
}

/// The 4 bytes of `bytes` from `at`, as a number.
#[inline(always)]
fn read4(bytes: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as u64
}

/// The 8 bytes of `bytes` from `at`, as a number.
#[inline(always)]
fn read8(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Two numbers that hold every byte of `bytes`, at most 16 of them, in places their length
/// gives (so texts of one length differ exactly when their numbers do): from 4 bytes on, four
/// 4-byte reads that overlap to cover the text; below, its first, middle and last bytes.
#[inline(always)]
fn short_text_words(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len();
    debug_assert!(n <= 16);
    if n >= 4 {
        // 0 below 8 bytes, 4 up to 15, 8 at 16.
        let step = (n >> 3) << 2;
        (
            read4(bytes, 0) << 32 | read4(bytes, step),
            read4(bytes, n - 4) << 32 | read4(bytes, n - 4 - step),
        )
    } else if n > 0 {
        let first_middle_last =
            (bytes[0] as u64) << 16 | (bytes[n >> 1] as u64) << 8 | bytes[n - 1] as u64;
        (first_middle_last, 0)
    } else {
        (0, 0)
    }
}

/// A hash of text for a table of combiners keyed by `String`s, which only that table sees (its
/// partition is still [`key_hash`]'s): wyhash's scheme.
///
/// Word count's map tasks spent a seventh of their time hashing words with [`key_hash`]: a
/// word's length picks among several branches there (whole 8-byte words, then a tail of 1–3
/// or 4–7 bytes), and words of random lengths mispredict them, each miss throwing away the
/// hashes of the words after it that were under way. Here text of 4 to 16 bytes, most words,
/// takes one path: four 4-byte reads at places its length gives, which cover every byte, and
/// two multiplications.
#[inline(always)]
pub(crate) fn text_hash(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let mut seed = TEXT_SEEDS[0];
    let (a, b) = if n <= 16 {
        short_text_words(bytes)
    } else {
        let mut at = 0;
        while n - at > 16 {
            seed = fold_multiply(
                read8(bytes, at) ^ TEXT_SEEDS[1],
                read8(bytes, at + 8) ^ seed,
            );
            at += 16;
        }
        (read8(bytes, n - 16), read8(bytes, n - 8))
    };
    fold_multiply(
        TEXT_SEEDS[1] ^ n as u64,
        fold_multiply(a ^ TEXT_SEEDS[1], b ^ seed),
    )
}

/// The partition of `partitions` that the hash partitioner gives `key`.
pub fn hash_partition<K: Hash + ?Sized>(key: &K, partitions: u32) -> u32 {
    (key_hash(key) % partitions.max(1) as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_land_in_the_same_partition_and_keys_spread() {
        assert_eq!(
            hash_partition("spark", 8),
            hash_partition(&"spark".to_string(), 8)
        );
        let mut counts = [0u32; 8];
        for key in 0..8000u64 {
            counts[hash_partition(&key, 8) as usize] += 1;
        }
        // Each of 8 partitions gets its share of 8000 sequential keys, within 20%.
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        let mut words = [0u32; 4];
        for key in 0..4000 {
            words[hash_partition(&format!("word{key}"), 4) as usize] += 1;
        }
        assert!(words.iter().all(|&c| (800..1200).contains(&c)), "{words:?}");
        // Keys of 1 to 3 bytes, and keys that differ only in trailing zero bytes.
        let mut short = [0u32; 4];
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                let key = [a, b];
                short[hash_partition(&key[..], 4) as usize] += 1;
            }
        }
        assert!(short.iter().all(|&c| (130..210).contains(&c)), "{short:?}");
        let hash = |bytes: &[u8]| {
            let mut hasher = KeyHasher::default();
            hasher.write(bytes);
            hasher.finish()
        };
        assert_ne!(hash(b"a"), hash(b"a\0"));
        assert_ne!(hash(b"abcd"), hash(b"abcd\0\0"));
        assert_ne!(hash(b"ab"), hash(b"ba"));
    }

    /// Every text of up to `n` bytes over `alphabet`.
    fn texts(alphabet: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..n {
            last = last
                .iter()
                .flat_map(|text: &Vec<u8>| {
                    alphabet.iter().map(move |&c| {
                        let mut longer = text.clone();
                        longer.push(c);
                        longer
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn text_hashes_tell_texts_apart_and_spread_over_a_tables_bits() {
        // Every byte counts, at every length up to 40 (the 16-byte steps of long text too):
        // changing any one byte of a text changes its hash.
        for n in 0..=40usize {
            let text: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            for i in 0..n {
                let mut changed = text.clone();
                changed[i] ^= 1;
                assert_ne!(text_hash(&text), text_hash(&changed), "byte {i} of {n}");
            }
        }
        assert_ne!(text_hash(b"a"), text_hash(b"a\0"));
        assert_ne!(text_hash(b""), text_hash(b"\0"));
        // No two of the 1,111,111 texts of up to 6 bytes over 10 letters share a hash.
        let all = texts(b"abcdefghij", 6);
        let mut hashes: Vec<u64> = all.iter().map(|t| text_hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), all.len());
        // A table uses the low bits for a key's home and the top 7 for its tag: over 100,000
        // words, each of 64 homes and each of 128 tags gets its share within a fifth.
        let words: Vec<String> = (0..100_000).map(|i| format!("w{i}x")).collect();
        let mut homes = [0u32; 64];
        let mut tags = [0u32; 128];
        for word in &words {
            let hash = text_hash(word.as_bytes());
            homes[(hash & 63) as usize] += 1;
            tags[(hash >> 57) as usize] += 1;
        }
        let share = |counts: &[u32]| 100_000 / counts.len() as u32;
        assert!(
            homes
                .iter()
                .all(|&c| c.abs_diff(share(&homes)) < share(&homes) / 5),
            "{homes:?}"
        );
        assert!(
            tags.iter()
                .all(|&c| c.abs_diff(share(&tags)) < share(&tags) / 5),
            "{tags:?}"
        );
    }
}
