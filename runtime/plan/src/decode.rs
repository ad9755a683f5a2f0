//! Decoding bytes that come from another process or from disk: the cell protocol's frames,
//! tasks and their outcomes, map outputs. Whatever the bytes, decoding returns a
//! [`DecodeError`] rather than panicking, and allocates no more than the bytes it was given
//! (bincode reads lengths against the remaining input before it allocates, and serde caps what
//! it reserves for a sequence up front); the tests beside each decoder feed it arbitrary and
//! damaged bytes (`scripts/fuzz.sh` runs them longer).

use serde::de::DeserializeOwned;
use std::fmt;
use std::io::Read;

/// Bytes that do not decode as what they should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A frame's length prefix promised more bytes than came.
    Truncated {
        /// What the bytes should have been (`a task from the driver`, ...), for the message.
        what: &'static str,
        /// Bytes the length prefix promised.
        expected: u64,
        /// Bytes that came before the input ended.
        received: u64,
    },
    /// The bytes are not an encoding of `what`.
    Malformed {
        /// What the bytes should have been, for the message.
        what: &'static str,
        /// Why they are not, as the decoder (bincode) says.
        reason: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated {
                what,
                expected,
                received,
            } => write!(
                f,
                "{what} is cut short: {received} of {expected} bytes came; the process that \
                 sent it may have stopped, try again"
            ),
            DecodeError::Malformed { what, reason } => write!(
                f,
                "{what} is malformed ({reason}); the session and its executors must run the \
                 same Tessera build, and files must be the ones Tessera wrote"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `bytes` as `T` in bincode's default encoding (the one `bincode::serialize` writes).
pub fn decode_bincode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    bincode::deserialize(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// Reads one frame of `reader`: a little-endian `u32` length, then that many bytes. The buffer
/// grows with the bytes that arrive, not with what the prefix claims, past its first
/// [`FRAME_ROOM`] bytes.
pub fn read_frame(what: &'static str, reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let expected = u32::from_le_bytes(len) as u64;
    // Room for a small frame at once: an empty buffer is filled by a probe of 32 bytes first,
    // a read of its own.
    let mut body = Vec::with_capacity(expected.min(FRAME_ROOM) as usize);
    reader.take(expected).read_to_end(&mut body)?;
    check_frame(what, expected, body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e))
}

/// `body` with its length in front, as [`read_frame`] reads it: one buffer, written at once.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

/// The most [`read_frame`] sets aside before a frame's bytes arrive.
pub const FRAME_ROOM: u64 = 64 * 1024;

/// `body`, if it holds the `expected` bytes a frame's prefix promised.
pub fn check_frame(
    what: &'static str,
    expected: u64,
    body: Vec<u8>,
) -> Result<Vec<u8>, DecodeError> {
    if body.len() as u64 == expected {
        Ok(body)
    } else {
        Err(DecodeError::Truncated {
            what,
            expected,
            received: body.len() as u64,
        })
    }
}

/// Damaged copies of valid encodings, for the decoders' property tests.
#[cfg(test)]
pub(crate) mod damage {
    use proptest::prelude::*;

    /// Up to `most` (place, byte) edits.
    pub fn edits(most: usize) -> impl Strategy<Value = Vec<(prop::sample::Index, u8)>> {
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..most)
    }

    /// `bytes` with each edit's byte written at its place.
    pub fn damaged(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8)]) -> Vec<u8> {
        if !bytes.is_empty() {
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_a_short_one_is_an_error_naming_what_came() {
        let mut bytes = 5u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"hello, and more");
        assert_eq!(read_frame("a reply", &mut &bytes[..]).unwrap(), b"hello");
        // A prefix that claims 4 GiB, followed by three bytes: an error, not a 4 GiB buffer.
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"abc");
        let error = read_frame("a reply", &mut &huge[..]).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            error
                .to_string()
                .starts_with("a reply is cut short: 3 of 4294967295 bytes came"),
            "{error}"
        );
        assert!(read_frame("a reply", &mut &[1u8, 0][..]).is_err());
    }

    #[test]
    fn malformed_bincode_is_an_error_naming_what() {
        let error =
            decode_bincode::<String>("a name", &[9, 0, 0, 0, 0, 0, 0, 0, b'a']).unwrap_err();
        assert!(
            matches!(&error, DecodeError::Malformed { what: "a name", .. }),
            "{error:?}"
        );
        assert_eq!(
            decode_bincode::<u32>("a number", &7u32.to_le_bytes()),
            Ok(7)
        );
    }
}
