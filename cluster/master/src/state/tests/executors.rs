//! Offers and the executors launched with them: offers timed out, accepts checked, executors' ends,
//! usage, reconciliation, kills and messages.

use super::*;

#[tokio::test]
async fn an_offer_not_answered_within_the_offer_timeout_is_rescinded_and_made_again() {
    let now = Instant::now();
    let config = MasterConfig {
        offer_timeout: Some(Duration::from_secs(1)),
        ..MasterConfig::default()
    };
    let (mut m, _agent, _fw, mut rx, first) = setup_with(&config, now);
    m.allocate(now + Duration::from_millis(900));
    assert!(drain(&mut rx).is_empty(), "not yet timed out");
    m.allocate(now + Duration::from_millis(1000));
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == first.id)),
        "{events:?}"
    );
    let again = offers(&events).pop().expect("offered again");
    assert_ne!(again.id, first.id);
    assert_eq!(again.resources, first.resources);
}

#[tokio::test]
async fn accept_is_validated_and_leaves_nothing_changed_when_invalid() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let req = |launches| pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids: vec![offer.id.clone()],
        launches,
        refuse_seconds: 0.0,
        ..Default::default()
    };
    let too_big = m
        .accept(req(vec![launch("e", 3.0, 10)]), "alice", now)
        .unwrap_err();
    assert!(
        too_big.message().contains("offers hold only"),
        "{}",
        too_big.message()
    );
    let bad_id = m
        .accept(req(vec![launch("a/b", 1.0, 10)]), "alice", now)
        .unwrap_err();
    assert!(
        bad_id.message().contains("sandbox directory"),
        "{}",
        bad_id.message()
    );
    let dup = m
        .accept(
            req(vec![launch("e", 1.0, 10), launch("e", 0.5, 10)]),
            "alice",
            now,
        )
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    // Still valid after the refusals:
    let actions = m
        .accept(req(vec![launch("e", 1.0, 256)]), "alice", now)
        .expect("accept");
    assert_eq!(actions.len(), 1);
    let again = m.accept(req(vec![]), "alice", now).unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    // The unused part is offered again.
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    m.allocate(now);
    let status = m.cluster_status();
    assert_eq!(status.offers[0].resources, wire(1.0, 768));
    assert_eq!(status.agents[0].allocated, wire(1.0, 256));
}

#[tokio::test]
async fn executor_end_is_forwarded_and_frees_its_resources() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 2.0, 1024), now);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    m.update_executor(
        &fw,
        "e",
        &agent,
        pb::ExecutorState::Failed,
        "exited with status 3".into(),
    );
    // A late duplicate is ignored.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Killed, String::new());
    let states: Vec<i32> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            pb::ExecutorState::Running as i32,
            pb::ExecutorState::Failed as i32
        ]
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);
    m.allocate(now);
    assert_eq!(offers(&drain(&mut rx))[0].resources, wire(2.0, 1024));
}

#[tokio::test]
async fn usage_and_how_an_executor_ended_reach_status_and_the_framework() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 128), now);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    let usage = |framework_id: &str| pb::ExecutorUsage {
        framework_id: framework_id.into(),
        executor_id: "e".into(),
        memory_bytes: 50 << 20,
        cpu_seconds: 1.5,
    };
    // Reports from another agent, or on executors that are not there, change nothing.
    m.record_usage("someone-else", vec![usage(&fw)]);
    m.record_usage(&agent, vec![usage("no-such-framework")]);
    assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
    m.record_usage(&agent, vec![usage(&fw)]);
    let status = m.cluster_status();
    assert_eq!(status.agents[0].isolation, "posix");
    assert_eq!(
        (
            status.executors[0].memory_used_bytes,
            status.executors[0].cpu_seconds
        ),
        (50 << 20, 1.5)
    );

    m.agent_update(
        "b",
        pb::StatusUpdate {
            agent_id: agent.clone(),
            framework_id: fw.clone(),
            executor_id: "e".into(),
            state: pb::ExecutorState::Failed as i32,
            message: "memory limit 128 MiB exceeded".into(),
            exit_code: Some(137),
            reason: pb::ExecutorReason::MemoryLimit as i32,
            ..Default::default()
        },
    )
    .expect("the agent's update");
    let last = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::StatusUpdate(u) => Some(u),
            _ => None,
        })
        .next_back()
        .expect("updates forwarded");
    assert_eq!(
        (last.exit_code, last.reason, last.message.as_str()),
        (
            Some(137),
            pb::ExecutorReason::MemoryLimit as i32,
            "memory limit 128 MiB exceeded"
        )
    );
    assert_eq!(m.cluster_status().executors[0].memory_used_bytes, 0);
}

