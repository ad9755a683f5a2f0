//! Results that are tables are shown as tables.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tessera_session::{ExecutorRow, JobInfo, JobState, StorageRow};

pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn storage(rows: &[StorageRow]) -> Table {
    table(
        &[
            "RDD",
            "name",
            "records",
            "level",
            "cached partitions",
            "in memory",
            "executors",
        ],
        rows.iter().map(|r| {
            vec![
                r.rdd.to_string(),
                r.name.clone(),
                r.element_type.clone(),
                r.level.to_string(),
                format!("{}/{}", r.cached_partitions, r.partitions),
                bytes(r.bytes),
                r.executors
                    .iter()
                    .map(|c| {
                        format!(
                            "{} on {}: {} ({})",
                            c.executor,
                            c.host,
                            c.partitions,
                            bytes(c.bytes)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        }),
    )
}

pub fn jobs(rows: &[JobInfo]) -> Table {
    table(
        &[
            "job",
            "description",
            "stages",
            "tasks",
            "shuffled",
            "state",
            "duration",
        ],
        rows.iter().map(|j| {
            let state = match &j.state {
                JobState::Running => "running".to_string(),
                JobState::Succeeded => "succeeded".to_string(),
                JobState::Cancelled => "cancelled".to_string(),
                JobState::Failed(m) => format!("failed: {}", m.lines().next().unwrap_or("")),
            };
            let duration = j.duration.unwrap_or_else(|| j.started.elapsed());
            vec![
                j.id.to_string(),
                j.description.clone(),
                j.stages.to_string(),
                format!(
                    "{}/{} ({} from cache)",
                    j.tasks_done, j.tasks_total, j.tasks_from_cache
                ),
                bytes(j.shuffle_bytes),
                state,
                format!("{:.3} s", duration.as_secs_f64()),
            ]
        }),
    )
}

pub fn executors(rows: &[ExecutorRow]) -> Table {
    table(
        &["executor", "address", "host", "pid", "cores", "memory"],
        rows.iter().map(|e| {
            vec![
                e.id.clone(),
                e.address.clone(),
                e.host.clone(),
                e.pid.to_string(),
                e.cores.to_string(),
                bytes(e.memory_bytes),
            ]
        }),
    )
}
