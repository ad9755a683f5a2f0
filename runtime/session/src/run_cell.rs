//! Running a cell so that an interrupt always stops it ([`Session::run_cell`],
//! [`Session::interrupter`]), and what the session does when the process that runs cells had
//! to be restarted: bind `sc` again, declare the RDD variables again, and say what was lost.

use crate::interrupt::{COOPERATIVE_GRACE, CellStop, Interrupter};
use crate::rebuild::{self, ReadIdsError, RestartReport};
use crate::{CellError, CellErrorKind, CellOutput, Session};

impl Session {
    /// A handle that interrupts this session's running cell from another thread (a Ctrl-C
    /// handler, a kernel's control channel): it cancels the running jobs and, if the cell does
    /// not stop by itself within [`COOPERATIVE_GRACE`], restarts the process that runs it.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter::new(
            self.driver.canceller(),
            self.engine.process(),
            self.watch.clone(),
        )
    }

    /// Runs one cell as [`Session::execute`] does, and so that [`Session::interrupter`] can stop
    /// it. If the process that runs cells had to be restarted (the cell was interrupted and did
    /// not stop, or it crashed the process), the session binds `sc` again to the same driver,
    /// declares its RDD and accumulator variables again, and fails the cell with a message naming what was
    /// rebuilt and what was lost ([`CellErrorKind::Interrupted`] after an interrupt).
    pub fn run_cell(&mut self, code: &str) -> Result<CellOutput, CellError> {
        let before = self.variables();
        let child = self.child_pid();
        let cell = self.watch.cell_started();
        let result = self.execute(code);
        let stop = self.watch.cell_ended(cell);
        if stop.killed || self.child_pid() != child {
            return Err(self.recover(&before, stop, result.err()));
        }
        // A cell that did not compile ran nothing and bound nothing.
        if !matches!(&result, Err(e) if e.kind == CellErrorKind::Compile) {
            let variables = self.variables();
            self.read_handle_ids(code, &variables);
            self.drop_unreachable(&variables);
        }
        result
    }

    /// Drops from the executors the shuffle outputs, cached partitions and broadcast join
    /// sides that no RDD variable of the session (`variables`) reaches any more (see [`live_rdds`](crate::live_rdds)).
    fn drop_unreachable(&self, variables: &[(String, String)]) {
        if let Some(roots) = crate::live_rdds::live_roots(variables, &self.known_ids) {
            let dropped = self.driver.drop_unreachable(&roots);
            tracing::debug!(?dropped, "dropped what no variable reaches");
        }
    }

    /// The process id of the child that runs cells; the engine starts a new one (a new id)
    /// when one dies.
    fn child_pid(&self) -> u32 {
        let child = self.engine.process();
        let child = child.lock().unwrap_or_else(|p| p.into_inner());
        child.id()
    }

    /// Learns the ids the RDD and accumulator variables that the cell of `code` may have bound
    /// hold, by asking the child, which alone holds them: one small cell, run only after cells
    /// that bind such variables.
    fn read_handle_ids(&mut self, code: &str, variables: &[(String, String)]) {
        self.known_ids.keep_only(variables);
        let wanted = rebuild::to_read(code, variables, &self.known_ids);
        if wanted.is_empty() {
            return;
        }
        let ids = self
            .engine
            .execute(&rebuild::snapshot_code(&wanted))
            .map_err(ReadIdsError::Run)
            .and_then(|outcome| {
                let answer = outcome
                    .bundle
                    .iter()
                    .find(|(mime, _)| mime == "text/plain")
                    .map(|(_, text)| text.as_str());
                answer
                    .and_then(|text| rebuild::parse_snapshot(text, wanted.len()))
                    .ok_or_else(|| ReadIdsError::Answer(answer.map(String::from)))
            });
        match ids {
            Ok(ids) => {
                for ((name, type_name), id) in wanted.iter().zip(ids) {
                    self.known_ids.record(name, type_name, id);
                }
            }
            Err(e) => {
                // A stale id would rebuild a handle on the wrong RDD; none is better.
                tracing::warn!(?wanted, "cannot read the ids of handle variables: {e}");
                for (name, type_name) in &wanted {
                    self.known_ids.unreadable(name, type_name);
                }
            }
        }
    }

    /// After the child process was restarted: binds `sc` again, declares again the handles among
    /// `before` (the variables the session held), and returns the cell's error saying so.
    fn recover(
        &mut self,
        before: &[(String, String)],
        stop: CellStop,
        error: Option<CellError>,
    ) -> CellError {
        let plan = rebuild::plan(rebuild::CONNECT, before, &self.known_ids);
        let rebuilt = match self.run_hidden(&plan.code) {
            Ok(()) => plan.rebuilt,
            Err(e) => {
                tracing::warn!("cannot declare the session's handles again: {e}");
                match self.run_hidden(&rebuild::bind_context_code(rebuild::CONNECT)) {
                    Ok(()) => vec![("sc".to_string(), "tessera::Context".to_string())],
                    Err(e) => {
                        return CellError {
                            kind: CellErrorKind::Session,
                            message: format!(
                                "The process that runs cells was restarted, and `sc` could not \
                                 be bound again in it: {e}. Restart the session (the kernel, \
                                 or the REPL)."
                            ),
                        };
                    }
                }
            }
        };
        self.known_ids.keep_only(&rebuilt);
        let report = RestartReport::new(before, &rebuilt);
        let interrupted = stop.interrupted || stop.killed;
        let what_happened = if interrupted {
            format!(
                "Interrupted: the cell did not stop within {:.1} s, so the process that runs \
                 cells was restarted.",
                COOPERATIVE_GRACE.as_secs_f64()
            )
        } else {
            let why = error.map_or_else(String::new, |e| format!(" ({})", e.message.trim()));
            format!("The process that runs cells died{why}; it was restarted.")
        };
        CellError {
            kind: if interrupted {
                CellErrorKind::Interrupted
            } else {
                CellErrorKind::Session
            },
            message: report.message(&what_happened),
        }
    }

    /// Runs code of the session's own in the child (not a cell: no history, no rewriting). If
    /// the child had died unnoticed (killed as its cell ended), the engine starts a new one on
    /// the first try, and the code runs in it on the second.
    fn run_hidden(&mut self, code: &str) -> Result<(), HiddenError> {
        let outcome = match self.engine.execute(code) {
            Err(tessera_cells::CellsError::ChildDied { .. }) => self.engine.execute(code),
            other => other,
        }
        .map_err(HiddenError::Engine)?;
        match outcome.panic {
            Some(message) => Err(HiddenError::Panicked(message)),
            None => Ok(()),
        }
    }
}

/// Why code of the session's own failed in the child.
#[derive(Debug)]
enum HiddenError {
    /// It did not compile, or the child could not run it.
    Engine(tessera_cells::CellsError),
    /// It panicked.
    Panicked(String),
}

impl std::fmt::Display for HiddenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HiddenError::Engine(e) => e.fmt(f),
            HiddenError::Panicked(message) => write!(f, "it panicked: {message}"),
        }
    }
}
