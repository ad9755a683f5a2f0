//! End-to-end tests of the master's HTTPS endpoints, as an operator meets them: a real
//! `tessera-master` (every `LocalCluster`'s serves HTTPS on a free port) and a real agent, a
//! framework that launched an executor; then `/state`, `/metrics` and `/health` read over TLS
//! that checks the master's certificate against the cluster's CA, with and without a client
//! certificate (`--authenticate-http-readonly`), and the page at `/` loaded in headless Chromium
//! (Debian's `chromium` package: these tests fail without it).
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tessera_credentials::{Authority, Credential, Principal};
use tessera_framework::{
    ExecutorLaunch, ExecutorState, FrameworkClient, FrameworkEvent, FrameworkInfo, LocalCluster,
    Resources,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::Receiver;

/// Every wait gives up after this long.
const WAIT: Duration = Duration::from_secs(10);
/// The framework's name and role, and its executor's id, as an operator looks for them.
const FRAMEWORK: &str = "http-e2e";
const ROLE: &str = "analytics";
const EXECUTOR: &str = "watched-executor";
/// Where Debian's chromium package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// A cluster with one agent (2 CPUs, 1 GiB) and a framework whose executor runs.
struct Scene {
    cluster: LocalCluster,
    /// Kept so that the framework stays subscribed.
    _framework: FrameworkClient,
    _events: Receiver<FrameworkEvent>,
    framework_id: String,
}

/// Reads events until `pick` returns something; panics after [`WAIT`].
async fn wait_for<T>(
    events: &mut Receiver<FrameworkEvent>,
    what: &str,
    mut pick: impl FnMut(FrameworkEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            Ok(None) => panic!("the event stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

/// Starts the cluster with `master_flags`, subscribes the framework and launches its executor
/// (1 CPU, 256 MiB), and returns once it runs.
async fn scene(master_flags: &[&str]) -> Scene {
    let cluster = LocalCluster::start_with(1, 2.0, 1024, &tessera_e2e::bin_dir(), master_flags)
        .await
        .expect("local cluster");
    let info = FrameworkInfo {
        name: FRAMEWORK.into(),
        user: "operator".into(),
        role: ROLE.into(),
        ..Default::default()
    };
    let (framework, mut events) = FrameworkClient::subscribe(&cluster.endpoint(), info)
        .await
        .expect("subscribe");
    let offer = wait_for(&mut events, "an offer", |e| match e {
        FrameworkEvent::Offers(mut offers) => offers.pop(),
        _ => None,
    })
    .await;
    let launch = ExecutorLaunch {
        executor_id: EXECUTOR.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "exec sleep 60".into()],
        env: Vec::new(),
        resources: Resources::new(1.0, 256),
        extras: Default::default(),
        files_credential: None,
    };
    framework
        .accept(&offer.id, vec![launch])
        .await
        .expect("accept");
    wait_for(&mut events, "the executor running", |e| match e {
        FrameworkEvent::ExecutorStatus { state, message, .. } => {
            assert!(!state.is_terminal(), "the executor ended: {message}");
            (state == ExecutorState::Running).then_some(())
        }
        _ => None,
    })
    .await;
    Scene {
        framework_id: framework.framework_id().to_string(),
        cluster,
        _framework: framework,
        _events: events,
    }
}

/// A response: its status code, its headers (lowercased) and its body.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// TLS to the master's HTTPS side that accepts only a certificate of `ca_pem` naming the master,
/// presenting `identity`'s certificate if given.
fn tls_config(ca_pem: &str, identity: Option<&Credential>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(ca.expect("the CA's PEM"))
            .expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(credential) => {
            // A bundle is the CA's certificate, the holder's, then the key.
            let bundle = credential.to_bundle();
            let cert = CertificateDer::pem_slice_iter(bundle.as_bytes())
                .nth(1)
                .expect("the holder's certificate")
                .expect("PEM");
            let key = PrivateKeyDer::from_pem_slice(bundle.as_bytes()).expect("the key");
            builder
                .with_client_auth_cert(vec![cert], key)
                .expect("a client identity")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// GETs `path` from the master's HTTPS side, checking its certificate against the cluster's CA.
async fn get(cluster: &LocalCluster, path: &str, identity: Option<&Credential>) -> Reply {
    let ca_pem = cluster.endpoint().credential.ca_pem().to_string();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&ca_pem, identity)));
    let tcp = tokio::net::TcpStream::connect(cluster.http_address())
        .await
        .expect("connect to the master's HTTPS port");
    let name = ServerName::try_from(Principal::Master.dns_name()).expect("a DNS name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("a TLS handshake with a server certified by the cluster's CA");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        cluster.http_address()
    );
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .expect("a whole response in time")
        .expect("read the response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head}"));
    Reply {
        status,
        headers: head.to_lowercase(),
        body: body.to_string(),
    }
}

/// The value of the unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_metrics_and_health_show_the_agent_framework_and_executor() {
    let scene = scene(&["--role-weight", "analytics=2"]).await;
    let cluster = &scene.cluster;

    let health = get(cluster, "/health", None).await;
    assert_eq!((health.status, health.body.trim()), (200, "ok"));

    let reply = get(cluster, "/state", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.headers.contains("content-type: application/json"));
    let state: Value = serde_json::from_str(&reply.body).expect("JSON");
    let agents = state["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 1, "{state:#}");
    let agent = &agents[0];
    assert_eq!(agent["resources"]["cpus"], 2.0);
    assert_eq!(agent["resources"]["mem_mb"], 1024);
    assert_eq!(agent["allocated"]["cpus"], 1.0);
    assert_eq!(agent["allocated"]["mem_mb"], 256);
    assert_eq!(agent["principal"], "agent-0");
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], scene.framework_id.as_str());
    assert_eq!(framework["name"], FRAMEWORK);
    assert_eq!(framework["role"], ROLE);
    assert_eq!(framework["connected"], true);
    assert_eq!(framework["allocated"]["mem_mb"], 256);
    let executor = &state["executors"][0];
    assert_eq!(executor["executor_id"], EXECUTOR);
    assert_eq!(executor["state"], "RUNNING");
    assert_eq!(executor["agent_id"], agent["id"]);
    assert_eq!(executor["framework_id"], scene.framework_id.as_str());
    let role = state["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == ROLE)
        .unwrap_or_else(|| panic!("no role {ROLE} in {state:#}"));
    assert_eq!(role["weight"], 2.0);
    assert_eq!(role["frameworks"][0], scene.framework_id.as_str());
    assert_eq!(state["allocator"], "drf");

    let metrics = get(cluster, "/metrics", None).await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics
            .headers
            .contains("content-type: text/plain; version=0.0.4")
    );
    let text = &metrics.body;
    assert!(sample(text, "tessera_master_offers_made_total") >= 1.0);
    assert!(sample(text, "tessera_master_executors_launched_total") >= 1.0);
    assert!(sample(text, "tessera_master_allocation_run_seconds_count") >= 1.0);
    assert_eq!(sample(text, "tessera_master_agents"), 1.0);
    assert_eq!(sample(text, "tessera_master_executors_active"), 1.0);
    assert!(text.contains("# TYPE tessera_master_offers_declined_total counter"));
    assert!(text.contains("# TYPE tessera_master_allocation_run_seconds histogram"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authenticate_http_readonly_only_the_clusters_certificates_may_read() {
    let scene = scene(&["--authenticate-http-readonly"]).await;
    let cluster = &scene.cluster;
    let framework = cluster.endpoint().credential;
    let ca = Authority::load(&cluster.credentials_dir().join("ca")).expect("the cluster's CA");
    let operator = ca
        .issue(&Principal::Framework("operator".into()), WAIT * 60)
        .expect("a certificate for an operator");
    // Another cluster's certificate, presented by a client that trusts this cluster's CA.
    let theirs = Authority::generate("another cluster")
        .unwrap()
        .issue(&Principal::Framework("operator".into()), WAIT * 60)
        .unwrap();

    for path in ["/state", "/metrics", "/"] {
        let anonymous = get(cluster, path, None).await;
        assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.body);
        assert!(
            anonymous.body.contains("client certificate"),
            "{path}: {}",
            anonymous.body
        );
        let stranger = get(cluster, path, Some(&theirs)).await;
        assert_eq!(stranger.status, 401, "{path}: {}", stranger.body);
        assert!(
            stranger.body.contains("not issued by this cluster"),
            "{path}: {}",
            stranger.body
        );
        for identity in [&framework, &operator] {
            let reply = get(cluster, path, Some(identity)).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        }
    }
    let state: Value =
        serde_json::from_str(&get(cluster, "/state", Some(&operator)).await.body).unwrap();
    assert_eq!(state["executors"][0]["executor_id"], EXECUTOR);
    // Health probes need no credentials.
    assert_eq!(get(cluster, "/health", None).await.status, 200);
}

/// The page at `/` as headless Chromium shows it once its script ran: the document after
/// `/state` was fetched and rendered.
fn page_in_chromium(url: &str) -> String {
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium package (`apt-get install chromium`)"
    );
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // The master's certificate names `master.tessera`, from a CA the browser does not
            // know; what the page shows is under test here, not the certificate.
            "--ignore-certificate-errors",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a UTF-8 document")
}

/// The text of the cells of the row of table `id` whose first cell is `first`.
fn row(document: &str, id: &str, first: &str) -> Vec<String> {
    let start = document
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no table {id} in\n{document}"));
    let table = &document[start..start + document[start..].find("</table>").expect("its end")];
    table
        .split("<tr>")
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = &cell[cell.find('>').expect("a cell") + 1..];
                    text[..text.find("</td>").expect("its end")].to_string()
                })
                .collect::<Vec<String>>()
        })
        .find(|cells| cells.first().is_some_and(|cell| cell == first))
        .unwrap_or_else(|| panic!("no row {first} in table {id}:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_agents_frameworks_and_executors_in_chromium() {
    let scene = scene(&[]).await;
    let cluster = &scene.cluster;
    let state: Value = serde_json::from_str(&get(cluster, "/state", None).await.body).unwrap();
    let agent_id = state["agents"][0]["id"].as_str().unwrap().to_string();
    let hostname = state["agents"][0]["hostname"].as_str().unwrap().to_string();
    let url = format!("https://{}/", cluster.http_address());
    let document = tokio::task::spawn_blocking(move || page_in_chromium(&url))
        .await
        .unwrap();

    assert!(
        !document.contains("Cannot read"),
        "the page could not read /state:\n{document}"
    );
    let agent = row(&document, "agents", &agent_id);
    assert_eq!(agent[1], hostname);
    // Its resources with the disk and ports it offers besides (Mesos' default ports).
    assert!(
        agent[4].starts_with("2 cpus, 1024 MiB; disk:")
            && agent[4].ends_with("; ports:[31000-32000]"),
        "resources: {agent:?}"
    );
    assert_eq!(agent[5], "", "no reservations: {agent:?}");
    assert_eq!(agent[6], "1 cpus, 256 MiB", "allocated: {agent:?}");
    let framework = row(&document, "frameworks", FRAMEWORK);
    assert_eq!(framework[1], scene.framework_id);
    assert_eq!(framework[3], ROLE);
    let executor = row(&document, "executors", EXECUTOR);
    assert_eq!(
        executor[1], FRAMEWORK,
        "named by its framework: {executor:?}"
    );
    assert_eq!(executor[2], agent_id);
    assert_eq!(executor[3], "RUNNING");
    assert_eq!(executor[4], "1 cpus, 256 MiB");
}
