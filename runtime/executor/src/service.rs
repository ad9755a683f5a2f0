//! The executor's gRPC service: tasks in, outcomes out, on a pool of `cores` task threads.

use crate::artifacts::Artifacts;
use crate::blocks::BlockManager;
use crate::error::ExecutorError;
use crate::host_memory;
use crate::replication;
use crate::shuffle_fetch::{self, Peers, Spool};
use crate::shuffle_store::{Bucket, ShuffleStore};
use crate::task_env::TaskEnv;
use crate::task_host::{Broadcasts, TaskHost};
use crate::task_runner::{libraries, run_task};
use crate::task_slots::{SlotError, TaskSlots};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_credentials::Principal;
use tessera_plan::{MapOutputLocation, ReplicaPeer, ShuffleId, TaskOutcome, TaskSpec};
use tessera_wire::executor::executor_server::Executor;
use tessera_wire::executor::{
    AdoptBlocksReply, AdoptBlocksRequest, AdoptedBlock, BlockId, CancelJobRequest,
    CopyBlockRequest, DropBroadcastRequest, DropRddRequest, DropShuffleRequest, Empty,
    FetchShuffleRequest, ReplicaChunk, ShuffleChunk, TaskBatch, TaskEnded,
};
use tessera_wire::{SHUFFLE_CHUNK_BYTES, require};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone)]
pub struct ExecutorService {
    pub executor_id: String,
    pub artifacts: Arc<Artifacts>,
    pub blocks: Arc<BlockManager>,
    pub shuffles: Arc<ShuffleStore>,
    pub broadcasts: Arc<Broadcasts>,
    pub peers: Arc<Peers>,
    pub slots: Arc<TaskSlots>,
    pub cancelled_jobs: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
    pub shutdown: Arc<tokio::sync::Notify>,
    /// Where tasks spill, and what one operator of a task (and a task's fetched buckets) may
    /// hold in memory before it does.
    pub spill_dir: std::path::PathBuf,
    pub task_spill_budget: u64,
}

impl ExecutorService {
    fn cancel_flag(&self, job: u64) -> Arc<AtomicBool> {
        self.cancelled_jobs.lock().entry(job).or_default().clone()
    }

