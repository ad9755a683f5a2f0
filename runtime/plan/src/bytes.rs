//! Byte fields (`#[serde(with = "crate::bytes")]`, and [`lists`] for `Vec<Vec<u8>>`) encoded
//! as bytes rather than as sequences.
//!
//! serde encodes a `Vec<u8>` as a sequence of `u8`, which bincode writes and reads one element
//! at a time: a few nanoseconds a byte, paid by the executor, the driver and the cell for every
//! collected result (a 3 MB broadcast side took milliseconds in each). As bytes it is one
//! length and one copy. bincode writes both alike (a `u64` length, then the bytes), so the
//! encoding does not change; a decoder still allocates no more than the input holds (bincode
//! checks a length against what is left before it copies).

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use std::fmt;

/// Encodes `bytes` as bytes.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Decodes bytes (or, from a format that writes them so, a sequence of `u8`).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(ByteBuf)
}

struct ByteBuf;

impl<'de> Visitor<'de> for ByteBuf {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // Reserve no more than a page up front: the hint comes from the input.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

/// A `Vec<u8>` that serde encodes as bytes, for the elements of [`lists`].
struct Bytes(Vec<u8>);

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        deserialize(deserializer).map(Bytes)
    }
}

/// `Vec<Vec<u8>>` fields: a sequence whose elements are encoded as bytes.
pub mod lists {
    use super::*;

    /// Encodes `lists` as a sequence of bytes.
    pub fn serialize<S: Serializer>(lists: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        struct AsBytes<'a>(&'a [u8]);
        impl serde::Serialize for AsBytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        let mut seq = serializer.serialize_seq(Some(lists.len()))?;
        for bytes in lists {
            seq.serialize_element(&AsBytes(bytes))?;
        }
        seq.end()
    }

    /// Decodes a sequence of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        struct Lists;
        impl<'de> Visitor<'de> for Lists {
            type Value = Vec<Vec<u8>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut lists = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(Bytes(bytes)) = seq.next_element()? {
                    lists.push(bytes);
                }
                Ok(lists)
            }
        }
        deserializer.deserialize_seq(Lists)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsSequences {
        one: Vec<u8>,
        many: Vec<Vec<u8>>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsBytes {
        #[serde(with = "crate::bytes")]
        one: Vec<u8>,
        #[serde(with = "crate::bytes::lists")]
        many: Vec<Vec<u8>>,
    }

    #[test]
    fn bincode_encodes_bytes_as_it_encodes_sequences_and_decodes_either() {
        let one: Vec<u8> = (0..=255).collect();
        let many = vec![Vec::new(), vec![7], one.clone()];
        let as_bytes = AsBytes {
            one: one.clone(),
            many: many.clone(),
        };
        let encoded = bincode::serialize(&as_bytes).unwrap();
        assert_eq!(
            encoded,
            bincode::serialize(&AsSequences {
                one: one.clone(),
                many: many.clone()
            })
            .unwrap()
        );
        assert_eq!(bincode::deserialize::<AsBytes>(&encoded).unwrap(), as_bytes);
        // A length beyond the input is an error, not an allocation of that length.
        let mut claims_more = encoded.clone();
        claims_more[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(bincode::deserialize::<AsBytes>(&claims_more).is_err());
        assert!(bincode::deserialize::<AsBytes>(&encoded[..encoded.len() - 1]).is_err());
    }
}
