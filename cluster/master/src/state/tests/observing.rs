//! What the master shows of itself: its Prometheus metrics and its state as JSON.

use super::*;

/// Every sample line of the Prometheus text, "name{labels} value", as name{labels} -> value;
/// fails unless each family has its HELP and TYPE lines before its samples.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut described = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            described.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let name = series.split('{').next().unwrap();
        assert!(
            described
                .iter()
                .any(|family| name.starts_with(family.as_str())),
            "{name} has no TYPE line before it"
        );
        samples.insert(series.to_string(), value.parse().expect("a number"));
    }
    samples
}

#[tokio::test]
async fn metrics_count_offers_launches_losses_and_allocation_runs() {
    let (mut m, agent, fw, _rx, offer) = setup(Duration::ZERO);
    let now = Instant::now();
    run_executor(&mut m, &agent, &fw, offer, now);
    m.allocate(now);
    let rest: Vec<String> = m.offers.keys().cloned().collect();
    m.decline(&fw, "alice", &rest, 0.0, now).unwrap();
    m.allocate(now);
    let before = samples(&crate::prometheus::render(&m.metrics, &m.snapshot()));
    assert_eq!(before["tessera_master_agents"], 1.0);
    assert_eq!(before["tessera_master_executors_active"], 1.0);
    assert_eq!(before["tessera_master_offers_outstanding"], 1.0);
    assert_eq!(
        before[r#"tessera_master_resources_total{resource="cpus"}"#],
        2.0
    );
    assert_eq!(
        before[r#"tessera_master_resources_allocated{resource="mem_bytes"}"#],
        256.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        before[r#"tessera_master_frameworks{connected="true"}"#],
        1.0
    );
    m.remove_agent(&agent, "no heartbeat");
    let after = samples(&crate::prometheus::render(&m.metrics, &m.snapshot()));
    for (series, value) in [
        ("tessera_master_offers_made_total", 3.0),
        ("tessera_master_offers_accepted_total", 1.0),
        ("tessera_master_offers_declined_total", 1.0),
        ("tessera_master_offers_rescinded_total", 1.0),
        ("tessera_master_executors_launched_total", 1.0),
        (r#"tessera_master_executors_ended_total{state="lost"}"#, 1.0),
        ("tessera_master_agents_registered_total", 1.0),
        ("tessera_master_agents_lost_total", 1.0),
        ("tessera_master_frameworks_subscribed_total", 1.0),
        ("tessera_master_agents", 0.0),
        ("tessera_master_executors_active", 0.0),
        ("tessera_master_allocation_run_seconds_count", 3.0),
    ] {
        assert_eq!(after.get(series), Some(&value), "{series}");
    }
}

#[tokio::test]
async fn the_snapshot_as_json_shows_roles_offers_and_executors() {
    let now = Instant::now();
    let quota = tessera_allocator::Quota {
        guarantee: Resources::new(1.0, 128),
        limit: Some(Resources::new(4.0, 4096)),
    };
    let config = MasterConfig {
        role_weights: vec![("etl".into(), 2.0)],
        role_quotas: vec![("etl".into(), quota)],
        ..MasterConfig::default()
    };
    let (mut m, agent, fw, _rx, offer) = setup_with(&config, now);
    run_executor(&mut m, &agent, &fw, offer, now);
    m.allocate(now);
    let json = serde_json::to_value(m.snapshot()).unwrap();
    let amount = |cpus: f64, mem_mb: u64| serde_json::json!({"cpus": cpus, "mem_mb": mem_mb});
    assert_eq!(json["allocator"], "drf");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json.get("reservations").is_none(), "no reservations yet");
    let a = &json["agents"][0];
    assert_eq!(a["id"], agent.as_str());
    assert_eq!(
        (&a["hostname"], &a["principal"]),
        (&"h".into(), &"b".into())
    );
    assert_eq!(a["resources"], amount(2.0, 1024));
    assert_eq!(a["allocated"], amount(1.0, 256));
    // What is left less the headroom kept for etl's unmet guarantee.
    let left = amount(0.0, 640);
    assert_eq!(a["offered"], left);
    let f = &json["frameworks"][0];
    assert_eq!(
        (&f["id"], &f["name"], &f["role"]),
        (&fw.as_str().into(), &"fw".into(), &"*".into())
    );
    assert_eq!(
        (&f["connected"], &f["suppressed"]),
        (&true.into(), &false.into())
    );
    assert_eq!(f["allocated"], amount(1.0, 256));
    // (256 + 640) MiB of 1024: memory is its dominant resource.
    assert_eq!(f["dominant_share"], 0.875);
    let roles = json["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[0]["name"], "*");
    assert_eq!(roles[0]["frameworks"], serde_json::json!([fw]));
    assert_eq!(roles[0]["offered"], left);
    assert_eq!(roles[0]["quota"]["limit"], serde_json::Value::Null);
    assert_eq!(
        (&roles[1]["name"], &roles[1]["weight"]),
        (&"etl".into(), &2.0.into())
    );
    assert_eq!(roles[1]["quota"]["guarantee"], amount(1.0, 128));
    assert_eq!(roles[1]["quota"]["limit"], amount(4.0, 4096));
    let e = &json["executors"][0];
    assert_eq!(
        (&e["executor_id"], &e["state"]),
        (&"e".into(), &"RUNNING".into())
    );
    assert_eq!(e["resources"], amount(1.0, 256));
    assert_eq!(json["offers"][0]["hostname"], "h");
    assert_eq!(json["offers"][0]["resources"], left);
    // gRPC's ClusterStatus says the same.
    let status = m.cluster_status();
    assert_eq!(status.agents[0].id, agent);
    assert_eq!(status.executors[0].state, pb::ExecutorState::Running as i32);
}
