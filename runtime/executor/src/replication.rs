//! Copies of cached partitions for the replicated storage levels (`MEMORY_ONLY_2` and the
//! others). As Spark's block manager replicates within a `put`, a task that cached a block at
//! such a level sends it to the executors the driver chose before the task's outcome goes back,
//! so the driver learns of every copy with the task's metrics; a copy that cannot be made is
//! logged and the partition simply has fewer copies. An executor that receives a copy loads the
//! code that decodes its records (a cell library, fetched from the driver like a task's) and
//! keeps it at the same level. Either side then has mimalloc hand back the copy's buffers at
//! once ([`crate::allocator::release_freed_memory`]). A partition kept on disk is copied from
//! its block file into one on the other side, a piece at a time: it may be larger than
//! either executor's memory.

use crate::artifacts::Artifacts;
use crate::blocks::{Block, BlockManager};
use crate::error::ExecutorError;
use crate::open_chain::table;
use crate::shuffle_fetch::Peers;
use std::sync::Arc;
use tessera_plan::abi::{BatchVTable, OperatorVTable, SourceVTable};
use tessera_plan::builtin::is_builtin;
use tessera_plan::replica::decode_replica_header;
use tessera_plan::{BatchCode, RddId, ReplicaHeader, ReplicaPeer, StorageLevel, StoredBlock};
use tessera_wire::SHUFFLE_CHUNK_BYTES;
use tessera_wire::executor::ReplicaChunk;

/// A block to copy: its header and its records encoded (shared by the streams to each peer).
pub struct Outgoing {
    header: ReplicaHeader,
    records: Encoded,
}

/// A block's records as a copy carries them.
enum Encoded {
    /// Encoded in memory.
    Bytes(Arc<Vec<u8>>),
    /// In the block's file (`DISK_ONLY_2`), read a piece at a time as each copy is sent: a
    /// partition on disk may be larger than the executor's memory. The block is held so that
    /// its file stays until then.
    File(Arc<Block>),
}

/// The blocks of `stored` kept at a replicated level, encoded for copying; run on the task's
/// thread (encoding runs cell code).
pub fn outgoing(stored: &[StoredBlock], blocks: &BlockManager) -> Vec<Option<Outgoing>> {
    stored
        .iter()
        .map(|kept| {
            if kept.level.replication() < 2 {
                return None;
            }
            // Gone already if a later block of the same task evicted it.
            encoded(blocks, kept.rdd, kept.partition)?
                .map_err(|e| {
                    tracing::warn!(
                        rdd = kept.rdd,
                        partition = kept.partition,
                        "cannot copy a cached partition: {e}"
                    )
                })
                .ok()
        })
        .collect()
}

/// Partition `partition` of `rdd` encoded for copying, if this executor keeps it.
fn encoded(
    blocks: &BlockManager,
    rdd: RddId,
    partition: u32,
) -> Option<Result<Outgoing, ExecutorError>> {
    let (block, level) = blocks.get_with_level(rdd, partition)?;
    let header = ReplicaHeader {
        rdd,
        partition,
        level,
        code: block.code().clone(),
    };
    if block.file().is_some() {
        let records = Encoded::File(block);
        return Some(Ok(Outgoing { header, records }));
    }
    Some(block.encoded().map(|bytes| Outgoing {
        header,
        records: Encoded::Bytes(Arc::new(bytes)),
    }))
}

/// Sends this executor's copy of partition `partition` of `rdd` to `peer`, as the driver asks
/// when the partition lost a copy with an executor.
pub async fn copy(
    rdd: RddId,
    partition: u32,
    peer: &ReplicaPeer,
    blocks: &Arc<BlockManager>,
    clients: &Peers,
) -> Result<(), ExecutorError> {
    let held = blocks.clone();
    let block = crate::allocator::spawn_blocking(move || encoded(&held, rdd, partition))
        .await
        .map_err(|e| ExecutorError::CacheEncode {
            message: e.to_string(),
        })?
        .ok_or(ExecutorError::NotCached { rdd, partition })??;
    let sent = send_one(&block, peer, clients).await;
    drop(block);
    crate::allocator::release_freed_memory(true);
    sent
}

/// Sends each block of `outgoing` to as many of `peers` as its level keeps copies beyond this
/// one, noting in `stored` (the same order) which executors now hold one.
pub async fn send(
    outgoing: Vec<Option<Outgoing>>,
    stored: &mut [StoredBlock],
    peers: &[ReplicaPeer],
    clients: &Peers,
) {
    let copying = outgoing.iter().any(Option::is_some);
    for (block, kept) in outgoing.into_iter().zip(stored) {
        let Some(block) = block else { continue };
        for peer in peers.iter().take(kept.level.replication() - 1) {
            match send_one(&block, peer, clients).await {
                Ok(()) => kept.replicas.push(peer.executor_id.clone()),
                Err(e) => tracing::warn!(
                    rdd = kept.rdd,
                    partition = kept.partition,
                    peer = %peer.executor_id,
                    "cannot copy a cached partition to another executor: {e}"
                ),
            }
        }
    }
    if copying {
        crate::allocator::release_freed_memory(true);
    }
}