#[tokio::test]
async fn reconcile_answers_known_states_and_lost_for_unknown_executors() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, t0);
    drain(&mut rx);
    let states = |updates: Vec<pb::StatusUpdate>| -> Vec<(String, i32, i32)> {
        updates
            .into_iter()
            .map(|u| (u.executor_id, u.state, u.reason))
            .collect()
    };
    let reason = pb::ExecutorReason::Reconciliation as i32;
    let running = pb::ExecutorState::Running as i32;
    let lost = pb::ExecutorState::Lost as i32;
    // Implicit: every executor that has not ended.
    assert_eq!(
        states(m.reconciliation(&fw, &[])),
        [("e".to_string(), running, reason)]
    );
    // Explicit: those asked, LOST for the unknown.
    assert_eq!(
        states(m.reconciliation(&fw, &["e".into(), "ghost".into()])),
        [
            ("e".to_string(), running, reason),
            ("ghost".to_string(), lost, reason)
        ]
    );
    // Ended executors answer their end when asked by name, and are left out otherwise.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
    assert!(m.reconciliation(&fw, &[]).is_empty());
    let finished = pb::ExecutorState::Finished as i32;
    assert_eq!(
        states(m.reconciliation(&fw, &["e".into()])),
        [("e".to_string(), finished, reason)]
    );
    // Reconcile sends them as events, only to the framework's own principal.
    drain(&mut rx);
    assert!(m.reconcile(&fw, "mallory", &[]).is_err());
    m.reconcile(&fw, "alice", &["e".into()]).unwrap();
    assert!(
        matches!(&drain(&mut rx)[..], [pb::event::Event::StatusUpdate(u)] if u.reason == reason)
    );
}

#[tokio::test]
async fn failures_kill_shutdown_and_messages() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::from_secs(30));
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Running, String::new());
    let graceful = |actions: Vec<AgentAction>| match &actions[..] {
        [AgentAction::Kill { request, .. }] => request.graceful,
        other => panic!("{other:?}"),
    };
    assert!(!graceful(m.kill(&fw, "alice", "e").unwrap()));
    assert!(graceful(m.shutdown_executor(&fw, "alice", "e").unwrap()));
    assert!(m.shutdown_executor(&fw, "mallory", "e").is_err());
    let actions = m.message(&fw, "alice", "e", b"hi".to_vec()).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::Message { request, .. }] if request.data == b"hi")
    );
    assert!(m.message(&fw, "mallory", "e", Vec::new()).is_err());
    drain(&mut rx);

    // It fails with status 3: the update, and a Failure once (not for the update again).
    let failed = pb::StatusUpdate {
        exit_code: Some(3),
        ..agent_says(&agent, &fw, pb::ExecutorState::Failed, "u9")
    };
    m.agent_update("b", failed.clone()).unwrap();
    m.agent_update("b", failed).unwrap();
    let failures: Vec<pb::Failure> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            pb::event::Event::Failure(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].executor_id.as_str(), failures[0].status),
        ("e", Some(3))
    );
    let err = m.message(&fw, "alice", "e", Vec::new()).unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // Its agent lost: a Failure naming the agent.
    m.remove_agent(&agent, "no heartbeat");
    assert!(drain(&mut rx).iter().any(|e| matches!(e,
        pb::event::Event::Failure(f) if f.agent_id == agent && f.executor_id.is_empty())));
}
