//! How the driver reaches one executor: [`RemoteExecutor`] runs a task, copies a cached
//! partition to another executor, and takes the notices that need no answer (a job cancelled,
//! a cached RDD, a shuffle's outputs or a broadcast dropped). A session reaches its executors
//! over gRPC ([`GrpcExecutor`]); the scheduler's unit tests drive fakes through the same trait.
//!
//! Tasks go to an executor on one call kept open for its life ([`GrpcExecutor`]): the tasks a
//! round of a stage places on it — a job's wave, and the next sent ahead to wait there for a
//! core — in one message, each one's outcome coming back as it ends. A call for each batch took
//! 140 µs from the driver to the executor's handler, a message on the open call 65 µs
//! (BENCHMARKS.md, "One call for an executor's life").

use crate::send_hold::SendHold;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tessera_plan::{RddId, ReplicaPeer, ShuffleId, TaskOutcome, TaskSpec};
use tessera_wire::ExecutorChannel;
use tessera_wire::executor::{
    AdoptBlocksRequest, BlockId, CancelJobRequest, CopyBlockRequest, DropBroadcastRequest,
    DropRddRequest, DropShuffleRequest, TaskBatch, TaskEnded,
};
use tokio::sync::{mpsc, oneshot};

/// A future that an executor's call returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The executor did not answer: it died, or the network between us failed. What it held
/// (cached partitions, map outputs) counts as lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable(pub String);

/// A notice to an executor; its answer does not matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Notice {
    /// Stop the running tasks of this job.
    CancelJob(u64),
    /// Drop the cached partitions of this RDD.
    DropRdd(RddId),
    /// Drop the map outputs of this shuffle.
    DropShuffle(ShuffleId),
    /// Drop this broadcast value (the driver released it).
    DropBroadcast(u64),
}

/// One executor, as the scheduler uses it.
pub trait RemoteExecutor: Send + Sync {
    /// Runs one task. A reply that does not decode is the task's failure, not the executor's.
    fn run_task(&self, task: &TaskSpec) -> BoxFuture<'_, Result<TaskOutcome, Unreachable>>;

    /// Delivers `notice`, ignoring failures (an executor that is gone has nothing to drop).
    fn notify(&self, notice: Notice) -> BoxFuture<'_, ()>;

    /// Sends this executor's copy of partition `partition` of `rdd` to `to`; the error says why
    /// it could not (the block is gone, either executor is).
    fn copy_block(
        &self,
        rdd: RddId,
        partition: u32,
        to: &ReplicaPeer,
    ) -> BoxFuture<'_, Result<(), String>>;

    /// Adopts `blocks`, which a lost executor on this one's host kept in its directory of host
    /// memory `from`, and the parts of partitions it was computing when it died.
    fn adopt_blocks<'a>(
        &'a self,
        from: &'a str,
        blocks: &'a [(RddId, u32)],
    ) -> BoxFuture<'a, Result<Adoption, Unreachable>>;
}

/// What an executor adopted from a lost one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adoption {
    /// The whole partitions it keeps.
    pub adopted: Vec<AdoptedBlock>,
    /// The partitions it holds part of: a task computing one there carries on from it.
    pub partial: Vec<(RddId, u32)>,
}

/// A partition an executor adopted, and the bytes of memory it holds there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdoptedBlock {
    pub rdd: RddId,
    pub partition: u32,
    pub bytes: u64,
}