async fn send_one(
    block: &Outgoing,
    peer: &ReplicaPeer,
    clients: &Peers,
) -> Result<(), ExecutorError> {
    let header = bincode::serialize(&block.header).expect("plain data encodes");
    let mut client = clients.client(&peer.address).await?;
    let sent = match &block.records {
        Encoded::Bytes(bytes) => {
            let bytes = bytes.clone();
            // Each piece is copied out as the stream is read, not all at once.
            let pieces = tessera_wire::chunk_ranges(bytes.len(), SHUFFLE_CHUNK_BYTES)
                .enumerate()
                .map(move |(i, range)| ReplicaChunk {
                    header: if i == 0 { header.clone() } else { Vec::new() },
                    data: bytes[range].to_vec(),
                });
            client.put_replica(tokio_stream::iter(pieces)).await
        }
        Encoded::File(held) => {
            let path = held.file().expect("a block kept on disk");
            let file =
                tokio::fs::File::open(path)
                    .await
                    .map_err(|source| ExecutorError::CacheRead {
                        path: path.to_path_buf(),
                        source,
                    })?;
            client.put_replica(file_pieces(file, header)).await
        }
    };
    sent.map_err(|source| ExecutorError::PeerFailed { source })?;
    Ok(())
}

/// The pieces of a copy of a block file, each read as the stream asks for it; the first
/// carries `header`, and goes even for an empty file. A read that fails ends the stream, and
/// the receiver refuses the copy it cut short.
fn file_pieces(
    file: tokio::fs::File,
    header: Vec<u8>,
) -> impl tokio_stream::Stream<Item = ReplicaChunk> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold((file, Some(header)), |(mut file, header)| async move {
        let mut data = vec![0; SHUFFLE_CHUNK_BYTES];
        let mut filled = 0;
        while filled < data.len() {
            match file.read(&mut data[filled..]).await {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(e) => {
                    tracing::warn!("cannot read a cached partition's file to copy it: {e}");
                    return None;
                }
            }
        }
        if filled == 0 && header.is_none() {
            return None;
        }
        data.truncate(filled);
        let piece = ReplicaChunk {
            header: header.unwrap_or_default(),
            data,
        };
        Some((piece, (file, None)))
    })
}

/// The next piece of a copy being received, if any.
async fn next_piece(
    pieces: &mut (impl tokio_stream::Stream<Item = Result<ReplicaChunk, tonic::Status>> + Unpin),
) -> Result<Option<ReplicaChunk>, ExecutorError> {
    use tokio_stream::StreamExt;
    pieces
        .next()
        .await
        .transpose()
        .map_err(|source| ExecutorError::PeerFailed { source })
}

/// Receives a copy from another executor and keeps it: loads the code that decodes it, then
/// decodes it into the block manager. A copy larger than this executor may cache is refused
/// before it is all read.
pub async fn receive(
    mut pieces: impl tokio_stream::Stream<Item = Result<ReplicaChunk, tonic::Status>> + Unpin,
    artifacts: &Artifacts,
    blocks: &Arc<BlockManager>,
) -> Result<(), ExecutorError> {
    let first = next_piece(&mut pieces)
        .await?
        .ok_or(ExecutorError::ReplicaWithoutHeader)?;
    let header = decode_replica_header(&first.header)?;
    if header.level.one_copy() == StorageLevel::DiskOnly {
        return receive_to_disk(first, pieces, header, artifacts, blocks).await;
    }
    let (rdd, partition, limit) = (header.rdd, header.partition, blocks.limit());
    let too_large = || ExecutorError::ReplicaTooLarge {
        rdd,
        partition,
        limit,
    };
    let mut bytes = Vec::new();
    let mut piece = Some(first);
    while let Some(ReplicaChunk { data, .. }) = piece {
        if (bytes.len() + data.len()) as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&data);
        piece = next_piece(&mut pieces).await?;
    }
    let vtable = load_batch_table(artifacts, &header.code).await?;
    let blocks = blocks.clone();
    let kept = crate::allocator::spawn_blocking(move || {
        blocks.put_encoded(rdd, partition, header.level, &bytes, vtable, header.code)
    })
    .await
    .map_err(|e| ExecutorError::CacheDecode {
        message: e.to_string(),
    })??;
    crate::allocator::release_freed_memory(true);
    kept.map(|_| ()).ok_or_else(too_large)
}

/// Keeps a copy of a partition kept on disk (`DISK_ONLY_2`): its pieces go to a block file as
/// they come, however large it is, and the file is checked once whole.
async fn receive_to_disk(
    first: ReplicaChunk,
    mut pieces: impl tokio_stream::Stream<Item = Result<ReplicaChunk, tonic::Status>> + Unpin,
    header: ReplicaHeader,
    artifacts: &Artifacts,
    blocks: &Arc<BlockManager>,
) -> Result<(), ExecutorError> {
    let vtable = load_batch_table(artifacts, &header.code).await?;
    let mut file = blocks.block_file_writer(header.rdd, header.partition, vtable)?;
    let mut piece = Some(first);
    while let Some(ReplicaChunk { data, .. }) = piece {
        file.write_encoded(&data)?;
        piece = next_piece(&mut pieces).await?;
    }
    let blocks = blocks.clone();
    let key = (header.rdd, header.partition, header.level);
    crate::allocator::spawn_blocking(move || blocks.put_block_file(key, file, vtable, header.code))
        .await
        .map_err(|e| ExecutorError::CacheDecode {
            message: e.to_string(),
        })??;
    Ok(())
}

/// The table of the batches `code` puts out, its library loaded first if it is not yet.
pub async fn load_batch_table(
    artifacts: &Artifacts,
    code: &BatchCode,
) -> Result<BatchVTable, ExecutorError> {
    if !is_builtin(code.code()) {
        artifacts.ensure_loaded(&code.code().library, false).await?;
    }
    batch_table(artifacts, code)
}

/// The table of the batches `code` puts out.
fn batch_table(artifacts: &Artifacts, code: &BatchCode) -> Result<BatchVTable, ExecutorError> {
    Ok(match code {
        BatchCode::Operator(entry) => {
            table::<OperatorVTable>(artifacts, entry, |t| t.abi_version)?.output
        }
        BatchCode::Source(entry) => {
            table::<SourceVTable>(artifacts, entry, |t| t.abi_version)?.output
        }
    })
}
