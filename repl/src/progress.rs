//! One progress line per cell on the terminal, like spark-shell's console progress: it covers
//! every job the cell runs (the running job's stage, tasks, rows and bytes), is redrawn in
//! place, and when the cell ends it is left on the screen with its final state — done, failed
//! (and why, in short) or cancelled — if it was shown at all.
//!
//! The line shares the terminal with the cell's output and the prompt: it is drawn only while a
//! cell runs, and erased before anything else is printed (and drawn again after).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tessera_session::{CellError, CellOutput, CellProgress, CellProgressState, Progress, Session};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// Cells whose jobs end sooner than this show no line.
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// How often the line is redrawn while the cell runs.
const TICK: Duration = Duration::from_millis(100);
/// Cells of the bar.
const WIDTH: u32 = 20;

/// The line's state, shared by the thread that draws it, the cell's runner and the output sink.
struct Line {
    /// The driver's progress events, once the session has started.
    events: Option<broadcast::Receiver<Progress>>,
    /// The running cell's jobs and when it started; `None` between cells.
    cell: Option<(CellProgress, Instant)>,
    /// The line is on the screen.
    drawn: bool,
    /// The line was shown during this cell, so its final state is left on the screen.
    shown: bool,
}

static LINE: Mutex<Line> = Mutex::new(Line {
    events: None,
    cell: None,
    drawn: false,
    shown: false,
});

fn lock() -> std::sync::MutexGuard<'static, Line> {
    LINE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Line {
    /// Takes in the events that came since the last call: the running cell's, or (between
    /// cells) none worth keeping.
    fn take_events(&mut self) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if let Some((cell, _)) = self.cell.as_mut() {
                        cell.observe(event);
                    }
                }
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    fn erase(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    /// Draws the running cell's line, once it has run jobs for long enough.
    fn draw(&mut self) {
        let Some((cell, started)) = &self.cell else {
            return;
        };
        if cell.is_empty() || started.elapsed() < SHOW_AFTER {
            return;
        }
        let state = cell.state(false, false);
        let text = line(cell, &state, started.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", fit(&text, terminal_width()));
        let _ = err.flush();
        self.drawn = true;
        self.shown = true;
    }
}

/// Prints other output (`print`) with the line out of the way until it is done.
pub fn without_bar(print: impl FnOnce()) {
    // Held while printing, so that the line is not drawn again in the middle.
    let mut guard = lock();
    guard.erase();
    print();
}

/// Runs `run` (a cell) with its progress line on screen, and leaves the line's final state
/// there if it was shown.
pub fn while_running(
    run: impl FnOnce() -> Result<CellOutput, CellError>,
) -> Result<CellOutput, CellError> {
    {
        let mut guard = lock();
        // What came before the cell belongs to no cell.
        guard.take_events();
        guard.cell = Some((CellProgress::new(), Instant::now()));
        guard.shown = false;
    }
    let result = run();
    let mut guard = lock();
    // The driver told of the cell's jobs before it answered the cell: all are here by now.
    guard.take_events();
    guard.erase();
    if let Some((cell, started)) = guard.cell.take()
        && guard.shown
    {
        let interrupted = matches!(&result, Err(e) if e.kind.is_interruption());
        let state = cell.state(true, interrupted);
        eprintln!("{}", line(&cell, &state, started.elapsed()));
    }
    result
}

/// Shows progress on stderr, when it is a terminal, until the session ends.
pub fn show(session: &Session) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    lock().events = Some(session.driver().progress());
    Some(std::thread::spawn(move || {
        loop {
            std::thread::sleep(TICK);
            let mut guard = lock();
            guard.take_events();
            guard.draw();
        }
    }))
}

/// The line for a cell in `state`: a bar of the running job's tasks, then what the cell's
/// progress display says.
fn line(cell: &CellProgress, state: &CellProgressState, elapsed: Duration) -> String {
    let (done, total) = cell.tasks();
    let filled = match state {
        CellProgressState::Done => WIDTH,
        _ if total == 0 => 0,
        _ => WIDTH * done.min(total) / total,
    };
    let bar: String = (0..WIDTH)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if *state == CellProgressState::Running => '>',
            _ => ' ',
        })
        .collect();
    format!("[{bar}] {}", cell.text(state, elapsed))
}

/// `text` cut to `width` characters, so that redrawing it never leaves a wrapped line behind.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() < width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(2)).collect();
        cut.push('…');
        cut
    }
}

/// The terminal's width in columns (80 when it does not say).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a `winsize` and touches nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_session::JobState;

    fn cell_with(state: JobState, tasks_done: u32) -> CellProgress {
        let mut cell = CellProgress::new();
        cell.observe(Progress {
            job_id: 7,
            description: "count".into(),
            stages_done: 0,
            stages_total: 1,
            tasks_done,
            tasks_total: 4,
            records: 10,
            bytes: 100,
            state,
        });
        cell
    }

    #[test]
    fn the_bar_follows_the_running_jobs_tasks() {
        let cell = cell_with(JobState::Running, 2);
        let text = line(&cell, &CellProgressState::Running, Duration::from_secs(2));
        assert!(
            text.starts_with("[==========>         ] job 1 (count): stage 1 of 1, tasks 2 of 4"),
            "{text}"
        );
    }

    #[test]
    fn the_final_line_says_how_the_cell_ended() {
        let cancelled = cell_with(JobState::Cancelled, 1);
        let state = cancelled.state(true, true);
        let text = line(&cancelled, &state, Duration::from_secs(3));
        assert!(
            text.starts_with("[=====               ] cancelled: job 1 (count)"),
            "{text}"
        );
        let done = cell_with(JobState::Succeeded, 4);
        let text = line(&done, &done.state(true, false), Duration::from_secs(3));
        assert!(
            text.starts_with("[====================] done: 1 job (count)"),
            "{text}"
        );
    }

    #[test]
    fn long_lines_are_cut_to_the_terminal() {
        assert_eq!(fit("abcdef", 10), "abcdef");
        assert_eq!(fit("abcdefghijkl", 10), "abcdefgh…");
        assert_eq!(fit("abcdefghij", 10).chars().count(), 9);
    }
}
