//! How a cell's output reaches the terminal: a cell run with its result or error printed, what
//! it asked to show (in text, which is all a terminal shows), and its stdout and stderr as they
//! come, between redraws of the progress bar.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use tessera_session::{CellDisplay, OutputSink, Session, Stream};

/// Runs one cell and prints its result or error; returns whether it succeeded.
pub fn execute(session: &mut Session, code: &str) -> bool {
    let result = crate::progress::while_running(|| session.run_cell(code));
    print_displays(session);
    match result {
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

/// Prints what the last cell asked to show (`display`), as text: a terminal cannot show HTML or
/// images, so their text form is printed, else a line saying what was not shown.
pub fn print_displays(session: &mut Session) {
    for display in session.take_displays() {
        if let CellDisplay::Show { data, .. } = display {
            match data.iter().find(|(mime, _)| mime == "text/plain") {
                Some((_, text)) => println!("{text}"),
                None => {
                    let kinds: Vec<&str> = data.iter().map(|(mime, _)| mime.as_str()).collect();
                    println!("({} output, shown in notebooks)", kinds.join(", "));
                }
            }
        }
    }
}

/// Prints stdout as is and stderr in red on a terminal.
pub fn print_output() -> OutputSink {
    let colour = std::io::stderr().is_terminal();
    Arc::new(move |stream, line| crate::progress::without_bar(|| print_line(stream, line, colour)))
}

fn print_line(stream: Stream, line: &str, colour: bool) {
    match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Stream::Stderr if colour => eprintln!("\x1b[91m{line}\x1b[0m"),
        Stream::Stderr | Stream::Notice => eprintln!("{line}"),
    }
}
