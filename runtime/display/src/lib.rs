//! Results that are tables are shown as tables: a [`Table`] (from `tessera-table`, which cells
//! link too) renders as a comfy-table grid in a terminal and as an HTML table in Jupyter.
//! [`Report`] is the session's own tables — what is cached, the jobs, the executors, the
//! cluster — that the REPL's `:storage`, `:jobs`, `:executors` and `:cluster` and the same
//! kernel cells show.

#![deny(missing_docs)]

mod report;

pub use report::{Report, ReportError, bytes, cluster, cluster_status};
pub use tessera_table::{Table, escape_html};
