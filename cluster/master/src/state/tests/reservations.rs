//! Roles: resources reserved for a role, offered in it and given back to it; frameworks in several
//! roles.

use super::*;

/// An agent with ports and a static reservation for `analytics`, and two frameworks: `web`
/// (role web) and `an` (role analytics), with their event streams.
fn reserving_setup(
    now: Instant,
) -> (
    MasterState,
    String,
    [(String, UnboundedReceiver<Result<pb::Event, Status>>); 2],
) {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let offering = AgentOffering {
        extras: Extras {
            disk_mb: 100,
            ports: tessera_allocator::Ranges::new([(31000, 31009)]),
            scalars: BTreeMap::new(),
        },
        reserved: [("analytics".to_string(), Resources::new(1.0, 512))].into(),
        attributes: vec![Attribute {
            name: "rack".into(),
            value: "r1".into(),
        }],
    };
    let agent = ("h".into(), "127.0.0.1:9".into(), "b".into());
    let (agent, _) = m
        .register_agent_offering(
            agent,
            Resources::new(2.0, 1024),
            offering,
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    let mut subscribe = |name: &str, role: &str| {
        let (fw, rx, _) = subscribe_alice(&mut m, name, role, None);
        (fw, rx)
    };
    let frameworks = [subscribe("web", "web"), subscribe("an", "analytics")];
    (m, agent, frameworks)
}

#[tokio::test]
async fn reserved_resources_go_to_their_role_and_extras_ride_with_unreserved_offers() {
    let now = Instant::now();
    let (mut m, agent, [(web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
    m.allocate(now);
    let web_offers = offers(&drain(&mut web_rx));
    let an_offers = offers(&drain(&mut an_rx));
    // analytics (lower name, equal shares) takes the unreserved pool first, then its
    // reservation; web gets nothing this round.
    assert!(web_offers.is_empty(), "{web_offers:?}");
    let reserved = an_offers
        .iter()
        .find(|o| o.reservation_role == "analytics")
        .unwrap();
    assert_eq!(reserved.resources.as_ref().unwrap().cpus, 1.0);
    assert!(reserved.resources.as_ref().unwrap().ports.is_empty());
    let unreserved = an_offers
        .iter()
        .find(|o| o.reservation_role.is_empty())
        .unwrap();
    let r = unreserved.resources.as_ref().unwrap();
    assert_eq!((r.cpus, r.disk_mb), (2.0, 100));
    assert_eq!(
        r.ports,
        [pb::Range {
            begin: 31000,
            end: 31009
        }]
    );
    assert_eq!(unreserved.attributes[0].value, "r1");
    // Offers of two pools cannot be pooled in one accept.
    let both = pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![reserved.id.clone(), unreserved.id.clone()],
        ..Default::default()
    };
    let err = m.accept(both, "alice", now).unwrap_err();
    assert!(
        err.message()
            .contains("accept reserved and unreserved offers separately")
    );
    // analytics declines both for a long time: web gets the unreserved pool (with the
    // ports), never the reservation.
    let ids = vec![reserved.id.clone(), unreserved.id.clone()];
    m.decline(&an, "alice", &ids, 3600.0, now).unwrap();
    m.allocate(now);
    let web_offers = offers(&drain(&mut web_rx));
    assert_eq!(web_offers.len(), 1, "{web_offers:?}");
    assert!(web_offers[0].reservation_role.is_empty());
    assert_eq!(web_offers[0].resources.as_ref().unwrap().ports.len(), 1);
    // A launch naming a port outside the offer is refused and changes nothing.
    let mut bad = launch("e", 1.0, 256);
    bad.resources.as_mut().unwrap().ports = vec![pb::Range {
        begin: 8080,
        end: 8080,
    }];
    let req = |l: pb::ExecutorLaunch| pb::AcceptRequest {
        framework_id: web.clone(),
        offer_ids: vec![web_offers[0].id.clone()],
        launches: vec![l],
        ..Default::default()
    };
    let err = m.accept(req(bad), "alice", now).unwrap_err();
    assert!(
        err.message().contains("names ports 8080"),
        "{}",
        err.message()
    );
    assert!(m.offers.contains_key(&web_offers[0].id));
    let mut good = launch("e", 1.0, 256);
    good.resources.as_mut().unwrap().ports = vec![pb::Range {
        begin: 31003,
        end: 31003,
    }];
    m.accept(req(good), "alice", now).unwrap();
    let a = &m.agents[&agent];
    assert_eq!(a.free_extras.ports.to_string(), "31000-31002,31004-31009");
    // The executor ends: its port is free again.
    m.update_executor(
        &web,
        "e",
        &agent,
        pb::ExecutorState::Finished,
        String::new(),
    );
    assert_eq!(
        m.agents[&agent].free_extras.ports.to_string(),
        "31000-31009"
    );
    let json = serde_json::to_value(m.snapshot()).unwrap();
    let shown = &json["agents"][0];
    assert_eq!(shown["attributes"]["rack"], "r1");
    assert_eq!(shown["extras"]["ports"], "31000-31009");
    assert_eq!(shown["reservations"][0]["role"], "analytics");
    assert_eq!(shown["reservations"][0]["dynamic"], false);
    assert_eq!(shown["resources"]["cpus"], 3.0);
}

#[tokio::test]
async fn reserve_then_unreserve_moves_resources_between_the_pools() {
    let now = Instant::now();
    let (mut m, agent, [(_web, mut web_rx), (an, mut an_rx)]) = reserving_setup(now);
    m.allocate(now);
    drop(drain(&mut web_rx));
    let an_offers = offers(&drain(&mut an_rx));
    let unreserved = an_offers
        .iter()
        .find(|o| o.reservation_role.is_empty())
        .unwrap();
    let reserved = an_offers
        .iter()
        .find(|o| !o.reservation_role.is_empty())
        .unwrap();
    let op = |o: pb::operation::Operation| pb::Operation { operation: Some(o) };
    let amount = |cpus: f64, mem_mb: u64| pb::Resources {
        cpus,
        mem_mb,
        ..Default::default()
    };
    // Nothing was reserved by RESERVE yet: the static reservation cannot be unreserved.
    let unreserve = |offer: &str, cpus, mem_mb| pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![offer.to_string()],
        operations: vec![op(pb::operation::Operation::Unreserve(amount(
            cpus, mem_mb,
        )))],
        ..Default::default()
    };
    let err = m
        .accept(unreserve(&reserved.id, 1.0, 0), "alice", now)
        .unwrap_err();
    assert!(
        err.message().contains("static reservation"),
        "{}",
        err.message()
    );
    let reserve = pb::AcceptRequest {
        framework_id: an.clone(),
        offer_ids: vec![unreserved.id.clone()],
        operations: vec![op(pb::operation::Operation::Reserve(amount(1.0, 256)))],
        ..Default::default()
    };
    m.accept(reserve, "alice", now).unwrap();
    m.decline(&an, "alice", std::slice::from_ref(&reserved.id), 0.0, now)
        .unwrap();
    assert_eq!(
        m.agents[&agent].dynamic_reserved["analytics"],
        Resources::new(1.0, 256)
    );
    // The next offer of the reservation holds static and dynamic parts.
    m.allocate(now);
    let an_offers = offers(&drain(&mut an_rx));
    let reserved = an_offers
        .iter()
        .find(|o| o.reservation_role == "analytics")
        .unwrap();
    assert_eq!(reserved.resources.as_ref().unwrap().cpus, 2.0);
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, None)),
        Some(Resources::new(1.0, 768))
    );
    let json = serde_json::to_value(m.snapshot()).unwrap();
    assert_eq!(json["agents"][0]["reservations"][1]["dynamic"], true);
    m.accept(unreserve(&reserved.id, 1.0, 256), "alice", now)
        .unwrap();
    assert!(m.agents[&agent].dynamic_reserved.is_empty());
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, None)),
        Some(Resources::new(2.0, 1024))
    );
    assert_eq!(
        m.allocator.total_of(&pool_id(&agent, Some("analytics"))),
        Some(Resources::new(1.0, 512))
    );
    assert_eq!(m.allocator.cluster_total(), Resources::new(3.0, 1536));
}

