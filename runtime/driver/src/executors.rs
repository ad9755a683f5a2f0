//! The executors a session holds: who they are, how to reach them, and how many task slots each
//! has free. Also the driver's gRPC service, through which executors register and fetch code.

use crate::artifacts::ArtifactStore;
use crate::remote_executor::{GrpcExecutor, Notice, RemoteExecutor};
use crate::send_hold::SendHold;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_credentials::Principal;
use tessera_wire::driver::driver_server::Driver as DriverRpc;
use tessera_wire::driver::{
    Chunk, FetchArtifactRequest, FetchBroadcastRequest, HeartbeatReply, HeartbeatRequest,
    RegisterExecutorReply, RegisterExecutorRequest,
};
use tessera_wire::{connect_executor, require};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ExecutorHandle {
    pub id: String,
    pub address: String,
    pub host: String,
    pub pid: u32,
    pub cores: u32,
    pub memory_bytes: u64,
    /// Where its agent serves the copies of its map outputs, if it does (they outlive it).
    pub sandbox_files: Option<String>,
    /// Its directory of host memory, if its agent gave it one: the cached partitions of
    /// plain-byte records it keeps there outlive it, for another executor on its host to adopt.
    pub host_memory: Option<String>,
    pub client: Arc<dyn RemoteExecutor>,
    /// Its task slots: one per core, and [`AHEAD_PER_CORE`] more per core for tasks sent ahead.
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// Tasks an executor is sent beyond its cores, per core. They wait there for a core, so that a
/// job's next wave starts on the executor as the last ends instead of after a round trip
/// through the driver: on two cores that trip often cost an LR iteration a whole task's time,
/// the driver's thread that was sending being preempted by the executor it woke and left
/// behind a running task (BENCHMARKS.md, "Tasks sent ahead"). Shuffle readers are sent ahead
/// too: an executor fetches a task's shuffle input only once a core is free for it, so that a
/// task waiting there holds none.
pub const AHEAD_PER_CORE: usize = 1;

impl ExecutorHandle {
    /// The task slots of an executor with `cores` cores.
    pub fn slots_for(cores: u32) -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(slot_count(cores)))
    }

    /// Tasks sent to it that have not ended.
    pub fn tasks_in_flight(&self) -> usize {
        slot_count(self.cores).saturating_sub(self.slots.available_permits())
    }

    /// Whether a task sent now would find a free core.
    pub fn has_free_core(&self) -> bool {
        self.tasks_in_flight() < self.cores.max(1) as usize
    }
}

/// How many task slots an executor with `cores` cores has: one per core, and those ahead.
fn slot_count(cores: u32) -> usize {
    cores.max(1) as usize * (1 + AHEAD_PER_CORE)
}

#[derive(Default)]
pub struct Executors {
    live: Mutex<BTreeMap<String, ExecutorHandle>>,
    /// Notified when executors come or go and when a task slot is given back: what a task
    /// waiting for a slot waits for.
    pub changed: Arc<tokio::sync::Notify>,
    /// Held by a round of a stage while it places its tasks, so that each executor gets the
    /// round's tasks in one call.
    pub sends: Arc<SendHold>,
}

/// A task slot taken on an executor. Giving it back (dropping it) wakes the tasks waiting for a
/// slot: a task queued behind a full executor starts as soon as one frees, not at its next look.
pub struct Slot {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    freed: Arc<tokio::sync::Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit goes back first, so that a task woken finds it free.
        drop(self.permit.take());
        self.freed.notify_waiters();
    }
}

