//! The interactive REPL: rustyline with history, multi-line input and completion, on a session.

use crate::commands::{self, Next};
use crate::progress;
use parking_lot::Mutex;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Editor, Helper};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_session::{Session, SessionConfig};

const PROMPT: &str = "tessera> ";

pub fn run(config: SessionConfig) -> anyhow::Result<ExitCode> {
    eprintln!("Starting a Tessera session on {} ...", config.master);
    let session = Arc::new(Mutex::new(Session::start(
        config,
        commands::print_output(),
    )?));
    let _progress = progress::show(&session.lock());
    install_interrupt_handler(&session.lock());
    eprintln!("Ready. `sc` is your Context; :help lists commands.");

    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(ReplHelper {
        session: session.clone(),
    }));
    let history = history_file();
    let _ = editor.load_history(&history);
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                let mut session = session.lock();
                if line.trim_start().starts_with(':') {
                    if let Some(Next::Quit) = commands::run(&mut session, &line) {
                        break;
                    }
                    if commands_handled(&line) {
                        continue;
                    }
                }
                execute(&mut session, &line);
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(parent) = history.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = editor.save_history(&history);
    Ok(ExitCode::SUCCESS)
}

fn commands_handled(line: &str) -> bool {
    let command = line.split_whitespace().next().unwrap_or("");
    [
        ":help",
        ":storage",
        ":jobs",
        ":executors",
        ":cluster",
        ":save",
        ":load",
    ]
    .contains(&command)
}

/// Runs one cell and prints its result or error; returns whether it succeeded.
pub fn execute(session: &mut Session, code: &str) -> bool {
    match progress::while_running(|| session.execute(code)) {
        Ok(output) => {
            if let Some(text) = output.text() {
                println!("{text}");
            }
            true
        }
        Err(e) => {
            eprintln!("{}", e.message.trim_end());
            false
        }
    }
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

/// Ctrl-C while a cell runs: cancel its jobs and keep the session. A second Ctrl-C within two
/// seconds when no job was running stops the cell by restarting evcxr's child process, which
/// loses the session's variables (as evcxr itself does), so it is the last resort.
fn install_interrupt_handler(session: &Session) {
    let canceller = session.driver().canceller();
    let last_idle_press: Mutex<Option<Instant>> = Mutex::new(None);
    let child = session.evcxr_child();
    let _ = ctrlc::set_handler(move || {
        let cancelled = canceller.cancel_all();
        if cancelled > 0 {
            eprintln!("\nCancelling {cancelled} running job(s)...");
            return;
        }
        let mut last = last_idle_press.lock();
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
            eprintln!("\nStopping the cell: the session's variables are lost.");
            let _ = child.lock().map(|mut c| c.kill());
            *last = None;
        } else {
            eprintln!(
                "\nNo job is running. Press Ctrl-C again within 2 s to stop the cell (its variables will be lost)."
            );
            *last = Some(Instant::now());
        }
    });
}

struct ReplHelper {
    session: Arc<Mutex<Session>>,
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
        let Some(mut session) = self.session.try_lock() else {
            return Ok((pos, Vec::new()));
        };
        let (start, _, candidates) = session.complete(line, pos);
        Ok((start, candidates))
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
