//! The reduce side of a shuffle: before a task that reads a shuffle runs, fetch bucket
//! `partition` of every map output, from this executor's store or directly from the executor
//! that wrote it. A bucket that cannot be had is a fetch failure, which the driver answers by
//! computing the lost map outputs again.
//!
//! The outputs of an executor that is gone are read through the agent that ran it, from the
//! copies it left in its sandbox (`MapOutputLocation::from_agent`): the start of each copy's
//! table, then the bucket's bytes, as Spark's reducers read from an external shuffle service.
//!
//! Fetched bytes are kept in memory up to the task's budget ([`Spool`]); past it, each further
//! bucket goes to a file of its own in the executor's spill directory as its pieces arrive (as
//! Spark fetches large blocks to disk), read back a frame at a time and removed when the task
//! is done with it. Buckets this executor wrote are read where they are, not copied.

use crate::error::ExecutorError;
use crate::shuffle_store::{Bucket, BucketFile, ShuffleStore};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_credentials::Credential;
use tessera_plan::map_output::{bucket_in_table, served_path, table_prefix_len};
use tessera_plan::{MapOutputLocation, ShuffleId};
use tessera_wire::executor::FetchShuffleRequest;
use tessera_wire::sandbox_files::ReadRequest;
use tessera_wire::{ExecutorChannel, SandboxFilesChannel, connect_executor, connect_sandbox_files};

/// Connections to the other executors of the session, and to agents that serve the copies of
/// executors that are gone, made on first use.
pub struct Peers {
    credential: Credential,
    clients: Mutex<HashMap<String, ExecutorChannel>>,
    /// Agents that serve the copies of executors that are gone.
    agents: Mutex<HashMap<String, SandboxFilesChannel>>,
}

/// Why a bucket could not be had, and from whom.
pub struct FetchFailure {
    pub executor_id: String,
    /// Whether it was read through the executor's agent.
    pub through_agent: bool,
    /// Sent to the driver as text, in the task's outcome.
    pub error: ExecutorError,
}

impl Peers {
    pub fn new(credential: Credential) -> Peers {
        Peers {
            credential,
            clients: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
        }
    }

    async fn agent(&self, address: &str) -> Result<SandboxFilesChannel, ExecutorError> {
        cached(&self.agents, address, || {
            connect_sandbox_files(address, &self.credential)
        })
        .await
    }

    pub async fn client(&self, address: &str) -> Result<ExecutorChannel, ExecutorError> {
        cached(&self.clients, address, || {
            connect_executor(address, &self.credential)
        })
        .await
    }
}

/// The client of `address` in `clients`, connected with `connect` on first use.
async fn cached<C: Clone, F>(
    clients: &Mutex<HashMap<String, C>>,
    address: &str,
    connect: impl FnOnce() -> F,
) -> Result<C, ExecutorError>
where
    F: std::future::Future<Output = Result<C, tonic::transport::Error>>,
{
    if let Some(client) = clients.lock().get(address) {
        return Ok(client.clone());
    }
    let client = connect()
        .await
        .map_err(|source| ExecutorError::PeerConnect {
            address: address.to_string(),
            source,
        })?;
    clients.lock().insert(address.to_string(), client.clone());
    Ok(client)
}

/// Where a task's fetched buckets are kept: memory, up to `budget` bytes for all of them, then
/// files in `dir`.
pub struct Spool {
    pub dir: PathBuf,
    pub budget: u64,
    held: u64,
    /// Bytes written to files.
    pub spilled: u64,
}

impl Spool {
    pub fn new(dir: PathBuf, budget: u64) -> Spool {
        Spool {
            dir,
            budget,
            held: 0,
            spilled: 0,
        }
    }
}

/// Whether a bucket already `held` in memory with `more` bytes arriving goes to disk.
fn goes_to_disk(held: u64, more: u64, budget: u64) -> bool {
    held.saturating_add(more) > budget
}

