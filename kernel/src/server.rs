//! The running kernel: binds the five Jupyter sockets, answers shell and control
//! requests, publishes on iopub, echoes heartbeats, and drives the backend, which runs
//! on a thread of its own and is reached through channels. Executed cells go to the
//! kernel's [`History`], which answers `history_request`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use zeromq::{PubSocket, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use crate::backend::{
    Completion, ExecuteError, ExecuteOutput, Interrupter, IsComplete, KernelBackend, MimeBundle,
    OutputSink, StdinError,
};
use crate::connection::ConnectionInfo;
use crate::error::{KernelError, WireError};
use crate::history::{History, HistoryQuery};
use crate::wire::{Message, PROTOCOL_VERSION, Signer, new_id};

/// How long a shutting-down kernel waits for queued messages to reach the wire.
const FLUSH_GRACE: Duration = Duration::from_millis(200);
/// How long a shutting-down kernel waits for the backend thread to finish.
const BACKEND_GRACE: Duration = Duration::from_secs(5);

/// Serves one kernel for the connection file at `connection_file`, running code with
/// `backend` and remembering executed cells in `history`, until a client sends
/// `shutdown_request`.
pub fn run_kernel<B: KernelBackend>(
    connection_file: &Path,
    backend: B,
    history: History,
) -> Result<(), KernelError> {
    let info = ConnectionInfo::from_file(connection_file)?;
    run_kernel_with_info(info, backend, history)
}

