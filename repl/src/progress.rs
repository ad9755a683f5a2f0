//! A progress bar on the terminal while a job runs, like spark-shell's console progress.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tessera_session::{Progress, Session};
use tokio::sync::broadcast::error::TryRecvError;

/// Jobs shorter than this show no bar.
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// How often the bar is redrawn while tasks run without finishing.
const TICK: Duration = Duration::from_millis(100);
const WIDTH: u32 = 30;

/// Shows progress on stderr, when it is a terminal, until the session ends.
pub fn show(session: &Session) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let mut events = session.driver().progress();
    Some(std::thread::spawn(move || {
        // The running job's latest progress, when it started, and whether a bar is drawn.
        let mut running: Option<(Progress, Instant)> = None;
        let mut drawn = false;
        loop {
            match events.try_recv() {
                Ok(event) if event.finished => {
                    running = None;
                    if drawn {
                        eprint!("\r\x1b[2K");
                        drawn = false;
                    }
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
                if since.elapsed() >= SHOW_AFTER {
                    draw(job, since.elapsed());
                    drawn = true;
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
    let _ = write!(
        err,
        "\r\x1b[2K[Job {}: {} [{bar}] {}/{} {:.0}s]",
        job.job_id,
        job.description,
        job.tasks_done,
        job.tasks_total,
        elapsed.as_secs_f64()
    );
    let _ = err.flush();
}
