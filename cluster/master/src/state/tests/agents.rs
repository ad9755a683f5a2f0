//! Agents lost, unreachable, registering again, and taken back by a restarted master with the
//! executors they still run.

use super::*;

#[tokio::test]
async fn lost_agent_rescinds_offers_and_loses_executors() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.allocate(t0);
    let rest = offers(&drain(&mut rx)).pop().expect("offer of the rest");
    let timeout = Duration::from_secs(10);
    assert!(
        m.timed_out_agents(t0 + Duration::from_secs(5), timeout)
            .is_empty()
    );
    let late = t0 + Duration::from_secs(11);
    assert_eq!(m.timed_out_agents(late, timeout).len(), 1);
    m.remove_agent(&agent, "no heartbeat");
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(r) if r.offer_id == rest.id))
    );
    assert!(events.iter().any(|e| matches!(e,
        pb::event::Event::StatusUpdate(u) if u.executor_id == "e" && u.state == pb::ExecutorState::Lost as i32)));
    assert!(m.cluster_status().agents.is_empty());
    assert!(
        !m.heartbeat(&agent, "b", late).unwrap(),
        "a lost agent must register again"
    );
    assert_eq!(m.allocator.cluster_total(), Resources::ZERO);
}

#[tokio::test]
async fn an_unreachable_agent_is_offered_again_only_once_it_heartbeats() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    accept_one(&mut m, &fw, offer, launch("e", 1.0, 256), t0);
    m.agent_unreachable(&agent, "tcp connect error");
    m.allocate(t0);
    assert!(
        offers(&drain(&mut rx)).is_empty(),
        "nothing of an agent that cannot be reached is offered"
    );
    assert_eq!(
        m.cluster_status().agents.len(),
        1,
        "it is not declared lost"
    );
    assert!(m.heartbeat(&agent, "b", t0).unwrap());
    m.allocate(t0);
    assert_eq!(
        offers(&drain(&mut rx)).len(),
        1,
        "offered again once heard from"
    );
}

#[tokio::test]
async fn an_agent_registering_anew_from_the_same_host_replaces_its_old_self() {
    let (mut m, agent, _fw, mut rx, _offer) = setup(Duration::ZERO);
    let now = Instant::now();
    let register = |m: &mut MasterState, host: &str, address: &str, principal: &str| {
        m.register_agent(
            (host.into(), address.into(), principal.into()),
            Resources::new(2.0, 1024),
            "posix".into(),
            client(),
            now,
        )
        .unwrap()
        .0
    };
    // Another principal on the same host is another agent.
    register(&mut m, "h", "127.0.0.1:10", "c");
    assert_eq!(m.cluster_status().agents.len(), 2);
    // The same principal from the same host on another port: the first one restarted.
    let again = register(&mut m, "h", "127.0.0.1:11", "b");
    assert_ne!(again, agent);
    let ids: Vec<String> = m
        .cluster_status()
        .agents
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(!ids.contains(&agent), "{ids:?}");
    assert!(
        drain(&mut rx)
            .iter()
            .any(|e| matches!(e, pb::event::Event::Rescind(_))),
        "its offer was rescinded"
    );
}

