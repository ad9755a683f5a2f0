//! The running kernel: binds the five Jupyter sockets and runs a task for each — shell and
//! control requests (`requests`), iopub, stdin and the heartbeat — with the backend on a
//! thread of its own (`backend_thread`), reached through channels. Executed cells go to the
//! kernel's [`History`], which answers `history_request`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use zeromq::{PubSocket, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend};

use crate::backend::{Interrupter, KernelBackend, StdinError};
use crate::backend_thread::{BackendHandle, BackendRequest, backend_loop};
use crate::cell_output::{IopubEvent, StdinRequest, publish_to};
use crate::connection::ConnectionInfo;
use crate::error::KernelError;
use crate::history::History;
use crate::requests::{Channel, router_loop};
use crate::shared::Shared;
use crate::wire::{Message, PROTOCOL_VERSION, Signer, new_id};
use crate::zmq_frames::{from_zmq, to_zmq};

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