/// A master with two agents of 2 CPUs and 1 GiB, and `alice`'s framework subscribed
/// in roles `a` and `b` with MULTI_ROLE, with its events.
fn multi_role_setup(
    now: Instant,
) -> (
    MasterState,
    String,
    UnboundedReceiver<Result<pb::Event, Status>>,
) {
    let mut m = MasterState::new(&config(Duration::ZERO));
    for (host, principal) in [("h1", "b1"), ("h2", "b2")] {
        m.register_agent(
            (host.into(), format!("{host}:9"), principal.into()),
            Resources::new(2.0, 1024),
            "posix".into(),
            client(),
            now,
        )
        .unwrap();
    }
    let subscription = Subscription {
        name: "fw".into(),
        roles: vec!["b".into(), "a".into()],
        capabilities: vec![roles::MULTI_ROLE.into()],
        ..Subscription::default()
    };
    let (tx, rx) = unbounded_channel();
    let (fw, _) = m
        .subscribe_framework(subscription, "alice".into(), tx)
        .unwrap();
    (m, fw, rx)
}

#[tokio::test]
async fn several_roles_need_multi_role_and_are_shown() {
    let mut m = MasterState::new(&config(Duration::ZERO));
    let subscription = Subscription {
        name: "fw".into(),
        roles: vec!["a".into(), "b".into()],
        ..Subscription::default()
    };
    let (tx, _rx) = unbounded_channel();
    let err = m
        .subscribe_framework(subscription, "alice".into(), tx)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("claim the MULTI_ROLE capability"),
        "{}",
        err.message()
    );
    assert!(m.frameworks.is_empty());

    let (mut m, fw, _rx) = multi_role_setup(Instant::now());
    let shown = m.snapshot();
    assert_eq!(shown.frameworks[0].roles, ["a", "b"]);
    assert_eq!(shown.frameworks[0].role, "a");
    assert_eq!(m.frameworks[&fw].info().roles, ["a", "b"]);
    m.suppress(&fw, "alice", &["a".into()]).unwrap();
    let shown = m.snapshot();
    assert_eq!(shown.frameworks[0].suppressed_roles, ["a"]);
    assert!(!shown.frameworks[0].suppressed, "still wants offers in b");
    let err = m.suppress(&fw, "alice", &["c".into()]).unwrap_err();
    assert!(
        err.message().contains("not in role \"c\""),
        "{}",
        err.message()
    );
    m.revive(&fw, "alice", &[]).unwrap();
    assert!(m.snapshot().frameworks[0].suppressed_roles.is_empty());
}

