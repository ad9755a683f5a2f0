//! `tessera run SCRIPT.rs` (or `NOTEBOOK.ipynb`): replays a script's cells (a notebook's code
//! cells) in one session, printing each result, and stops at the first cell that fails, naming
//! it. A cell that is one `:` line (`:storage`, `:jobs`, ...) runs as the REPL's command of that
//! name would.

use crate::{commands, output, progress};
use std::path::Path;
use std::process::ExitCode;
use tessera_session::{Session, SessionConfig, command_line, split_cells};

pub fn run(config: SessionConfig, script: &Path, keep_going: bool) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(script)
        .map_err(|e| anyhow::anyhow!("cannot read script {}: {e}", script.display()))?;
    let cells = if script.extension().is_some_and(|e| e == "ipynb") {
        crate::notebook::code_cells(&source)
            .map_err(|e| anyhow::anyhow!("cannot replay {}: {e}", script.display()))?
            .into_iter()
            .enumerate()
            .map(|(i, code)| (code, format!("code cell {} of {}", i + 1, script.display())))
            .collect()
    } else {
        split_cells(&source)
            .into_iter()
            .map(|c| {
                (
                    c.code,
                    format!("line {} of {}", c.first_line, script.display()),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut session = Session::start(config, output::print_output())?;
    session
        .driver()
        .set_input_reader(Some(crate::input::terminal_reader(Default::default())));
    let _progress = progress::show(&session);
    let mut failed = false;
    for (index, (code, place)) in cells.iter().enumerate() {
        if let Some(line) = command_line(code)
            && commands::run(&mut session, line)
        {
            continue;
        }
        let result = progress::while_running(|| session.run_cell(code));
        output::print_displays(&mut session);
        match result {
            Ok(output) => {
                if let Some(text) = output.text() {
                    println!("{text}");
                }
            }
            Err(e) => {
                eprintln!(
                    "error in cell {} ({place}):\n{}",
                    index + 1,
                    e.message.trim_end()
                );
                failed = true;
                if !keep_going {
                    break;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