/// Like [`run_kernel`], with the connection already parsed.
pub fn run_kernel_with_info<B: KernelBackend>(
    info: ConnectionInfo,
    backend: B,
    history: History,
) -> Result<(), KernelError> {
    info.validate()?;
    let session = new_id();
    let kernel_info = json!({
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "tessera",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": backend.language_info(),
        "banner": backend.banner(),
        "help_links": [],
        "debugger": false,
    });
    let interrupter: Arc<Interrupter> = Arc::new(backend.interrupter());

    let (requests_tx, requests_rx) = std::sync::mpsc::channel::<BackendRequest>();
    let backend_thread = std::thread::Builder::new()
        .name("tessera-kernel-backend".into())
        .spawn(move || backend_loop(backend, requests_rx))
        .map_err(|source| KernelError::Start {
            what: "backend thread",
            source,
        })?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tessera-kernel-io")
        .enable_all()
        .build()
        .map_err(|source| KernelError::Start {
            what: "async runtime",
            source,
        })?;

    let result = runtime.block_on(serve(
        info,
        session,
        kernel_info,
        interrupter,
        history,
        BackendHandle {
            requests: requests_tx,
        },
    ));

    // The request channel is closed now (every handle was dropped with the tasks), so
    // an idle backend thread ends and drops the backend on its own thread.
    let deadline = Instant::now() + BACKEND_GRACE;
    while !backend_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if backend_thread.is_finished() {
        let _ = backend_thread.join();
    } else {
        warn!("the backend is still running a cell after shutdown; leaving it behind");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// State every socket task shares.
struct Shared {
    session: String,
    signer: Signer,
    iopub: mpsc::UnboundedSender<IopubEvent>,
    kernel_info: Value,
    interrupter: Arc<Interrupter>,
    /// The cells executed with `store_history`, of this session and earlier ones.
    history: parking_lot::Mutex<History>,
    /// True while a cell runs.
    busy: AtomicBool,
    /// Carries the `restart` flag of a shutdown request to the main task.
    shutdown: mpsc::UnboundedSender<bool>,
    /// Questions for the person at the front end, asked on the stdin channel.
    stdin: mpsc::UnboundedSender<StdinRequest>,
    /// Wakes an `input_request` waiting for its answer when the cell is interrupted.
    input_interrupted: tokio::sync::Notify,
}

impl Shared {
    /// Queues one iopub message whose parent is `parent`.
    fn publish(&self, parent: &Message, msg_type: &str, content: Value) {
        publish_to(&self.iopub, parent_header_of(parent), msg_type, content);
    }

    fn status(&self, parent: &Message, state: &str) {
        self.publish(parent, "status", json!({ "execution_state": state }));
    }

    /// Interrupts the running cell, and the question it is waiting on, if any.
    fn interrupt(&self) {
        self.input_interrupted.notify_waiters();
        (self.interrupter)();
    }
}

fn parent_header_of(message: &Message) -> Value {
    serde_json::to_value(&message.header).unwrap_or_else(|_| json!({}))
}

fn publish_to(
    iopub: &mpsc::UnboundedSender<IopubEvent>,
    parent_header: Value,
    msg_type: &str,
    content: Value,
) {
    // A closed channel means the kernel is shutting down; the message has nowhere to go.
    let _ = iopub.send(IopubEvent {
        parent_header,
        msg_type: msg_type.to_owned(),
        content,
    });
}

/// One message for the iopub socket; the iopub task adds header and signature.
struct IopubEvent {
    parent_header: Value,
    msg_type: String,
    content: Value,
}

async fn serve(
    info: ConnectionInfo,
    session: String,
    kernel_info: Value,
    interrupter: Arc<Interrupter>,
    history: History,
    backend: BackendHandle,
) -> Result<(), KernelError> {
    let mut shell = RouterSocket::new();
    let mut control = RouterSocket::new();
    let mut stdin = RouterSocket::new();
    let mut iopub = PubSocket::new();
    let mut heartbeat = RepSocket::new();
    bind(&mut shell, "shell", &info.endpoint(info.shell_port)).await?;
    bind(&mut control, "control", &info.endpoint(info.control_port)).await?;
    bind(&mut stdin, "stdin", &info.endpoint(info.stdin_port)).await?;
    bind(&mut iopub, "iopub", &info.endpoint(info.iopub_port)).await?;
    bind(&mut heartbeat, "heartbeat", &info.endpoint(info.hb_port)).await?;
    info!(
        ip = %info.ip,
        shell = info.shell_port,
        iopub = info.iopub_port,
        control = info.control_port,
        stdin = info.stdin_port,
        hb = info.hb_port,
        "tessera kernel listening"
    );

    let signer = Signer::new(info.key.as_bytes());
    let (iopub_tx, iopub_rx) = mpsc::unbounded_channel();
    let (shutdown_tx, mut shutdown_rx) = mpsc::unbounded_channel();
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        session: session.clone(),
        signer: signer.clone(),
        iopub: iopub_tx,
        kernel_info,
        interrupter,
        history: parking_lot::Mutex::new(history),
        busy: AtomicBool::new(false),
        shutdown: shutdown_tx,
        stdin: stdin_tx,
        input_interrupted: tokio::sync::Notify::new(),
    });

    let iopub_task = tokio::spawn(iopub_loop(iopub, iopub_rx, signer, session));
    let heartbeat_task = tokio::spawn(heartbeat_loop(heartbeat));
    let stdin_task = tokio::spawn(stdin_loop(stdin, stdin_rx, shared.clone()));
    let shell_task = tokio::spawn(router_loop(
        Channel::Shell,
        shell,
        shared.clone(),
        backend.clone(),
    ));
    let control_task = tokio::spawn(router_loop(
        Channel::Control,
        control,
        shared.clone(),
        backend,
    ));
    let signal_task = tokio::spawn(interrupt_on_sigint(shared.clone()));
    let parent_task = tokio::spawn(shutdown_when_parent_exits(shared.shutdown.clone()));
    publish_to(
        &shared.iopub,
        json!({}),
        "status",
        json!({ "execution_state": "starting" }),
    );

    let restart = shutdown_rx.recv().await.unwrap_or(false);
    info!(restart, "shutting down");
    if shared.busy.load(Ordering::SeqCst) {
        info!("interrupting the running cell");
        shared.interrupt();
    }
    drop(shared);
    for task in [
        shell_task,
        control_task,
        heartbeat_task,
        stdin_task,
        signal_task,
        parent_task,
    ] {
        task.abort();
        let _ = task.await;
    }
    // Let the writers put the shutdown reply and the last iopub messages on the wire.
    tokio::time::sleep(FLUSH_GRACE).await;
    iopub_task.abort();
    let _ = iopub_task.await;
    Ok(())
}

async fn bind<S: Socket>(
    socket: &mut S,
    name: &'static str,
    endpoint: &str,
) -> Result<(), KernelError> {
    socket
        .bind(endpoint)
        .await
        .map(|_| ())
        .map_err(|source| KernelError::Bind {
            socket: name,
            endpoint: endpoint.to_owned(),
            source,
        })
}

