//! The gRPC protocol between the Tessera driver and its executors, and the shared-secret
//! check both sides apply: an executor accepts native code from its driver, so it must know
//! the driver is its own.

pub mod driver {
    tonic::include_proto!("tessera.driver");
}

pub mod executor {
    tonic::include_proto!("tessera.executor");
}

/// The metadata key that carries the session's secret on every call.
pub const SECRET_HEADER: &str = "x-tessera-secret";

/// The environment variable through which a launcher hands an executor the session's secret.
pub const SECRET_ENV: &str = "TESSERA_SECRET";

/// Largest message either side accepts (task plans carry parallelized data; results carry
/// collected partitions).
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Adds the secret to outgoing requests.
#[derive(Clone)]
pub struct AttachSecret(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for AttachSecret {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(SECRET_HEADER, self.0.clone());
        Ok(request)
    }
}

/// Rejects incoming requests without the secret.
#[derive(Clone)]
pub struct RequireSecret(pub String);

impl tonic::service::Interceptor for RequireSecret {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match request.metadata().get(SECRET_HEADER) {
            Some(value) if value.as_bytes() == self.0.as_bytes() => Ok(request),
            _ => Err(tonic::Status::unauthenticated(
                "missing or wrong session secret",
            )),
        }
    }
}

impl AttachSecret {
    pub fn new(secret: &str) -> AttachSecret {
        AttachSecret(secret.parse().expect("session secrets are ASCII"))
    }
}

/// A client of an executor's service that presents the session's secret.
pub type ExecutorChannel = executor::executor_client::ExecutorClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AttachSecret>,
>;

/// Connects to the executor service at `address` (`host:port`): the driver does, to run tasks,
/// and so do executors, to fetch each other's shuffle output.
pub async fn connect_executor(
    address: &str,
    secret: &str,
) -> Result<ExecutorChannel, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    Ok(executor::executor_client::ExecutorClient::with_interceptor(
        channel,
        AttachSecret::new(secret),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// The connections a service accepts on `listener`, with Nagle's algorithm off: requests and
/// replies are small and latency-bound, and Nagle's wait for the peer's delayed ACK would add
/// some 40 ms to a task's round trip.
/// This host's name, as executors report it and the driver compares it (for node locality).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
