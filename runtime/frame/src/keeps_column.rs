//! Whether a list of steps passes a column of its input through unchanged: what each rewrite
//! that runs ahead of polars (a filter's mask, packed group-by keys, shared counts) asks before
//! it reads the partition's column for the one a later step sees. A file of its own, below
//! all three and `steps`, which runs them.

use tessera_plan::frame::{Expr, FrameStep};

/// Whether column `column` of the input reaches the end of `steps` as it was: steps that
/// only keep, filter or add other columns.
pub(crate) fn keeps_column(steps: &[FrameStep], column: &str) -> bool {
    steps.iter().all(|step| match step {
        FrameStep::Select(exprs) => {
            exprs.iter().all(|e| matches!(e, Expr::Column(_)))
                && exprs.iter().any(|e| e.output_name() == column)
        }
        FrameStep::Filter(_) => true,
        FrameStep::WithColumns(exprs) => exprs.iter().all(|e| e.output_name() != column),
        FrameStep::Drop(columns) => columns.iter().all(|c| c != column),
        _ => false,
    })
}