fn keep_failed(dir: &std::path::Path, source: std::io::Error) -> ExecutorError {
    ExecutorError::FetchSpill {
        dir: dir.to_path_buf(),
        source,
    }
}

/// A bucket being received.
enum Incoming {
    Memory(Vec<u8>),
    File {
        file: Arc<BucketFile>,
        out: std::io::BufWriter<std::fs::File>,
        len: u64,
    },
}

/// The buckets of one fetch, put together from their pieces.
struct Received<'s> {
    buckets: Vec<Incoming>,
    seen: Vec<bool>,
    spool: &'s mut Spool,
}

impl<'s> Received<'s> {
    fn new(buckets: usize, spool: &'s mut Spool) -> Received<'s> {
        Received {
            buckets: (0..buckets).map(|_| Incoming::Memory(Vec::new())).collect(),
            seen: vec![false; buckets],
            spool,
        }
    }

    fn to_file(spool: &mut Spool, held: Vec<u8>) -> std::io::Result<Incoming> {
        std::fs::create_dir_all(&spool.dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut attempt = 0u32;
        let (path, opened) = loop {
            let path = spool
                .dir
                .join(format!("fetched-{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(opened) => break (path, opened),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        let file = Arc::new(BucketFile {
            path,
            remove_when_dropped: true,
        });
        let mut out = std::io::BufWriter::with_capacity(1 << 16, opened);
        out.write_all(&held)?;
        spool.held -= held.len() as u64;
        spool.spilled += held.len() as u64;
        Ok(Incoming::File {
            file,
            out,
            len: held.len() as u64,
        })
    }

    fn add(&mut self, bucket: u32, data: Vec<u8>) -> Result<(), ExecutorError> {
        let index = bucket as usize;
        let asked = self.seen.len();
        let Some(incoming) = self.buckets.get_mut(index) else {
            return Err(ExecutorError::UnaskedBucket { bucket, asked });
        };
        let spool = &mut *self.spool;
        if let Incoming::Memory(bytes) = incoming
            && goes_to_disk(spool.held, data.len() as u64, spool.budget)
        {
            let held = std::mem::take(bytes);
            *incoming = Self::to_file(spool, held).map_err(|e| keep_failed(&spool.dir, e))?;
        }
        match incoming {
            Incoming::Memory(bytes) => {
                spool.held += data.len() as u64;
                if bytes.is_empty() {
                    *bytes = data;
                } else {
                    bytes.extend_from_slice(&data);
                }
            }
            Incoming::File { out, len, .. } => {
                out.write_all(&data)
                    .map_err(|e| keep_failed(&spool.dir, e))?;
                *len += data.len() as u64;
                spool.spilled += data.len() as u64;
            }
        }
        self.seen[index] = true;
        Ok(())
    }

    fn finish(self) -> Result<Vec<Bucket>, ExecutorError> {
        let missing = self.seen.iter().filter(|s| !**s).count();
        if missing > 0 {
            return Err(ExecutorError::BucketsMissing {
                missing,
                asked: self.seen.len(),
            });
        }
        self.buckets
            .into_iter()
            .map(|incoming| match incoming {
                Incoming::Memory(bytes) => Ok(Bucket::Owned(bytes)),
                Incoming::File { file, mut out, len } => {
                    out.flush().map_err(|e| keep_failed(&self.spool.dir, e))?;
                    Ok(Bucket::File(file, 0..len))
                }
            })
            .collect()
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
    spool: &mut Spool,
) -> Result<Vec<Bucket>, FetchFailure> {
    let mut buckets = Vec::new();
    for location in locations {
        let failure = |error: ExecutorError| FetchFailure {
            executor_id: location.executor_id.clone(),
            through_agent: location.from_agent,
            error,
        };
        if location.executor_id == executor_id {
            for &map_partition in &location.map_partitions {
                let bucket = store
                    .bucket(shuffle, map_partition, partition)
                    .map_err(|_| {
                        failure(ExecutorError::LocalMapOutputLost {
                            shuffle,
                            map_partition,
                        })
                    })?;
                buckets.push((map_partition, bucket));
            }
            continue;
        }
        if location.from_agent {
            let mut agent = peers.agent(&location.address).await.map_err(failure)?;
            let mut received = Received::new(location.map_partitions.len(), spool);
            for (index, &map_partition) in location.map_partitions.iter().enumerate() {
                let copy = ServedCopy {
                    executor_id: &location.executor_id,
                    path: served_path(shuffle, map_partition),
                };
                copy.read_bucket(&mut agent, partition, index as u32, &mut received)
                    .await
                    .map_err(failure)?;
            }
            let complete = received.finish().map_err(failure)?;
            buckets.extend(location.map_partitions.iter().copied().zip(complete));
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
            .map_err(|source| failure(ExecutorError::PeerFailed { source }))?
            .into_inner();
        let mut received = Received::new(location.map_partitions.len(), spool);
        while let Some(piece) = pieces
            .message()
            .await
            .map_err(|source| failure(ExecutorError::PeerFailed { source }))?
        {
            received.add(piece.bucket, piece.data).map_err(failure)?;
        }
        let complete = received.finish().map_err(failure)?;
        buckets.extend(location.map_partitions.iter().copied().zip(complete));
    }
    // Map partition order makes a reducer's input, and so its output, the same on every run.
    buckets.sort_by_key(|(map_partition, _)| *map_partition);
    Ok(buckets.into_iter().map(|(_, bucket)| bucket).collect())
}

/// The copy of one map output that the agent of an executor that is gone serves.
struct ServedCopy<'a> {
    executor_id: &'a str,
    path: String,
}

impl ServedCopy<'_> {
    fn unusable(&self, reason: String) -> ExecutorError {
        ExecutorError::ServedCopyUnusable {
            executor_id: self.executor_id.to_string(),
            path: self.path.clone(),
            reason,
        }
    }

    /// Bytes `offset..offset + length` of the copy, handed to `each` as they arrive; how many
    /// came.
    async fn read(
        &self,
        agent: &mut SandboxFilesChannel,
        offset: u64,
        length: u64,
        mut each: impl FnMut(Vec<u8>) -> Result<(), ExecutorError>,
    ) -> Result<u64, ExecutorError> {
        let mut pieces = agent
            .read(ReadRequest {
                executor_id: self.executor_id.to_string(),
                path: self.path.clone(),
                offset,
                length,
            })
            .await
            .map_err(|source| ExecutorError::PeerFailed { source })?
            .into_inner();
        let mut read = 0u64;
        while let Some(piece) = pieces
            .message()
            .await
            .map_err(|source| ExecutorError::PeerFailed { source })?
        {
            read += piece.data.len() as u64;
            if read > length {
                return Err(self.unusable(format!("the agent sent more than {length} bytes")));
            }
            each(piece.data)?;
        }
        Ok(read)
    }

    /// Reads bucket `reduce` of the copy into `received` as bucket `index`.
    async fn read_bucket(
        &self,
        agent: &mut SandboxFilesChannel,
        reduce: u32,
        index: u32,
        received: &mut Received<'_>,
    ) -> Result<(), ExecutorError> {
        let mut table = Vec::new();
        self.read(agent, 0, table_prefix_len(reduce), |piece| {
            table.extend_from_slice(&piece);
            Ok(())
        })
        .await?;
        let range = bucket_in_table(&table, reduce).map_err(|e| self.unusable(e.to_string()))?;
        let expected = range.end - range.start;
        // An empty bucket arrives as no piece at all.
        received.add(index, Vec::new())?;
        let read = self
            .read(agent, range.start, expected, |piece| {
                received.add(index, piece)
            })
            .await?;
        if read != expected {
            return Err(self.unusable(format!(
                "bucket {reduce} should be {expected} bytes and {read} came"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Received, Spool, goes_to_disk};
    use crate::shuffle_store::Bucket;
    use proptest::prelude::*;

    /// A spool in a directory of the test's own, removed with the returned guard whether the
    /// test passes or fails (a property test makes one per case).
    fn spool(budget: u64) -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), budget);
        (dir, spool)
    }

    fn bytes_of(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket
            .read_pieces(3, |piece| {
                bytes.extend_from_slice(piece);
                true
            })
            .unwrap();
        bytes
    }

    #[test]
    fn a_bucket_goes_to_disk_once_memory_would_pass_the_budget() {
        assert!(!goes_to_disk(0, 10, 10));
        assert!(goes_to_disk(5, 6, 10));
        assert!(!goes_to_disk(0, u64::MAX, u64::MAX));
    }

    #[test]
    fn pieces_are_put_together_per_bucket_and_a_missing_bucket_is_a_failure() {
        let (_dir, mut spool) = spool(1 << 20);
        let mut received = Received::new(3, &mut spool);
        received.add(0, b"ab".to_vec()).unwrap();
        received.add(0, b"cd".to_vec()).unwrap();
        received.add(1, Vec::new()).unwrap();
        received.add(2, b"e".to_vec()).unwrap();
        let buckets: Vec<Vec<u8>> = received.finish().unwrap().iter().map(bytes_of).collect();
        assert_eq!(buckets, vec![b"abcd".to_vec(), Vec::new(), b"e".to_vec()]);

        let mut short = Received::new(2, &mut spool);
        short.add(0, b"x".to_vec()).unwrap();
        assert!(
            short
                .finish()
                .err()
                .unwrap()
                .to_string()
                .contains("1 of 2 buckets missing")
        );
        assert!(
            Received::new(1, &mut spool)
                .add(5, Vec::new())
                .unwrap_err()
                .to_string()
                .contains("bucket 5")
        );
        assert_eq!(spool.spilled, 0);
    }

    #[test]
    fn past_the_budget_buckets_are_kept_in_files_removed_when_dropped() {
        let (_dir, mut spool) = spool(6);
        let dir = spool.dir.clone();
        let mut received = Received::new(3, &mut spool);
        received.add(0, b"abcd".to_vec()).unwrap();
        received.add(1, b"ef".to_vec()).unwrap();
        // Bucket 1 held 2 bytes; 3 more would pass 6 in all: it goes to a file.
        received.add(1, b"ghi".to_vec()).unwrap();
        received.add(2, b"jklmnop".to_vec()).unwrap();
        let buckets = received.finish().unwrap();
        assert!(matches!(buckets[0], Bucket::Owned(_)));
        assert!(matches!(buckets[1], Bucket::File(..)));
        assert!(matches!(buckets[2], Bucket::File(..)));
        let read: Vec<Vec<u8>> = buckets.iter().map(bytes_of).collect();
        assert_eq!(
            read,
            vec![b"abcd".to_vec(), b"efghi".to_vec(), b"jklmnop".to_vec()]
        );
        assert_eq!(spool.spilled, 12);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        drop(buckets);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    proptest! {
        /// A peer may send pieces of any bucket, in any order: what is kept is what came, per
        /// bucket asked for, and nothing else, whatever the budget.
        #[test]
        fn any_pieces_are_kept_or_refused_and_never_panic(
            asked in 0usize..6,
            budget in 0u64..64,
            pieces in proptest::collection::vec((0u32..8, proptest::collection::vec(any::<u8>(), 0..16)), 0..24),
        ) {
            let (_dir, mut spool) = spool(budget);
            let mut received = Received::new(asked, &mut spool);
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
                let read: Vec<Vec<u8>> = buckets.iter().map(bytes_of).collect();
                prop_assert_eq!(read, expected);
            }
        }
    }
}
