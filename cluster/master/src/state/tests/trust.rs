//! Who may speak for what: a framework for its own principal, an agent for its own executors and
//! address; malformed values refused.

use super::*;

#[tokio::test]
async fn an_executors_message_reaches_its_framework_only_from_its_own_agent() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    run_executor(&mut m, &agent, &fw, offer, Instant::now());
    drain(&mut rx);
    let message = |agent_id: &str, executor_id: &str| pb::ExecutorMessage {
        agent_id: agent_id.into(),
        framework_id: fw.clone(),
        executor_id: executor_id.into(),
        data: b"progress 50%".to_vec(),
    };
    let refused = m.executor_message("b", message(&agent, "no-such-executor"));
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let refused = m.executor_message("someone-else", message(&agent, "e"));
    assert!(
        refused.is_err(),
        "only the agent's own principal speaks for it"
    );
    assert!(
        drain(&mut rx).is_empty(),
        "nothing refused reaches the framework"
    );
    m.executor_message("b", message(&agent, "e")).unwrap();
    let events = drain(&mut rx);
    assert!(
        matches!(events.as_slice(), [pb::event::Event::Message(got)]
            if got.executor_id == "e" && got.data == b"progress 50%"),
        "{events:?}"
    );
    // Once the executor ended, its messages are refused.
    m.update_executor(&fw, "e", &agent, pb::ExecutorState::Finished, String::new());
    assert!(m.executor_message("b", message(&agent, "e")).is_err());
}

#[tokio::test]
async fn a_framework_acts_only_for_its_own_principal() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::from_secs(30));
    let now = Instant::now();
    let accept = pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids: vec![offer.id.clone()],
        launches: vec![launch("e", 1.0, 64)],
        refuse_seconds: 0.0,
        ..Default::default()
    };
    let stolen = m.accept(accept.clone(), "mallory", now).unwrap_err();
    assert_eq!(stolen.code(), tonic::Code::PermissionDenied);
    assert!(
        stolen.message().contains("not yours"),
        "{}",
        stolen.message()
    );
    for err in [
        m.decline(&fw, "mallory", std::slice::from_ref(&offer.id), 0.0, now)
            .unwrap_err(),
        m.kill(&fw, "mallory", "e").unwrap_err(),
        m.check_framework(&fw, "mallory").unwrap_err(),
    ] {
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
    }
    let (tx, _rx2) = unbounded_channel();
    let takeover = m
        .subscribe(
            "x".into(),
            "u".into(),
            String::new(),
            "mallory".into(),
            Some(fw.clone()),
            tx,
        )
        .unwrap_err();
    assert_eq!(takeover.code(), tonic::Code::PermissionDenied);
    // The offer is still alice's, untouched.
    m.accept(accept, "alice", now)
        .expect("alice accepts her offer");
}

#[tokio::test]
async fn an_agent_cannot_take_another_agents_address_or_speak_for_it() {
    let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let taken = m
        .register_agent(
            ("h".into(), "127.0.0.1:9".into(), "rogue".into()),
            Resources::new(1.0, 64),
            "posix".into(),
            client(),
            now,
        )
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::PermissionDenied);
    assert_eq!(m.agents.len(), 1, "the real agent stays registered");
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 64), now);
    let update = |agent_id: &str, executor_id: &str| pb::StatusUpdate {
        agent_id: agent_id.into(),
        framework_id: fw.clone(),
        executor_id: executor_id.into(),
        state: pb::ExecutorState::Lost as i32,
        message: String::new(),
        exit_code: None,
        reason: 0,
        ..Default::default()
    };
    // Another agent's principal with the real agent's id, or the right agent for an
    // executor it does not run: refused, and the executor keeps its state.
    let (other, _) = m
        .register_agent(
            ("h2".into(), "127.0.0.1:10".into(), "c".into()),
            Resources::new(1.0, 64),
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    assert_eq!(
        m.agent_update("c", update(&agent, "e")).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        m.agent_update("c", update(&other, "e")).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        m.heartbeat(&agent, "c", now).unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Starting);
    m.agent_update("b", update(&agent, "e")).unwrap();
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
}

#[tokio::test]
async fn malformed_values_are_refused_before_anything_changes() {
    let (mut m, _agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let req = |refuse_seconds: f64, offer_ids: Vec<String>| pb::AcceptRequest {
        framework_id: fw.clone(),
        offer_ids,
        launches: vec![launch("e", 1.0, 64)],
        refuse_seconds,
        ..Default::default()
    };
    for bad in [f64::NAN, -1.0] {
        let err = m
            .accept(req(bad, vec![offer.id.clone()]), "alice", now)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    let twice = m
        .accept(
            req(0.0, vec![offer.id.clone(), offer.id.clone()]),
            "alice",
            now,
        )
        .unwrap_err();
    assert!(
        twice.message().contains("more than once"),
        "{}",
        twice.message()
    );
    let mut nan_cpus = req(0.0, vec![offer.id.clone()]);
    nan_cpus.launches[0].resources = wire(f64::NAN, 1);
    assert!(m.accept(nan_cpus, "alice", now).is_err());
    assert!(m.offers.contains_key(&offer.id), "the offer is still there");
    // A huge filter is capped, not a panic, and the rest is filtered for a year.
    m.accept(req(1e20, vec![offer.id.clone()]), "alice", now)
        .expect("accept with a huge filter");
    m.allocate(now + Duration::from_secs(3600));
    assert!(m.offers.is_empty(), "the unused part is filtered");
    assert_eq!(refuse_duration(1e20).unwrap(), MAX_REFUSE);
    assert_eq!(refuse_duration(f64::INFINITY).unwrap(), MAX_REFUSE);
    assert_eq!(refuse_duration(0.0).unwrap(), Duration::ZERO);
    let amount = |cpus: f64, mem_mb: u64| pb::Resources {
        cpus,
        mem_mb,
        ..Default::default()
    };
    for bad in [amount(f64::NAN, 1), amount(-1.0, 1), amount(1.0, u64::MAX)] {
        assert!(check_resources("agent x", Some(&bad)).is_err(), "{bad:?}");
    }
    let nan_gpus = pb::Resources {
        scalars: [("gpus".to_string(), f64::NAN)].into(),
        ..Default::default()
    };
    let high_port = pb::Resources {
        ports: vec![pb::Range {
            begin: 1,
            end: 70000,
        }],
        ..Default::default()
    };
    for bad in [nan_gpus, high_port] {
        let err = check_extras("agent x", Some(&bad)).unwrap_err();
        assert!(err.message().contains("agent x has an invalid"), "{err}");
    }
    assert!(check_id("framework id", "").is_err());
    assert!(check_id("framework id", &"x".repeat(300)).is_err());
}
