//! End-to-end tests of resources beyond CPUs and memory, attributes, constraints and
//! reservations: a real `tessera-master` and real `tessera-agent`s on 127.0.0.1 (through
//! `LocalCluster`, with flags per agent), frameworks subscribed with `FrameworkClient`, and a
//! real `tessera run` session.
//!
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tessera_e2e::{Scratch, bin_dir, tessera_on};
use tessera_framework::{
    AcceptOperation, Attribute, ClusterStatus, ExecutorLaunch, ExecutorState, Extras,
    FrameworkClient, FrameworkEvent, FrameworkInfo, LocalCluster, Offer, Ranges, Resources,
    cluster_status,
};
use tokio::sync::mpsc::Receiver;

/// Every wait for an offer gives up after this long.
const WAIT: Duration = Duration::from_secs(10);

/// Two agents of 2 CPUs and 1 GiB: agent 0 on rack r1 with few ports, some disk and two GPUs,
/// agent 1 on rack r2 with the default ports; `reserve` adds flags to agent 0.
async fn two_racks(reserve: &[&str]) -> LocalCluster {
    let rack1: Vec<&str> = [
        "--attributes",
        "rack:r1;zone:z1",
        "--ports",
        "31000-31009",
        "--disk-mb",
        "500",
    ]
    .into_iter()
    .chain(reserve.iter().copied())
    .collect();
    let rack2 = ["--attributes", "rack:r2;zone:z1", "--disk-mb", "100"];
    LocalCluster::start_with_agent_flags((2, 2.0, 1024), &bin_dir(), &[], &[&rack1, &rack2])
        .await
        .expect("a local cluster")
}

async fn subscribe(
    cluster: &LocalCluster,
    role: &str,
) -> (FrameworkClient, Receiver<FrameworkEvent>) {
    let info = FrameworkInfo {
        name: format!("fw-{role}"),
        user: "tester".into(),
        role: role.into(),
        ..Default::default()
    };
    FrameworkClient::subscribe(&cluster.endpoint(), info)
        .await
        .expect("subscribe")
}

/// The next offer for which `wanted` holds (others are left outstanding).
async fn offer_where(
    events: &mut Receiver<FrameworkEvent>,
    wanted: impl Fn(&Offer) -> bool,
) -> Offer {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(FrameworkEvent::Offers(offers))) => {
                if let Some(offer) = offers.into_iter().find(|o| wanted(o)) {
                    return offer;
                }
            }
            Ok(Some(FrameworkEvent::Disconnected(why))) => panic!("disconnected: {why}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("the event stream ended"),
            Err(_) => panic!("no such offer within {WAIT:?}"),
        }
    }
}

fn rack(offer: &Offer) -> Option<&str> {
    offer
        .attributes
        .iter()
        .find(|a| a.name == "rack")
        .map(|a| a.value.as_str())
}

fn sleeper(id: &str, resources: Resources, ports: Ranges) -> ExecutorLaunch {
    ExecutorLaunch {
        executor_id: id.into(),
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            "echo \"$TESSERA_EXECUTOR_PORTS\" > ports; sleep 30".into(),
        ],
        env: Vec::new(),
        resources,
        extras: Extras {
            ports,
            ..Extras::default()
        },
        files_credential: None,
    }
}

async fn status(cluster: &LocalCluster) -> ClusterStatus {
    cluster_status(&cluster.endpoint()).await.expect("status")
}