fn to_zmq(frames: Vec<Vec<u8>>) -> ZmqMessage {
    let mut frames = frames.into_iter();
    let mut message = ZmqMessage::from(frames.next().unwrap_or_default());
    for frame in frames {
        message.push_back(frame.into());
    }
    message
}

fn from_zmq(message: ZmqMessage) -> Vec<Vec<u8>> {
    message
        .into_vec()
        .into_iter()
        .map(|frame| frame.to_vec())
        .collect()
}

async fn iopub_loop(
    mut socket: PubSocket,
    mut events: mpsc::UnboundedReceiver<IopubEvent>,
    signer: Signer,
    session: String,
) {
    while let Some(event) = events.recv().await {
        let topic = format!("kernel.{session}.{}", event.msg_type);
        let message = Message {
            identities: vec![topic.into_bytes()],
            parent_header: event.parent_header,
            ..Message::new(&event.msg_type, event.content, &session)
        };
        match message.to_frames(&signer) {
            Ok(frames) => {
                if let Err(err) = socket.send(to_zmq(frames)).await {
                    warn!(msg_type = %event.msg_type, "could not publish on iopub: {err}");
                }
            }
            Err(err) => {
                error!(msg_type = %event.msg_type, "could not encode an iopub message: {err}")
            }
        }
    }
}

/// A question for the person at the front end, from a running cell.
struct StdinRequest {
    /// The execute request of the cell that asks: the question goes to its client.
    parent: Message,
    prompt: String,
    password: bool,
    answer: std::sync::mpsc::Sender<Result<String, StdinError>>,
}

