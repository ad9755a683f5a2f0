//! Results that are tables are shown as tables: a [`Table`] renders as a comfy-table grid in a
//! terminal and as an HTML table in Jupyter. [`Report`] is the session's own tables — what is
//! cached, the jobs, the executors, the cluster — that the REPL's `:storage`, `:jobs`,
//! `:executors` and `:cluster` and the same kernel cells show.

#![warn(missing_docs)]

mod report;
mod table;

pub use report::{Report, ReportError, bytes, cluster, cluster_status};
pub use table::{Table, escape_html};
