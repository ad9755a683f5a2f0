//! The session's own tables: what is cached and where, its jobs, its executors, and the
//! cluster it runs on.

use tessera_driver::{Driver, ExecutorRow, HeldBroadcast, JobInfo, JobState, StorageRow};
use tessera_framework::{
    ClusterStatus, Extras, FrameworkSummary, MasterEndpoint, ReservationSummary, Resources,
};
use tessera_table::Table;

/// One of the session's reports, named as the REPL command that shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `:storage`: cached RDDs, their partitions, memory, executors and hosts; and the
    /// broadcast variables the session holds, if any.
    Storage,
    /// `:jobs`: the session's jobs.
    Jobs,
    /// `:executors`: the session's executors.
    Executors,
    /// `:cluster`: the cluster's agents, frameworks, offers and executors.
    Cluster,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `:cluster` in a session that has no master.
    #[error(
        "this session runs its executors itself (local[N]), without a master: `:cluster` needs \
         --master local-cluster[..] or tessera://HOST:PORT"
    )]
    NoMaster,
    /// The master did not answer.
    #[error("cannot read the cluster's status: {0}")]
    Cluster(String),
}

impl Report {
    /// The report a command line such as `:storage` asks for, if it is one.
    pub fn from_command(line: &str) -> Option<Report> {
        match line.split_whitespace().next()? {
            ":storage" => Some(Report::Storage),
            ":jobs" => Some(Report::Jobs),
            ":executors" => Some(Report::Executors),
            ":cluster" => Some(Report::Cluster),
            _ => None,
        }
    }

    /// The report's tables, now. `:cluster` asks the master, so call it outside async code.
    pub fn tables(self, driver: &Driver) -> Result<Vec<Table>, ReportError> {
        Ok(match self {
            Report::Storage => {
                let held = driver.broadcasts();
                let mut tables = vec![storage(&driver.storage())];
                if !held.is_empty() {
                    tables.push(broadcasts(&held));
                }
                tables
            }
            Report::Jobs => vec![jobs(&driver.jobs())],
            Report::Executors => vec![executors(&driver.executors())],
            Report::Cluster => {
                let master = driver.master().ok_or(ReportError::NoMaster)?;
                cluster(&cluster_status(&master)?)
            }
        })
    }
}

/// The status of the cluster at `master`, read on a runtime of its own.
pub fn cluster_status(master: &MasterEndpoint) -> Result<ClusterStatus, ReportError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ReportError::Cluster(e.to_string()))?;
    runtime
        .block_on(tessera_framework::cluster_status(master))
        .map_err(|e| ReportError::Cluster(e.to_string()))
}

/// `n` bytes in the largest binary unit that keeps the number at least 1.
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

