//! Every refusal of the cluster's authentication and authorization, as one scenario that runs
//! against any running cluster: on loopback (`LocalCluster`) or across test hosts. Callers with
//! no certificate, another cluster's, an expired one, or the wrong principal; garbage bytes and
//! oversized frames; malformed values. Afterwards the cluster has carried on: the legitimate
//! framework's executor runs and it still gets offers.
//!
//! The scenario switches between two vantage points through a callback: the owner (a framework
//! that subscribes and launches) and a stranger (everything refused). Across hosts the callback
//! moves the calling thread between network namespaces; on loopback it does nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_cluster_proto::agent::LaunchExecutorRequest;
use tessera_cluster_proto::agent::agent_client::AgentClient;
use tessera_cluster_proto::master as pb;
use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_credentials::{Authority, Credential, Principal, describe_status};
use tessera_framework::{
    ExecutorLaunch, ExecutorState, FrameworkClient, FrameworkEvent, FrameworkInfo, MasterEndpoint,
    Offer, Resources, cluster_status,
};
use tokio::io::AsyncWriteExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Every wait of the scenario gives up after this long.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running cluster under test.
pub struct ClusterUnderTest {
    /// The master's HOST:PORT.
    pub master: String,
    /// The directory `tessera cluster init-credentials` made: its `ca/` issues the strangers'
    /// certificates (with the cluster's CA, but principals the cluster never bound).
    pub credentials: PathBuf,
    /// The legitimate framework's credential.
    pub owner: Credential,
    /// The agents' principal names.
    pub agents: Vec<String>,
}

/// Where the next calls come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vantage {
    /// The legitimate framework.
    Owner,
    /// Someone the cluster must refuse.
    Stranger,
}

/// A TLS channel to `address` that expects `peer`'s certificate from `ca_pem`, presenting
/// `identity` (or no certificate at all).
pub async fn channel(
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

/// Panics unless `result` is a refusal whose text contains every one of `words`.
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, String>, words: &[&str]) {
    let text = result.expect_err("the call must be refused");
    eprintln!("refusal a person reads: {text}");
    for w in words {
        assert!(text.contains(w), "expected {w:?} in: {text}");
    }
}

/// The text a person reads for a failed call.
fn refusal<T>(result: Result<T, tonic::Status>) -> Result<T, String> {
    result.map_err(|s| describe_status(&s))
}

/// A registration of an agent at `address` offering `cpus` and `mem_mb`.
fn agent_at(address: &str, cpus: f64, mem_mb: u64) -> pb::RegisterAgentRequest {
    pb::RegisterAgentRequest {
        hostname: "h".into(),
        address: address.into(),
        resources: Some(pb::Resources {
            cpus,
            mem_mb,
            ..Default::default()
        }),
        isolation: "posix".into(),
        ..Default::default()
    }
}

