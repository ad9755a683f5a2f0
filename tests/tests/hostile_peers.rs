//! A session's own ports under attack: while `tessera run` holds a cached RDD, a stranger on the
//! same host calls its driver, its executors and the agents' service of its sandbox files with
//! no certificate, with another CA's, and with garbage bytes. Every call is refused with a reason, and the session carries on: its
//! next cell reads the cache and gives the right answer.
//!
//! The stranger cannot know the session's private CA, so its TLS accepts any server; what is
//! tested is what the servers do.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tessera_credentials::{Authority, Credential, Principal, describe_status};
use tessera_e2e::refusals::assert_refused;
use tessera_e2e::{Scratch, bin};
use tessera_wire::driver::RegisterExecutorRequest;
use tessera_wire::driver::driver_client::DriverClient;
use tessera_wire::executor::executor_client::ExecutorClient;
use tessera_wire::executor::{AdoptBlocksRequest, BlockId, FetchShuffleRequest, TaskBatch};
use tessera_wire::sandbox_files::ReadRequest;
use tessera_wire::sandbox_files::sandbox_files_client::SandboxFilesClient;
use tokio::io::AsyncWriteExt;
use tonic::transport::{Channel, Endpoint, Uri};

/// Trusts every server: the stranger's view.
#[derive(Debug)]
struct TrustAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for TrustAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A gRPC channel to `address` over TLS that trusts any server and presents `identity`, if any.
async fn stranger_channel(address: &str, identity: Option<&Credential>) -> Channel {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAnything(provider)));
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(credential) => {
            let bundle = credential.to_bundle();
            // The bundle is the CA's certificate, the holder's, then the key.
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(bundle.as_bytes())
                    .skip(1)
                    .collect::<Result<_, _>>()
                    .unwrap();
            let key = PrivateKeyDer::from_pem_slice(bundle.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let target = address.to_string();
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let (connector, target) = (connector.clone(), target.clone());
            async move {
                let tcp = tokio::net::TcpStream::connect(&target).await?;
                let name = ServerName::try_from("stranger.invalid").unwrap();
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .expect("the TLS handshake itself is not refused: the servers defer to each call")
}

/// What a call got, as a person reads it.
fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), String> {
    result.map(|_| ()).map_err(|s| describe_status(&s))
}

/// The TCP ports process `pid` listens on.
fn listening_ports(pid: u32) -> Vec<u16> {
    let out = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss runs (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

const SCRIPT: &str = r#"
let cached = sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).cache();
cached.count()
// %%
:executors
// %%
println!("ready for visitors");
let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
while !std::path::Path::new("visited").exists() && std::time::Instant::now() < deadline {
    std::thread::sleep(std::time::Duration::from_millis(50));
}
// %%
cached.map(|x: u64| x * 2).reduce(|a: u64, b: u64| a + b)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_calling_the_driver_and_executors_are_refused_and_the_session_carries_on() {
    let dir = Scratch::new("hostile-peers");
    dir.write("script.rs", SCRIPT);
    let metrics = dir.0.join("tasks.jsonl");
    let mut session = Command::new(bin("tessera"))
        .current_dir(&dir.0)
        .args(["--master", "local-cluster[2,1,512]", "--task-metrics"])
        .arg(&metrics)
        .args(["run", "script.rs"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.0.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(session.stdout.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !seen.contains("ready for visitors") {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = session.kill();
            panic!(
                "the session ended early:\n{seen}\n{}",
                std::fs::read_to_string(dir.0.join("stderr")).unwrap_or_default()
            );
        }
        seen += &line;
    }
    // The executors' ports from `:executors`, the driver's from the session's own sockets.
    let executors: Vec<String> = seen
        .split_whitespace()
        .filter(|w| w.starts_with("127.0.0.1:"))
        .map(String::from)
        .collect();
    assert_eq!(executors.len(), 2, "{seen}");
    let driver_ports = listening_ports(session.id());
    assert_eq!(
        driver_ports.len(),
        1,
        "the driver listens on one port: {driver_ports:?}"
    );
    let driver = format!("127.0.0.1:{}", driver_ports[0]);
    // Where the agents serve the session's sandbox files, as they told its executors.
    let mut sandbox_files: Vec<String> = tessera_e2e::read_task_metrics(&metrics)
        .iter()
        .map(|t| {
            let environ = std::fs::read(format!("/proc/{}/environ", t.pid)).unwrap();
            String::from_utf8_lossy(&environ)
                .split('\0')
                .find_map(|v| v.strip_prefix("TESSERA_SANDBOX_FILES=").map(String::from))
                .expect("the agent serves the session's sandbox files")
        })
        .collect();
    sandbox_files.sort();
    sandbox_files.dedup();
    assert_eq!(sandbox_files.len(), 2, "one per agent: {sandbox_files:?}");

    let foreign = Authority::generate("not this session")
        .unwrap()
        .issue(&Principal::Driver, Duration::from_secs(600))
        .unwrap();
    for (identity, reason) in [
        (None, "client certificate"),
        (Some(&foreign), "not issued by"),
    ] {
        for executor in &executors {
            let mut client = ExecutorClient::new(stranger_channel(executor, identity).await);
            let task = client
                .run_tasks(tokio_stream::iter([TaskBatch {
                    first: 0,
                    tasks: vec![b"rm -rf /".to_vec()],
                }]))
                .await;
            assert_refused(outcome(task), &[reason]);
            let fetch = client
                .fetch_shuffle(FetchShuffleRequest {
                    shuffle: 1,
                    reduce_partition: 0,
                    map_partitions: vec![0],
                })
                .await;
            assert_refused(outcome(fetch), &[reason]);
            // Moving another executor's files in host memory is the driver's to ask.
            let adopt = client
                .adopt_blocks(AdoptBlocksRequest {
                    from: "/dev/shm".into(),
                    blocks: vec![BlockId {
                        rdd: 1,
                        partition: 0,
                    }],
                })
                .await;
            assert_refused(outcome(adopt), &[reason]);
        }
        for agent in &sandbox_files {
            let mut client = SandboxFilesClient::new(stranger_channel(agent, identity).await);
            let read = client
                .read(ReadRequest {
                    executor_id: "0".into(),
                    path: "stdout".into(),
                    offset: 0,
                    length: 1 << 20,
                })
                .await;
            assert_refused(outcome(read), &[reason]);
        }
        let mut client = DriverClient::new(stranger_channel(&driver, identity).await);
        let register = client
            .register_executor(RegisterExecutorRequest {
                executor_id: "rogue".into(),
                address: "127.0.0.1:1".into(),
                cores: 64,
                memory_bytes: 1 << 40,
                pid: 1,
                host: "rogue".into(),
                sandbox_files: String::new(),
                host_memory: String::new(),
            })
            .await;
        assert_refused(outcome(register), &[reason]);
    }
    // Garbage and a connection that never says anything, on every port.
    let mut idle = Vec::new();
    for address in executors.iter().chain(&sandbox_files).chain([&driver]) {
        let mut raw = tokio::net::TcpStream::connect(address).await.unwrap();
        raw.write_all(b"\x16\x03\x01\xff\xffgarbage\r\n\r\n")
            .await
            .unwrap();
        idle.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }

    // The session carries on: the last cell reads the cache on the same two executors.
    std::fs::File::create(dir.0.join("visited"))
        .unwrap()
        .write_all(b"")
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = session.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.0.join("stderr")).unwrap_or_default();
    assert!(status.success(), "{seen}{rest}\n{stderr}");
    let expected: u64 = (1..=1000u64).map(|x| x * 2).sum();
    assert_eq!(
        rest.trim().lines().last(),
        Some(expected.to_string().as_str()),
        "{rest}"
    );
    let tasks = tessera_e2e::read_task_metrics(&metrics);
    let last: Vec<_> = tasks.iter().filter(|t| t.job == 1).collect();
    assert_eq!(last.len(), 4);
    assert!(
        last.iter().all(|t| t.origin.starts_with("cached:")),
        "the cache survived: {last:?}"
    );
    assert!(!stderr.contains("executor lost"), "{stderr}");
}