/// Asks each question on the stdin channel (`input_request`, routed to the client of the
/// cell's execute request) and waits for its `input_reply`, or for an interrupt.
async fn stdin_loop(
    mut socket: RouterSocket,
    mut requests: mpsc::UnboundedReceiver<StdinRequest>,
    shared: Arc<Shared>,
) {
    while let Some(request) = requests.recv().await {
        let interrupted = shared.input_interrupted.notified();
        tokio::pin!(interrupted);
        let question = Message::reply_to(
            &request.parent,
            "input_request",
            json!({ "prompt": request.prompt, "password": request.password }),
            &shared.session,
        );
        let sent = match question.to_frames(&shared.signer) {
            Ok(frames) => socket.send(to_zmq(frames)).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let answer = match sent {
            Err(err) => {
                warn!("could not send input_request: {err}");
                Err(StdinError::Closed)
            }
            Ok(()) => loop {
                tokio::select! {
                    _ = &mut interrupted => break Err(StdinError::Interrupted),
                    received = socket.recv() => match received {
                        Ok(frames) => match Message::from_frames(from_zmq(frames), &shared.signer) {
                            Ok(reply) if reply.header.msg_type == "input_reply" => {
                                let value = reply.content.get("value").and_then(Value::as_str);
                                break Ok(value.unwrap_or_default().to_string());
                            }
                            Ok(other) => warn!(msg_type = %other.header.msg_type, "ignored a message on stdin while waiting for input_reply"),
                            Err(err) => warn!("rejected a message on stdin: {err}"),
                        },
                        Err(err) => {
                            warn!("the stdin channel failed: {err}");
                            break Err(StdinError::Closed);
                        }
                    },
                }
            },
        };
        let _ = request.answer.send(answer);
    }
}

async fn heartbeat_loop(mut socket: RepSocket) {
    loop {
        match socket.recv().await {
            Ok(ping) => {
                if let Err(err) = socket.send(ping).await {
                    debug!("heartbeat reply failed: {err}");
                }
            }
            Err(err) => {
                debug!("heartbeat receive failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Ctrl-C in the terminal that started the kernel interrupts the running cell instead
/// of killing the kernel (Jupyter may forward SIGINT to the process group).
async fn interrupt_on_sigint(shared: Arc<Shared>) {
    while tokio::signal::ctrl_c().await.is_ok() {
        info!("SIGINT: interrupting the running cell");
        shared.interrupt();
    }
}

/// Jupyter sets `JPY_PARENT_PID` when it starts a kernel; if that process goes away
/// (the kernel is re-parented) nobody can ever shut this kernel down, so it stops by
/// itself, like ipykernel's parent poller.
async fn shutdown_when_parent_exits(shutdown: mpsc::UnboundedSender<bool>) {
    #[cfg(unix)]
    if std::env::var_os("JPY_PARENT_PID").is_some() {
        let parent = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::os::unix::process::parent_id() != parent {
                warn!(
                    "the process that started this kernel (pid {parent}) has exited; shutting down"
                );
                let _ = shutdown.send(false);
                break;
            }
        }
    }
    let _ = shutdown;
    std::future::pending::<()>().await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Shell,
    Control,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Shell => "shell",
            Channel::Control => "control",
        })
    }
}

/// Per-channel state of a ROUTER loop.
struct RouterState {
    channel: Channel,
    socket: RouterSocket,
    shared: Arc<Shared>,
    backend: BackendHandle,
    execution_count: u64,
    /// Requests taken off the socket after a failed cell, to be handled (execute
    /// requests aborted) before anything newer.
    to_abort: std::collections::VecDeque<Message>,
}

async fn router_loop(
    channel: Channel,
    socket: RouterSocket,
    shared: Arc<Shared>,
    backend: BackendHandle,
) {
    let mut state = RouterState {
        channel,
        socket,
        shared,
        backend,
        execution_count: 0,
        to_abort: Default::default(),
    };
    loop {
        let (request, abort) = match state.to_abort.pop_front() {
            Some(request) => (request, true),
            None => match state.recv().await {
                Some(request) => (request, false),
                None => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let outcome = state.handle(request, abort).await;
        if let Some(restart) = outcome.shutdown {
            let _ = state.shared.shutdown.send(restart);
            // Serve nothing more; the main task is about to stop this one.
            std::future::pending::<()>().await;
        }
    }
}

/// What handling one request asks the loop to do next.
#[derive(Default)]
struct Outcome {
    /// `Some(restart)` after a shutdown request.
    shutdown: Option<bool>,
}

#[derive(Deserialize)]
struct ExecuteRequest {
    code: String,
    #[serde(default)]
    silent: bool,
    #[serde(default = "yes")]
    store_history: bool,
    #[serde(default = "yes")]
    stop_on_error: bool,
    #[serde(default = "yes")]
    allow_stdin: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct CodeAtCursor {
    code: String,
    #[serde(default)]
    cursor_pos: Option<usize>,
}

#[derive(Deserialize)]
struct CodeOnly {
    code: String,
}

impl RouterState {
    /// Receives and verifies the next request; `None` (after logging) for anything that
    /// is not a valid, correctly signed message.
    async fn recv(&mut self) -> Option<Message> {
        let frames = match self.socket.recv().await {
            Ok(message) => from_zmq(message),
            Err(err) => {
                debug!(channel = %self.channel, "receive failed: {err}");
                return None;
            }
        };
        match Message::from_frames(frames, &self.shared.signer) {
            Ok(message) => Some(message),
            Err(WireError::BadSignature) => {
                warn!(channel = %self.channel, "rejected a message with an invalid signature (wrong key or tampered message)");
                None
            }
            Err(err) => {
                warn!(channel = %self.channel, "rejected a malformed message: {err}");
                None
            }
        }
    }

    async fn reply(&mut self, request: &Message, msg_type: &str, content: Value) {
        let reply = Message::reply_to(request, msg_type, content, &self.shared.session);
        match reply.to_frames(&self.shared.signer) {
            Ok(frames) if frames.len() >= 2 && !reply.identities.is_empty() => {
                if let Err(err) = self.socket.send(to_zmq(frames)).await {
                    warn!(channel = %self.channel, %msg_type, "could not send reply: {err}");
                }
            }
            Ok(_) => {
                warn!(channel = %self.channel, %msg_type, "request had no routing identity; cannot reply")
            }
            Err(err) => error!(channel = %self.channel, %msg_type, "could not encode reply: {err}"),
        }
    }

    /// Handles one request: status busy, the reply, status idle. With `abort`, execute
    /// requests are answered `aborted` without running.
    async fn handle(&mut self, request: Message, abort: bool) -> Outcome {
        let msg_type = request.header.msg_type.clone();
        debug!(channel = %self.channel, %msg_type, msg_id = %request.header.msg_id, "request");
        self.shared.status(&request, "busy");
        let mut outcome = Outcome::default();
        match (self.channel, msg_type.as_str()) {
            (_, "kernel_info_request") => {
                let content = self.shared.kernel_info.clone();
                self.reply(&request, "kernel_info_reply", content).await;
            }
            (_, "shutdown_request") => {
                let restart = request.content["restart"].as_bool().unwrap_or(false);
                let content = json!({ "status": "ok", "restart": restart });
                self.reply(&request, "shutdown_reply", content.clone())
                    .await;
                self.shared.publish(&request, "shutdown_reply", content);
                outcome.shutdown = Some(restart);
            }
            (Channel::Control, "interrupt_request") => {
                info!("interrupt requested");
                self.shared.interrupt();
                self.reply(&request, "interrupt_reply", json!({ "status": "ok" }))
                    .await;
            }
            (Channel::Shell, "execute_request") if abort => {
                let content =
                    json!({ "status": "aborted", "execution_count": self.execution_count });
                self.reply(&request, "execute_reply", content).await;
            }
            (Channel::Shell, "execute_request") => {
                self.execute(&request).await;
            }
            (Channel::Shell, "complete_request") => {
                let content = self.complete(&request).await;
                self.reply(&request, "complete_reply", content).await;
            }
            (Channel::Shell, "inspect_request") => {
                let content = self.inspect(&request).await;
                self.reply(&request, "inspect_reply", content).await;
            }
            (Channel::Shell, "is_complete_request") => {
                let content = self.is_complete(&request).await;
                self.reply(&request, "is_complete_reply", content).await;
            }
            (Channel::Shell, "history_request") => {
                let content = match HistoryQuery::from_content(&request.content) {
                    Ok(query) => {
                        let history = self.shared.history.lock().answer(&query);
                        json!({ "status": "ok", "history": history })
                    }
                    Err(err) => {
                        warn!("history_request content is invalid: {err}");
                        bad_request("history_request")
                    }
                };
                self.reply(&request, "history_reply", content).await;
            }
            (Channel::Shell, "comm_info_request") => {
                let content = json!({ "status": "ok", "comms": {} });
                self.reply(&request, "comm_info_reply", content).await;
            }
            (Channel::Shell, "comm_open") => {
                // No comm targets exist; close at once so the frontend does not wait.
                let comm_id = request.content["comm_id"].clone();
                self.shared.publish(
                    &request,
                    "comm_close",
                    json!({ "comm_id": comm_id, "data": {} }),
                );
            }
            (Channel::Shell, "comm_msg" | "comm_close") => {}
            (channel, other) => {
                warn!(%channel, msg_type = %other, "ignoring a message type this kernel does not handle");
            }
        }
        self.shared.status(&request, "idle");
        outcome
    }

    /// Runs a cell and replies.
    async fn execute(&mut self, request: &Message) {
        let req: ExecuteRequest = match serde_json::from_value(request.content.clone()) {
            Ok(req) => req,
            Err(err) => {
                let error = ExecuteError::new(
                    "BadRequest",
                    format!("execute_request content is invalid: {err}"),
                );
                let content = error_reply(&error, self.execution_count);
                self.reply(request, "execute_reply", content).await;
                return;
            }
        };
        let silent = req.silent;
        let store_history = req.store_history && !silent;
        if store_history {
            self.execution_count += 1;
        }
        let count = self.execution_count;
        if !silent {
            self.shared.publish(
                request,
                "execute_input",
                json!({ "code": req.code, "execution_count": count }),
            );
        }

        let sink = IopubSink {
            iopub: self.shared.iopub.clone(),
            parent_header: parent_header_of(request),
            silent,
            stdin: req
                .allow_stdin
                .then(|| (self.shared.stdin.clone(), request.clone())),
        };
        let input = store_history.then(|| req.code.clone());
        self.shared.busy.store(true, Ordering::SeqCst);
        let result = self
            .backend
            .call(|reply| BackendRequest::Execute {
                code: req.code,
                sink: Box::new(sink),
                reply,
            })
            .await
            .unwrap_or_else(|| {
                Err(ExecuteError::new(
                    "KernelBackendGone",
                    "the code runner of this kernel has stopped; restart the kernel",
                ))
            });
        self.shared.busy.store(false, Ordering::SeqCst);
        if let Some(input) = input {
            let output = result
                .as_ref()
                .ok()
                .and_then(|output| output.data.get("text/plain"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.shared.history.lock().record(count, &input, output);
        }

        match result {
            Ok(output) => {
                if !silent && !output.data.is_empty() {
                    self.shared.publish(
                        request,
                        "execute_result",
                        json!({ "execution_count": count, "data": output.data, "metadata": {} }),
                    );
                }
                let content = json!({
                    "status": "ok",
                    "execution_count": count,
                    "user_expressions": {},
                    "payload": [],
                });
                self.reply(request, "execute_reply", content).await;
            }
            Err(error) => {
                if !silent {
                    self.shared.publish(
                        request,
                        "error",
                        json!({
                            "ename": error.ename,
                            "evalue": error.evalue,
                            "traceback": error.traceback,
                        }),
                    );
                }
                if req.stop_on_error && !silent {
                    self.take_queued_requests().await;
                }
                self.reply(request, "execute_reply", error_reply(&error, count))
                    .await;
            }
        }
    }

    /// After a failed cell and before its reply, takes the requests already waiting
    /// (sent before the client could know of the failure) so their execute requests
    /// are answered `aborted`, like "Run All" stopping at the first error. Requests sent
    /// after the client sees the error reply run normally.
    async fn take_queued_requests(&mut self) {
        while let Ok(next) = tokio::time::timeout(Duration::from_millis(2), self.recv()).await {
            if let Some(request) = next {
                self.to_abort.push_back(request);
            }
        }
    }

    async fn complete(&mut self, request: &Message) -> Value {
        let Ok(req) = serde_json::from_value::<CodeAtCursor>(request.content.clone()) else {
            return bad_request("complete_request");
        };
        let code = req.code;
        let byte_pos = char_to_byte(&code, req.cursor_pos.unwrap_or(usize::MAX));
        let call_code = code.clone();
        let completion = self
            .backend
            .call(|reply| BackendRequest::Complete {
                code: call_code,
                cursor_pos: byte_pos,
                reply,
            })
            .await
            .unwrap_or_else(|| Completion::nothing_at(byte_pos));
        let (start, end) = (
            byte_to_char(&code, completion.cursor_start),
            byte_to_char(&code, completion.cursor_end),
        );
        // JupyterLab shows each match's kind from this (the field IPython fills too).
        let types: Vec<Value> = completion
            .matches
            .iter()
            .zip(&completion.types)
            .map(|(text, kind)| {
                json!({ "start": start, "end": end, "text": text, "type": jupyter_type(kind) })
            })
            .collect();
        json!({
            "status": "ok",
            "matches": completion.matches,
            "cursor_start": start,
            "cursor_end": end,
            "metadata": { "_jupyter_types_experimental": types },
        })
    }

    async fn inspect(&mut self, request: &Message) -> Value {
        let Ok(req) = serde_json::from_value::<CodeAtCursor>(request.content.clone()) else {
            return bad_request("inspect_request");
        };
        let byte_pos = char_to_byte(&req.code, req.cursor_pos.unwrap_or(usize::MAX));
        let found = self
            .backend
            .call(|reply| BackendRequest::Inspect {
                code: req.code,
                cursor_pos: byte_pos,
                reply,
            })
            .await
            .flatten();
        match found {
            Some(data) => json!({
                "status": "ok",
                "found": true,
                "data": data,
                "metadata": {},
            }),
            None => json!({ "status": "ok", "found": false, "data": {}, "metadata": {} }),
        }
    }

    async fn is_complete(&mut self, request: &Message) -> Value {
        let Ok(req) = serde_json::from_value::<CodeOnly>(request.content.clone()) else {
            return bad_request("is_complete_request");
        };
        let answer = self
            .backend
            .call(|reply| BackendRequest::IsComplete {
                code: req.code,
                reply,
            })
            .await
            .unwrap_or(IsComplete::Unknown);
        match answer {
            IsComplete::Complete => json!({ "status": "complete" }),
            IsComplete::Incomplete { indent } => {
                json!({ "status": "incomplete", "indent": indent })
            }
            IsComplete::Invalid => json!({ "status": "invalid" }),
            IsComplete::Unknown => json!({ "status": "unknown" }),
        }
    }
}

fn error_reply(error: &ExecuteError, execution_count: u64) -> Value {
    json!({
        "status": "error",
        "execution_count": execution_count,
        "ename": error.ename,
        "evalue": error.evalue,
        "traceback": error.traceback,
    })
}

fn bad_request(what: &str) -> Value {
    warn!("{what} content is invalid");
    json!({
        "status": "error",
        "ename": "BadRequest",
        "evalue": format!("{what} content is invalid"),
        "traceback": [],
    })
}

/// Jupyter counts cursor positions in Unicode code points; the backend in bytes.
fn char_to_byte(code: &str, chars: usize) -> usize {
    code.char_indices()
        .nth(chars)
        .map(|(byte, _)| byte)
        .unwrap_or(code.len())
}

fn byte_to_char(code: &str, byte: usize) -> usize {
    let mut byte = byte.min(code.len());
    while !code.is_char_boundary(byte) {
        byte -= 1;
    }
    code[..byte].chars().count()
}

/// Requests to the backend thread; each carries where to send the answer.
enum BackendRequest {
    Execute {
        code: String,
        /// Boxed: the sink is many times the size of the other requests.
        sink: Box<IopubSink>,
        reply: oneshot::Sender<Result<ExecuteOutput, ExecuteError>>,
    },
    Complete {
        code: String,
        cursor_pos: usize,
        reply: oneshot::Sender<Completion>,
    },
    Inspect {
        code: String,
        cursor_pos: usize,
        reply: oneshot::Sender<Option<MimeBundle>>,
    },
    IsComplete {
        code: String,
        reply: oneshot::Sender<IsComplete>,
    },
}

#[derive(Clone)]
struct BackendHandle {
    requests: std::sync::mpsc::Sender<BackendRequest>,
}

impl BackendHandle {
    /// Sends a request and waits for its answer; `None` if the backend thread is gone.
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> BackendRequest) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

fn backend_loop<B: KernelBackend>(
    mut backend: B,
    requests: std::sync::mpsc::Receiver<BackendRequest>,
) {
    while let Ok(request) = requests.recv() {
        match request {
            BackendRequest::Execute {
                code,
                mut sink,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.execute(&code, &mut *sink)))
                    .unwrap_or_else(|panic| {
                        let message = panic_message(&*panic);
                        error!("the backend panicked while running a cell: {message}");
                        Err(ExecuteError::new(
                            "KernelPanic",
                            format!("the kernel panicked while running this cell: {message}"),
                        ))
                    });
                let _ = reply.send(result);
            }
            BackendRequest::Complete {
                code,
                cursor_pos,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.complete(&code, cursor_pos)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked while completing: {}",
                            panic_message(&*panic)
                        );
                        Completion::nothing_at(cursor_pos)
                    });
                let _ = reply.send(result);
            }
            BackendRequest::Inspect {
                code,
                cursor_pos,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.inspect(&code, cursor_pos)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked while inspecting: {}",
                            panic_message(&*panic)
                        );
                        None
                    });
                let _ = reply.send(result);
            }
            BackendRequest::IsComplete { code, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.is_complete(&code)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked in is_complete: {}",
                            panic_message(&*panic)
                        );
                        IsComplete::Unknown
                    });
                let _ = reply.send(result);
            }
        }
    }
    debug!("backend thread finished");
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    tessera_plan::panic_text::panic_text(panic).unwrap_or_else(|| "(no message)".to_owned())
}

