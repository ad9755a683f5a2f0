//! The `tessera-kernel` command line, shared by the binary and anything else that
//! serves a kernel with the same flags: `tessera-kernel install [--user] [--prefix P]`
//! and `tessera-kernel --connection-file FILE`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "tessera-kernel",
    version,
    about = "Jupyter kernel for Tessera (interactive cluster computing in Rust)",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// The subcommand (`install`), if one was given.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serve the kernel described by this connection file (Jupyter passes it).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub connection_file: Option<PathBuf>,
}

/// The subcommands of `tessera-kernel`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the kernelspec so Jupyter lists "Tessera (Rust)".
    Install {
        /// Install for the current user only (~/.local/share/jupyter).
        #[arg(long, conflicts_with = "prefix")]
        user: bool,
        /// Install under PREFIX/share/jupyter (e.g. a virtualenv).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<PathBuf>,
    },
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Install the kernelspec (`tessera-kernel install`).
    Install {
        /// Install into the current user's Jupyter data directory (`--user`).
        user: bool,
        /// Install under `PREFIX/share/jupyter` (`--prefix`).
        prefix: Option<PathBuf>,
    },
    /// Serve one kernel until a client shuts it down.
    Run {
        /// The connection file Jupyter passed with `--connection-file`.
        connection_file: PathBuf,
    },
}

impl Args {
    /// The action to take; an error (with usage) when neither a subcommand nor a
    /// connection file was given.
    pub fn action(self) -> Result<Action, clap::Error> {
        match (self.command, self.connection_file) {
            (Some(Command::Install { user, prefix }), _) => Ok(Action::Install { user, prefix }),
            (None, Some(connection_file)) => Ok(Action::Run { connection_file }),
            (None, None) => {
                use clap::CommandFactory;
                Err(Args::command().error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "give a connection file to serve (--connection-file FILE), or `install` to install the kernelspec",
                ))
            }
        }
    }
}

/// Sends `tracing` logs to stderr (never stdout), filtered by `RUST_LOG`
/// (default: info for this crate, warnings otherwise).
pub fn init_tracing() {
    tessera_logging::init("warn,tessera_kernel=info");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Action, clap::Error> {
        Args::try_parse_from(args)?.action()
    }

    #[test]
    fn parses_the_commands_jupyter_and_people_use() {
        assert_eq!(
            parse(&["tessera-kernel", "--connection-file", "/tmp/k.json"]).unwrap(),
            Action::Run {
                connection_file: "/tmp/k.json".into()
            }
        );
        assert_eq!(
            parse(&["tessera-kernel", "-f", "/tmp/k.json"]).unwrap(),
            Action::Run {
                connection_file: "/tmp/k.json".into()
            }
        );
        assert_eq!(
            parse(&["tessera-kernel", "install", "--user"]).unwrap(),
            Action::Install {
                user: true,
                prefix: None
            }
        );
        assert_eq!(
            parse(&["tessera-kernel", "install", "--prefix", "/opt/venv"]).unwrap(),
            Action::Install {
                user: false,
                prefix: Some("/opt/venv".into())
            }
        );
        assert!(parse(&["tessera-kernel"]).is_err());
        assert!(parse(&["tessera-kernel", "install", "--user", "--prefix", "/x"]).is_err());
    }
}
