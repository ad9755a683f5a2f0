//! Sources: the operators that turn shipped or read bytes into a task's first batches.

use crate::Data;
use crate::batch::{BatchOut, Batches, guarded};
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
            // A split holds whole lines, each ended by '\n' except perhaps the file's last: the
            // piece after the final '\n' is not a line.
            let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            if lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            for line in lines {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                // Like Spark's textFile: malformed UTF-8 is replaced, never an error.
                out.push(String::from_utf8_lossy(line).into_owned())?;
            }
            out.flush()
        })
    }
}
