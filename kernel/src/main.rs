//! `tessera-kernel`: installs the Tessera kernelspec, and serves the Jupyter kernel for
//! a connection file.

use anyhow::Context;
use clap::Parser;
use tessera_kernel::cli::{Action, Args};

fn main() -> anyhow::Result<()> {
    tessera_session::child_process_hook();
    tessera_kernel::cli::init_tracing();
    let action = Args::parse().action().unwrap_or_else(|err| err.exit());
    match action {
        Action::Install { user, prefix } => {
            let dir = tessera_kernel::install_kernelspec(user, prefix.as_deref())
                .context("installing the Tessera kernelspec")?;
            println!(
                "Installed kernelspec {} in {}",
                tessera_kernel::KERNEL_NAME,
                dir.display()
            );
            Ok(())
        }
        Action::Run { connection_file } => {
            // A kernelspec has a fixed command line: the master comes from the environment.
            let master = std::env::var("TESSERA_MASTER").unwrap_or_else(|_| "local[*]".into());
            let defaults =
                tessera_session::SessionConfig::new(tessera_session::parse_master_url(&master)?);
            let config = tessera_session::SessionConfig {
                executor_memory_mb: env_number("TESSERA_EXECUTOR_MEMORY_MB")?
                    .unwrap_or(defaults.executor_memory_mb),
                task_metrics_log: std::env::var_os("TESSERA_TASK_METRICS").map(Into::into),
                cluster: tessera_session::ClusterOptions {
                    credentials: std::env::var_os("TESSERA_CREDENTIALS").map(Into::into),
                    bind: std::env::var("TESSERA_BIND")
                        .ok()
                        .map(|b| b.parse())
                        .transpose()
                        .context("TESSERA_BIND is not an IP address")?,
                    advertise_host: std::env::var("TESSERA_ADVERTISE_ADDRESS").ok(),
                    executors: env_number("TESSERA_EXECUTORS")?,
                    executor_cores: env_number("TESSERA_EXECUTOR_CORES")?,
                    role: std::env::var("TESSERA_ROLE").unwrap_or_default(),
                    executor_constraints: tessera_session::Constraints::parse(
                        &std::env::var("TESSERA_EXECUTOR_CONSTRAINTS").unwrap_or_default(),
                    )
                    .context("TESSERA_EXECUTOR_CONSTRAINTS")?,
                    failover_timeout: std::env::var("TESSERA_FAILOVER_TIMEOUT_S")
                        .ok()
                        .map(|s| s.parse::<f64>())
                        .transpose()
                        .context("TESSERA_FAILOVER_TIMEOUT_S is not a number of seconds")?
                        .map(|seconds| std::time::Duration::from_secs_f64(seconds.max(0.0))),
                    dynamic_allocation: std::env::var("TESSERA_EXECUTOR_IDLE_TIMEOUT_S")
                        .ok()
                        .map(|s| s.parse::<f64>())
                        .transpose()
                        .context("TESSERA_EXECUTOR_IDLE_TIMEOUT_S is not a number of seconds")?
                        .map(|seconds| tessera_session::DynamicAllocation {
                            idle_timeout: std::time::Duration::from_secs_f64(seconds.max(0.0)),
                            release_cached: std::env::var_os(
                                "TESSERA_DYNAMIC_ALLOCATION_RELEASE_CACHED",
                            )
                            .is_some(),
                        }),
                    // As the REPL's --no-shuffle-service reads it.
                    shuffle_service: match std::env::var("TESSERA_NO_SHUFFLE_SERVICE").as_deref() {
                        Ok("" | "0" | "false" | "no" | "off") | Err(_) => {
                            tessera_session::ShuffleService::Enabled
                        }
                        Ok(_) => tessera_session::ShuffleService::Disabled,
                    },
                },
                ..defaults
            };
            let backend = tessera_kernel::session_backend::SessionBackend::start(config)?;
            let history = tessera_kernel::History::open_default();
            tessera_kernel::run_kernel(&connection_file, backend, history)?;
            Ok(())
        }
    }
}

/// Environment variable `name` as a number, if set; the same settings as the REPL's flags.
fn env_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a number")),
        Err(_) => Ok(None),
    }
}