fn storage(rows: &[StorageRow]) -> Table {
    Table::new(
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

fn broadcasts(rows: &[HeldBroadcast]) -> Table {
    Table::new(
        &["broadcast", "holds", "size"],
        rows.iter()
            .map(|b| vec![b.id.to_string(), b.about.clone(), bytes(b.bytes)]),
    )
}

fn jobs(rows: &[JobInfo]) -> Table {
    Table::new(
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

fn executors(rows: &[ExecutorRow]) -> Table {
    Table::new(
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

/// CPUs and memory, then disk, ports and custom scalars when there are any:
/// `4 cpus, 8192 MiB; disk:1000; ports:[31000-32000]; gpus:2`.
fn resources(r: &Resources, extras: &Extras) -> String {
    let cpus_mem = format!("{} cpus, {} MiB", r.cpus, r.mem_mb);
    match extras.is_empty() {
        true => cpus_mem,
        false => format!("{cpus_mem}; {extras}"),
    }
}

/// An agent's reservations: `analytics: 1 cpus, 512 MiB (static)`, one a line.
fn reservations(list: &[ReservationSummary]) -> String {
    let lines: Vec<String> = list
        .iter()
        .map(|r| {
            let how = if r.dynamic { "dynamic" } else { "static" };
            format!(
                "{}: {} ({how})",
                r.role,
                resources(&r.resources, &Extras::default())
            )
        })
        .collect();
    lines.join("\n")
}

/// Whether a framework wants offers: `wanted`, `suppressed` (in all its roles), or
/// `suppressed in a,b` (in some).
fn offers_wanted(f: &FrameworkSummary) -> String {
    if f.suppressed {
        "suppressed".to_string()
    } else if f.suppressed_roles.is_empty() {
        "wanted".to_string()
    } else {
        format!("suppressed in {}", f.suppressed_roles.join(","))
    }
}

/// The cluster's agents, frameworks, offers and executors, a table each.
pub fn cluster(status: &ClusterStatus) -> Vec<Table> {
    let res = |r: &Resources| resources(r, &Extras::default());
    vec![
        Table::new(
            &[
                "agent",
                "host",
                "address",
                "isolation",
                "attributes",
                "total",
                "reserved",
                "allocated",
                "offered",
            ],
            status.agents.iter().map(|a| {
                let attributes: Vec<String> =
                    a.attributes.iter().map(|at| at.to_string()).collect();
                vec![
                    a.id.clone(),
                    a.hostname.clone(),
                    a.address.clone(),
                    a.isolation.clone(),
                    attributes.join(";"),
                    resources(&a.total, &a.extras),
                    reservations(&a.reservations),
                    res(&a.allocated),
                    res(&a.offered),
                ]
            }),
        )
        .titled("Agents"),
        Table::new(
            &[
                "framework",
                "name",
                "roles",
                "allocated",
                "offered",
                "dominant share",
                "connected",
                "offers",
            ],
            status.frameworks.iter().map(|f| {
                vec![
                    f.id.clone(),
                    f.name.clone(),
                    f.roles.join(","),
                    res(&f.allocated),
                    res(&f.offered),
                    format!("{:.3}", f.dominant_share),
                    f.connected.to_string(),
                    offers_wanted(f),
                ]
            }),
        )
        .titled("Frameworks"),
        Table::new(
            &[
                "offer",
                "framework",
                "role",
                "agent",
                "reserved for",
                "resources",
            ],
            status.offers.iter().map(|(f, o)| {
                vec![
                    o.id.clone(),
                    f.clone(),
                    o.allocation_role.clone(),
                    o.agent_id.clone(),
                    o.reservation.clone().unwrap_or_default(),
                    resources(&o.resources, &o.extras),
                ]
            }),
        )
        .titled("Offers"),
        Table::new(
            &[
                "executor",
                "framework",
                "agent",
                "state",
                "resources",
                "memory used",
                "cpu time",
                "message",
            ],
            status.executors.iter().map(|e| {
                let running = !e.state.is_terminal();
                vec![
                    e.executor_id.clone(),
                    e.framework_id.clone(),
                    e.agent_id.clone(),
                    e.state.to_string(),
                    resources(&e.resources, &e.extras),
                    if running {
                        bytes(e.memory_used_bytes)
                    } else {
                        String::new()
                    },
                    if running {
                        format!("{:.1} s", e.cpu_seconds)
                    } else {
                        String::new()
                    },
                    e.message.lines().next().unwrap_or("").to_string(),
                ]
            }),
        )
        .titled("Executors"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_wanted_says_in_which_roles_offers_are_suppressed() {
        let mut f = FrameworkSummary {
            id: "f".into(),
            name: "f".into(),
            user: String::new(),
            allocated: Resources::ZERO,
            offered: Resources::ZERO,
            dominant_share: 0.0,
            connected: true,
            role: "a".into(),
            roles: vec!["a".into(), "b".into()],
            suppressed: false,
            suppressed_roles: Vec::new(),
            failover_timeout: std::time::Duration::ZERO,
            capabilities: Vec::new(),
        };
        assert_eq!(offers_wanted(&f), "wanted");
        f.suppressed_roles = vec!["a".into()];
        assert_eq!(offers_wanted(&f), "suppressed in a");
        f.suppressed = true;
        assert_eq!(offers_wanted(&f), "suppressed");
    }

    #[test]
    fn commands_name_reports_and_bytes_read_as_people_write_them() {
        assert_eq!(Report::from_command(":storage"), Some(Report::Storage));
        assert_eq!(Report::from_command("  :cluster "), Some(Report::Cluster));
        assert_eq!(Report::from_command(":save x"), None);
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn resources_show_extras_and_reservations_their_role_and_kind() {
        let extras = Extras {
            disk_mb: 100,
            ports: tessera_framework::Ranges::new([(31000, 31010)]),
            scalars: [("gpus".to_string(), 2.0)].into(),
        };
        assert_eq!(
            resources(&Resources::new(2.0, 1024), &extras),
            "2 cpus, 1024 MiB; disk:100; ports:[31000-31010]; gpus:2"
        );
        let reserved = [
            ReservationSummary {
                role: "analytics".into(),
                resources: Resources::new(1.0, 512),
                dynamic: false,
            },
            ReservationSummary {
                role: "analytics".into(),
                resources: Resources::new(0.5, 0),
                dynamic: true,
            },
        ];
        assert_eq!(
            reservations(&reserved),
            "analytics: 1 cpus, 512 MiB (static)\nanalytics: 0.5 cpus, 0 MiB (dynamic)"
        );
    }
}
