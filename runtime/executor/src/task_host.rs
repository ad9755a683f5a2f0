//! What the executor offers a running task's cell code through the ABI's `Host` table:
//! broadcast values (fetched from the driver once per executor, decoded once per cell library)
//! and the collection of accumulator updates, which go to the driver only if the task succeeds;
//! the memory budget and directory of the task's spilling operators, and the count of what they
//! spilled.

use crate::artifacts::DriverChannel;
use crate::error::ExecutorError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_plan::abi::{BroadcastDecoder, ErrorSink, Host, RawBytes};
use tessera_wire::driver::FetchBroadcastRequest;

/// Broadcast values this executor holds.
pub struct Broadcasts {
    driver: DriverChannel,
    runtime: tokio::runtime::Handle,
    bytes: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    /// (id, decoder address) -> the decoded value (a `Box<T>` of that decoder's library), kept
    /// for the executor's life.
    decoded: Mutex<HashMap<(u64, usize), usize>>,
}

impl Broadcasts {
    pub fn new(driver: DriverChannel, runtime: tokio::runtime::Handle) -> Broadcasts {
        Broadcasts {
            driver,
            runtime,
            bytes: Mutex::new(HashMap::new()),
            decoded: Mutex::new(HashMap::new()),
        }
    }

    /// The encoded value of broadcast `id`, from the driver the first time. Called on a task
    /// thread, never on the runtime's own.
    fn bytes(&self, id: u64) -> Result<Arc<Vec<u8>>, ExecutorError> {
        if let Some(bytes) = self.bytes.lock().get(&id) {
            return Ok(bytes.clone());
        }
        let mut driver = self.driver.clone();
        let reply = self
            .runtime
            .block_on(driver.fetch_broadcast(FetchBroadcastRequest { id }))
            .map_err(|source| ExecutorError::BroadcastFetch { id, source })?;
        let bytes = Arc::new(reply.into_inner().value);
        self.bytes.lock().insert(id, bytes.clone());
        Ok(bytes)
    }

    fn value(&self, id: u64, decode: BroadcastDecoder, err: ErrorSink) -> *const c_void {
        let key = (id, decode as usize);
        // Held while decoding, so that a value is decoded once even by concurrent tasks.
        let mut decoded = self.decoded.lock();
        if let Some(&value) = decoded.get(&key) {
            return value as *const c_void;
        }
        let bytes = match self.bytes(id) {
            Ok(bytes) => bytes,
            Err(error) => {
                // The cell code's error sink takes text: the task fails with this message.
                let message = error.to_string();
                unsafe { (err.set)(err.ctx, RawBytes::from_slice(message.as_bytes())) };
                return std::ptr::null();
            }
        };
        // SAFETY: `decode` comes from a loaded cell library and reads the bytes only.
        let value = unsafe { decode(RawBytes::from_slice(&bytes), err) };
        if !value.is_null() {
            decoded.insert(key, value as usize);
        }
        value
    }
}

/// One task's view of the host.
pub struct TaskHost<'a> {
    broadcasts: &'a Broadcasts,
    updates: Mutex<Vec<(u64, Vec<u8>)>>,
    /// The spill directory's path, which `table.spill_dir` points into.
    _spill_dir: Vec<u8>,
    spilled: AtomicU64,
    table: Host,
}

impl<'a> TaskHost<'a> {
    /// A task's host: its operators may each hold `spill_budget` bytes before they spill to
    /// files in `spill_dir`.
    pub fn new(
        broadcasts: &'a Broadcasts,
        spill_budget: u64,
        spill_dir: &std::path::Path,
    ) -> Box<TaskHost<'a>> {
        let dir = spill_dir.to_string_lossy().into_owned().into_bytes();
        let mut host = Box::new(TaskHost {
            broadcasts,
            updates: Mutex::new(Vec::new()),
            table: Host {
                ctx: std::ptr::null_mut(),
                broadcast,
                accumulate,
                spill_budget,
                spill_dir: RawBytes::from_slice(&dir),
                spilled,
            },
            _spill_dir: dir,
            spilled: AtomicU64::new(0),
        });
        host.table.ctx = &*host as *const TaskHost as *mut c_void;
        host
    }

    /// The table cell code calls, valid while `self` lives.
    pub fn table(&self) -> *const Host {
        &self.table
    }

    pub fn take_updates(&self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.updates.lock())
    }

    /// Bytes one operator of the task may hold before it spills.
    pub fn spill_budget(&self) -> u64 {
        self.table.spill_budget
    }

    /// Bytes the task's operators wrote to spill files so far.
    pub fn spilled(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }
}

unsafe extern "C" fn spilled(ctx: *mut c_void, bytes: u64) {
    let host = unsafe { &*(ctx as *const TaskHost) };
    host.spilled.fetch_add(bytes, Ordering::Relaxed);
}

unsafe extern "C" fn broadcast(
    ctx: *mut c_void,
    id: u64,
    decode: BroadcastDecoder,
    err: ErrorSink,
) -> *const c_void {
    let host = unsafe { &*(ctx as *const TaskHost) };
    host.broadcasts.value(id, decode, err)
}

unsafe extern "C" fn accumulate(ctx: *mut c_void, id: u64, bytes: RawBytes) {
    let host = unsafe { &*(ctx as *const TaskHost) };
    let bytes = unsafe { bytes.as_slice() }.to_vec();
    host.updates.lock().push((id, bytes));
}
