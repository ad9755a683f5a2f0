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
}
