//! The sandbox files service (`tessera.files.SandboxFiles`): for each framework that asks at
//! launch, with a credential of its own, one listener on the agent's host that serves the
//! framework's own processes (holders of certificates of that credential's CA) reads and
//! removals of the files its executors left in their sandboxes here — also once an executor
//! has ended, which is the point: Spark keeps map outputs past their executor that way (its
//! external shuffle service). Mesos' agent serves sandboxes the same way at `/files/read`.
//! The agent does not know what the files are; paths may not leave an executor's sandbox.
//!
//! A listener lives until its framework is shut down here, or the agent stops; an agent that
//! restarts does not serve its frameworks' files again until a framework launches here anew
//! (the credential is not checkpointed), and their readers see a refused connection.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use tessera_cluster_proto::files as pb;
use tessera_cluster_proto::files::sandbox_files_server::{SandboxFiles, SandboxFilesServer};
use tessera_credentials::{Credential, Principal, caller};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tonic::{Request, Response, Status};

/// Largest piece of a file in one message of a `Read` stream.
const CHUNK_BYTES: usize = 1 << 20;

/// Why a framework's files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(
        "the launch's files credential is unusable ({0}); the framework must send its CA \
         certificate, a certificate and its key, PEM, or none"
    )]
    Credential(#[from] tessera_credentials::CredentialError),
    #[error("cannot listen for sandbox file reads on {host}: {source}")]
    Listen {
        host: String,
        source: std::io::Error,
    },
}

/// The listeners of the frameworks whose sandbox files this agent serves.
pub struct SandboxFileServers {
    work_dir: PathBuf,
    host: String,
    servers: Mutex<HashMap<String, Served>>,
}

struct Served {
    /// The credential it serves with: a framework that comes back with another one (a new
    /// driver) gets a new listener.
    bundle: String,
    address: String,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxFileServers {
    pub fn new(work_dir: PathBuf, host: String) -> SandboxFileServers {
        SandboxFileServers {
            work_dir,
            host,
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// The `host:port` where `framework_id`'s sandbox files are served with `bundle`,
    /// listening from now if they were not yet.
    pub fn serve(&self, framework_id: &str, bundle: &str) -> Result<String, FilesError> {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(served) = servers.get(framework_id)
            && served.bundle == bundle
            && !served.task.is_finished()
        {
            return Ok(served.address.clone());
        }
        let tls = Credential::from_bundle(bundle)?.server()?;
        let listen = |source| FilesError::Listen {
            host: self.host.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind((self.host.as_str(), 0)).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(listen)?;
        let address =
            tessera_credentials::advertised_address(listener.local_addr().map_err(listen)?);
        let service = FilesService {
            sandboxes: self.work_dir.join("frameworks").join(framework_id),
        };
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(tonic::service::interceptor::InterceptedService::new(
                    SandboxFilesServer::new(service),
                    tls.authenticator(),
                ))
                .serve_with_incoming(tls.incoming(listener))
                .await;
            if let Err(e) = served {
                tracing::warn!("the sandbox files service stopped: {e}");
            }
        });
        tracing::info!(framework_id, %address, "serving the framework's sandbox files");
        if let Some(old) = servers.insert(
            framework_id.to_string(),
            Served {
                bundle: bundle.to_string(),
                address: address.clone(),
                task,
            },
        ) {
            old.task.abort();
        }
        Ok(address)
    }

    /// Stops serving `framework_id`'s files: it was shut down.
    pub fn stop(&self, framework_id: &str) {
        let removed = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(framework_id);
        if let Some(served) = removed {
            served.task.abort();
        }
    }
}

/// Why a requested path is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
enum PathRefused {
    #[error("executor id {0:?} is not one: ids have no `/` and are not `.` or `..`")]
    ExecutorId(String),
    #[error(
        "path {0:?} leaves the executor's sandbox: give a relative path without `..`, `.` or \
         a root"
    )]
    Path(String),
}