/// The [`OutputSink`] a cell writes to: every call becomes an iopub message whose
/// parent is the execute request. Silent executions publish nothing.
struct IopubSink {
    iopub: mpsc::UnboundedSender<IopubEvent>,
    parent_header: Value,
    silent: bool,
    /// Where to ask for input, and the execute request asking; `None` without `allow_stdin`.
    stdin: Option<(mpsc::UnboundedSender<StdinRequest>, Message)>,
}

impl IopubSink {
    fn send(&self, msg_type: &str, content: Value) {
        if !self.silent {
            publish_to(&self.iopub, self.parent_header.clone(), msg_type, content);
        }
    }
}

impl OutputSink for IopubSink {
    fn read_input(&mut self, prompt: &str, password: bool) -> Result<String, StdinError> {
        let Some((requests, parent)) = &self.stdin else {
            return Err(StdinError::NotAllowed);
        };
        let (answer, answered) = std::sync::mpsc::channel();
        requests
            .send(StdinRequest {
                parent: parent.clone(),
                prompt: prompt.to_string(),
                password,
                answer,
            })
            .map_err(|_| StdinError::Closed)?;
        answered.recv().unwrap_or(Err(StdinError::Closed))
    }

    fn stdout(&mut self, text: &str) {
        if !text.is_empty() {
            self.send("stream", json!({ "name": "stdout", "text": text }));
        }
    }

