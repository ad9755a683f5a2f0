//! `collect()`: a DataFrame's rows as a polars DataFrame in the cell, behind the `polars`
//! feature. The executors send each partition as an Arrow IPC stream (the driver gives an empty
//! one the DataFrame's schema), and the cell reads them with polars' own reader and stacks them.

use super::DataFrame;
use crate::error::Error;
use polars_core::utils::accumulate_dataframes_vertical;
use polars_io::SerReader;
use polars_io::ipc::IpcStreamReader;
use tessera_plan::cell_protocol::CellAction;

impl DataFrame {
    /// All its rows as one polars DataFrame in the cell (a job), partitions in order — for
    /// what only polars does in the cell: its own expressions, pivots, plotting libraries that
    /// take it. It holds every row in the cell's process, as Spark's `toPandas` does: collect
    /// what fits (a `limit`, an aggregation). [`collect_rows`](DataFrame::collect_rows) gives
    /// plain values without polars.
    pub fn collect(&self) -> polars_core::frame::DataFrame {
        let parts = self.ctx.run_job(self.id, "collect", CellAction::Ipc, None);
        let not_arrow = |e: polars_core::error::PolarsError| -> ! {
            Error::NotArrow {
                reason: e.to_string(),
            }
            .raise()
        };
        let frames = parts.into_iter().map(|bytes| {
            IpcStreamReader::new(std::io::Cursor::new(bytes))
                .finish()
                .unwrap_or_else(|e| not_arrow(e))
        });
        accumulate_dataframes_vertical(frames).unwrap_or_else(|e| not_arrow(e))
    }
}
