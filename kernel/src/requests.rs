//! The shell and control channels: each request (execute, complete, inspect, is_complete,
//! history, kernel_info, interrupt, shutdown, ...) read off its ROUTER socket, verified, handled
//! and answered, with the status and output it publishes on iopub.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, error, info, warn};
use zeromq::{RouterSocket, SocketRecv, SocketSend};

use crate::backend::{Completion, ExecuteError, IsComplete};
use crate::backend_thread::{BackendHandle, BackendRequest};
use crate::cell_output::{IopubSink, parent_header_of};
use crate::error::WireError;
use crate::history::HistoryQuery;
use crate::shared::Shared;
use crate::wire::Message;
use crate::zmq_frames::{from_zmq, to_zmq};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
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

pub(crate) async fn router_loop(
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
}
