//! A progress bar on the terminal while a job runs, like spark-shell's console progress.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tessera_session::Session;
use tokio::sync::broadcast::error::RecvError;

/// Jobs shorter than this show no bar.
const SHOW_AFTER: Duration = Duration::from_millis(300);
const WIDTH: u32 = 30;

/// Shows progress on stderr, when it is a terminal, until the session ends.
pub fn show(session: &Session) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let mut events = session.driver().progress();
    Some(std::thread::spawn(move || {
        let mut started: Option<(u64, Instant)> = None;
        let mut drawn = false;
        loop {
            let event = match events.blocking_recv() {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let since = match started {
                Some((job, since)) if job == event.job_id => since,
                _ => {
                    let now = Instant::now();
                    started = Some((event.job_id, now));
                    now
                }
            };
            let mut err = std::io::stderr().lock();
            if event.finished {
                if drawn {
                    let _ = write!(err, "\r\x1b[2K");
                    drawn = false;
                }
            } else if since.elapsed() >= SHOW_AFTER || event.tasks_done > 0 && drawn {
                let filled = if event.tasks_total == 0 {
                    WIDTH
                } else {
                    WIDTH * event.tasks_done / event.tasks_total
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
                let _ = write!(
                    err,
                    "\r\x1b[2K[Job {}: {} [{bar}] {}/{}]",
                    event.job_id, event.description, event.tasks_done, event.tasks_total
                );
                drawn = true;
            }
            let _ = err.flush();
        }
    }))
}
