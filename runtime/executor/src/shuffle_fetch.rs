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

/// The buckets of one fetch, put together from their pieces.
struct Received {
    buckets: Vec<Vec<u8>>,
    seen: Vec<bool>,
}

impl Received {
    fn new(buckets: usize) -> Received {
        Received {
            buckets: vec![Vec::new(); buckets],
            seen: vec![false; buckets],
        }
    }

    fn add(&mut self, bucket: u32, data: Vec<u8>) -> Result<(), String> {
        let index = bucket as usize;
        let Some(bytes) = self.buckets.get_mut(index) else {
            return Err(format!(
                "sent a piece of bucket {bucket} of {} asked for",
                self.seen.len()
            ));
        };
        if bytes.is_empty() {
            *bytes = data;
        } else {
            bytes.extend_from_slice(&data);
        }
        self.seen[index] = true;
        Ok(())
    }

    fn finish(self) -> Result<Vec<Vec<u8>>, String> {
        let missing = self.seen.iter().filter(|s| !**s).count();
        if missing > 0 {
            return Err(format!(
                "the stream ended with {missing} of {} buckets missing",
                self.seen.len()
            ));
        }
        Ok(self.buckets)
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
        let mut pieces = client
            .fetch_shuffle(FetchShuffleRequest {
                shuffle,
                reduce_partition: partition,
                map_partitions: location.map_partitions.clone(),
            })
            .await
            .map_err(|status| failure(status.message().to_string()))?
            .into_inner();
        let mut received = Received::new(location.map_partitions.len());
        while let Some(piece) = pieces
            .message()
            .await
            .map_err(|status| failure(status.message().to_string()))?
        {
            received.add(piece.bucket, piece.data).map_err(failure)?;
        }
        let complete = received.finish().map_err(failure)?;
        buckets.extend(
            location
                .map_partitions
                .iter()
                .copied()
                .zip(complete.into_iter().map(Bucket::Owned)),
        );
    }
    // Map partition order makes a reducer's input, and so its output, the same on every run.
    buckets.sort_by_key(|(map_partition, _)| *map_partition);
    Ok(buckets.into_iter().map(|(_, bucket)| bucket).collect())
}

#[cfg(test)]
mod tests {
    use super::Received;
    use proptest::prelude::*;

    #[test]
    fn pieces_are_put_together_per_bucket_and_a_missing_bucket_is_a_failure() {
        let mut received = Received::new(3);
        received.add(0, b"ab".to_vec()).unwrap();
        received.add(0, b"cd".to_vec()).unwrap();
        received.add(1, Vec::new()).unwrap();
        received.add(2, b"e".to_vec()).unwrap();
        assert_eq!(
            received.finish().unwrap(),
            vec![b"abcd".to_vec(), Vec::new(), b"e".to_vec()]
        );

        let mut short = Received::new(2);
        short.add(0, b"x".to_vec()).unwrap();
        assert!(
            short
                .finish()
                .unwrap_err()
                .contains("1 of 2 buckets missing")
        );
        assert!(
            Received::new(1)
                .add(5, Vec::new())
                .unwrap_err()
                .contains("bucket 5")
        );
    }

    proptest! {
        /// A peer may send pieces of any bucket, in any order: what is kept is what came, per
        /// bucket asked for, and nothing else.
        #[test]
        fn any_pieces_are_kept_or_refused_and_never_panic(
            asked in 0usize..6,
            pieces in proptest::collection::vec((0u32..8, proptest::collection::vec(any::<u8>(), 0..16)), 0..24),
        ) {
            let mut received = Received::new(asked);
            let mut expected = vec![Vec::new(); asked];
            let mut refused = false;
            for (bucket, data) in pieces {
                match expected.get_mut(bucket as usize) {
                    Some(bytes) => {
                        bytes.extend_from_slice(&data);
                        prop_assert!(received.add(bucket, data).is_ok());
                    }
                    None => {
                        refused = true;
                        prop_assert!(received.add(bucket, data).is_err());
                        break;
                    }
                }
            }
            if !refused && let Ok(buckets) = received.finish() {
                prop_assert_eq!(buckets, expected);
            }
        }
    }
}
