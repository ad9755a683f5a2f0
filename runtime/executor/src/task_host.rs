//! What the executor offers a running task's cell code through the ABI's `Host` table:
//! broadcast values (fetched from the driver once per executor, decoded once per cell library,
//! freed once the driver releases them and no running task holds them)
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
use tessera_plan::abi::{BroadcastDecoder, BroadcastDropper, ErrorSink, Host, RawBytes};
use tessera_wire::driver::FetchBroadcastRequest;

/// Broadcast values this executor holds.
pub struct Broadcasts {
    driver: DriverChannel,
    runtime: tokio::runtime::Handle,
    bytes: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    /// (id, decoder address) -> the decoded value.
    decoded: Mutex<HashMap<DecodedKey, Decoded>>,
}

/// A broadcast's id and the address of the decoder (so, the cell library) that decoded it.
type DecodedKey = (u64, usize);

/// A decoded broadcast value: a `Box<T>` of its decoder's library, freed by `drop` once the
/// driver released the broadcast and no running task holds it.
struct Decoded {
    value: usize,
    drop: BroadcastDropper,
    /// Running tasks that were given it.
    tasks: usize,
    released: bool,
}

impl Decoded {
    fn free(self) {
        // SAFETY: `drop` comes from the library whose decoder made `value`, and no task holds
        // it any more.
        unsafe { (self.drop)(self.value as *mut c_void) }
    }
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
        let value = self
            .runtime
            .block_on(async move {
                let mut stream = driver
                    .fetch_broadcast(FetchBroadcastRequest { id })
                    .await?
                    .into_inner();
                let mut value = Vec::new();
                while let Some(chunk) = stream.message().await? {
                    if value.is_empty() {
                        // Room for the whole value at once (a driver that claims more than
                        // any message may carry gets room as the pieces come).
                        let total = usize::try_from(chunk.total).unwrap_or(usize::MAX);
                        value.reserve_exact(total.min(tessera_wire::MAX_MESSAGE_BYTES));
                    }
                    value.extend_from_slice(&chunk.data);
                }
                Ok(value)
            })
            .map_err(|source| ExecutorError::BroadcastFetch { id, source })?;
        let bytes = Arc::new(value);
        self.bytes.lock().insert(id, bytes.clone());
        Ok(bytes)
    }

    /// The value of broadcast `id` as `decode` makes it, decoded once while the executor keeps
    /// it; `held` (the task's) records it, to be let go when the task ends ([`Self::let_go`]).
    fn value(
        &self,
        id: u64,
        decode: BroadcastDecoder,
        drop: BroadcastDropper,
        err: ErrorSink,
        held: &mut Vec<DecodedKey>,
    ) -> *const c_void {
        let key = (id, decode as usize);
        // Held while decoding, so that a value is decoded once even by concurrent tasks.
        let mut decoded = self.decoded.lock();
        if let Some(entry) = decoded.get_mut(&key) {
            if !held.contains(&key) {
                entry.tasks += 1;
                held.push(key);
            }
            return entry.value as *const c_void;
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
            let entry = Decoded {
                value: value as usize,
                drop,
                tasks: 1,
                released: false,
            };
            decoded.insert(key, entry);
            held.push(key);
        }
        value
    }

    /// A task that was given the values `held` ended.
    fn let_go(&self, held: &[DecodedKey]) {
        let mut decoded = self.decoded.lock();
        for key in held {
            if let Some(entry) = decoded.get_mut(key) {
                entry.tasks -= 1;
                if entry.tasks == 0
                    && entry.released
                    && let Some(entry) = decoded.remove(key)
                {
                    entry.free();
                }
            }
        }
    }

    /// The driver released broadcast `id`: its bytes go now, and each decoded value as soon
    /// as no running task holds it. A task that asks for it later fetches it again. Returns the
    /// bytes freed.
    pub fn release(&self, id: u64) -> usize {
        let bytes = self.bytes.lock().remove(&id).map_or(0, |b| b.len());
        let mut decoded = self.decoded.lock();
        let keys: Vec<DecodedKey> = decoded.keys().filter(|k| k.0 == id).copied().collect();
        for key in keys {
            match decoded.remove(&key) {
                Some(entry) if entry.tasks == 0 => entry.free(),
                Some(mut entry) => {
                    entry.released = true;
                    decoded.insert(key, entry);
                }
                None => {}
            }
        }
        bytes
    }
}

/// One task's view of the host.
pub struct TaskHost<'a> {
    broadcasts: &'a Broadcasts,
    /// The broadcast values the task was given, let go when it ends.
    held: Mutex<Vec<DecodedKey>>,
    updates: Mutex<Vec<(u64, Vec<u8>)>>,
    /// The spill directory's path, which `table.spill_dir` points into.
    _spill_dir: Vec<u8>,
    spilled: AtomicU64,
    table: Host,
}

