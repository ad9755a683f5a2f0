//! Why a plot could not be drawn or written ([`PlotError`]), and the variable its messages name,
//! apart from the plots themselves so that the crate's [`Error`](crate::Error), which carries
//! it, does not depend on plotting.

use std::path::PathBuf;

/// Where a terminal's plots are written, when set; the messages below name it as the remedy.
pub const PLOT_DIR_ENV: &str = "TESSERA_PLOT_DIR";

/// Why a plot could not be drawn or written. Raised as a [`crate::Error::Plot`] by
/// `Plot::svg` and `Plot::save`; shown in place of the file's path when a terminal's copy
/// cannot be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum PlotError {
    /// plotters could not draw the chart.
    Draw {
        /// plotters' reason.
        reason: String,
    },
    /// `Plot::save` could not write where it was asked to.
    Save {
        /// The path asked for.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory of a terminal's plots could not be created.
    TerminalDirectory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory of a terminal's plots, in the shared temporary directory, is another
    /// user's.
    NotYours {
        /// The directory.
        dir: PathBuf,
    },
    /// A terminal's plot could not be written.
    TerminalWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlotError::Draw { reason } => write!(f, "cannot draw the plot: {reason}"),
            PlotError::Save { path, source } => write!(
                f,
                "cannot save the plot to {}: {source}; choose a writable path",
                path.display()
            ),
            PlotError::TerminalDirectory { dir, source } => write!(
                f,
                "cannot create {}: {source}; set {PLOT_DIR_ENV} to a writable directory",
                dir.display()
            ),
            PlotError::NotYours { dir } => write!(
                f,
                "{} belongs to another user; set {PLOT_DIR_ENV} to a directory of yours",
                dir.display()
            ),
            PlotError::TerminalWrite { path, source } => write!(
                f,
                "cannot write {}: {source}; set {PLOT_DIR_ENV} to a writable directory",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::Save { source, .. }
            | PlotError::TerminalDirectory { source, .. }
            | PlotError::TerminalWrite { source, .. } => Some(source),
            PlotError::Draw { .. } | PlotError::NotYours { .. } => None,
        }
    }
}
