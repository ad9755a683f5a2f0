//! Every refusal of the cluster's authentication, against a real `tessera-master` and real
//! `tessera-agent`s (a `LocalCluster` on 127.0.0.1, which makes its own CA): callers with no
//! certificate, another cluster's, an expired one, or the wrong principal; garbage bytes and
//! oversized frames; malformed values. After each, the cluster carries on: the legitimate
//! framework still gets offers and launches.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::time::Duration;

use tessera_cluster_proto::agent::LaunchExecutorRequest;
use tessera_cluster_proto::agent::agent_client::AgentClient;
use tessera_cluster_proto::master as pb;
use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_credentials::{Authority, Credential, Principal, describe_status};
use tessera_framework::{
    FrameworkClient, FrameworkEvent, FrameworkInfo, LocalCluster, MasterEndpoint, cluster_status,
};
use tokio::io::AsyncWriteExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

const WAIT: Duration = Duration::from_secs(10);

fn bin_dir() -> std::path::PathBuf {
    tessera_e2e::bin_dir()
}

/// A TLS channel to `address` that expects `peer`'s certificate from `ca_pem`, presenting
/// `identity` (or no certificate at all).
async fn channel(
    address: &str,
    ca_pem: &str,
    identity: Option<&Credential>,
    peer: &Principal,
) -> Result<Channel, String> {
    let tls = match identity {
        Some(credential) => credential.client_tls(peer),
        None => ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name(peer.dns_name()),
    };
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(WAIT)
        .connect()
        .await
        .map_err(|e| tessera_credentials::describe_error(&e))
}

/// What a ClusterStatus call by `identity` gets: the status, or the error a person reads.
async fn status_as(cluster: &LocalCluster, identity: Option<&Credential>) -> Result<(), String> {
    let ca = cluster.endpoint().credential.ca_pem().to_string();
    let channel = channel(cluster.master_address(), &ca, identity, &Principal::Master).await?;
    MasterClient::new(channel)
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .map(|_| ())
        .map_err(|s| describe_status(&s))
}

async fn master_as(cluster: &LocalCluster, who: &Credential) -> MasterClient<Channel> {
    let ca = cluster.endpoint().credential.ca_pem().to_string();
    MasterClient::new(
        channel(cluster.master_address(), &ca, Some(who), &Principal::Master)
            .await
            .expect("connects"),
    )
}

/// Waits for the next offer of a framework.
async fn next_offer(
    events: &mut tokio::sync::mpsc::Receiver<FrameworkEvent>,
) -> tessera_framework::Offer {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(FrameworkEvent::Offers(mut offers))) if !offers.is_empty() => {
                return offers.remove(0);
            }
            Ok(Some(FrameworkEvent::Disconnected(why))) => panic!("disconnected: {why}"),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => panic!("no offer within {WAIT:?}"),
        }
    }
}

