//! How the driver reaches one executor: [`RemoteExecutor`] runs a task, copies a cached
//! partition to another executor, and takes the notices that need no answer (a job cancelled,
//! a cached RDD, a shuffle's outputs or a broadcast dropped). A session reaches its executors
//! over gRPC ([`GrpcExecutor`]); the scheduler's unit tests drive fakes through the same trait.
//!
//! The tasks the scheduler sends an executor at once — a job's wave, and the next sent ahead
//! to wait there for a core — go in one call ([`GrpcExecutor`]), each one's outcome coming back
//! as it ends.

use crate::send_hold::SendHold;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tessera_plan::{RddId, ReplicaPeer, ShuffleId, TaskOutcome, TaskSpec};
use tessera_wire::ExecutorChannel;
use tessera_wire::executor::{
    CancelJobRequest, CopyBlockRequest, DropBroadcastRequest, DropRddRequest, DropShuffleRequest,
    RunTasksRequest, TaskEnded,
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
}

/// An executor of the session, over its authenticated gRPC channel. Tasks go out through a
/// sender of its own ([`send_batches`]), which puts those a round of a stage places together
/// in one call.
pub struct GrpcExecutor {
    client: ExecutorChannel,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

/// A task on its way to the executor, and where its outcome goes.
struct Outgoing {
    task: Vec<u8>,
    ended: oneshot::Sender<Result<TaskOutcome, Unreachable>>,
}

impl GrpcExecutor {
    /// The executor at the other end of `client`; starts its sender on the current runtime,
    /// which holds what it has while `hold` says a round is placing its tasks.
    pub fn new(client: ExecutorChannel, hold: Arc<SendHold>) -> GrpcExecutor {
        let (outbox, inbox) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(client.clone(), inbox, hold));
        GrpcExecutor { client, outbox }
    }
}

/// Sends the tasks that come through `inbox`, those that came together in one call. Ends when
/// the executor's handle is dropped.
async fn send_batches(
    client: ExecutorChannel,
    mut inbox: mpsc::UnboundedReceiver<Outgoing>,
    hold: Arc<SendHold>,
) {
    while let Some(batch) = next_batch(&mut inbox, &hold).await {
        tokio::spawn(run_batch(client.clone(), batch));
    }
}

/// The next item of `inbox` and those that come with it: those that came before no round was
/// placing its tasks any more (`hold`). `None` once every sender is gone.
async fn next_batch<T>(inbox: &mut mpsc::UnboundedReceiver<T>, hold: &SendHold) -> Option<Vec<T>> {
    let mut batch = vec![inbox.recv().await?];
    hold.released().await;
    while let Ok(next) = inbox.try_recv() {
        batch.push(next);
    }
    Some(batch)
}

/// Runs `batch` in one call and hands each task's outcome to its waiter as it comes. If the
/// call fails, or ends before every outcome came, the tasks still waiting find the executor
/// unreachable. When an outcome comes and no one waits for the rest any more (their attempts
/// were stopped), it hangs up, and the executor drops those still queued; a stopped job's
/// tasks are stopped there by its `CancelJob` notice in any case.
async fn run_batch(mut client: ExecutorChannel, batch: Vec<Outgoing>) {
    let (tasks, mut waiting): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|outgoing| (outgoing.task, Some(outgoing.ended)))
        .unzip();
    let lost = |message: String, waiting: &mut Vec<Option<oneshot::Sender<_>>>| {
        for ended in waiting.iter_mut().filter_map(Option::take) {
            let _ = ended.send(Err(Unreachable(message.clone())));
        }
    };
    let mut ends = match client.run_tasks(RunTasksRequest { tasks }).await {
        Ok(response) => response.into_inner(),
        Err(status) => return lost(status.message().to_string(), &mut waiting),
    };
    while waiting.iter().flatten().any(|ended| !ended.is_closed()) {
        match ends.message().await {
            Ok(Some(TaskEnded { index, outcome })) => {
                let outcome = tessera_plan::decode_outcome(&outcome).unwrap_or_else(|e| {
                    TaskOutcome::Failed {
                        message: e.to_string(),
                    }
                });
                if let Some(ended) = waiting.get_mut(index as usize).and_then(Option::take) {
                    let _ = ended.send(Ok(outcome));
                }
            }
            Ok(None) => {
                return lost(
                    "the executor ended the call before every task it was sent had ended".into(),
                    &mut waiting,
                );
            }
            Err(status) => return lost(status.message().to_string(), &mut waiting),
        }
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tasks_a_round_places_go_in_one_batch_and_later_ones_in_the_next() {
        let hold = Arc::new(SendHold::default());
        let (outbox, mut inbox) = mpsc::unbounded_channel();
        let round = hold.hold();
        outbox.send(0).unwrap();
        let batch = tokio::spawn({
            let hold = hold.clone();
            async move { next_batch(&mut inbox, &hold).await.map(|b| (b, inbox)) }
        });
        // The sender has the first task and waits for the round's others.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        outbox.send(1).unwrap();
        outbox.send(2).unwrap();
        drop(round);
        let (batch, mut inbox) = batch.await.unwrap().unwrap();
        assert_eq!(batch, vec![0, 1, 2]);
        // A task placed on its own (it waited for a slot) goes at once.
        outbox.send(3).unwrap();
        assert_eq!(next_batch(&mut inbox, &hold).await, Some(vec![3]));
        drop(outbox);
        assert_eq!(next_batch(&mut inbox, &hold).await, None);
    }
}
