//! `tessera`: the interactive REPL (`tessera`), the script runner (`tessera run SCRIPT.rs`) and
//! cluster inspection (`tessera cluster status`).

mod commands;
mod interactive;
mod progress;
mod script;
mod tables;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_session::{MasterUrl, SessionConfig, parse_master_url};

#[derive(Parser)]
#[command(version, about = "Interactive cluster computing in Rust")]
struct Cli {
    /// Where executors come from: local[N] (default local[*]), local-cluster[A,C,M] or tessera://HOST:PORT.
    #[arg(long, global = true, default_value = "local[*]", value_parser = parse_master)]
    master: MasterUrl,
    /// Memory per executor for cached partitions, in MiB.
    #[arg(long, global = true, default_value_t = 1024)]
    executor_memory_mb: u64,
    /// How long a task waits for a free slot where its data is (cached on an executor, then on
    /// the host of its input file) before running elsewhere, in milliseconds; 0 disables
    /// delay scheduling.
    #[arg(long, global = true, default_value_t = tessera_session::DEFAULT_LOCALITY_WAIT.as_millis() as u64)]
    locality_wait_ms: u64,
    /// Append each finished task's metrics (executor, pid, cached or computed) to FILE as JSON lines.
    #[arg(long, global = true)]
    task_metrics: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Replays a saved script (cells separated by `// %%` lines), printing each result.
    Run {
        script: PathBuf,
        /// Run every cell even after one fails (still exit non-zero).
        #[arg(long)]
        keep_going: bool,
    },
    /// Shows a cluster's agents, frameworks, offers and allocations.
    Cluster {
        #[command(subcommand)]
        what: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    Status,
}

fn parse_master(s: &str) -> Result<MasterUrl, String> {
    parse_master_url(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tessera_session::child_process_hook();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = SessionConfig {
        master: cli.master.clone(),
        executor_memory_mb: cli.executor_memory_mb,
        locality_wait: std::time::Duration::from_millis(cli.locality_wait_ms),
        task_metrics_log: cli.task_metrics.clone(),
        color: std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none(),
    };
    let result = match cli.command {
        None => interactive::run(config),
        Some(Command::Run { script, keep_going }) => script::run(config, &script, keep_going),
        Some(Command::Cluster {
            what: ClusterCommand::Status,
        }) => commands::cluster_status(&cli.master),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