impl Executors {
    pub fn list(&self) -> Vec<ExecutorHandle> {
        self.live.lock().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<ExecutorHandle> {
        self.live.lock().get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<ExecutorHandle> {
        let removed = self.live.lock().remove(id);
        self.changed.notify_waiters();
        removed
    }

    /// A task slot of `executor` with a free core, or with `ahead` one where the task waits on
    /// the executor for a core ([`AHEAD_PER_CORE`]), if it has one.
    pub fn try_slot(&self, executor: &ExecutorHandle, ahead: bool) -> Option<Slot> {
        if !ahead && !executor.has_free_core() {
            return None;
        }
        let permit = executor.slots.clone().try_acquire_owned().ok()?;
        Some(Slot {
            permit: Some(permit),
            freed: self.changed.clone(),
        })
    }

    /// Delivers `notice` to every live executor.
    pub async fn notify_all(&self, notice: Notice) {
        for executor in self.list() {
            executor.client.notify(notice).await;
        }
    }

    pub(crate) fn add(&self, executor: ExecutorHandle) {
        self.live.lock().insert(executor.id.clone(), executor);
        self.changed.notify_waiters();
    }
}

/// What executors call.
pub struct DriverService {
    pub executors: Arc<Executors>,
    pub artifacts: Arc<ArtifactStore>,
    pub shared_values: Arc<crate::shared_values::SharedValues>,
    /// The driver's own credential (from the session's CA), presented to executors it dials.
    pub credential: tessera_credentials::Credential,
    /// Takes a newly registered executor in: it adopts what lost executors on its host left,
    /// then joins the live ones (`DriverState::welcome_executor`).
    pub welcome: Arc<dyn Fn(ExecutorHandle) + Send + Sync>,
}

const CHUNK_BYTES: usize = 1 << 20;

#[tonic::async_trait]
impl DriverRpc for DriverService {
    async fn register_executor(
        &self,
        request: Request<RegisterExecutorRequest>,
    ) -> Result<Response<RegisterExecutorReply>, Status> {
        require(&request, "RegisterExecutor", &[Principal::Executor])?;
        let r = request.into_inner();
        let client = connect_executor(&r.address, &self.credential)
            .await
            .map_err(|e| {
                Status::unavailable(format!(
                    "cannot reach executor {} at {}: {}",
                    r.executor_id,
                    r.address,
                    tessera_credentials::describe_error(&e)
                ))
            })?;
        tracing::info!(executor = %r.executor_id, address = %r.address, cores = r.cores, "executor registered");
        (self.welcome)(ExecutorHandle {
            id: r.executor_id,
            address: r.address,
            host: r.host,
            pid: r.pid,
            cores: r.cores,
            memory_bytes: r.memory_bytes,
            sandbox_files: Some(r.sandbox_files).filter(|a| !a.is_empty()),
            host_memory: Some(r.host_memory).filter(|d| !d.is_empty()),
            client: Arc::new(GrpcExecutor::new(client, self.executors.sends.clone())),
            slots: ExecutorHandle::slots_for(r.cores),
        });
        Ok(Response::new(RegisterExecutorReply {}))
    }

    /// Answering is all: an executor that hears nothing for its driver timeout ends itself.
    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        require(&request, "Heartbeat", &[Principal::Executor])?;
        Ok(Response::new(HeartbeatReply {}))
    }

    type FetchArtifactStream = ChunkStream;
    type FetchBroadcastStream = ChunkStream;

    async fn fetch_broadcast(
        &self,
        request: Request<FetchBroadcastRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        require(&request, "FetchBroadcast", &[Principal::Executor])?;
        let id = request.into_inner().id;
        let value = self
            .shared_values
            .broadcast_value(id)
            .ok_or_else(|| Status::not_found(format!("no broadcast variable {id}")))?;
        Ok(Response::new(chunks_of(value)))
    }

    async fn fetch_artifact(
        &self,
        request: Request<FetchArtifactRequest>,
    ) -> Result<Response<Self::FetchArtifactStream>, Status> {
        require(&request, "FetchArtifact", &[Principal::Executor])?;
        let hash = request.into_inner().hash;
        let bytes = self
            .artifacts
            .get(&hash)
            .ok_or_else(|| Status::not_found(format!("no library with hash {hash}")))?;
        Ok(Response::new(chunks_of(bytes)))
    }
}

/// A value streamed in pieces of at most [`CHUNK_BYTES`].
pub type ChunkStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Chunk, Status>> + Send>>;

/// Streams `value` in pieces, each copied out of it only when gRPC asks for the next, so that
/// a large value is never copied whole.
fn chunks_of(value: Arc<Vec<u8>>) -> ChunkStream {
    use tokio_stream::StreamExt;
    let total = value.len() as u64;
    let ranges = tessera_wire::chunk_ranges(value.len(), CHUNK_BYTES);
    Box::pin(tokio_stream::iter(ranges).map(move |range| {
        Ok(Chunk {
            data: value[range].to_vec(),
            total,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    async fn pieces(value: Vec<u8>) -> Vec<Chunk> {
        chunks_of(Arc::new(value))
            .map(|chunk| chunk.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_value_streams_in_order_in_pieces_that_each_tell_its_size() {
        let value: Vec<u8> = (0..CHUNK_BYTES * 2 + 5).map(|i| (i % 251) as u8).collect();
        let chunks = pieces(value.clone()).await;
        let sizes: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, [CHUNK_BYTES, CHUNK_BYTES, 5]);
        assert!(chunks.iter().all(|c| c.total == value.len() as u64));
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, value);
        // An empty value is one empty piece: the receiver learns it is empty.
        let empty = pieces(Vec::new()).await;
        assert_eq!(empty.len(), 1);
        assert!(empty[0].data.is_empty() && empty[0].total == 0);
    }
}
