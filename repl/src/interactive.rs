//! The interactive REPL: rustyline with history, multi-line input and completion, on a session.

use crate::commands::{self, Next};
use crate::output::{self, execute};
use crate::progress;
use parking_lot::Mutex;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Editor, Helper};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tessera_session::{COOPERATIVE_GRACE, Interrupter, Session, SessionConfig, StartingSession};

const PROMPT: &str = "tessera> ";

/// Printed just before the first prompt (`tessera-bench` waits for its start).
const READY_BANNER: &str =
    "Tessera: `sc` is your Context; :help lists commands. The session starts in the background.";

/// The session's notices (see [`tessera_session::Stream::Notice`]): printed at once, or kept
/// while a line is being typed and printed when it is entered.
#[derive(Default)]
struct Notices {
    state: Mutex<(bool, Vec<String>)>,
}

impl Notices {
    fn show_or_keep(&self, text: &str) {
        let mut state = self.state.lock();
        if state.0 {
            state.1.push(text.to_string());
        } else {
            eprintln!("{text}");
        }
    }

    /// Whether a line is being typed; kept notices are printed when it is not.
    fn reading(&self, reading: bool) {
        let mut state = self.state.lock();
        for text in state.1.drain(..) {
            eprintln!("{text}");
        }
        state.0 = reading;
    }
}

pub fn run(config: SessionConfig) -> anyhow::Result<ExitCode> {
    let master = config.master.to_string();
    // The prompt comes at once; the session (evcxr, the driver, its executors) starts meanwhile
    // and only a cell typed before it is ready waits for it.
    // What the session says while it starts never goes over the line being typed: it waits
    // until the line is entered.
    let notices = Arc::new(Notices::default());
    let cell_output = output::print_output();
    let sink: tessera_session::OutputSink = {
        let notices = notices.clone();
        Arc::new(move |stream, line| match stream {
            tessera_session::Stream::Notice => notices.show_or_keep(line),
            _ => cell_output(stream, line),
        })
    };
    let session = Arc::new(Mutex::new(Session::start_in_background(config, sink)?));
    let interrupt_target = Arc::new(OnceLock::new());
    let input_interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    install_interrupt_handler(interrupt_target.clone(), input_interrupted.clone());
    let mut progress_shown = None;
    eprintln!("{READY_BANNER}\nMaster: {master}.");

    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(ReplHelper {
        session: session.clone(),
    }));
    let history = history_file();
    if let Some(parent) = history.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = editor.load_history(&history);
    loop {
        notices.reading(true);
        let read = editor.readline(PROMPT);
        notices.reading(false);
        match read {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                // At once, so that a session that is killed keeps its history too.
                let _ = editor.append_history(&history);
                let command = line.trim_start().starts_with(':');
                match commands::run_without_session(&line) {
                    Some(Next::Quit) => break,
                    Some(Next::Continue) => continue,
                    None => {}
                }
                let mut starting = session.lock();
                if !starting.is_ready() {
                    eprintln!("(waiting for the session to start)");
                }
                let session = match starting.get() {
                    Ok(session) => session,
                    Err(why) => {
                        eprintln!("{why}");
                        continue;
                    }
                };
                if progress_shown.is_none() {
                    session
                        .driver()
                        .set_input_reader(Some(crate::input::terminal_reader(
                            input_interrupted.clone(),
                        )));
                    progress_shown = Some(progress::show(session));
                    let _ = interrupt_target.set(session.interrupter());
                }
                if command && commands::run(session, &line) {
                    continue;
                }
                execute(session, &line);
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `$TESSERA_HISTORY`, or `~/.local/share/tessera/history.txt`.
fn history_file() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_HISTORY") {
        return path.into();
    }
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".local/share/tessera/history.txt")
}

/// What Ctrl-C acts on once the session has started.
type InterruptTarget = Arc<OnceLock<Interrupter>>;

/// Ctrl-C while a cell runs interrupts it: its jobs are cancelled, and a cell that does not
/// stop by itself (a loop, a sleep) is stopped by restarting the process that runs cells, after
/// which the session says which variables it rebuilt and which were lost. Before the session
/// has started, a second Ctrl-C within two seconds quits.
fn install_interrupt_handler(
    target: InterruptTarget,
    input_interrupted: Arc<std::sync::atomic::AtomicBool>,
) {
    let last_press: Mutex<Option<Instant>> = Mutex::new(None);
    let _ = ctrlc::set_handler(move || {
        let Some(interrupter) = target.get() else {
            let mut last = last_press.lock();
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                eprintln!("\nQuitting before the session started.");
                std::process::exit(130);
            }
            eprintln!("\nThe session is still starting. Press Ctrl-C again within 2 s to quit.");
            *last = Some(Instant::now());
            return;
        };
        // A cell waiting in `input()` stops waiting.
        input_interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
        let done = interrupter.interrupt();
        progress::without_bar(|| {
            if done.jobs_cancelled > 0 {
                eprintln!("\nCancelling {} running job(s)...", done.jobs_cancelled);
            } else if done.cell_running {
                eprintln!(
                    "\nInterrupting the cell (stopped in {:.1} s if it does not stop by itself)...",
                    COOPERATIVE_GRACE.as_secs_f64()
                );
            }
        });
    });
}

struct ReplHelper {
    session: Arc<Mutex<StartingSession>>,
}

impl Helper for ReplHelper {}
impl Highlighter for ReplHelper {}
impl Hinter for ReplHelper {
    type Hint = String;
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        if let Some(commands) = commands::complete_command(line, pos) {
            return Ok(commands);
        }
        // Completion never waits: not for a running cell, nor for the session to start.
        let Some(mut starting) = self.session.try_lock() else {
            return Ok((pos, Vec::new()));
        };
        let Some(session) = starting.try_get() else {
            return Ok((pos, Vec::new()));
        };
        let found = session.complete(line, pos);
        Ok((
            found.start,
            found.items.into_iter().map(|(name, _)| name).collect(),
        ))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if tessera_session::is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}
