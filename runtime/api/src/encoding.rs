//! Values to bytes with bincode in one pass: `bincode::serialize` first walks a value to size
//! its buffer, which compiles every `Serialize` impl twice (once for sizing) into each cell
//! library that sends records. Growing the buffer instead costs little and halves that code.
//!
//! Decoding reads records that crossed the network or sat on disk (shipped partitions, shuffle
//! buckets, checkpoint files, serialized cached blocks): whatever the bytes, it returns an error
//! rather than panicking, and allocates no more than the bytes hold, since bincode reads every
//! length against the remaining input before it allocates and serde reserves little for a
//! sequence up front. The tests below feed it arbitrary and damaged bytes.

/// `value` in bincode's default encoding (the one `bincode::deserialize` reads).
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T) -> bincode::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bincode::serialize_into(&mut bytes, value)?;
    Ok(bytes)
}

/// The parameters of an operator or action (a zero, a partitioner, bounds), encoded; raises
/// [`crate::Error::Serialize`] for a value bincode cannot encode.
pub(crate) fn encode_params<P: serde::Serialize>(params: &P) -> Vec<u8> {
    encode(params).unwrap_or_else(|source| {
        crate::error::Error::Serialize {
            what: "an action's argument",
            source,
        }
        .raise()
    })
}

/// Records (a `Vec<T>`) or any other value from what [`encode`] wrote.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> bincode::Result<T> {
    bincode::deserialize(bytes)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use crate::batch::Batches;
    use proptest::prelude::*;
    use std::ffi::c_void;
    use tessera_plan::abi::{Batch, BatchSink, ErrorSink, RawBytes, STATUS_OK};

    type Pair = (u64, String);
    type Nested = (String, Vec<(u32, f64)>, Option<Vec<u8>>);

    unsafe extern "C" fn keep(ctx: *mut c_void, batch: Batch) -> i32 {
        unsafe { (*(ctx as *mut Vec<Batch>)).push(batch) };
        STATUS_OK
    }

    unsafe extern "C" fn keep_error(ctx: *mut c_void, message: RawBytes) {
        let message = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
        unsafe { *(ctx as *mut String) = message };
    }

    /// Decodes `bytes` through the records' C-ABI table, as an executor does: the records, or
    /// the error reported.
    fn decode_batches<T: crate::data::Data>(bytes: &[u8]) -> Result<Vec<T>, String> {
        let vtable = Batches::<T>::VTABLE;
        let mut batches: Vec<Batch> = Vec::new();
        let mut error = String::new();
        let sink = BatchSink {
            ctx: &mut batches as *mut Vec<Batch> as *mut c_void,
            push: keep,
        };
        let err = ErrorSink {
            ctx: &mut error as *mut String as *mut c_void,
            set: keep_error,
        };
        let status = unsafe { (vtable.decode)(RawBytes::from_slice(bytes), sink, err) };
        let records: Vec<T> = batches
            .into_iter()
            .flat_map(|b| unsafe { crate::batch::from_batch::<T>(b) })
            .collect();
        if status == STATUS_OK {
            Ok(records)
        } else {
            Err(error)
        }
    }

    /// Damages `bytes` at the given places.
    fn damaged(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8)]) -> Vec<u8> {
        if !bytes.is_empty() {
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
        }
        bytes
    }

    #[test]
    fn lengths_beyond_the_input_are_errors_not_allocations() {
        // A vector of 2^60 u64s, a string of 2^40 bytes, each with a few bytes after.
        let mut vector = (1u64 << 60).to_le_bytes().to_vec();
        vector.extend_from_slice(&[1; 16]);
        assert!(decode::<Vec<u64>>(&vector).is_err());
        let mut string = 1u64.to_le_bytes().to_vec();
        string.extend_from_slice(&(1u64 << 40).to_le_bytes());
        string.extend_from_slice(b"abc");
        assert!(decode::<Vec<String>>(&string).is_err());
        let error = decode_batches::<Pair>(&vector).unwrap_err();
        assert!(
            error.starts_with("cannot decode records of type"),
            "{error}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Vec<Pair>>(&bytes);
            let _ = decode::<Vec<Nested>>(&bytes);
            let _ = decode::<Vec<String>>(&bytes);
            for error in [
                decode_batches::<Pair>(&bytes).err(),
                decode_batches::<Nested>(&bytes).err(),
            ].into_iter().flatten() {
                prop_assert!(error.starts_with("cannot decode records"), "{}", error);
            }
        }

        #[test]
        fn encoded_records_read_back_and_damaged_ones_never_panic(
            records in proptest::collection::vec(
                (any::<String>(), proptest::collection::vec((any::<u32>(), any::<f64>()), 0..4),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))),
                0..6,
            ),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encode(&records).unwrap();
            let back: Vec<Nested> = decode_batches(&bytes).unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{records:?}"));
            prop_assert!(decode::<Vec<Nested>>(&bytes[..cut.index(bytes.len())]).is_err());
            let bytes = damaged(bytes, &edits);
            if let Err(error) = decode_batches::<Nested>(&bytes) {
                prop_assert!(error.starts_with("cannot decode records"), "{}", error);
            }
        }
    }

    #[test]
    fn the_encoding_is_bincodes_own() {
        let value = (7u64, "seven".to_string(), vec![1.5f64, 2.5]);
        assert_eq!(
            super::encode(&value).unwrap(),
            bincode::serialize(&value).unwrap()
        );
    }
}
