//! How the driver reaches one executor: [`RemoteExecutor`] runs a task, copies a cached
//! partition to another executor, and takes the notices that need no answer (a job cancelled,
//! a cached RDD, a shuffle's outputs or a broadcast dropped). A session reaches its executors
//! over gRPC ([`GrpcExecutor`]); the scheduler's unit tests drive fakes through the same trait.

use std::future::Future;
use std::pin::Pin;
use tessera_plan::{RddId, ReplicaPeer, ShuffleId, TaskOutcome, TaskSpec};
use tessera_wire::ExecutorChannel;
use tessera_wire::executor::{
    CancelJobRequest, CopyBlockRequest, DropBroadcastRequest, DropRddRequest, DropShuffleRequest,
    RunTaskRequest,
};

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

/// An executor of the session, over its authenticated gRPC channel.
pub struct GrpcExecutor(pub ExecutorChannel);

impl RemoteExecutor for GrpcExecutor {
    fn run_task(&self, task: &TaskSpec) -> BoxFuture<'_, Result<TaskOutcome, Unreachable>> {
        let encoded = bincode::serialize(task);
        let mut client = self.0.clone();
        Box::pin(async move {
            let task = match encoded {
                Ok(task) => task,
                Err(e) => {
                    return Ok(TaskOutcome::Failed {
                        message: format!("cannot encode the task ({e}); this is a bug in Tessera"),
                    });
                }
            };
            let reply = client
                .run_task(RunTaskRequest { task })
                .await
                .map_err(|status| Unreachable(status.message().to_string()))?;
            Ok(
                tessera_plan::decode_outcome(&reply.into_inner().outcome).unwrap_or_else(|e| {
                    TaskOutcome::Failed {
                        message: e.to_string(),
                    }
                }),
            )
        })
    }

    fn notify(&self, notice: Notice) -> BoxFuture<'_, ()> {
        let mut client = self.0.clone();
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
        let mut client = self.0.clone();
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
