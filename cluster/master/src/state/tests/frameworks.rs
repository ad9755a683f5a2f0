//! Frameworks: their failover timeouts, and their status updates kept until acknowledged.

use super::*;

#[tokio::test]
async fn a_placeholder_framework_not_back_within_its_failover_timeout_is_removed() {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let t0 = Instant::now();
    // Agent `id` (principal `name`) comes back with an executor of old-F0.
    let back = |m: &mut MasterState, id: &str, name: &str| {
        m.reregister_agent(
            id.into(),
            ("h".into(), format!("{name}.example:9"), name.into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            vec![recovered("old-F0", 5.0)],
            t0,
        )
        .unwrap()
    };
    back(&mut m, "old-S0", "b");
    assert!(m.expired_frameworks(t0 + Duration::from_secs(4)).is_empty());
    assert_eq!(
        m.expired_frameworks(t0 + Duration::from_secs(5)),
        ["old-F0"]
    );
    let actions = m.remove_framework("old-F0", "failover timeout");
    assert!(matches!(
        actions[..],
        [AgentAction::ShutdownFramework { .. }]
    ));
    // Removed, it cannot come back by id…
    let (tx, _rx) = unbounded_channel();
    let again = Subscription {
        name: "fw".into(),
        framework_id: Some("old-F0".into()),
        ..Subscription::default()
    };
    let err = m
        .subscribe_framework(again, "alice".into(), tx)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    // …and an agent that registers again with an executor of it is told to shut it down.
    m.remove_agent("old-S0", "test");
    let (_, _, actions) = back(&mut m, "old-S1", "c");
    assert!(
        matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == "old-F0")
    );
    assert!(m.executors.values().all(|e| e.agent_id != "old-S1"));
}

#[tokio::test]
async fn each_framework_has_its_own_failover_timeout() {
    let mut m = MasterState::new(&config(Duration::from_secs(10)));
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for failover in [None, Some(Duration::from_secs(100))] {
        let (tx, _rx) = unbounded_channel();
        let sub = Subscription {
            name: "fw".into(),
            failover_timeout: failover,
            ..Subscription::default()
        };
        let (id, connection) = m.subscribe_framework(sub, "alice".into(), tx).unwrap();
        assert!(m.framework_disconnected(&id, connection, t0).is_empty());
        ids.push(id);
    }
    assert_eq!(
        m.expired_frameworks(t0 + Duration::from_secs(10)),
        [ids[0].clone()]
    );
    assert_eq!(m.expired_frameworks(t0 + Duration::from_secs(100)).len(), 2);
}

/// `alice` subscribes again as `fw`: its events and its connection number.
fn resubscribe(
    m: &mut MasterState,
    fw: &str,
) -> (UnboundedReceiver<Result<pb::Event, Status>>, u64) {
    let (same, rx, connection) = subscribe_alice(m, "fw", "", Some(fw));
    assert_eq!(same, fw);
    (rx, connection)
}

fn forwarded_uuids(events: &[pb::event::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u.uuid.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn updates_are_kept_until_acknowledged_and_sent_again_on_resubscription() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    let running = agent_says(&agent, &fw, pb::ExecutorState::Running, "u1");
    assert!(m.agent_update("b", running.clone()).unwrap().is_empty());
    // The agent sends it again (no acknowledgement yet): forwarded again, kept once.
    m.agent_update("b", running).unwrap();
    assert_eq!(forwarded_uuids(&drain(&mut rx)), ["u1", "u1"]);
    assert_eq!(m.frameworks[&fw].unacknowledged.len(), 1);
    // Away, then back by id: it comes again after Registered.
    drop(rx);
    m.framework_disconnected(&fw, 0, t0);
    let (mut rx, _) = resubscribe(&mut m, &fw);
    let events = drain(&mut rx);
    assert!(matches!(events[0], pb::event::Event::Registered(_)));
    assert_eq!(forwarded_uuids(&events), ["u1"]);
    // Acknowledged: the agent is told, and it does not come again.
    let ack = pb::AcknowledgeRequest {
        framework_id: fw.clone(),
        agent_id: agent.clone(),
        executor_id: "e".into(),
        uuid: "u1".into(),
    };
    assert!(m.acknowledge("mallory", ack.clone()).is_err());
    let actions = m.acknowledge("alice", ack).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u1")
    );
    assert!(m.frameworks[&fw].unacknowledged.is_empty());
}

#[tokio::test]
async fn the_bookkeeping_follows_the_latest_state_and_orphans_are_acknowledged() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // RUNNING waits for its acknowledgement, but the executor has finished meanwhile.
    let update = pb::StatusUpdate {
        latest_state: pb::ExecutorState::Finished as i32,
        ..agent_says(&agent, &fw, pb::ExecutorState::Running, "u1")
    };
    m.agent_update("b", update).unwrap();
    let e = &m.executors[&(fw.clone(), "e".to_string())];
    assert_eq!(e.state, pb::ExecutorState::Finished);
    assert_eq!(
        m.allocator.allocation(&fw),
        Resources::ZERO,
        "its resources are back"
    );
    let forwarded = drain(&mut rx);
    assert!(
        matches!(&forwarded[..], [pb::event::Event::StatusUpdate(u)] if u.state == pb::ExecutorState::Running as i32)
    );
    // Its framework removed, the FINISHED update is acknowledged on its behalf.
    m.remove_framework(&fw, "torn down");
    let finished = agent_says(&agent, &fw, pb::ExecutorState::Finished, "u2");
    let actions = m.agent_update("b", finished).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Acknowledge { request, .. }] if request.uuid == "u2")
    );
}

#[tokio::test]
async fn disconnected_framework_waits_out_its_failover_timeout() {
    let failover = Duration::from_secs(30);
    let (mut m, _agent, fw, rx, offer) = setup(failover);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.allocate(t0);
    drop(rx);
    let actions = m.framework_disconnected(&fw, 0, t0);
    assert!(
        actions.is_empty(),
        "executors survive within the failover timeout"
    );
    assert!(m.offers.is_empty(), "its offers are rescinded");
    assert!(!m.cluster_status().frameworks[0].connected);
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(29))
            .is_empty()
    );
    // Re-subscribing in time keeps it.
    let (mut rx, connection) = resubscribe(&mut m, &fw);
    assert_eq!(connection, 1);
    assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
    // A stale close of the old stream changes nothing.
    assert!(m.framework_disconnected(&fw, 0, t0).is_empty());
    assert!(m.cluster_status().frameworks[0].connected);
    // Disconnect again and let the timeout pass: removed, executors killed.
    drop(rx);
    m.framework_disconnected(&fw, 1, t0);
    let expired = m.expired_frameworks(t0 + failover);
    assert_eq!(expired, std::slice::from_ref(&fw));
    let actions = m.remove_framework(&fw, "failover timeout");
    assert!(matches!(
        actions[..],
        [AgentAction::ShutdownFramework { .. }]
    ));
    assert!(m.frameworks.is_empty());
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
}
