//! How every Tessera process logs: the masters, agents, executors, the `tessera` REPL and the
//! Jupyter kernel. Log lines go to standard error, filtered by `RUST_LOG` (tracing's directive
//! syntax, e.g. `tessera_driver=debug`) or, when it is unset or does not parse, by the
//! process's own default. They are coloured only when standard error is a terminal and
//! `NO_COLOR` is unset or empty (<https://no-color.org>), so that a log redirected to a file,
//! a sandbox's `stderr` or Jupyter's console reads as plain text.

#![deny(missing_docs)]

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Starts logging for this process, with `default_filter` where `RUST_LOG` says nothing
/// usable. A second call in the same process changes nothing.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colours = coloured(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .with_env_filter(filter)
        .try_init();
}

/// Whether log lines are coloured: on a terminal, unless `NO_COLOR` is set to something.
fn coloured(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::coloured;
    use std::ffi::OsStr;

    #[test]
    fn lines_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(coloured(true, None));
        assert!(!coloured(false, None), "a file or a pipe gets plain text");
        assert!(!coloured(true, Some(OsStr::new("1"))));
        // NO_COLOR counts only when it is not empty, as its convention says.
        assert!(coloured(true, Some(OsStr::new(""))));
        assert!(!coloured(false, Some(OsStr::new(""))));
    }
}