#[tokio::test]
async fn offers_carry_attributes_ports_disk_and_scalars_and_launches_must_stay_inside_them() {
    let cluster = two_racks(&["--resources", "gpus:2"]).await;
    let (client, mut events) = subscribe(&cluster, "web").await;
    let r1 = offer_where(&mut events, |o| rack(o) == Some("r1")).await;
    assert_eq!(r1.extras.ports, Ranges::new([(31000, 31009)]));
    assert_eq!(r1.extras.disk_mb, 500);
    assert_eq!(r1.extras.scalars.get("gpus"), Some(&2.0));
    assert!(r1.attributes.contains(&Attribute {
        name: "zone".into(),
        value: "z1".into()
    }));
    assert_eq!(r1.reservation, None);

    // A launch naming a port the offer does not hold is refused, saying which.
    let outside = sleeper("e1", Resources::new(1.0, 128), Ranges::new([(8080, 8080)]));
    let err = client.accept(&r1.id, vec![outside]).await.unwrap_err();
    assert!(
        err.to_string().contains("names ports 8080") && err.to_string().contains("31000-31009"),
        "{err}"
    );
    // The offer is still good: a launch with one of its ports and a GPU runs, and holds them.
    let mut inside = sleeper(
        "e1",
        Resources::new(1.0, 128),
        Ranges::new([(31004, 31004)]),
    );
    inside.extras.scalars.insert("gpus".into(), 1.0);
    client.accept(&r1.id, vec![inside]).await.expect("accept");
    let deadline = Instant::now() + WAIT;
    let executor = loop {
        let now = status(&cluster).await;
        if let Some(e) = now.executors.iter().find(|e| e.executor_id == "e1")
            && e.state == ExecutorState::Running
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "e1 never ran: {now:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(executor.extras.ports, Ranges::new([(31004, 31004)]));
    // It is told its port.
    let ports_file = cluster
        .agent_work_dir(0)
        .join("frameworks")
        .join(client.framework_id())
        .join("executors/e1/ports");
    let deadline = Instant::now() + WAIT;
    while std::fs::read_to_string(&ports_file)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no {}", ports_file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read_to_string(&ports_file).unwrap(), "31004\n");
    assert_eq!(executor.extras.scalars.get("gpus"), Some(&1.0));
    // The rest of the agent comes back without that port and GPU.
    let again = offer_where(&mut events, |o| rack(o) == Some("r1")).await;
    assert_eq!(
        again.extras.ports,
        Ranges::new([(31000, 31003), (31005, 31009)])
    );
    assert_eq!(again.extras.scalars.get("gpus"), Some(&1.0));
    let agents = status(&cluster).await.agents;
    let r2 = agents
        .iter()
        .find(|a| a.attributes.iter().any(|at| at.value == "r2"))
        .expect("the r2 agent");
    assert_eq!(
        r2.extras.ports,
        Ranges::new([(31000, 32000)]),
        "Mesos' default ports"
    );
    client.teardown().await.expect("teardown");
}

#[tokio::test]
async fn a_static_reservation_is_offered_only_to_its_role() {
    let cluster = two_racks(&["--resources", "cpus(analytics):1;mem(analytics):256"]).await;
    let agents = status(&cluster).await.agents;
    let r1 = agents
        .iter()
        .find(|a| a.attributes.iter().any(|at| at.value == "r1"))
        .expect("the r1 agent");
    assert_eq!(
        r1.total,
        Resources::new(3.0, 1280),
        "reserved on top of --cpus/--mem-mb"
    );
    assert_eq!(r1.reservations.len(), 1);
    assert_eq!(r1.reservations[0].role, "analytics");
    assert_eq!(r1.reservations[0].resources, Resources::new(1.0, 256));
    assert!(!r1.reservations[0].dynamic);

    // A framework of another role gets both agents' unreserved resources, never the
    // reservation, however long it waits.
    let (web, mut web_events) = subscribe(&cluster, "web").await;
    let mut agents_offered = std::collections::BTreeSet::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(event)) = tokio::time::timeout_at(until, web_events.recv()).await {
        if let FrameworkEvent::Offers(offers) = event {
            for offer in offers {
                assert_eq!(offer.reservation, None, "{offer:?}");
                agents_offered.insert(offer.agent_id.clone());
                // Declined at once: the agent comes back, the reservation never does.
                web.decline(&offer.id, 0.0).await.expect("decline");
            }
        }
    }
    assert_eq!(agents_offered.len(), 2, "both agents were offered to web");
    // A framework of the role gets it, marked with the role.
    let (analytics, mut events) = subscribe(&cluster, "analytics").await;
    let reserved = offer_where(&mut events, |o| o.reservation.is_some()).await;
    assert_eq!(reserved.reservation.as_deref(), Some("analytics"));
    assert_eq!(reserved.agent_id, r1.id);
    assert_eq!(reserved.resources, Resources::new(1.0, 256));
    assert!(
        reserved.extras.ports.is_empty(),
        "ports ride with unreserved offers"
    );
    web.teardown().await.expect("teardown");
    analytics.teardown().await.expect("teardown");
}

