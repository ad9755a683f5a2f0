//! `tessera`: the interactive REPL (`tessera`), the script runner (`tessera run SCRIPT.rs`) and
//! cluster inspection (`tessera cluster status`) and command tasks (`tessera cluster exec`).

mod commands;
mod input;
mod interactive;
mod notebook;
mod output;
mod progress;
mod script;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_session::{ClusterOptions, MasterUrl, SessionConfig, parse_master_url};

#[derive(Parser)]
#[command(version, about = "Interactive cluster computing in Rust")]
struct Cli {
    /// Where executors come from: local[N] (default local[*]), local-cluster[A,C,M] or tessera://HOST:PORT.
    #[arg(long, global = true, env = "TESSERA_MASTER", default_value = "local[*]", value_parser = parse_master)]
    master: MasterUrl,
    /// Memory per executor for cached partitions, in MiB.
    #[arg(
        long,
        global = true,
        env = "TESSERA_EXECUTOR_MEMORY_MB",
        default_value_t = 1024
    )]
    executor_memory_mb: u64,
    /// How long a task waits for a free slot where its data is (cached on an executor, then on
    /// the host of its input file) before running elsewhere, in milliseconds; 0 disables
    /// delay scheduling.
    #[arg(long, global = true, default_value_t = tessera_session::DEFAULT_LOCALITY_WAIT.as_millis() as u64)]
    locality_wait_ms: u64,
    /// Append each finished task's metrics (executor, pid, cached or computed, its run time,
    /// its wait for a core on its executor, its scheduler delay as Spark's task metrics give
    /// it, how many threads its records went through, and when the driver sent it and had its
    /// result) to FILE as JSON lines.
    #[arg(long, global = true)]
    task_metrics: Option<PathBuf>,
    /// This session's credentials on a cluster: the directory `tessera cluster init-credentials
    /// DIR --framework NAME` made as DIR/frameworks/NAME.
    #[arg(long, global = true, env = "TESSERA_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Where the driver listens for its executors (default: 127.0.0.1, or with
    /// tessera://HOST:PORT the address this host uses to reach the master).
    #[arg(long, global = true, env = "TESSERA_BIND")]
    bind: Option<std::net::IpAddr>,
    /// The host executors dial to reach the driver, when it is not the bound address.
    #[arg(long, global = true, env = "TESSERA_ADVERTISE_ADDRESS")]
    advertise_address: Option<String>,
    /// Executors to acquire on a cluster (default: one per agent).
    #[arg(long, global = true, env = "TESSERA_EXECUTORS")]
    executors: Option<usize>,
    /// CPUs (task threads) per executor on a cluster (default: all of an agent's offer).
    #[arg(long, global = true, env = "TESSERA_EXECUTOR_CORES")]
    executor_cores: Option<u32>,
    /// The role the session's resources count against on a cluster (its share, weight and
    /// quota; the master's `*` when not given).
    #[arg(long, global = true, env = "TESSERA_ROLE", default_value = "")]
    role: String,
    /// On a cluster, run executors only on agents whose attributes match, as Spark's
    /// spark.mesos.constraints: e.g. "rack:r1,r2;zone:z1" (each attribute present with one of
    /// its values; a name alone: present with any value).
    #[arg(long, global = true, env = "TESSERA_EXECUTOR_CONSTRAINTS", value_parser = tessera_session::Constraints::parse)]
    executor_constraint: Option<tessera_session::Constraints>,
    /// On a cluster, how long the master keeps this session's executors (and their cached
    /// partitions) while the session is cut off from it — the master restarted, the network
    /// broke — and how long the session keeps subscribing again (default: 60).
    #[arg(long, global = true, env = "TESSERA_FAILOVER_TIMEOUT_S")]
    failover_timeout_s: Option<f64>,
    /// On a cluster, release executors idle for this many seconds, so that other sessions can
    /// use them (Spark's dynamic allocation; default: keep them). Executors holding shuffle
    /// outputs are kept, and those holding cached partitions too unless
    /// --dynamic-allocation-release-cached.
    #[arg(long, global = true, env = "TESSERA_EXECUTOR_IDLE_TIMEOUT_S")]
    executor_idle_timeout_s: Option<f64>,
    /// With --executor-idle-timeout-s, release idle executors holding cached partitions too
    /// (they are computed again from lineage when next needed).
    #[arg(long, global = true, env = "TESSERA_DYNAMIC_ALLOCATION_RELEASE_CACHED")]
    dynamic_allocation_release_cached: bool,
    /// On a cluster, let map outputs die with their executor (to be computed again from
    /// lineage) instead of having agents serve the copies executors leave (Spark's external
    /// shuffle service, on by default here).
    #[arg(long, global = true, env = "TESSERA_NO_SHUFFLE_SERVICE")]
    no_shuffle_service: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Replays a saved script (cells separated by `// %%` lines) or a Jupyter notebook's code
    /// cells (`.ipynb`), printing each result.
    Run {
        script: PathBuf,
        /// Run every cell even after one fails (still exit non-zero).
        #[arg(long)]
        keep_going: bool,
    },
    /// Works with a cluster: its status, and the credentials of its processes.
    Cluster {
        #[command(subcommand)]
        what: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Shows a cluster's agents (and how each isolates executors), frameworks, offers,
    /// allocations and executors with what they use (with --master tessera://HOST:PORT and
    /// --credentials).
    Status,
    /// Runs a command as a task on the cluster (as mesos-execute): waits for an offer of
    /// --cpus and --mem-mb (in --role), launches the command there, prints its state changes
    /// to stderr and exits with its exit status. Its stdout and stderr are files in its
    /// sandbox on the agent (the RUNNING line names it).
    Exec {
        /// CPUs for the command.
        #[arg(long)]
        cpus: f64,
        /// Memory for the command, in MiB; past it, the command is killed.
        #[arg(long)]
        mem_mb: u64,
        /// Give up when no offer fits within this many seconds.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Creates the cluster's CA in DIR/ca (unless it is there) and a credential directory for
    /// the master (DIR/master) and each agent and framework principal named (DIR/agents/NAME,
    /// DIR/frameworks/NAME) that has none yet; copy each to its machine and pass it as that
    /// process's --credentials. Keep DIR/ca/ca-key.pem secret.
    InitCredentials {
        dir: PathBuf,
        /// An agent to issue a certificate for (repeat for several).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// A framework principal (a user, a service) to issue a certificate for.
        #[arg(long = "framework")]
        frameworks: Vec<String>,
        /// How long the certificates are valid, in days.
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
}

fn parse_master(s: &str) -> Result<MasterUrl, String> {
    parse_master_url(s).map_err(|e| e.to_string())
}

/// How `command` compiles cells: a script runs as a whole and its compiled cells are kept, so
/// its loops over records are worth a slower compile; the REPL keeps cells quick to compile.
fn cell_optimisation(command: Option<&Command>) -> tessera_session::Optimisation {
    match command {
        Some(Command::Run { .. }) => tessera_session::Optimisation::THROUGHPUT,
        _ => tessera_session::Optimisation::INTERACTIVE,
    }
}

fn main() -> ExitCode {
    tessera_session::child_process_hook();
    tessera_logging::init("warn");
    let cli = Cli::parse();
    let config = SessionConfig {
        master: cli.master.clone(),
        executor_memory_mb: cli.executor_memory_mb,
        locality_wait: std::time::Duration::from_millis(cli.locality_wait_ms),
        task_metrics_log: cli.task_metrics.clone(),
        color: std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none(),
        cell_optimisation: cell_optimisation(cli.command.as_ref()),
        cluster: ClusterOptions {
            credentials: cli.credentials.clone(),
            bind: cli.bind,
            advertise_host: cli.advertise_address.clone(),
            executors: cli.executors,
            executor_cores: cli.executor_cores,
            role: cli.role.clone(),
            executor_constraints: cli.executor_constraint.clone().unwrap_or_default(),
            shuffle_service: if cli.no_shuffle_service {
                tessera_session::ShuffleService::Disabled
            } else {
                tessera_session::ShuffleService::Enabled
            },
            failover_timeout: cli
                .failover_timeout_s
                .map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
            dynamic_allocation: cli.executor_idle_timeout_s.map(|seconds| {
                tessera_session::DynamicAllocation {
                    idle_timeout: std::time::Duration::from_secs_f64(seconds.max(0.0)),
                    release_cached: cli.dynamic_allocation_release_cached,
                }
            }),
        },
    };
    let result = match cli.command {
        None => interactive::run(config),
        Some(Command::Run { script, keep_going }) => script::run(config, &script, keep_going),
        Some(Command::Cluster {
            what: ClusterCommand::Status,
        }) => commands::cluster_status(&cli.master, cli.credentials.as_deref()),
        Some(Command::Cluster {
            what:
                ClusterCommand::Exec {
                    cpus,
                    mem_mb,
                    timeout,
                    command,
                },
        }) => commands::cluster_exec(
            &cli.master,
            cli.credentials.as_deref(),
            &cli.role,
            tessera_framework::Resources::new(cpus, mem_mb),
            timeout,
            command,
        ),
        Some(Command::Cluster {
            what:
                ClusterCommand::InitCredentials {
                    dir,
                    agents,
                    frameworks,
                    days,
                },
        }) => commands::init_credentials(&dir, &agents, &frameworks, days),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_compiles_cells_for_throughput_and_the_repl_for_quick_compiles() {
        let run = Command::Run {
            script: "notebook.rs".into(),
            keep_going: false,
        };
        assert_eq!(
            cell_optimisation(Some(&run)),
            tessera_session::Optimisation::THROUGHPUT
        );
        assert_eq!(
            cell_optimisation(None),
            tessera_session::Optimisation::INTERACTIVE
        );
    }
}