    /// Runs `task` on a slot once one is free, and says how it ended. An error is the
    /// executor's, not the task's: it is stopping, or a task broke a slot.
    async fn run_one(&self, task: TaskSpec) -> Result<TaskOutcome, Status> {
        let outcome = 'outcome: {
            for file in &task.files {
                if let Err(e) = self.artifacts.ensure_side_file(file).await {
                    break 'outcome TaskOutcome::Failed {
                        message: e.to_string(),
                    };
                }
            }
            for library in libraries(&task) {
                if let Err(e) = self.artifacts.ensure_loaded(&library, false).await {
                    break 'outcome TaskOutcome::Failed {
                        message: e.to_string(),
                    };
                }
            }
            let (spill_dir, spill_budget) = (self.spill_dir.clone(), self.task_spill_budget);
            let slots = self.slots.clone();
            let (artifacts, blocks, shuffles, broadcasts, peers, cancelled, executor_id) = (
                self.artifacts.clone(),
                self.blocks.clone(),
                self.shuffles.clone(),
                self.broadcasts.clone(),
                self.peers.clone(),
                self.cancel_flag(task.job_id),
                self.executor_id.clone(),
            );
            let runtime = tokio::runtime::Handle::current();
            let ran = self
                .slots
                .run(move || {
                    // A task that reads a shuffle fetches its input once it has a core, not
                    // before: sent ahead (the driver's `AHEAD_PER_CORE`), it waits for one here
                    // holding nothing.
                    let mut spool = Spool::new(spill_dir.clone(), spill_budget);
                    let reads = (task.chain.source.as_ref())
                        .map_or_else(Vec::new, |source| source.shuffle_reads());
                    // Most tasks read none, and skip the runtime altogether.
                    let shuffle_input = if reads.is_empty() {
                        HashMap::new()
                    } else {
                        let fetched = runtime.block_on(fetch_shuffle_input(
                            reads,
                            &executor_id,
                            &shuffles,
                            &peers,
                            &mut spool,
                        ));
                        match fetched {
                            Ok(input) => input,
                            Err(failed) => return (task, failed, Vec::new()),
                        }
                    };
                    let host = TaskHost::new(&broadcasts, spill_budget, &spill_dir);
                    let env = TaskEnv {
                        host: &host,
                        artifacts: &artifacts,
                        blocks: &blocks,
                        shuffles: &shuffles,
                        cancelled: &cancelled,
                        slots: Some(&slots),
                        executor_id: &executor_id,
                        shuffle_input: &shuffle_input,
                        fetch_spilled: spool.spilled,
                    };
                    let outcome = run_task(&task, &env);
                    let copies = match &outcome {
                        TaskOutcome::Success { metrics, .. } if !task.replicate_to.is_empty() => {
                            replication::outgoing(&metrics.stored, &blocks)
                        }
                        _ => Vec::new(),
                    };
                    // What a task that cached a partition freed while computing it (the lines it
                    // read and parsed) is not what the tasks that read the cache allocate.
                    let cached = matches!(&outcome,
                        TaskOutcome::Success { metrics, .. } if !metrics.stored.is_empty());
                    crate::allocator::release_freed_memory(cached);
                    (task, outcome, copies)
                })
                .await
                .map_err(slot_status)?;
            let ((task, mut outcome, copies), slot_wait) = ran;
            if let TaskOutcome::Success { metrics, .. } = &mut outcome {
                metrics.slot_wait_micros = slot_wait.as_micros() as u64;
                replication::send(copies, &mut metrics.stored, &task.replicate_to, &self.peers)
                    .await;
                metrics.evicted.extend(self.blocks.take_unreported_drops());
            }
            outcome
        };
        Ok(outcome)
    }

    /// Runs the tasks that come in `batches`, side by side, each on a slot once one is free,
    /// and sends each one's end through `ended` as it comes; until the driver has sent its last
    /// and every task has ended, a task ends in an error of the executor's (which ends the
    /// call), or the driver hangs up (the tasks still queued leave the queue). A batch's tasks
    /// are queued in one go, before any of them can take a core from this thread: queued one
    /// call at a time, the first two took both cores as they came and the next two, sent
    /// ahead, waited for this runtime's thread to get a core back (BENCHMARKS.md, "A job's
    /// tasks in one call").
    async fn run_all(
        self,
        mut batches: Streaming<TaskBatch>,
        ended: tokio::sync::mpsc::Sender<Result<TaskEnded, Status>>,
    ) {
        let mut running = FuturesUnordered::new();
        let mut more = true;
        while more || !running.is_empty() {
            tokio::select! {
                batch = batches.message(), if more => match batch {
                    Ok(Some(TaskBatch { first, tasks })) => match decode_batch(&tasks) {
                        Ok(tasks) => {
                            for (tag, task) in (first..).zip(tasks) {
                                let service = &self;
                                running.push(async move { (tag, service.run_one(task).await) });
                            }
                        }
                        Err(refused) => {
                            let _ = ended.send(Err(refused)).await;
                            return;
                        }
                    },
                    Ok(None) => more = false,
                    Err(_) => return,
                },
                Some((tag, outcome)) = running.next(), if !running.is_empty() => {
                    let end = outcome.and_then(|outcome| task_ended(tag, &outcome));
                    let failed = end.is_err();
                    if ended.send(end).await.is_err() || failed {
                        return;
                    }
                }
                () = ended.closed() => return,
            }
        }
    }
}