#[tokio::test]
async fn reserve_then_unreserve_round_trips_through_accept() {
    let cluster = two_racks(&[]).await;
    let (client, mut events) = subscribe(&cluster, "analytics").await;
    let offer = offer_where(&mut events, |o| rack(o) == Some("r2")).await;
    let agent = offer.agent_id.clone();
    assert_eq!(offer.resources, Resources::new(2.0, 1024));
    let half = Resources::new(1.0, 512);
    client
        .accept_operations(&offer.id, vec![AcceptOperation::Reserve(half)])
        .await
        .expect("reserve");
    let shown = status(&cluster).await;
    let shown = shown.agents.iter().find(|a| a.id == agent).unwrap();
    assert_eq!(shown.reservations.len(), 1, "{shown:?}");
    assert!(shown.reservations[0].dynamic);
    assert_eq!(shown.reservations[0].resources, half);
    assert_eq!(
        shown.total,
        Resources::new(2.0, 1024),
        "the agent's total does not change"
    );

    // The reservation comes back to the role as an offer of its own.
    let reserved = offer_where(&mut events, |o| {
        o.agent_id == agent && o.reservation.is_some()
    })
    .await;
    assert_eq!(reserved.resources, half);
    // Unreserving more than was reserved is refused; all of it goes back to everyone.
    let err = client
        .accept_operations(
            &reserved.id,
            vec![AcceptOperation::Unreserve(Resources::new(2.0, 512))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UNRESERVE"), "{err}");
    client
        .accept_operations(&reserved.id, vec![AcceptOperation::Unreserve(half)])
        .await
        .expect("unreserve");
    let shown = status(&cluster).await;
    let shown = shown.agents.iter().find(|a| a.id == agent).unwrap();
    assert!(shown.reservations.is_empty(), "{shown:?}");
    // Both halves are offered unreserved again (the half never reserved is still in the
    // offer the reserve left over).
    let deadline = Instant::now() + WAIT;
    loop {
        let now = status(&cluster).await;
        let unreserved = (now.offers.iter())
            .filter(|(_, o)| o.agent_id == agent && o.reservation.is_none())
            .fold(Resources::ZERO, |sum, (_, o)| sum.plus(&o.resources));
        if unreserved == Resources::new(2.0, 1024) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unreserved offers: {:#?}",
            now.offers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.teardown().await.expect("teardown");
}

/// The agents (ids) of the session's executors, sampled while `tessera run` runs.
fn session_agents(cluster: &LocalCluster, extra: &[&str]) -> (Vec<String>, String) {
    let dir = Scratch::new("executor-constraint");
    std::fs::write(
        dir.0.join("script.rs"),
        // The session stays a while after its job, so that the status polls below see its
        // executors however fast the job ran.
        "// %%\nprintln!(\"count {}\", sc.parallelize((1..=1000u64).collect::<Vec<_>>(), 4).count());\nstd::thread::sleep(std::time::Duration::from_secs(2));\n",
    )
    .unwrap();
    let mut child = tessera_on(cluster, &dir.0)
        .args(extra)
        .args(["run", "script.rs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tessera runs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut agents = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Ok(now) = runtime.block_on(cluster_status(&cluster.endpoint())) {
            let session: Vec<&str> = (now.frameworks.iter())
                .filter(|f| f.name == "tessera-session")
                .map(|f| f.id.as_str())
                .collect();
            for e in &now.executors {
                if session.contains(&e.framework_id.as_str()) && !agents.contains(&e.agent_id) {
                    agents.push(e.agent_id.clone());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "tessera run failed: {stdout}");
    (agents, stdout)
}

#[test]
fn a_session_with_an_executor_constraint_runs_executors_only_on_matching_agents() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(two_racks(&[]));
    let r2 = runtime
        .block_on(status(&cluster))
        .agents
        .into_iter()
        .find(|a| a.attributes.iter().any(|at| at.value == "r2"))
        .expect("the r2 agent")
        .id;
    let (agents, stdout) = session_agents(
        &cluster,
        &["--executor-constraint", "rack:r2", "--executors", "1"],
    );
    assert!(stdout.contains("count 1000"), "{stdout}");
    assert_eq!(agents, [r2], "executors only on the r2 agent");
    // Without the constraint, the same session may use either rack: it takes both agents.
    let (agents, _) = session_agents(&cluster, &["--executors", "2"]);
    assert_eq!(agents.len(), 2, "{agents:?}");
}
