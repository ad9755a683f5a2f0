//! The child process's side: it loads cell libraries and runs them, and keeps the session's
//! variables between cells. Nothing Rust-typed crosses between it and a cell library except
//! through the C ABI below ([`Abi`], the same `#[repr(C)]` struct the generated support module
//! declares): the child and the cells are different compilations, so only pointers, integers
//! and bytes are shared. A variable is a box made by the cell that put it, with that cell's
//! drop function; the next cell that takes it checks a hash of its `TypeId` first.

use crate::protocol::{CHANNEL_FD, CHILD_ENV, END_OF_CELL, Ran, Reply, Request};
use std::collections::HashMap;
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;

/// The ABI a cell library's entry point gets (version 1).
#[repr(C)]
pub struct Abi {
    version: u32,
    store: *mut c_void,
    take: extern "C" fn(*mut c_void, *const u8, usize, u64) -> *mut c_void,
    #[allow(clippy::type_complexity)]
    put: extern "C" fn(
        *mut c_void,
        *const u8,
        usize,
        *mut c_void,
        u64,
        *const u8,
        usize,
        unsafe extern "C" fn(*mut c_void),
    ),
    report: extern "C" fn(*mut c_void, u32, *const u8, usize),
}

struct Stored {
    value: *mut c_void,
    type_hash: u64,
    type_name: String,
    drop: unsafe extern "C" fn(*mut c_void),
}

impl Drop for Stored {
    fn drop(&mut self) {
        // SAFETY: `value` is the box the cell library made, `drop` that library's function for
        // its type; libraries are never unloaded.
        unsafe { (self.drop)(self.value) }
    }
}

#[derive(Default)]
struct Store {
    variables: HashMap<String, Stored>,
    ran: Ran,
}

/// # Safety
/// `ptr..ptr + len` is a UTF-8 string the cell library owns for the call.
unsafe fn text<'a>(ptr: *const u8, len: usize) -> &'a str {
    // SAFETY: as the caller promises.
    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
}

extern "C" fn take(store: *mut c_void, name: *const u8, len: usize, hash: u64) -> *mut c_void {
    // SAFETY: `store` is the `Store` passed in the `Abi`, alive for the call.
    let store = unsafe { &mut *(store as *mut Store) };
    let name = unsafe { text(name, len) };
    match store.variables.get(name) {
        Some(stored) if stored.type_hash == hash => {
            let stored = store.variables.remove(name).expect("just found");
            let value = stored.value;
            // Ownership moves to the cell: no drop here.
            std::mem::forget(stored);
            value
        }
        _ => std::ptr::null_mut(),
    }
}

#[allow(clippy::too_many_arguments)]
extern "C" fn put(
    store: *mut c_void,
    name: *const u8,
    len: usize,
    value: *mut c_void,
    hash: u64,
    type_name: *const u8,
    type_name_len: usize,
    drop: unsafe extern "C" fn(*mut c_void),
) {
    // SAFETY: as in `take`.
    let store = unsafe { &mut *(store as *mut Store) };
    let name = unsafe { text(name, len) }.to_string();
    let type_name = unsafe { text(type_name, type_name_len) }.to_string();
    store.variables.insert(
        name,
        Stored {
            value,
            type_hash: hash,
            type_name,
            drop,
        },
    );
}

extern "C" fn report(store: *mut c_void, kind: u32, bytes: *const u8, len: usize) {
    // SAFETY: as in `take`.
    let store = unsafe { &mut *(store as *mut Store) };
    let message = unsafe { text(bytes, len) }.to_string();
    match kind {
        0 => {
            if let Some((mime, content)) = message.split_once('\0') {
                store
                    .ran
                    .bundle
                    .push((mime.to_string(), content.to_string()));
            }
        }
        1 => store.ran.panic = Some(message),
        _ => store.ran.error = Some(message),
    }
}

/// When this process was started as the engine's child, runs cells until the engine goes away,
/// then exits; otherwise returns at once. Call it first thing in `main` of every binary that
/// starts an [`Engine`](crate::Engine) (the child is that same binary).
pub fn run_child_if_requested() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // SAFETY: the engine gave this process its end of the socket as descriptor 3.
    let channel = unsafe { std::os::unix::net::UnixStream::from_raw_fd(CHANNEL_FD) };
    let mut replies = channel
        .try_clone()
        .unwrap_or_else(|_| std::process::exit(2));
    let mut store = Store::default();
    let mut libraries = Vec::new();
    for line in BufReader::new(channel).lines() {
        let Ok(line) = line else { break };
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            continue;
        };
        let reply = match request {
            Request::Run { library } => match run(&library, &mut store) {
                Ok(loaded) => {
                    libraries.push(loaded);
                    end_of_cell();
                    let mut ran = std::mem::take(&mut store.ran);
                    ran.variables = store
                        .variables
                        .iter()
                        .map(|(name, stored)| (name.clone(), stored.type_name.clone()))
                        .collect();
                    Reply::Ran(ran)
                }
                Err(message) => Reply::LoadFailed { message },
            },
            Request::Forget { names } => {
                for name in names {
                    store.variables.remove(&name);
                }
                Reply::Forgotten
            }
        };
        let mut line = serde_json::to_string(&reply).unwrap_or_default();
        line.push('\n');
        if replies.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    std::process::exit(0);
}

/// Loads `library` and runs its entry point; the library stays loaded (the variables it made
/// hold its drop functions; executors' code references may point into it).
fn run(library: &std::path::Path, store: &mut Store) -> Result<libloading::Library, String> {
    // SAFETY: the library is a cell the engine compiled; loading runs no constructors of ours.
    let loaded = unsafe { libloading::Library::new(library) }.map_err(|e| e.to_string())?;
    let entry = crate::crate_source::ENTRY;
    // SAFETY: every cell library exports the entry with this signature.
    let main: libloading::Symbol<extern "C" fn(*const Abi) -> i32> =
        unsafe { loaded.get(entry.as_bytes()) }.map_err(|e| e.to_string())?;
    let abi = Abi {
        version: 1,
        store: store as *mut Store as *mut c_void,
        take,
        put,
        report,
    };
    main(&abi);
    Ok(loaded)
}

/// Marks the end of a cell's output on stdout and stderr, below anything it printed (the
/// cell flushed its own buffers; this writes past this binary's).
fn end_of_cell() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let marker = format!("{END_OF_CELL}\n");
    for fd in [1, 2] {
        // SAFETY: writing a buffer we own to a descriptor the process has.
        unsafe { libc::write(fd, marker.as_ptr() as *const c_void, marker.len()) };
    }
}
