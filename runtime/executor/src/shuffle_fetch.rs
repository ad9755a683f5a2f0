//! The reduce side of a shuffle: before a task that reads a shuffle runs, fetch bucket
//! `partition` of every map output, from this executor's store or directly from the executor
//! that wrote it. A bucket that cannot be had is a fetch failure, which the driver answers by
//! computing the lost map outputs again.

use crate::shuffle_store::{Bucket, ShuffleStore};
use parking_lot::Mutex;
use std::collections::HashMap;
use tessera_credentials::Credential;
use tessera_plan::{MapOutputLocation, ShuffleId};
use tessera_wire::executor::FetchShuffleRequest;
use tessera_wire::{ExecutorChannel, connect_executor};

/// Connections to the other executors of the session, made on first use.
pub struct Peers {
    credential: Credential,
    clients: Mutex<HashMap<String, ExecutorChannel>>,
}

/// Why a bucket could not be had, and from whom.
pub struct FetchFailure {
    pub executor_id: String,
    pub message: String,
}

impl Peers {
    pub fn new(credential: Credential) -> Peers {
        Peers {
            credential,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, address: &str) -> Result<ExecutorChannel, String> {
        if let Some(client) = self.clients.lock().get(address) {
            return Ok(client.clone());
        }
        let client = connect_executor(address, &self.credential)
            .await
            .map_err(|e| {
                format!(
                    "cannot connect to {address}: {}",
                    tessera_credentials::describe_error(&e)
                )
            })?;
        self.clients
            .lock()
            .insert(address.to_string(), client.clone());
        Ok(client)
    }
}

/// Every bucket `partition` of `shuffle` at `locations`, in map partition order.
pub async fn fetch(
    shuffle: ShuffleId,
    partition: u32,
    locations: &[MapOutputLocation],
    executor_id: &str,
    store: &ShuffleStore,
    peers: &Peers,
) -> Result<Vec<Bucket>, FetchFailure> {
    let mut buckets = Vec::new();
    for location in locations {
        let failure = |message: String| FetchFailure {
            executor_id: location.executor_id.clone(),
            message,
        };
        if location.executor_id == executor_id {
            for &map_partition in &location.map_partitions {
                let bucket = store
                    .bucket(shuffle, map_partition, partition)
                    .map_err(|e| failure(format!("this executor lost a map output: {e}")))?;
                buckets.push((map_partition, bucket));
            }
            continue;
        }
        let mut client = peers.client(&location.address).await.map_err(failure)?;
        let reply = client
            .fetch_shuffle(FetchShuffleRequest {
                shuffle,
                reduce_partition: partition,
                map_partitions: location.map_partitions.clone(),
            })
            .await
            .map_err(|status| failure(status.message().to_string()))?
            .into_inner();
        if reply.buckets.len() != location.map_partitions.len() {
            return Err(failure(format!(
                "asked for {} buckets, received {}",
                location.map_partitions.len(),
                reply.buckets.len()
            )));
        }
        buckets.extend(
            location
                .map_partitions
                .iter()
                .copied()
                .zip(reply.buckets.into_iter().map(Bucket::Owned)),
        );
    }
    // Map partition order makes a reducer's input, and so its output, the same on every run.
    buckets.sort_by_key(|(map_partition, _)| *map_partition);
    Ok(buckets.into_iter().map(|(_, bucket)| bucket).collect())
}
