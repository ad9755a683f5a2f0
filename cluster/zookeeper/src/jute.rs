//! ZooKeeper's wire encoding (Jute): big-endian integers, length-prefixed byte buffers and
//! strings (-1 for null), and vectors as a count followed by their elements.
//!
//! The reader never trusts a length: a buffer, string or vector longer than what is left of the
//! frame is an error, so hostile bytes cannot make it allocate more than the frame it was given.

use crate::error::ZkError;

/// Appends Jute values to a frame being built.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn int(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn long(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.bytes.push(value as u8);
        self
    }

    pub(crate) fn buffer(&mut self, value: &[u8]) -> &mut Self {
        self.int(value.len() as i32);
        self.bytes.extend_from_slice(value);
        self
    }

    pub(crate) fn string(&mut self, value: &str) -> &mut Self {
        self.buffer(value.as_bytes())
    }
}

/// Reads Jute values from one received frame.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

fn truncated(what: &str) -> ZkError {
    ZkError::Protocol {
        detail: format!("a reply ended in the middle of {what}"),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ZkError> {
        if self.bytes.len() < n {
            return Err(truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn int(&mut self) -> Result<i32, ZkError> {
        let b = self.take(4, "an int")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn long(&mut self) -> Result<i64, ZkError> {
        let b = self.take(8, "a long")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    #[cfg(test)]
    pub(crate) fn bool(&mut self) -> Result<bool, ZkError> {
        Ok(self.take(1, "a boolean")?[0] != 0)
    }

    /// A buffer; null (-1) reads as empty.
    pub(crate) fn buffer(&mut self) -> Result<&'a [u8], ZkError> {
        let len = self.int()?;
        if len < 0 {
            return Ok(&[]);
        }
        self.take(len as usize, "a buffer")
    }

    pub(crate) fn string(&mut self) -> Result<String, ZkError> {
        let bytes = self.buffer()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ZkError::Protocol {
            detail: "a reply carried a string that is not UTF-8".into(),
        })
    }

    pub(crate) fn strings(&mut self) -> Result<Vec<String>, ZkError> {
        let count = self.int()?;
        if count < 0 {
            return Ok(Vec::new());
        }
        // Each string takes at least its 4-byte length: a count beyond that is a lie.
        if count as usize > self.bytes.len() / 4 {
            return Err(truncated("a list of strings"));
        }
        (0..count).map(|_| self.string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let mut w = Writer::default();
        w.int(-7)
            .long(1 << 40)
            .bool(true)
            .string("/tessera")
            .buffer(b"");
        w.int(2).string("a").string("bc");
        let mut r = Reader::new(&w.bytes);
        assert_eq!(r.int().unwrap(), -7);
        assert_eq!(r.long().unwrap(), 1 << 40);
        assert!(r.bool().unwrap());
        assert_eq!(r.string().unwrap(), "/tessera");
        assert_eq!(r.buffer().unwrap(), b"");
        assert_eq!(r.strings().unwrap(), ["a", "bc"]);
        assert!(r.is_empty());
    }

    #[test]
    fn lengths_beyond_the_frame_are_errors_not_allocations() {
        let mut w = Writer::default();
        w.int(i32::MAX);
        assert!(Reader::new(&w.bytes).buffer().is_err());
        assert!(Reader::new(&w.bytes).strings().is_err());
        let mut w = Writer::default();
        w.int(3).string("only one");
        assert!(Reader::new(&w.bytes).strings().is_err());
        assert!(Reader::new(&[0, 0]).int().is_err());
        let mut w = Writer::default();
        w.int(-1);
        assert_eq!(Reader::new(&w.bytes).buffer().unwrap(), b"");
    }
}
