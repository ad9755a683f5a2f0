//! Values to bytes with bincode in one pass: `bincode::serialize` first walks a value to size
//! its buffer, which compiles every `Serialize` impl twice (once for sizing) into each cell
//! library that sends records. Growing the buffer instead costs little and halves that code.

/// `value` in bincode's default encoding (the one `bincode::deserialize` reads).
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T) -> bincode::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bincode::serialize_into(&mut bytes, value)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_encoding_is_bincodes_own() {
        let value = (7u64, "seven".to_string(), vec![1.5f64, 2.5]);
        assert_eq!(
            super::encode(&value).unwrap(),
            bincode::serialize(&value).unwrap()
        );
    }
}
