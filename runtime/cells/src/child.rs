//! The engine's side of the child process: starting it, sending it requests, and passing on
//! what cells print, line by line, as they print it.

use crate::error::CellsError;
use crate::output::{OutputSink, Stream};
use crate::protocol::{CHANNEL_FD, CHILD_ENV, END_OF_CELL, Ran, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// How to start the child: a binary that calls [`crate::run_child_if_requested`] first.
#[derive(Clone, Debug)]
pub struct ChildCommand {
    /// The binary (usually the current executable).
    pub program: PathBuf,
    /// Environment variables to set for it.
    pub env: Vec<(String, String)>,
}

/// A running child.
pub(crate) struct Child {
    process: Arc<Mutex<std::process::Child>>,
    requests: UnixStream,
    replies: mpsc::Receiver<Reply>,
    ends: mpsc::Receiver<Stream>,
}

impl Child {
    /// Starts the child; what cells print goes to `sink`.
    pub fn spawn(
        command: &ChildCommand,
        std_lib_dir: &Path,
        sink: OutputSink,
    ) -> Result<Child, CellsError> {
        let started = Started::new(command, std_lib_dir, sink)?;
        Ok(Child {
            process: Arc::new(Mutex::new(started.process)),
            requests: started.requests,
            replies: started.replies,
            ends: started.ends,
        })
    }

    /// Ends the child (if it still runs) and starts a new one in the same process handle, so
    /// that whoever holds [`Child::process`] (an interrupter) sees the new one.
    pub fn restart(
        &mut self,
        command: &ChildCommand,
        std_lib_dir: &Path,
        sink: OutputSink,
    ) -> Result<(), CellsError> {
        let started = Started::new(command, std_lib_dir, sink)?;
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let _ = process.kill();
        let _ = process.wait();
        *process = started.process;
        drop(process);
        self.requests = started.requests;
        self.replies = started.replies;
        self.ends = started.ends;
        Ok(())
    }

    /// The process, for interrupting a cell that does not stop.
    pub fn process(&self) -> Arc<Mutex<std::process::Child>> {
        self.process.clone()
    }

    /// Runs the cell library at `library`; returns once its output has all been passed on.
    pub fn run(&mut self, library: &Path) -> Result<Ran, CellsError> {
        match self.request(&Request::Run {
            library: library.to_path_buf(),
        })? {
            Reply::Ran(ran) => {
                // Both streams end with a marker written after the cell returned.
                for _ in 0..2 {
                    if self.ends.recv().is_err() {
                        break;
                    }
                }
                Ok(ran)
            }
            Reply::LoadFailed { message } => Err(CellsError::LoadFailed {
                library: library.to_path_buf(),
                message,
            }),
            Reply::Forgotten => Err(self.died()),
        }
    }

    /// Drops variables in the child.
    pub fn forget(&mut self, names: Vec<String>) -> Result<(), CellsError> {
        if names.is_empty() {
            return Ok(());
        }
        self.request(&Request::Forget { names }).map(drop)
    }

    fn request(&mut self, request: &Request) -> Result<Reply, CellsError> {
        let mut line = serde_json::to_string(request).unwrap_or_default();
        line.push('\n');
        if self.requests.write_all(line.as_bytes()).is_err() {
            return Err(self.died());
        }
        self.replies.recv().map_err(|_| self.died())
    }

    /// The child is gone: how it ended.
    fn died(&self) -> CellsError {
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let status = match process.wait() {
            Ok(status) => describe(status),
            Err(e) => e.to_string(),
        };
        // Whatever it printed before it died is passed on before the error is.
        while self
            .ends
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_ok()
        {}
        CellsError::ChildDied { status }
    }
}

/// A child process just started, and the channels to it.
struct Started {
    process: std::process::Child,
    requests: UnixStream,
    replies: mpsc::Receiver<Reply>,
    ends: mpsc::Receiver<Stream>,
}

impl Started {
    fn new(
        command: &ChildCommand,
        std_lib_dir: &Path,
        sink: OutputSink,
    ) -> Result<Started, CellsError> {
        let (ours, theirs) =
            UnixStream::pair().map_err(CellsError::io("create a socket for", &command.program))?;
        let mut library_path = std_lib_dir.as_os_str().to_owned();
        if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
            library_path.push(":");
            library_path.push(existing);
        }
        let mut process = std::process::Command::new(&command.program);
        process
            .env(CHILD_ENV, "1")
            .env("LD_LIBRARY_PATH", library_path)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let their_fd = theirs.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            process.pre_exec(move || {
                if libc::dup2(their_fd, CHANNEL_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut process = process
            .spawn()
            .map_err(CellsError::io("start", &command.program))?;
        drop(theirs);
        let (end_sender, ends) = mpsc::channel();
        if let Some(stdout) = process.stdout.take() {
            forward(stdout, Stream::Stdout, sink.clone(), end_sender.clone());
        }
        if let Some(stderr) = process.stderr.take() {
            forward(stderr, Stream::Stderr, sink, end_sender);
        }
        let (reply_sender, replies) = mpsc::channel();
        let reader = ours
            .try_clone()
            .map_err(CellsError::io("read from", &command.program))?;
        std::thread::Builder::new()
            .name("cells-replies".into())
            .spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    if let Ok(reply) = serde_json::from_str::<Reply>(&line)
                        && reply_sender.send(reply).is_err()
                    {
                        return;
                    }
                }
            })
            .map_err(CellsError::io("start a thread for", &command.program))?;
        Ok(Started {
            process,
            requests: ours,
            replies,
            ends,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let _ = process.kill();
        let _ = process.wait();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("it exited with status {code}"),
        (None, Some(signal)) => format!("it was ended by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Passes each line of `stream` to `sink`; a line with the end-of-cell marker passes on what
/// precedes the marker and tells `ends`.
fn forward(
    stream: impl std::io::Read + Send + 'static,
    kind: Stream,
    sink: OutputSink,
    ends: mpsc::Sender<Stream>,
) {
    let _ = std::thread::Builder::new()
        .name("cells-output".into())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => {
                        let _ = ends.send(kind);
                        return;
                    }
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let (printed, ended) = match text.strip_suffix(END_OF_CELL) {
                    Some(printed) => (printed, true),
                    None => (text, false),
                };
                if !(ended && printed.is_empty()) {
                    sink(kind, printed);
                }
                if ended {
                    let _ = ends.send(kind);
                }
            }
        });
}