/// Where `path` of executor `executor_id`'s sandbox is, under `sandboxes` (a framework's
/// directory of them); refused if it would be anywhere else.
fn sandbox_path(sandboxes: &Path, executor_id: &str, path: &str) -> Result<PathBuf, PathRefused> {
    if executor_id.is_empty()
        || executor_id == "."
        || executor_id == ".."
        || executor_id.contains(['/', '\0'])
    {
        return Err(PathRefused::ExecutorId(executor_id.to_string()));
    }
    let relative = Path::new(path);
    let inside = !path.is_empty()
        && !path.contains('\0')
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        return Err(PathRefused::Path(path.to_string()));
    }
    Ok(sandboxes.join("executors").join(executor_id).join(relative))
}

/// Refuses a caller that is not one of the framework's processes (its driver or executors).
fn require_framework_process<T>(request: &Request<T>, call: &str) -> Result<(), Status> {
    match caller(request)? {
        Principal::Driver | Principal::Executor => Ok(()),
        other => Err(Status::permission_denied(format!(
            "{call} is for the processes of the framework whose files these are, and the \
             caller's certificate names {other}"
        ))),
    }
}

struct FilesService {
    /// `WORK_DIR/frameworks/FRAMEWORK`.
    sandboxes: PathBuf,
}

impl FilesService {
    fn path(&self, executor_id: &str, path: &str) -> Result<PathBuf, Status> {
        sandbox_path(&self.sandboxes, executor_id, path)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }
}

#[tonic::async_trait]
impl SandboxFiles for FilesService {
    type ReadStream = tokio_stream::wrappers::ReceiverStream<Result<pb::FileChunk, Status>>;

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        require_framework_process(&request, "Read")?;
        let r = request.into_inner();
        let path = self.path(&r.executor_id, &r.path)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            let status = if e.kind() == std::io::ErrorKind::NotFound {
                Status::not_found
            } else {
                Status::internal
            };
            status(format!(
                "cannot open {} of executor {}: {e}",
                r.path, r.executor_id
            ))
        })?;
        file.seek(std::io::SeekFrom::Start(r.offset))
            .await
            .map_err(|e| Status::out_of_range(format!("cannot seek to {}: {e}", r.offset)))?;
        // One piece waiting besides the one being sent: the reader's pace bounds what is held.
        let (pieces, stream) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let mut left = r.length;
            let mut buffer = vec![0u8; CHUNK_BYTES.min(left as usize)];
            while left > 0 {
                let want = buffer.len().min(left as usize);
                let n = match file.read(&mut buffer[..want]).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let failed = Status::internal(format!("cannot read {}: {e}", r.path));
                        let _ = pieces.send(Err(failed)).await;
                        return;
                    }
                };
                left -= n as u64;
                let chunk = pb::FileChunk {
                    data: buffer[..n].to_vec(),
                };
                if pieces.send(Ok(chunk)).await.is_err() {
                    return; // the reader went away
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            stream,
        )))
    }

    async fn remove(
        &self,
        request: Request<pb::RemoveRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        require_framework_process(&request, "Remove")?;
        let r = request.into_inner();
        let mut removed = 0;
        for path in &r.paths {
            match tokio::fs::remove_file(self.path(&r.executor_id, path)?).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Status::internal(format!(
                        "cannot remove {path} of executor {}: {e}",
                        r.executor_id
                    )));
                }
            }
        }
        Ok(Response::new(pb::RemoveResponse { removed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_executors_sandbox() {
        let root = Path::new("/w/frameworks/f");
        assert_eq!(
            sandbox_path(root, "e1", "shuffle/shuffle-3-map-0.data"),
            Ok(PathBuf::from(
                "/w/frameworks/f/executors/e1/shuffle/shuffle-3-map-0.data"
            ))
        );
        for path in [
            "",
            "/etc/passwd",
            "../e2/x",
            "shuffle/../../e2/x",
            "./x",
            "a\0b",
        ] {
            assert_eq!(
                sandbox_path(root, "e1", path),
                Err(PathRefused::Path(path.to_string())),
                "{path:?}"
            );
        }
        for id in ["", ".", "..", "a/b"] {
            assert!(matches!(
                sandbox_path(root, id, "x"),
                Err(PathRefused::ExecutorId(_))
            ));
        }
    }
}