/// An executor of the session, over its authenticated gRPC channel. Tasks go out through a
/// sender of its own ([`send_tasks`]), on one call it keeps open, those a round of a stage
/// places together in one batch. A task whose attempt is stopped before it ends (its future
/// dropped) still runs there, and its outcome is dropped: tasks are not taken back one by one,
/// but a cancelled or failed job's are stopped by its `CancelJob` notice.
pub struct GrpcExecutor {
    client: ExecutorChannel,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

/// A task on its way to the executor, and where its outcome goes.
struct Outgoing {
    task: Vec<u8>,
    ended: Waiter,
}

impl GrpcExecutor {
    /// The executor at the other end of `client`; starts its sender on the current runtime,
    /// which holds what it has while `hold` says a round is placing its tasks.
    pub fn new(client: ExecutorChannel, hold: Arc<SendHold>) -> GrpcExecutor {
        let (outbox, inbox) = mpsc::unbounded_channel();
        tokio::spawn(send_tasks(client.clone(), inbox, hold));
        GrpcExecutor { client, outbox }
    }
}

/// Where a task's outcome goes.
type Waiter = oneshot::Sender<Result<TaskOutcome, Unreachable>>;

/// The call the tasks go on: where its batches go, and its outcomes.
struct TaskCall {
    batches: mpsc::UnboundedSender<TaskBatch>,
    ends: tonic::Streaming<TaskEnded>,
}

/// Sends the tasks that come through `inbox` on one call kept open, those that came together
/// in one batch ([`rest_of_batch`]), and hands each task's outcome to its waiter as it comes.
/// If the call fails or ends, the tasks waiting find the executor unreachable, and the next
/// batch opens a new call. Ends when the executor's handle is dropped, hanging up: the
/// executor then drops the tasks still queued.
async fn send_tasks(
    client: ExecutorChannel,
    mut inbox: mpsc::UnboundedReceiver<Outgoing>,
    hold: Arc<SendHold>,
) {
    let mut call: Option<TaskCall> = None;
    let mut waiting: HashMap<u64, Waiter> = HashMap::new();
    let mut next_tag = 0u64;
    loop {
        let first = tokio::select! {
            first = inbox.recv() => match first {
                Some(first) => first,
                None => return,
            },
            end = next_end(&mut call) => {
                hand_over(end, &mut call, &mut waiting);
                continue;
            }
        };
        let batch = rest_of_batch(first, &mut inbox, &hold).await;
        let tags = next_tag..next_tag + batch.len() as u64;
        next_tag = tags.end;
        let tasks = (batch.into_iter().zip(tags.clone()))
            .map(|(outgoing, tag)| {
                waiting.insert(tag, outgoing.ended);
                outgoing.task
            })
            .collect();
        let messages = messages_of(tags.start, tasks, MESSAGE_BYTES);
        if call.is_none() {
            match open_call(&client).await {
                Ok(open) => call = Some(open),
                Err(status) => {
                    end_call(&mut call, &mut waiting, status.message());
                    continue;
                }
            }
        }
        if let Some(open) = &call
            && messages
                .into_iter()
                .any(|message| open.batches.send(message).is_err())
        {
            end_call(
                &mut call,
                &mut waiting,
                "the call of the executor's tasks is closed",
            );
        }
    }
}

/// The most a message of tasks carries beyond its first task: a task plan carries its
/// partition of a parallelized collection, and a batch of them must stay within the message
/// limit each task does (`tessera_wire::MAX_MESSAGE_BYTES`).
const MESSAGE_BYTES: usize = 64 << 20;

/// `tasks`, tagged from `first` on, in messages of at most `limit` bytes of tasks each (a task
/// larger than that in one of its own), in order.
fn messages_of(first: u64, tasks: Vec<Vec<u8>>, limit: usize) -> Vec<TaskBatch> {
    let mut messages: Vec<TaskBatch> = Vec::new();
    let mut bytes = 0;
    for (tag, task) in (first..).zip(tasks) {
        match messages.last_mut() {
            Some(last) if bytes + task.len() <= limit => {
                bytes += task.len();
                last.tasks.push(task);
            }
            _ => {
                bytes = task.len();
                messages.push(TaskBatch {
                    first: tag,
                    tasks: vec![task],
                });
            }
        }
    }
    messages
}

/// Opens the call that tasks go on.
async fn open_call(client: &ExecutorChannel) -> Result<TaskCall, tonic::Status> {
    let (batches, sent) = mpsc::unbounded_channel();
    let sent = tokio_stream::wrappers::UnboundedReceiverStream::new(sent);
    let response = client.clone().run_tasks(sent).await?;
    Ok(TaskCall {
        batches,
        ends: response.into_inner(),
    })
}

/// Hands what came on `call` over: an outcome to its task's waiter; the call's end or failure
/// to every task still waiting ([`end_call`]).
fn hand_over(
    end: Result<Option<TaskEnded>, tonic::Status>,
    call: &mut Option<TaskCall>,
    waiting: &mut HashMap<u64, Waiter>,
) {
    match end {
        Ok(Some(TaskEnded { tag, outcome })) => {
            if let Some(waiter) = waiting.remove(&tag) {
                let _ = waiter.send(Ok(decode_outcome(&outcome)));
            }
        }
        Ok(None) => end_call(call, waiting, "the executor ended the call of its tasks"),
        Err(status) => end_call(call, waiting, status.message()),
    }
}

/// The next outcome on `call`; never, while there is none.
async fn next_end(call: &mut Option<TaskCall>) -> Result<Option<TaskEnded>, tonic::Status> {
    match call {
        Some(call) => call.ends.message().await,
        None => std::future::pending().await,
    }
}

/// Ends `call`: every task still waiting finds the executor unreachable, for `why`.
fn end_call(call: &mut Option<TaskCall>, waiting: &mut HashMap<u64, Waiter>, why: &str) {
    *call = None;
    for (_, waiter) in waiting.drain() {
        let _ = waiter.send(Err(Unreachable(why.to_string())));
    }
}

/// An outcome as the executor encoded it; one that does not decode is the task's failure.
fn decode_outcome(outcome: &[u8]) -> TaskOutcome {
    tessera_plan::decode_outcome(outcome).unwrap_or_else(|e| TaskOutcome::Failed {
        message: e.to_string(),
    })
}

/// `first` and the items of `inbox` that come with it: those that came before no round was
/// placing its tasks any more (`hold`).
async fn rest_of_batch<T>(
    first: T,
    inbox: &mut mpsc::UnboundedReceiver<T>,
    hold: &SendHold,
) -> Vec<T> {
    let mut batch = vec![first];
    hold.released().await;
    while let Ok(next) = inbox.try_recv() {
        batch.push(next);
    }
    batch
}

impl RemoteExecutor for GrpcExecutor {
    fn run_task(&self, task: &TaskSpec) -> BoxFuture<'_, Result<TaskOutcome, Unreachable>> {
        let task = match bincode::serialize(task) {
            Ok(task) => task,
            Err(e) => {
                return Box::pin(std::future::ready(Ok(TaskOutcome::Failed {
                    message: format!("cannot encode the task ({e}); this is a bug in Tessera"),
                })));
            }
        };
        let (ended, outcome) = oneshot::channel();
        let sent = self.outbox.send(Outgoing { task, ended });
        Box::pin(async move {
            let closed = || Unreachable("the connection to the executor is closed".into());
            sent.map_err(|_| closed())?;
            outcome.await.unwrap_or_else(|_| Err(closed()))
        })
    }

