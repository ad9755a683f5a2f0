//! A progress bar on the terminal while a job runs, like spark-shell's console progress.
//!
//! The bar shares the terminal with the cell's output and the prompt: it is drawn only while a
//! cell runs, and erased before anything else is printed.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tessera_session::{Progress, Session};
use tokio::sync::broadcast::error::TryRecvError;

/// Jobs shorter than this show no bar.
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// How often the bar is redrawn while tasks run without finishing.
const TICK: Duration = Duration::from_millis(100);
const WIDTH: u32 = 30;

struct Bar {
    /// A cell is running: the bar may be drawn.
    active: bool,
    /// The bar is on the screen.
    drawn: bool,
}

static BAR: Mutex<Bar> = Mutex::new(Bar {
    active: false,
    drawn: false,
});

fn erase(bar: &mut Bar) {
    if bar.drawn {
        eprint!("\r\x1b[2K");
        bar.drawn = false;
    }
}

/// Erases the bar.
fn clear() {
    erase(&mut BAR.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Prints other output (`print`) with the bar out of the way until it is done.
pub fn without_bar(print: impl FnOnce()) {
    let mut bar = BAR.lock().unwrap_or_else(|p| p.into_inner());
    erase(&mut bar);
    print();
}

/// Runs `f` (a cell) with the bar allowed on screen, and erases it afterwards.
pub fn while_running<R>(f: impl FnOnce() -> R) -> R {
    BAR.lock().unwrap_or_else(|p| p.into_inner()).active = true;
    let result = f();
    let mut bar = BAR.lock().unwrap_or_else(|p| p.into_inner());
    bar.active = false;
    erase(&mut bar);
    result
}

/// Shows progress on stderr, when it is a terminal, until the session ends.
pub fn show(session: &Session) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let mut events = session.driver().progress();
    Some(std::thread::spawn(move || {
        // The running job's latest progress, and when it started.
        let mut running: Option<(Progress, Instant)> = None;
        loop {
            match events.try_recv() {
                Ok(event) if event.finished => {
                    running = None;
                    clear();
                }
                Ok(event) => {
                    let since = match &running {
                        Some((job, since)) if job.job_id == event.job_id => *since,
                        _ => Instant::now(),
                    };
                    running = Some((event, since));
                }
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Closed) => return,
                Err(TryRecvError::Empty) => std::thread::sleep(TICK),
            }
            if let Some((job, since)) = &running {
                let mut bar = BAR.lock().unwrap_or_else(|p| p.into_inner());
                if bar.active && since.elapsed() >= SHOW_AFTER {
                    draw(job, since.elapsed());
                    bar.drawn = true;
                }
            }
        }
    }))
}

fn draw(job: &Progress, elapsed: Duration) {
    let filled = if job.tasks_total == 0 {
        WIDTH
    } else {
        WIDTH * job.tasks_done / job.tasks_total
    };
    let bar: String = (0..WIDTH)
        .map(|i| {
            if i < filled {
                '='
            } else if i == filled {
                '>'
            } else {
                ' '
            }
        })
        .collect();
    let mut err = std::io::stderr().lock();
    let shuffled = if job.shuffle_bytes > 0 {
        format!(" {} shuffled", tessera_display::bytes(job.shuffle_bytes))
    } else {
        String::new()
    };
    let _ = write!(
        err,
        "\r\x1b[2K[Job {}: {} stage {} [{bar}] {}/{}{shuffled} {:.0}s]",
        job.job_id,
        job.description,
        job.stages,
        job.tasks_done,
        job.tasks_total,
        elapsed.as_secs_f64()
    );
    let _ = err.flush();
}