/// A batch's tasks as the driver encoded them; one that does not decode refuses the batch.
fn decode_batch(tasks: &[Vec<u8>]) -> Result<Vec<TaskSpec>, Status> {
    (tasks.iter())
        .map(|task| tessera_plan::decode_task(task))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The message that says the task tagged `tag` ended with `outcome`.
fn task_ended(tag: u64, outcome: &TaskOutcome) -> Result<TaskEnded, Status> {
    let outcome = bincode::serialize(outcome)
        .map_err(|e| Status::internal(format!("cannot encode outcome: {e}")))?;
    Ok(TaskEnded { tag, outcome })
}

#[tonic::async_trait]
impl Executor for ExecutorService {
    type RunTasksStream = tokio_stream::wrappers::ReceiverStream<Result<TaskEnded, Status>>;

    async fn run_tasks(
        &self,
        request: Request<Streaming<TaskBatch>>,
    ) -> Result<Response<Self::RunTasksStream>, Status> {
        require(&request, "RunTasks", &[Principal::Driver])?;
        let (ended, stream) = tokio::sync::mpsc::channel(64);
        tokio::spawn(self.clone().run_all(request.into_inner(), ended));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            stream,
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<Empty>, Status> {
        require(&request, "CancelJob", &[Principal::Driver])?;
        self.cancel_flag(request.into_inner().job_id)
            .store(true, Ordering::Relaxed);
        Ok(Response::new(Empty {}))
    }

    async fn drop_rdd(&self, request: Request<DropRddRequest>) -> Result<Response<Empty>, Status> {
        require(&request, "DropRdd", &[Principal::Driver])?;
        let rdd = request.into_inner().rdd;
        let dropped = self.blocks.drop_rdd(rdd);
        tracing::debug!(rdd, dropped, "dropped cached partitions");
        Ok(Response::new(Empty {}))
    }

    async fn drop_shuffle(
        &self,
        request: Request<DropShuffleRequest>,
    ) -> Result<Response<Empty>, Status> {
        require(&request, "DropShuffle", &[Principal::Driver])?;
        let shuffle = request.into_inner().shuffle;
        let dropped = self.shuffles.drop_shuffle(shuffle);
        tracing::debug!(shuffle, dropped, "dropped map outputs no live RDD reads");
        Ok(Response::new(Empty {}))
    }

    async fn drop_broadcast(
        &self,
        request: Request<DropBroadcastRequest>,
    ) -> Result<Response<Empty>, Status> {
        require(&request, "DropBroadcast", &[Principal::Driver])?;
        let broadcast = request.into_inner().broadcast;
        let bytes = self.broadcasts.release(broadcast);
        crate::allocator::release_freed_memory(false);
        tracing::debug!(broadcast, bytes, "dropped a broadcast the driver released");
        Ok(Response::new(Empty {}))
    }

    type FetchShuffleStream = tokio_stream::wrappers::ReceiverStream<Result<ShuffleChunk, Status>>;

    async fn fetch_shuffle(
        &self,
        request: Request<FetchShuffleRequest>,
    ) -> Result<Response<Self::FetchShuffleStream>, Status> {
        require(
            &request,
            "FetchShuffle",
            &[Principal::Driver, Principal::Executor],
        )?;
        let r = request.into_inner();
        let buckets: Vec<Bucket> = r
            .map_partitions
            .iter()
            .map(|&map_partition| {
                self.shuffles
                    .bucket(r.shuffle, map_partition, r.reduce_partition)
                    .map_err(|e| {
                        Status::not_found(format!("executor {} holds {e}", self.executor_id))
                    })
            })
            .collect::<Result<_, _>>()?;
        // One piece waiting besides the one being sent: the reducer's pace bounds what this
        // side buffers (two pieces per reducer fetching).
        let (pieces, stream) = tokio::sync::mpsc::channel(1);
        // Read on a blocking thread: buckets on disk are read a piece at a time as the reducer
        // takes them.
        crate::allocator::spawn_blocking(move || send_buckets(&buckets, &pieces));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            stream,
        )))
    }

    async fn put_replica(
        &self,
        request: Request<Streaming<ReplicaChunk>>,
    ) -> Result<Response<Empty>, Status> {
        require(&request, "PutReplica", &[Principal::Executor])?;
        replication::receive(request.into_inner(), &self.artifacts, &self.blocks)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(Empty {}))
    }

    async fn copy_block(
        &self,
        request: Request<CopyBlockRequest>,
    ) -> Result<Response<Empty>, Status> {
        require(&request, "CopyBlock", &[Principal::Driver])?;
        let r = request.into_inner();
        let peer = ReplicaPeer {
            executor_id: r.executor_id,
            address: r.address,
        };
        replication::copy(r.rdd, r.partition, &peer, &self.blocks, &self.peers)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(Empty {}))
    }

    async fn adopt_blocks(
        &self,
        request: Request<AdoptBlocksRequest>,
    ) -> Result<Response<AdoptBlocksReply>, Status> {
        require(&request, "AdoptBlocks", &[Principal::Driver])?;
        let r = request.into_inner();
        let from = std::path::PathBuf::from(&r.from);
        let manifests = match host_memory::Manifests::list(&from) {
            Ok(manifests) => manifests,
            // Nothing to adopt, or nothing that can be: the driver computes the partitions again.
            Err(e) => {
                if !matches!(&e, ExecutorError::HostMemory { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound)
                {
                    tracing::warn!("{e}");
                }
                return Ok(Response::new(AdoptBlocksReply::default()));
            }
        };
        let mut adopted = Vec::new();
        for BlockId { rdd, partition } in r.blocks {
            let kept = async {
                let found = manifests.read((rdd, partition))?;
                let code = &found.manifest.code;
                let table = replication::load_batch_table(&self.artifacts, code).await?;
                self.blocks.adopt(found, table)
            };
            match kept.await {
                Ok(Some(bytes)) => adopted.push(AdoptedBlock {
                    rdd,
                    partition,
                    bytes,
                }),
                Ok(None) => tracing::info!(rdd, partition, "no room to adopt a lost partition"),
                // Kept in the lost executor's own memory (records that own memory elsewhere):
                // nothing to adopt.
                Err(ExecutorError::HostMemory { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                // Nothing is lost but time: the driver computes the partition again.
                Err(e) => tracing::warn!(rdd, partition, "{e}"),
            }
        }
        // What it was computing when it died, for the tasks tried again to carry on from.
        let mut partial = Vec::new();
        for found in manifests.partials() {
            let kept = async {
                let found = found?;
                let code = &found.manifest.code;
                let table = replication::load_batch_table(&self.artifacts, code).await?;
                self.blocks.adopt_partial(found, table)
            };
            match kept.await {
                Ok(((rdd, partition), records)) => {
                    tracing::info!(rdd, partition, records, "part of a lost partition adopted");
                    partial.push(BlockId { rdd, partition });
                }
                // Nothing is lost but time: the task starts the partition again.
                Err(e) => tracing::warn!("{e}"),
            }
        }
        // Left empty, the lost executor's directory goes now; what was not adopted, when its
        // agent removes it, a minute after the executor ended.
        let _ = std::fs::remove_dir(&from);
        Ok(Response::new(AdoptBlocksReply { adopted, partial }))
    }

    async fn shutdown(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        require(&request, "Shutdown", &[Principal::Driver])?;
        self.shutdown.notify_one();
        Ok(Response::new(Empty {}))
    }
}

/// The shuffle buckets a task `reads` (each shuffle's partition, and where its map outputs
/// are: this executor, a peer, or the agent of one that is gone), or the outcome that says
/// which could not be fetched.
async fn fetch_shuffle_input(
    reads: Vec<(ShuffleId, u32, &[MapOutputLocation])>,
    executor_id: &str,
    shuffles: &ShuffleStore,
    peers: &Peers,
    spool: &mut Spool,
) -> Result<HashMap<(ShuffleId, u32), Vec<Bucket>>, TaskOutcome> {
    let mut input = HashMap::new();
    for (shuffle, partition, locations) in reads {
        let fetched = shuffle_fetch::fetch(
            shuffle,
            partition,
            locations,
            executor_id,
            shuffles,
            peers,
            spool,
        )
        .await;
        match fetched {
            Ok(buckets) => input.insert((shuffle, partition), buckets),
            Err(failure) => {
                return Err(TaskOutcome::FetchFailed {
                    shuffle,
                    executor_id: failure.executor_id,
                    through_agent: failure.through_agent,
                    message: failure.error.to_string(),
                });
            }
        };
    }
    Ok(input)
}

/// The status a call gets when its task could not run on a slot.
fn slot_status(error: SlotError) -> Status {
    match error {
        SlotError::Stopped => Status::unavailable(error.to_string()),
        SlotError::Panicked(_) => Status::internal(error.to_string()),
    }
}

/// Sends `buckets` to a reducer through `pieces`, a piece at a time as it takes them, until they
/// are all sent, one cannot be read (the reducer is told why) or the reducer goes away.
fn send_buckets(
    buckets: &[Bucket],
    pieces: &tokio::sync::mpsc::Sender<Result<ShuffleChunk, Status>>,
) {
    for (index, bucket) in buckets.iter().enumerate() {
        let mut gone = false;
        let mut sent = false;
        let read = bucket.read_pieces(SHUFFLE_CHUNK_BYTES, |piece| {
            let chunk = ShuffleChunk {
                bucket: index as u32,
                data: piece.to_vec(),
            };
            sent = true;
            gone = pieces.blocking_send(Ok(chunk)).is_err();
            !gone
        });
        if let Err(e) = read {
            let _ = pieces.blocking_send(Err(Status::not_found(format!(
                "cannot read a shuffle bucket: {e}"
            ))));
            return;
        }
        if gone {
            return; // the reducer went away
        }
        // An empty bucket is one empty piece, so the reducer sees every bucket.
        if !sent
            && pieces
                .blocking_send(Ok(ShuffleChunk {
                    bucket: index as u32,
                    data: Vec::new(),
                }))
                .is_err()
        {
            return;
        }
    }
}