    fn notify(&self, notice: Notice) -> BoxFuture<'_, ()> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let _ = match notice {
                Notice::CancelJob(job_id) => client
                    .cancel_job(CancelJobRequest { job_id })
                    .await
                    .map(drop),
                Notice::DropRdd(rdd) => client.drop_rdd(DropRddRequest { rdd }).await.map(drop),
                Notice::DropShuffle(shuffle) => client
                    .drop_shuffle(DropShuffleRequest { shuffle })
                    .await
                    .map(drop),
                Notice::DropBroadcast(broadcast) => client
                    .drop_broadcast(DropBroadcastRequest { broadcast })
                    .await
                    .map(drop),
            };
        })
    }

    fn copy_block(
        &self,
        rdd: RddId,
        partition: u32,
        to: &ReplicaPeer,
    ) -> BoxFuture<'_, Result<(), String>> {
        let mut client = self.client.clone();
        let request = CopyBlockRequest {
            rdd,
            partition,
            executor_id: to.executor_id.clone(),
            address: to.address.clone(),
        };
        Box::pin(async move {
            client
                .copy_block(request)
                .await
                .map(drop)
                .map_err(|status| status.message().to_string())
        })
    }

    fn adopt_blocks<'a>(
        &'a self,
        from: &'a str,
        blocks: &'a [(RddId, u32)],
    ) -> BoxFuture<'a, Result<Adoption, Unreachable>> {
        let mut client = self.client.clone();
        let request = AdoptBlocksRequest {
            from: from.to_string(),
            blocks: blocks
                .iter()
                .map(|&(rdd, partition)| BlockId { rdd, partition })
                .collect(),
        };
        Box::pin(async move {
            let reply = client
                .adopt_blocks(request)
                .await
                .map_err(|status| Unreachable(status.message().to_string()))?;
            let reply = reply.into_inner();
            Ok(Adoption {
                adopted: reply
                    .adopted
                    .into_iter()
                    .map(|a| AdoptedBlock {
                        rdd: a.rdd,
                        partition: a.partition,
                        bytes: a.bytes,
                    })
                    .collect(),
                partial: reply
                    .partial
                    .into_iter()
                    .map(|b| (b.rdd, b.partition))
                    .collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tasks_a_round_places_go_in_one_batch_and_later_ones_in_the_next() {
        let hold = Arc::new(SendHold::default());
        let (outbox, mut inbox) = mpsc::unbounded_channel();
        let round = hold.hold();
        let batch = tokio::spawn({
            let hold = hold.clone();
            async move { (rest_of_batch(0, &mut inbox, &hold).await, inbox) }
        });
        // The sender has the first task and waits for the round's others.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        outbox.send(1).unwrap();
        outbox.send(2).unwrap();
        drop(round);
        let (batch, mut inbox) = batch.await.unwrap();
        assert_eq!(batch, vec![0, 1, 2]);
        // A task placed on its own (it waited for a slot) goes at once.
        assert_eq!(rest_of_batch(3, &mut inbox, &hold).await, vec![3]);
    }

    #[test]
    fn a_batch_goes_in_messages_within_the_limit_tagged_in_order() {
        let tasks = vec![vec![0; 4], vec![1; 4], vec![2; 9], vec![3; 1], vec![4; 2]];
        let messages = messages_of(10, tasks, 8);
        let shape: Vec<(u64, Vec<usize>)> = messages
            .iter()
            .map(|m| (m.first, m.tasks.iter().map(Vec::len).collect()))
            .collect();
        // Two of 4 fill one; 9 goes alone, over the limit; 1 and 2 share the last.
        assert_eq!(
            shape,
            vec![(10, vec![4, 4]), (12, vec![9]), (13, vec![1, 2])]
        );
        assert!(messages_of(0, Vec::new(), 8).is_empty());
    }
}
