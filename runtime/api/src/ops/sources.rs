//! Sources: the operators that turn shipped or read bytes into a task's first batches.

use crate::batch::{BatchOut, Batches, Stop, guarded};
use crate::data::Data;
use std::ffi::c_void;
use std::marker::PhantomData;
use tessera_plan::abi::{ABI_VERSION, BatchSink, ErrorSink, RawBytes, SourceVTable, Status};

/// Sources: records shipped by the driver, serialized as one `Vec<T>` per partition.
pub(crate) struct RecordsSource<T>(PhantomData<T>);

impl<T: Data> RecordsSource<T> {
    const VTABLE: SourceVTable = SourceVTable {
        abi_version: ABI_VERSION,
        output: Batches::<T>::VTABLE,
        decode: Batches::<T>::VTABLE.decode,
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const SourceVTable as *const c_void
    }
}

/// Sources: the bytes of a text file split, turned into lines without their line ends.
pub(crate) struct TextSource;

impl TextSource {
    const VTABLE: SourceVTable = SourceVTable {
        abi_version: ABI_VERSION,
        output: Batches::<String>::VTABLE,
        decode: Self::decode,
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const SourceVTable as *const c_void
    }

    unsafe extern "C" fn decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
        let text = unsafe { bytes.as_slice() };
        guarded(err, || {
            let mut out = BatchOut::new(out);
            lines_of(text, |line| out.push(line))?;
            out.flush()
        })
    }
}

/// Hands on each line of a split, without its line end. A split holds whole lines, each ended
/// by '\n' except perhaps the file's last: the piece after the final '\n' is not a line.
///
/// The split is checked as UTF-8 once and cut at its line ends with the `memchr` crate's
/// vectorised search: a third to a half of the time of cutting byte by byte and checking each
/// line (26 MB of words: 26–43 ms against 55–77 ms), and 6 ms against the standard library's
/// 9 ms for `str::split`, which searches a word at a time. Like Spark's textFile, a split that
/// is not UTF-8 has its malformed bytes replaced, line by line, never an error.
fn lines_of(text: &[u8], mut line: impl FnMut(String) -> Result<(), Stop>) -> Result<(), Stop> {
    if text.is_empty() {
        return Ok(());
    }
    match std::str::from_utf8(text) {
        Ok(text) => {
            let text = text.strip_suffix('\n').unwrap_or(text);
            let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]);
            let mut start = 0;
            for end in ends {
                // '\n' is one byte of UTF-8: both ends are character boundaries.
                let each = &text[start..end];
                start = end + 1;
                line(each.strip_suffix('\r').unwrap_or(each).to_owned())?;
            }
        }
        Err(_) => {
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            for each in text.split(|&b| b == b'\n') {
                let each = each.strip_suffix(b"\r").unwrap_or(each);
                line(String::from_utf8_lossy(each).into_owned())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lines_of;

    fn lines(text: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        lines_of(text, |line| {
            lines.push(line);
            Ok(())
        })
        .unwrap();
        lines
    }

    #[test]
    fn a_split_is_cut_into_lines_without_their_ends_and_nothing_after_the_last() {
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n"), [""]);
        assert_eq!(lines(b"one"), ["one"]);
        assert_eq!(lines(b"one\n"), ["one"]);
        assert_eq!(
            lines(b"one\n\ntwo words\r\nthree\r"),
            ["one", "", "two words", "three"]
        );
        assert_eq!(lines(b"one\n\n"), ["one", ""]);
        assert_eq!(lines("é ü\n".as_bytes()), ["é ü"]);
    }

    #[test]
    fn malformed_utf8_is_replaced_in_its_line_only() {
        assert_eq!(
            lines(b"caf\xe9\r\nok\n\xff\n"),
            ["caf\u{FFFD}", "ok", "\u{FFFD}"]
        );
    }
}