#[tokio::test]
async fn a_restarted_master_takes_back_a_reregistering_agent_and_its_executors() {
    let (mut old, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut old, &agent, &fw, offer, t0);
    // The launch told the agent whose executor it is.
    assert_eq!(old.frameworks[&fw].info().principal, "alice");

    // A new master: the agent's heartbeat is unknown, it registers again with its id.
    let mut m = MasterState::new(&config(Duration::ZERO));
    assert!(!m.heartbeat(&agent, "b", t0).unwrap());
    let reregister = |m: &mut MasterState, id: &str, principal: &str| {
        m.reregister_agent(
            id.into(),
            ("h".into(), "127.0.0.1:9".into(), principal.into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            vec![recovered(&fw, 30.0)],
            t0,
        )
    };
    let (id, _, actions) = reregister(&mut m, &agent, "b").unwrap();
    assert!(actions.is_empty());
    assert_eq!(id, agent, "the agent keeps its id");
    let e = &m.executors[&(fw.clone(), "e".to_string())];
    assert_eq!(
        (e.state, e.agent_id.as_str()),
        (pb::ExecutorState::Running, agent.as_str())
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // Its framework waits, disconnected, for the framework to come back by id.
    let f = &m.frameworks[&fw];
    assert!(f.events.is_none());
    assert_eq!(f.failover_timeout, Duration::from_secs(30));
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(29))
            .is_empty()
    );
    // Only its agent's principal can register again as it; again by the same one keeps all.
    assert!(reregister(&mut m, &agent, "mallory").is_err());
    assert_eq!(reregister(&mut m, &agent, "b").unwrap().0, agent);
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));
    // Another principal cannot subscribe as the framework; alice can, and keeps it.
    let (tx, _rx2) = unbounded_channel();
    let as_mallory = Subscription {
        name: "fw".into(),
        framework_id: Some(fw.clone()),
        ..Subscription::default()
    };
    assert!(
        m.subscribe_framework(as_mallory.clone(), "mallory".into(), tx.clone())
            .is_err()
    );
    let (tx, mut rx) = unbounded_channel();
    m.subscribe_framework(as_mallory, "alice".into(), tx)
        .unwrap();
    assert!(matches!(drain(&mut rx)[0], pb::event::Event::Registered(_)));
    assert!(
        m.expired_frameworks(t0 + Duration::from_secs(31))
            .is_empty()
    );

    // A master that declared the agent lost gives it a new id instead.
    old.remove_agent(&agent, "no heartbeat");
    let (new_id, _, _) = reregister(&mut old, &agent, "b").unwrap();
    assert_ne!(new_id, agent);
}

#[tokio::test]
async fn an_agent_restarted_within_its_timeout_keeps_its_id_from_a_new_address() {
    let (mut m, agent, fw, mut rx, offer) = setup(Duration::ZERO);
    let t0 = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, t0);
    drain(&mut rx);
    let back = |m: &mut MasterState, address: &str, executors| {
        m.reregister_agent(
            agent.clone(),
            ("h".into(), address.into(), "b".into()),
            Resources::new(2.0, 1024),
            AgentOffering::default(),
            "posix".into(),
            client(),
            executors,
            t0,
        )
    };
    // It recovered its executor and listens on another port now.
    let (id, _, actions) = back(&mut m, "127.0.0.1:10", vec![recovered(&fw, 30.0)]).unwrap();
    assert_eq!((id.as_str(), actions.len()), (agent.as_str(), 0));
    assert_eq!(m.agents[&agent].address, "127.0.0.1:10");
    assert_eq!(m.agent_at.get("127.0.0.1:10"), Some(&agent));
    assert!(!m.agent_at.contains_key("127.0.0.1:9"));
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Running);
    assert!(drain(&mut rx).is_empty(), "the framework sees no loss");
    assert_eq!(m.allocator.allocation(&fw), Resources::new(1.0, 256));

    // Back again without it: it ended while the agent was down, with no trace left.
    back(&mut m, "127.0.0.1:10", Vec::new()).unwrap();
    assert_eq!(m.executors[&key].state, pb::ExecutorState::Lost);
    let events = drain(&mut rx);
    assert!(
        events.iter().any(|e| matches!(e,
            pb::event::Event::StatusUpdate(u) if u.executor_id == "e"
                && u.state == pb::ExecutorState::Lost as i32
                && u.message.contains("registered again (it restarted) without it"))),
        "{events:?}"
    );
    assert_eq!(m.allocator.allocation(&fw), Resources::ZERO);

    // Its framework removed while the agent was down (the shutdown did not reach it): the
    // executor it brings back is shut down.
    let (other, _rx2, _) = subscribe_alice(&mut m, "fw2", "", None);
    m.remove_framework(&other, "torn down");
    let mut kept = recovered(&other, 30.0);
    kept.executor_id = "e2".into();
    let (_, _, actions) = back(&mut m, "127.0.0.1:11", vec![kept]).unwrap();
    assert!(
        matches!(&actions[..], [AgentAction::ShutdownFramework { request, .. }] if request.framework_id == other),
        "the removed framework's executor is shut down"
    );
}
