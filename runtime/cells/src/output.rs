//! What a cell prints, handed on line by line as it prints it.

use std::sync::Arc;

/// Which stream a line of a cell's output was printed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives each line a cell prints, as it prints it (without the newline).
pub type OutputSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;