// SAFETY: the table's pointers point into the host itself (its context and its spill
// directory's bytes), which does not move (it is boxed) and is not changed after it is made;
// what the task's threads change through it is behind a lock or atomic.
unsafe impl Sync for TaskHost<'_> {}

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
            held: Mutex::new(Vec::new()),
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

impl Drop for TaskHost<'_> {
    fn drop(&mut self) {
        self.broadcasts.let_go(&self.held.lock());
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
    drop: BroadcastDropper,
    err: ErrorSink,
) -> *const c_void {
    let host = unsafe { &*(ctx as *const TaskHost) };
    host.broadcasts
        .value(id, decode, drop, err, &mut host.held.lock())
}

unsafe extern "C" fn accumulate(ctx: *mut c_void, id: u64, bytes: RawBytes) {
    let host = unsafe { &*(ctx as *const TaskHost) };
    let bytes = unsafe { bytes.as_slice() }.to_vec();
    host.updates.lock().push((id, bytes));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Values freed so far, by the first byte of the bytes they were decoded from (each test
    /// uses its own).
    static FREED: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

    unsafe extern "C" fn decode(bytes: RawBytes, _err: ErrorSink) -> *mut c_void {
        let bytes = unsafe { bytes.as_slice() }.to_vec();
        Box::into_raw(Box::new(bytes)) as *mut c_void
    }

    unsafe extern "C" fn free(value: *mut c_void) {
        let bytes = unsafe { Box::from_raw(value as *mut Vec<u8>) };
        FREED[bytes[0] as usize].fetch_add(1, Ordering::SeqCst);
    }

    unsafe extern "C" fn keep(ctx: *mut c_void, message: RawBytes) {
        let message = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
        unsafe { *(ctx as *mut String) = message };
    }

    /// Broadcasts holding `values` (id, bytes) already fetched, with a driver that cannot be
    /// reached, on `runtime`.
    fn holding(runtime: &tokio::runtime::Runtime, values: &[(u64, Vec<u8>)]) -> Broadcasts {
        let _entered = runtime.enter();
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let broadcasts = Broadcasts::new(DriverChannel::new(channel), runtime.handle().clone());
        for (id, bytes) in values {
            broadcasts.bytes.lock().insert(*id, Arc::new(bytes.clone()));
        }
        broadcasts
    }

    /// The value of `id` as a task sees it, or the error it fails with.
    fn value_of(host: &TaskHost, id: u64) -> Result<Vec<u8>, String> {
        let mut message = String::new();
        let err = ErrorSink {
            ctx: &mut message as *mut String as *mut c_void,
            set: keep,
        };
        let table = unsafe { &*host.table() };
        let value = unsafe { (table.broadcast)(table.ctx, id, decode, free, err) };
        if value.is_null() {
            return Err(message);
        }
        Ok(unsafe { &*(value as *const Vec<u8>) }.clone())
    }

    #[test]
    fn a_released_value_is_freed_when_the_last_task_holding_it_ends() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let broadcasts = holding(&runtime, &[(7, vec![1, 10]), (8, vec![1, 20])]);
        let spill = std::env::temp_dir();
        let (first, second) = (
            TaskHost::new(&broadcasts, 0, &spill),
            TaskHost::new(&broadcasts, 0, &spill),
        );
        assert_eq!(value_of(&first, 7).unwrap(), [1, 10]);
        assert_eq!(value_of(&first, 7).unwrap(), [1, 10]);
        assert_eq!(value_of(&second, 7).unwrap(), [1, 10]);
        assert_eq!(value_of(&second, 8).unwrap(), [1, 20]);
        drop(second);
        // Released while the first task still reads it: kept until that task ends.
        assert_eq!(broadcasts.release(7), 2);
        assert_eq!(FREED[1].load(Ordering::SeqCst), 0);
        assert_eq!(value_of(&first, 7).unwrap(), [1, 10]);
        drop(first);
        assert_eq!(FREED[1].load(Ordering::SeqCst), 1);
        // The other value stays, held by no task, until it is released too.
        assert_eq!(broadcasts.decoded.lock().len(), 1);
        assert_eq!(broadcasts.release(8), 2);
        assert_eq!(FREED[1].load(Ordering::SeqCst), 2);
        assert!(broadcasts.decoded.lock().is_empty());
    }

    #[test]
    fn a_task_that_needs_a_released_value_fetches_it_again() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let broadcasts = holding(&runtime, &[(3, vec![2, 5])]);
        let task = TaskHost::new(&broadcasts, 0, &std::env::temp_dir());
        assert_eq!(value_of(&task, 3).unwrap(), [2, 5]);
        drop(task);
        broadcasts.release(3);
        assert_eq!(FREED[2].load(Ordering::SeqCst), 1);
        // Its bytes went too: the next task asks the driver (here, one that cannot be reached).
        let task = TaskHost::new(&broadcasts, 0, &std::env::temp_dir());
        let error = value_of(&task, 3).unwrap_err();
        assert!(error.contains("broadcast 3"), "{error}");
    }
}