    fn stderr(&mut self, text: &str) {
        if !text.is_empty() {
            self.send("stream", json!({ "name": "stderr", "text": text }));
        }
    }

    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        let mut content = json!({ "data": data, "metadata": {} });
        if let Some(id) = display_id {
            content["transient"] = json!({ "display_id": id });
        }
        let msg_type = match (update, display_id) {
            (true, Some(_)) => "update_display_data",
            (true, None) => {
                warn!("a display update without a display id is shown as new output");
                "display_data"
            }
            (false, _) => "display_data",
        };
        self.send(msg_type, content);
    }

    fn clear_output(&mut self, wait: bool) {
        self.send("clear_output", json!({ "wait": wait }));
    }
}

/// A completion's kind (rust-analyzer's: method, struct, field, ...) in the words JupyterLab
/// knows and has icons for (IPython's: function, class, module, instance, property, keyword).
fn jupyter_type(kind: &str) -> &str {
    match kind {
        "function" | "method" | "macro" => "function",
        "struct" | "enum" | "union" | "trait" | "type" | "variant" => "class",
        "module" => "module",
        "variable" | "constant" | "static" => "instance",
        "field" => "property",
        "keyword" => "keyword",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_kinds_are_named_as_jupyterlab_knows_them() {
        assert_eq!(jupyter_type("method"), "function");
        assert_eq!(jupyter_type("function"), "function");
        assert_eq!(jupyter_type("struct"), "class");
        assert_eq!(jupyter_type("module"), "module");
        assert_eq!(jupyter_type("variable"), "instance");
        assert_eq!(jupyter_type("field"), "property");
        assert_eq!(jupyter_type("lifetime"), "lifetime");
    }

    #[test]
    fn cursor_positions_convert_between_code_points_and_bytes() {
        let code = "let é = \"日本\"; x";
        assert_eq!(char_to_byte(code, 0), 0);
        assert_eq!(char_to_byte(code, 4), 4);
        assert_eq!(char_to_byte(code, 5), 6, "é is two bytes");
        assert_eq!(char_to_byte(code, 1000), code.len());
        assert_eq!(byte_to_char(code, 6), 5);
        assert_eq!(byte_to_char(code, 5), 4, "inside é rounds down");
        assert_eq!(byte_to_char(code, code.len()), code.chars().count());
        assert_eq!(byte_to_char(code, 1000), code.chars().count());
        for chars in 0..=code.chars().count() {
            assert_eq!(byte_to_char(code, char_to_byte(code, chars)), chars);
        }
    }

    #[test]
    fn sink_turns_calls_into_iopub_messages() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = IopubSink {
            iopub: tx,
            parent_header: json!({"msg_id": "p"}),
            silent: false,
            stdin: None,
        };
        sink.stdout("hi\n");
        sink.stderr("");
        sink.display(MimeBundle::plain("0%"), Some("job-1"), false);
        sink.display(MimeBundle::plain("50%"), Some("job-1"), true);
        let events: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let types: Vec<_> = events.iter().map(|e| e.msg_type.as_str()).collect();
        assert_eq!(types, ["stream", "display_data", "update_display_data"]);
        assert_eq!(events[0].content["text"], "hi\n");
        assert_eq!(events[0].parent_header["msg_id"], "p");
        assert_eq!(events[2].content["transient"]["display_id"], "job-1");
        assert_eq!(events[2].content["data"]["text/plain"], "50%");

        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut silent = IopubSink {
            iopub: tx,
            parent_header: json!({}),
            silent: true,
            stdin: None,
        };
        silent.stdout("hidden");
        assert!(rx.try_recv().is_err());
        // Without allow_stdin a cell asking for input is told so.
        assert_eq!(
            silent.read_input("name? ", false),
            Err(StdinError::NotAllowed)
        );
    }
}