fn assert_refused(result: Result<(), String>, words: &[&str]) {
    let text = result.expect_err("the call must be refused");
    eprintln!("refusal a person reads: {text}");
    for w in words {
        assert!(text.contains(w), "expected {w:?} in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_the_right_certificate_are_refused_and_the_cluster_carries_on() {
    let cluster = LocalCluster::start(2, 2.0, 1024, &bin_dir())
        .await
        .expect("local cluster");
    let (framework, mut events) = FrameworkClient::subscribe(
        &cluster.endpoint(),
        FrameworkInfo {
            name: "owner".into(),
            user: String::new(),
        },
    )
    .await
    .expect("subscribe");
    let offer = next_offer(&mut events).await;

    // No certificate, another cluster's, an expired one: refused during the handshake, each
    // with what to do.
    assert_refused(status_as(&cluster, None).await, &["client certificate"]);
    let other_ca = Authority::generate("another cluster").unwrap();
    let foreign = other_ca
        .issue(&Principal::Framework("local".into()), WAIT)
        .unwrap();
    let err = cluster_status(&MasterEndpoint {
        address: cluster.master_address().into(),
        credential: foreign,
    })
    .await
    .expect_err("another cluster's certificate");
    eprintln!("refusal a person reads: {err}");
    assert!(err.to_string().contains("another cluster"), "{err}");
    let now = time_now();
    let expired = Authority::load(&cluster.credentials_dir().join("ca"))
        .unwrap()
        .issue_between(
            &Principal::Framework("late".into()),
            now - Duration::from_secs(7200),
            now - Duration::from_secs(3600),
        )
        .unwrap();
    assert_refused(status_as(&cluster, Some(&expired)).await, &["expired"]);

    // Garbage bytes and a connection that never finishes its handshake.
    let mut raw = tokio::net::TcpStream::connect(cluster.master_address())
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\x01garbage")
        .await
        .unwrap();
    let _idle = tokio::net::TcpStream::connect(cluster.master_address())
        .await
        .unwrap();

    // A framework principal that is not the owner.
    let mallory = cluster
        .issue(&Principal::Framework("mallory".into()))
        .unwrap();
    let mut as_mallory = master_as(&cluster, &mallory).await;
    let stolen = as_mallory
        .accept(pb::AcceptRequest {
            framework_id: framework.framework_id().into(),
            offer_ids: vec![offer.id.clone()],
            launches: vec![],
            refuse_seconds: 0.0,
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(stolen, &["not yours"]);
    let takeover = as_mallory
        .subscribe(pb::SubscribeRequest {
            name: "takeover".into(),
            user: String::new(),
            framework_id: framework.framework_id().into(),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(takeover, &["belongs to another principal"]);
    // A framework may not act as an agent, nor speak to an agent directly.
    let as_agent = as_mallory
        .register_agent(pb::RegisterAgentRequest {
            hostname: "h".into(),
            address: "127.0.0.1:1".into(),
            resources: Some(pb::Resources {
                cpus: 1.0,
                mem_mb: 64,
            }),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(as_agent, &["is for agents"]);
    let status = cluster_status(&cluster.endpoint()).await.unwrap();
    let agent = &status.agents[0];
    let ca = cluster.endpoint().credential.ca_pem().to_string();
    let agent_name = Principal::Agent("agent-0".into());
    let agent_address = status
        .agents
        .iter()
        .find(|a| a.id == offer.agent_id)
        .map(|a| a.address.clone())
        .unwrap_or_else(|| agent.address.clone());
    let direct = AgentClient::new(
        channel(&agent_address, &ca, Some(&mallory), &agent_name)
            .await
            .or(channel(
                &agent_address,
                &ca,
                Some(&mallory),
                &Principal::Agent("agent-1".into()),
            )
            .await)
            .expect("reaches the agent"),
    )
    .launch_executor(LaunchExecutorRequest {
        framework_id: framework.framework_id().into(),
        executor_id: "rogue".into(),
        command: Some(pb::CommandInfo {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "touch /tmp/tessera-rogue-launch".into()],
            env: Default::default(),
        }),
        resources: None,
    })
    .await
    .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(direct, &["for the master only"]);

    // A rogue agent: a valid agent certificate of its own, trying to take over a real agent's
    // address and to report on executors it does not run.
    let rogue = cluster.issue(&Principal::Agent("rogue".into())).unwrap();
    let mut as_rogue = master_as(&cluster, &rogue).await;
    let hijack = as_rogue
        .register_agent(pb::RegisterAgentRequest {
            hostname: "h".into(),
            address: agent.address.clone(),
            resources: Some(pb::Resources {
                cpus: 1.0,
                mem_mb: 64,
            }),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(hijack, &["is registered to agent"]);
    let bad_cpus = as_rogue
        .register_agent(pb::RegisterAgentRequest {
            hostname: "h".into(),
            address: "127.0.0.1:9".into(),
            resources: Some(pb::Resources {
                cpus: f64::NAN,
                mem_mb: u64::MAX,
            }),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(bad_cpus, &["invalid number of CPUs"]);

    // The owner launches an executor; the rogue agent reports it lost.
    framework
        .accept(
            &offer.id,
            vec![tessera_framework::ExecutorLaunch {
                executor_id: "e1".into(),
                program: "/bin/sleep".into(),
                args: vec!["30".into()],
                env: vec![],
                resources: tessera_framework::Resources::new(1.0, 64),
            }],
        )
        .await
        .expect("the owner accepts its offer");
    let forged = as_rogue
        .update_status(pb::StatusUpdate {
            agent_id: offer.agent_id.clone(),
            framework_id: framework.framework_id().into(),
            executor_id: "e1".into(),
            state: pb::ExecutorState::Lost as i32,
            message: "forged".into(),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert_refused(forged, &["belongs to another agent"]);

    // Oversized frames and malformed values: refused to that caller only.
    let huge = as_mallory
        .subscribe(pb::SubscribeRequest {
            name: "x".repeat(8 << 20),
            user: String::new(),
            framework_id: String::new(),
        })
        .await
        .map_or_else(|s| Err(describe_status(&s)), |_| Ok(()));
    assert!(huge.is_err(), "an 8 MiB request is refused");

    // Through all of that, the owner's executor runs and it keeps getting offers.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut running = false;
    let mut offered = false;
    while !(running && offered) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(FrameworkEvent::ExecutorStatus {
                executor_id, state, ..
            })) if executor_id == "e1" => {
                assert!(!state.is_terminal(), "e1 ended: {state}");
                running |= state == tessera_framework::ExecutorState::Running;
            }
            Ok(Some(FrameworkEvent::Offers(o))) => offered |= !o.is_empty(),
            Ok(Some(FrameworkEvent::Disconnected(why))) => panic!("disconnected: {why}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("running={running} offered={offered} after {WAIT:?}"),
        }
    }
    assert!(
        !std::path::Path::new("/tmp/tessera-rogue-launch").exists(),
        "the direct launch must not have run"
    );
    let status = cluster_status(&cluster.endpoint()).await.unwrap();
    assert_eq!(status.agents.len(), 2, "no rogue agent registered");
}

fn time_now() -> tessera_credentials::OffsetDateTime {
    tessera_credentials::OffsetDateTime::now_utc()
}