#[tokio::test]
async fn resources_go_back_to_the_role_they_were_offered_in() {
    let now = Instant::now();
    let (mut m, fw, mut rx) = multi_role_setup(now);
    m.allocate(now);
    let made = offers(&drain(&mut rx));
    let in_role = |role: &str| {
        made.iter()
            .find(|o| o.allocation_role == role)
            .unwrap_or_else(|| panic!("an offer in {role}: {made:?}"))
            .clone()
    };
    let (in_a, in_b) = (in_role("a"), in_role("b"));
    let held = |m: &MasterState, role: &str| m.allocator.allocation_in(&fw, role);
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    assert_eq!(held(&m, "b"), Resources::new(2.0, 1024));
    assert_eq!(m.snapshot().offers.len(), 2);
    // Accept b's offer with one executor: the rest goes back to b, the executor keeps b.
    accept_one(&mut m, &fw, in_b.clone(), launch("e", 1.0, 256), now);
    assert_eq!(held(&m, "b"), Resources::new(1.0, 256));
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    let key = (fw.clone(), "e".to_string());
    assert_eq!(m.executors[&key].allocation_role, "b");
    m.update_executor(
        &fw,
        "e",
        &in_b.agent_id,
        pb::ExecutorState::Running,
        String::new(),
    );
    m.update_executor(
        &fw,
        "e",
        &in_b.agent_id,
        pb::ExecutorState::Finished,
        String::new(),
    );
    assert_eq!(held(&m, "b"), Resources::ZERO);
    assert_eq!(held(&m, "a"), Resources::new(2.0, 1024));
    // Declining a's offer gives it back to a.
    m.decline(&fw, "alice", &[in_a.id], 0.0, now).unwrap();
    assert_eq!(held(&m, "a"), Resources::ZERO);
}