/// Waits for the next offer of a framework.
async fn next_offer(events: &mut tokio::sync::mpsc::Receiver<FrameworkEvent>) -> Offer {
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

impl ClusterUnderTest {
    fn ca_pem(&self) -> &str {
        self.owner.ca_pem()
    }

    fn authority(&self) -> Authority {
        Authority::load(&self.credentials.join("ca")).expect("the cluster's CA")
    }

    fn issue(&self, principal: Principal) -> Credential {
        self.authority().issue(&principal, WAIT * 60).unwrap()
    }

    async fn master_as(
        &self,
        identity: Option<&Credential>,
    ) -> Result<MasterClient<Channel>, String> {
        channel(&self.master, self.ca_pem(), identity, &Principal::Master)
            .await
            .map(MasterClient::new)
    }

    /// What a ClusterStatus call by `identity` gets: the status, or the error a person reads.
    async fn status_as(&self, identity: Option<&Credential>) -> Result<(), String> {
        refusal(
            self.master_as(identity)
                .await?
                .cluster_status(pb::ClusterStatusRequest {})
                .await,
        )
        .map(|_| ())
    }

    /// A LaunchExecutor straight to the agent at `address` by `identity`, which would touch
    /// `witness` if it ran.
    async fn launch_directly(
        &self,
        address: &str,
        identity: Option<&Credential>,
        framework_id: &str,
        witness: &Path,
    ) -> Result<(), String> {
        let mut last = String::new();
        for name in &self.agents {
            let agent = Principal::Agent(name.clone());
            match channel(address, self.ca_pem(), identity, &agent).await {
                Ok(channel) => {
                    return refusal(
                        AgentClient::new(channel)
                            .launch_executor(LaunchExecutorRequest {
                                framework_id: framework_id.into(),
                                executor_id: "rogue".into(),
                                command: Some(pb::CommandInfo {
                                    program: "/bin/sh".into(),
                                    args: vec!["-c".into(), format!("touch {}", witness.display())],
                                    env: Default::default(),
                                }),
                                resources: None,
                                framework: None,
                                files_credential: String::new(),
                            })
                            .await,
                    )
                    .map(|_| ());
                }
                // The agent at `address` has another name.
                Err(e) => last = e,
            }
        }
        panic!("no agent of {:?} answers at {address}: {last}", self.agents)
    }
}

/// Runs every refusal against `cluster`; `stand` moves the caller to a vantage point before the
/// calls that come from there.
pub async fn every_refusal(cluster: &ClusterUnderTest, mut stand: impl FnMut(Vantage)) {
    let witness = std::env::temp_dir().join(format!("tessera-rogue-launch-{}", std::process::id()));
    let _ = std::fs::remove_file(&witness);

    stand(Vantage::Owner);
    let owner = MasterEndpoint {
        address: cluster.master.clone(),
        credential: cluster.owner.clone(),
    };
    let info = FrameworkInfo {
        name: "owner".into(),
        user: String::new(),
        role: String::new(),
        ..Default::default()
    };
    let (framework, mut events) = FrameworkClient::subscribe(&owner, info)
        .await
        .expect("the owner subscribes");
    let offer = next_offer(&mut events).await;
    let status = cluster_status(&owner).await.unwrap();
    let offered_agent = status
        .agents
        .iter()
        .find(|a| a.id == offer.agent_id)
        .expect("the offered agent is registered")
        .clone();

    stand(Vantage::Stranger);
    // No certificate, another cluster's, an expired one: refused, each with what to do.
    assert_refused(cluster.status_as(None).await, &["client certificate"]);
    // Another cluster's certificate, presented by a caller that knows this cluster's CA.
    let theirs = Authority::generate("another cluster")
        .unwrap()
        .issue(&Principal::Framework("alice".into()), WAIT)
        .unwrap();
    let foreign = Credential::from_bundle(&theirs.to_bundle().replacen(
        theirs.ca_pem(),
        cluster.ca_pem(),
        1,
    ))
    .unwrap();
    assert_refused(
        cluster.status_as(Some(&foreign)).await,
        &["not issued by this cluster"],
    );
    // With the other cluster's CA, the caller refuses this master itself.
    let err = cluster_status(&MasterEndpoint {
        address: cluster.master.clone(),
        credential: theirs,
    })
    .await
    .expect_err("another cluster's certificate");
    eprintln!("refusal a person reads: {err}");
    assert!(err.to_string().contains("another cluster"), "{err}");
    let now = tessera_credentials::OffsetDateTime::now_utc();
    let expired = cluster
        .authority()
        .issue_between(
            &Principal::Framework("late".into()),
            now - Duration::from_secs(7200),
            now - Duration::from_secs(3600),
        )
        .unwrap();
    assert_refused(cluster.status_as(Some(&expired)).await, &["expired"]);
    // Straight to an agent, with no certificate and with another cluster's.
    for (identity, words) in [
        (None, "client certificate"),
        (Some(&foreign), "not issued by this cluster"),
    ] {
        let direct = cluster
            .launch_directly(
                &offered_agent.address,
                identity,
                framework.framework_id(),
                &witness,
            )
            .await;
        assert_refused(direct, &[words]);
    }

    // Garbage bytes and a connection that never finishes its handshake.
    let mut raw = tokio::net::TcpStream::connect(&cluster.master)
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\x01garbage")
        .await
        .unwrap();
    let _idle = tokio::net::TcpStream::connect(&cluster.master)
        .await
        .unwrap();

    // A framework principal of this cluster that is not the owner.
    let mallory = cluster.issue(Principal::Framework("mallory".into()));
    let mut as_mallory = cluster.master_as(Some(&mallory)).await.expect("connects");
    let stolen = as_mallory
        .accept(pb::AcceptRequest {
            framework_id: framework.framework_id().into(),
            offer_ids: vec![offer.id.clone()],
            launches: vec![],
            refuse_seconds: 0.0,
            ..Default::default()
        })
        .await;
    assert_refused(refusal(stolen), &["not yours"]);
    let takeover = as_mallory
        .subscribe(pb::SubscribeRequest {
            name: "takeover".into(),
            user: String::new(),
            framework_id: framework.framework_id().into(),
            role: String::new(),
            ..Default::default()
        })
        .await;
    assert_refused(refusal(takeover), &["belongs to another principal"]);
    let suppressed = as_mallory
        .suppress(pb::SuppressRequest {
            framework_id: framework.framework_id().into(),
            roles: Vec::new(),
        })
        .await;
    assert_refused(refusal(suppressed), &["not yours"]);
    let bad_role = as_mallory
        .subscribe(pb::SubscribeRequest {
            name: "roles".into(),
            user: String::new(),
            framework_id: String::new(),
            role: "has space".into(),
            ..Default::default()
        })
        .await;
    assert_refused(refusal(bad_role), &["is not a role name"]);
    // A framework may not act as an agent, nor speak to an agent directly.
    let as_agent = as_mallory
        .register_agent(agent_at("127.0.0.1:1", 1.0, 64))
        .await;
    assert_refused(refusal(as_agent), &["is for agents"]);
    let direct = cluster
        .launch_directly(
            &offered_agent.address,
            Some(&mallory),
            framework.framework_id(),
            &witness,
        )
        .await;
    assert_refused(direct, &["for the master only"]);

    // A rogue agent: a valid agent certificate of its own, trying to take over a real agent's
    // address and to report on executors it does not run.
    let rogue = cluster.issue(Principal::Agent("rogue".into()));
    let mut as_rogue = cluster.master_as(Some(&rogue)).await.expect("connects");
    let hijack = as_rogue
        .register_agent(agent_at(&offered_agent.address, 1.0, 64))
        .await;
    assert_refused(refusal(hijack), &["is registered to agent"]);
    let bad_cpus = as_rogue
        .register_agent(agent_at("127.0.0.1:9", f64::NAN, u64::MAX))
        .await;
    assert_refused(refusal(bad_cpus), &["invalid number of CPUs"]);

    // The owner launches an executor; the rogue agent reports it lost.
    stand(Vantage::Owner);
    framework
        .accept(
            &offer.id,
            vec![ExecutorLaunch {
                executor_id: "e1".into(),
                program: "/bin/sleep".into(),
                args: vec!["30".into()],
                env: vec![],
                resources: Resources::new(1.0, 64),
                extras: Default::default(),
                files_credential: None,
            }],
        )
        .await
        .expect("the owner accepts its offer");
    stand(Vantage::Stranger);
    let forged = as_rogue
        .update_status(pb::StatusUpdate {
            agent_id: offer.agent_id.clone(),
            framework_id: framework.framework_id().into(),
            executor_id: "e1".into(),
            state: pb::ExecutorState::Lost as i32,
            message: "forged".into(),
            ..Default::default()
        })
        .await;
    assert_refused(refusal(forged), &["belongs to another agent"]);

    // Oversized frames: refused to that caller only.
    let huge = as_mallory
        .subscribe(pb::SubscribeRequest {
            name: "x".repeat(8 << 20),
            user: String::new(),
            framework_id: String::new(),
            role: String::new(),
            ..Default::default()
        })
        .await;
    assert!(huge.is_err(), "an 8 MiB request is refused");

    // Through all of that, the owner's executor runs and it keeps getting offers.
    stand(Vantage::Owner);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut running = false;
    let mut offered = false;
    while !(running && offered) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(FrameworkEvent::ExecutorStatus {
                executor_id, state, ..
            })) if executor_id == "e1" => {
                assert!(!state.is_terminal(), "e1 ended: {state}");
                running |= state == ExecutorState::Running;
            }
            Ok(Some(FrameworkEvent::Offers(o))) => offered |= !o.is_empty(),
            Ok(Some(FrameworkEvent::Disconnected(why))) => panic!("disconnected: {why}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("running={running} offered={offered} after {WAIT:?}"),
        }
    }
    assert!(!witness.exists(), "the direct launch must not have run");
    let status = cluster_status(&owner).await.unwrap();
    assert_eq!(
        status.agents.len(),
        cluster.agents.len(),
        "no rogue agent registered"
    );
}
