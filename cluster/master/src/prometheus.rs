//! The master's `/metrics` page: its counters ([`Metrics`]) and gauges of the moment (from a
//! [`Snapshot`]) in Prometheus' text format ([`render`]).
//!
//! The text is written by hand: a few dozen lines of a stable format do not need a metrics
//! library. Names follow Prometheus' conventions (`_total` for counters, base units: seconds),
//! and cover what Mesos' `/metrics/snapshot` shows operators of its master and allocator.

use std::fmt::Write;

use crate::metrics::{ALLOCATION_BUCKETS, ENDINGS, Histogram, Metrics};
use crate::state::snapshot::{Amount, Snapshot, executor_state_name};

/// Writes one metric family: its HELP and TYPE lines, then each `(suffix, value)` sample, the
/// suffix following the name: labels (`{state="lost"}`), or a histogram's `_bucket{le="1"}`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (suffix, value) in samples {
        let _ = writeln!(out, "{name}{suffix} {value}");
    }
}

/// One unlabelled sample.
fn one(value: f64) -> [(String, f64); 1] {
    [(String::new(), value)]
}

/// `{resource="cpus"}` and `{resource="mem_bytes"}` samples of `amount`.
fn by_resource(amount: Amount) -> [(String, f64); 2] {
    [
        (r#"{resource="cpus"}"#.to_string(), amount.cpus),
        (
            r#"{resource="mem_bytes"}"#.to_string(),
            (amount.mem_mb as f64) * 1024.0 * 1024.0,
        ),
    ]
}

fn sum(amounts: impl Iterator<Item = Amount>) -> Amount {
    amounts.fold(Amount::default(), |acc, a| Amount {
        cpus: acc.cpus + a.cpus,
        mem_mb: acc.mem_mb + a.mem_mb,
    })
}

/// The counters of `metrics` and the gauges of `now`, in Prometheus' text format (0.0.4).
pub(crate) fn render(metrics: &Metrics, now: &Snapshot) -> String {
    let mut out = String::new();
    render_counters(&mut out, metrics);
    render_allocation(&mut out, &metrics.allocation_runs);
    render_gauges(&mut out, now);
    out
}

fn render_counters(out: &mut String, m: &Metrics) {
    let counters: [(&str, &str, u64); 10] = [
        (
            "reclaims",
            "Frameworks asked to give back what they hold beyond their fair share.",
            m.reclaims,
        ),
        ("offers_made", "Offers made to frameworks.", m.offers_made),
        ("offers_accepted", "Offers accepted.", m.offers_accepted),
        ("offers_declined", "Offers declined.", m.offers_declined),
        (
            "offers_rescinded",
            "Offers the master took back (their agent was lost, or they timed out).",
            m.offers_rescinded,
        ),
        (
            "executors_launched",
            "Executors launched on agents.",
            m.executors_launched,
        ),
        (
            "agents_registered",
            "Agent registrations.",
            m.agents_registered,
        ),
        (
            "agents_lost",
            "Agents removed: silent past the agent timeout, or replaced by a restart.",
            m.agents_lost,
        ),
        (
            "frameworks_subscribed",
            "Frameworks that subscribed (not counting re-subscriptions).",
            m.frameworks_subscribed,
        ),
        (
            "frameworks_removed",
            "Frameworks removed (torn down, or gone past their failover timeout).",
            m.frameworks_removed,
        ),
    ];
    for (name, help, value) in counters {
        let name = format!("tessera_master_{name}_total");
        family(out, &name, "counter", help, &one(value as f64));
    }
    let ended: Vec<(String, f64)> = ENDINGS
        .iter()
        .zip(m.executors_ended)
        .map(|(state, n)| {
            let state = executor_state_name(*state).to_lowercase();
            (format!(r#"{{state="{state}"}}"#), n as f64)
        })
        .collect();
    family(
        out,
        "tessera_master_executors_ended_total",
        "counter",
        "Executors that ended, by how (lost: their agent was lost, or could not be reached).",
        &ended,
    );
}

fn render_allocation(out: &mut String, h: &Histogram) {
    family(
        out,
        "tessera_master_allocation_run_last_seconds",
        "gauge",
        "How long the last allocation run took.",
        &one(h.last),
    );
    let mut samples = Vec::new();
    let mut cumulative = 0;
    for (bound, n) in ALLOCATION_BUCKETS.iter().zip(h.buckets) {
        cumulative += n;
        samples.push((format!(r#"_bucket{{le="{bound}"}}"#), cumulative as f64));
    }
    samples.push((r#"_bucket{le="+Inf"}"#.to_string(), h.count as f64));
    samples.push(("_sum".to_string(), h.sum));
    samples.push(("_count".to_string(), h.count as f64));
    family(
        out,
        "tessera_master_allocation_run_seconds",
        "histogram",
        "How long allocation runs took.",
        &samples,
    );
}

fn render_gauges(out: &mut String, s: &Snapshot) {
    let connected = s.frameworks.iter().filter(|f| f.connected).count();
    let running = s
        .executors
        .iter()
        .filter(|e| !e.state.is_terminal())
        .count();
    let gauges: [(&str, &str, Vec<(String, f64)>); 7] = [
        (
            "agents",
            "Registered agents.",
            one(s.agents.len() as f64).into(),
        ),
        (
            "frameworks",
            "Subscribed frameworks, by whether their subscription stream is connected.",
            vec![
                (r#"{connected="true"}"#.to_string(), connected as f64),
                (
                    r#"{connected="false"}"#.to_string(),
                    (s.frameworks.len() - connected) as f64,
                ),
            ],
        ),
        (
            "offers_outstanding",
            "Offers made and not yet answered.",
            one(s.offers.len() as f64).into(),
        ),
        (
            "executors_active",
            "Executors starting or running.",
            one(running as f64).into(),
        ),
        (
            "resources_total",
            "Resources of the registered agents.",
            by_resource(sum(s.agents.iter().map(|a| a.resources))).into(),
        ),
        (
            "resources_allocated",
            "Resources in use by executors.",
            by_resource(sum(s.agents.iter().map(|a| a.allocated))).into(),
        ),
        (
            "resources_offered",
            "Resources in outstanding offers.",
            by_resource(sum(s.agents.iter().map(|a| a.offered))).into(),
        ),
    ];
    for (name, help, samples) in gauges {
        family(
            out,
            &format!("tessera_master_{name}"),
            "gauge",
            help,
            &samples,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tessera_cluster_proto::master as pb;

    #[test]
    fn allocation_runs_are_a_cumulative_histogram_with_the_last_run_apart() {
        let mut metrics = Metrics::default();
        for seconds in [0.0003, 0.002, 5.0] {
            metrics.allocation_ran(Duration::from_secs_f64(seconds));
        }
        let mut text = String::new();
        render_allocation(&mut text, &metrics.allocation_runs);
        for line in [
            "# TYPE tessera_master_allocation_run_seconds histogram",
            "tessera_master_allocation_run_seconds_bucket{le=\"0.00025\"} 0",
            "tessera_master_allocation_run_seconds_bucket{le=\"0.0005\"} 1",
            "tessera_master_allocation_run_seconds_bucket{le=\"0.0025\"} 2",
            "tessera_master_allocation_run_seconds_bucket{le=\"1\"} 2",
            "tessera_master_allocation_run_seconds_bucket{le=\"+Inf\"} 3",
            "tessera_master_allocation_run_seconds_count 3",
            "tessera_master_allocation_run_last_seconds 5",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("tessera_master_allocation_run_seconds_sum "))
            .expect("a _sum line");
        assert!((sum.parse::<f64>().unwrap() - 5.0023).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn every_ending_is_counted_apart() {
        let mut metrics = Metrics::default();
        metrics.executor_ended(pb::ExecutorState::Lost);
        metrics.executor_ended(pb::ExecutorState::Lost);
        metrics.executor_ended(pb::ExecutorState::Finished);
        // Not an ending: ignored.
        metrics.executor_ended(pb::ExecutorState::Running);
        let mut text = String::new();
        render_counters(&mut text, &metrics);
        for line in [
            "tessera_master_executors_ended_total{state=\"lost\"} 2",
            "tessera_master_executors_ended_total{state=\"finished\"} 1",
            "tessera_master_executors_ended_total{state=\"failed\"} 0",
            "tessera_master_executors_ended_total{state=\"killed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
