//! The gRPC protocol between the Tessera driver and its executors, over mutual TLS with the
//! session's own certificates: an executor accepts native code from its driver, so it must
//! know the driver is its own, and the driver must know its executors.

/// This host's name, as executors report it and the driver compares it (for node locality).
pub use tessera_credentials::hostname;
use tessera_credentials::{Credential, Principal};

pub mod driver {
    tonic::include_proto!("tessera.driver");
}

pub mod executor {
    tonic::include_proto!("tessera.executor");
}

/// The agents' sandbox files service, through which the session reads and removes the map
/// outputs of its executors that are gone.
pub use tessera_cluster_proto::files as sandbox_files;

/// Largest message either side accepts (task plans carry parallelized data; results carry
/// collected partitions).
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Largest piece of a shuffle bucket in one message of a `FetchShuffle` stream: a reducer
/// receives any amount of shuffle data, a few pieces in flight at a time. Each piece is held
/// several times over on its way (read, encoded, sent, received, decoded), on both executors,
/// for every stream at once: 1 MiB keeps that small beside a task's spill budget.
pub const SHUFFLE_CHUNK_BYTES: usize = 1 << 20;

/// The byte ranges `SHUFFLE_CHUNK_BYTES` (or `chunk`) at a time that carry a bucket of `len`
/// bytes: at least one, so that an empty bucket is sent too.
pub fn chunk_ranges(len: usize, chunk: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let chunk = chunk.max(1);
    let pieces = len.div_ceil(chunk).max(1);
    (0..pieces).map(move |i| i * chunk..((i + 1) * chunk).min(len))
}

/// A client of an executor's service.
pub type ExecutorChannel = executor::executor_client::ExecutorClient<tonic::transport::Channel>;

/// A client of the driver's service.
pub type DriverChannel = driver::driver_client::DriverClient<tonic::transport::Channel>;

/// A connection to `address` (`host:port`) over mutual TLS, presenting `credential` and
/// accepting only a server whose certificate names `peer`.
async fn channel(
    address: &str,
    credential: &Credential,
    peer: &Principal,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("https://{address}"))?
        .tls_config(credential.client_tls(peer))?
        .tcp_nodelay(true)
        .connect()
        .await
}

/// Connects to the executor service at `address` (`host:port`): the driver does, to run tasks,
/// and so do executors, to fetch each other's shuffle output. Both hold certificates of the
/// session's CA; the executor must present an executor's.
pub async fn connect_executor(
    address: &str,
    credential: &Credential,
) -> Result<ExecutorChannel, tonic::transport::Error> {
    let channel = channel(address, credential, &Principal::Executor).await?;
    Ok(executor::executor_client::ExecutorClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A client of the sandbox files service of an agent that ran one of the session's executors.
pub type SandboxFilesChannel =
    tessera_cluster_proto::files::sandbox_files_client::SandboxFilesClient<
        tonic::transport::Channel,
    >;

/// Connects to the sandbox files service at `address` of an agent that serves the session's
/// files: reducers read the map outputs of executors that are gone there, and the driver
/// removes them. The agent serves them with the session's executor credential.
pub async fn connect_sandbox_files(
    address: &str,
    credential: &Credential,
) -> Result<SandboxFilesChannel, tonic::transport::Error> {
    let channel = channel(address, credential, &Principal::Executor).await?;
    Ok(SandboxFilesChannel::new(channel))
}

/// Connects an executor to its driver at `address`, which must present the session driver's
/// certificate.
pub async fn connect_driver(
    address: &str,
    credential: &Credential,
) -> Result<DriverChannel, tonic::transport::Error> {
    let channel = channel(address, credential, &Principal::Driver).await?;
    Ok(driver::driver_client::DriverClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Refuses a call unless its caller's certificate names one of `allowed`.
pub fn require<T>(
    request: &tonic::Request<T>,
    call: &str,
    allowed: &[Principal],
) -> Result<(), tonic::Status> {
    let who = tessera_credentials::caller(request)?;
    if allowed.contains(&who) {
        Ok(())
    } else {
        Err(tonic::Status::permission_denied(format!(
            "{call} may not be called by {who}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_ranges;

    #[test]
    fn chunks_cover_a_bucket_in_order_and_an_empty_one_is_one_empty_chunk() {
        assert_eq!(chunk_ranges(0, 4).collect::<Vec<_>>(), vec![0..0]);
        assert_eq!(chunk_ranges(4, 4).collect::<Vec<_>>(), vec![0..4]);
        assert_eq!(
            chunk_ranges(9, 4).collect::<Vec<_>>(),
            vec![0..4, 4..8, 8..9]
        );
        let big = 3 * (1usize << 30) + 5;
        let ranges: Vec<_> = chunk_ranges(big, super::SHUFFLE_CHUNK_BYTES).collect();
        // Three whole gibibytes of chunks, and the 5 bytes left.
        assert_eq!(
            ranges.len(),
            3 * (1usize << 30) / super::SHUFFLE_CHUNK_BYTES + 1
        );
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(ranges.last().unwrap().end, big);
    }
}
