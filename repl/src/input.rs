//! A cell's `input()` in the terminal: the prompt on standard output, the answer a line of
//! standard input (read with echo off for `password()` when standard input is a terminal).
//! Ctrl-C while it waits makes `input()` fail at once, so the cell stops by itself.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_session::{InputError, InputReader, InputRequest};

/// The reader the REPL and `tessera run` install. Setting `interrupted` (Ctrl-C) while it
/// waits for a line makes it give up.
pub fn terminal_reader(interrupted: Arc<AtomicBool>) -> InputReader {
    Arc::new(move |request: &InputRequest| {
        // A Ctrl-C from before this question is not an answer to it.
        interrupted.store(false, Ordering::SeqCst);
        {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", request.prompt);
            let _ = out.flush();
        }
        let echo_off = request.password.then(EchoOff::start).flatten();
        while !line_waiting() {
            if interrupted.swap(false, Ordering::SeqCst) {
                return Err(InputError::Interrupted);
            }
        }
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line);
        if echo_off.is_some() {
            // The Enter typed was not echoed either.
            println!();
        }
        match read {
            Ok(0) => Err(InputError::Ended),
            Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => Err(InputError::Unavailable(format!(
                "standard input cannot be read ({e})"
            ))),
        }
    })
}

/// Whether standard input has a line (or its end) to read, after waiting up to 100 ms.
fn line_waiting() -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut fd, 1, 100) };
    // An error (other than an interrupted wait) means reading will report it.
    ready > 0
        || (ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted)
}

/// Terminal echo turned off until dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn start() -> Option<EchoOff> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: a zeroed termios is a valid value for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is a terminal (checked above); the pointers are to live values.
        unsafe {
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            (libc::tcsetattr(0, libc::TCSANOW, &quiet) == 0).then_some(EchoOff { saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `start`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}
