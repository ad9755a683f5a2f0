//! Finds where a function lives: the shared library that holds it and its offset from that
//! library's load base. Executors load the same library and call the same offset.

use crate::error::Error;
use std::ffi::{CStr, c_char, c_int, c_void};
use tessera_plan::LocalCodeRef;

#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    fbase: *mut c_void,
    sname: *const c_char,
    saddr: *mut c_void,
}

unsafe extern "C" {
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
}

/// Locates the code at `addr` (a function pointer of this process).
pub(crate) fn locate(addr: *const c_void) -> Result<LocalCodeRef, Error> {
    let mut info = DlInfo {
        fname: std::ptr::null(),
        fbase: std::ptr::null_mut(),
        sname: std::ptr::null(),
        saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the loader's tables and writes into `info`.
    let found = unsafe { dladdr(addr, &mut info) };
    if found == 0 || info.fname.is_null() {
        return Err(Error::CodeNotFound);
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader.
    let path = unsafe { CStr::from_ptr(info.fname) }
        .to_string_lossy()
        .into_owned();
    Ok(LocalCodeRef {
        library_path: path,
        offset: addr as u64 - info.fbase as u64,
    })
}
