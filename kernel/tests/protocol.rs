//! Drives a real kernel (`run_kernel` with a toy backend) over real ZeroMQ sockets, the
//! way a Jupyter client does: kernel info, heartbeat, execution with streams, results,
//! displays and errors, completion, inspection, interrupt, bad signatures, shutdown.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use support::toy_backend::ToyBackend;
use tessera_kernel::wire::{Message, Signer};
use tessera_kernel::{ConnectionInfo, History, KernelError, run_kernel};
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

const TIMEOUT: Duration = Duration::from_secs(20);
const KEY: &str = "8c2a4f1e-test-key";

fn free_ports() -> [u16; 5] {
    let listeners: Vec<_> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    ports.try_into().unwrap()
}

struct RunningKernel {
    info: ConnectionInfo,
    thread: Option<JoinHandle<Result<(), KernelError>>>,
    _dir: tempfile::TempDir,
}

/// Starts the kernel on free ports. The ports are free when picked but released before the
/// kernel binds them, so another process may take one first: a kernel that stops at once
/// because it could not bind is started again on other ports.
fn start_kernel() -> RunningKernel {
    for _ in 0..3 {
        let mut kernel = start_kernel_once();
        std::thread::sleep(Duration::from_millis(200));
        let thread = kernel.thread.as_ref().unwrap();
        if !thread.is_finished() {
            return kernel;
        }
        match kernel.thread.take().unwrap().join().unwrap() {
            Err(KernelError::Bind { .. }) => continue,
            other => panic!("the kernel stopped as it started: {other:?}"),
        }
    }
    panic!("the kernel could not bind free ports three times");
}

fn start_kernel_once() -> RunningKernel {
    let [shell, iopub, stdin, control, hb] = free_ports();
    let info = ConnectionInfo {
        transport: "tcp".into(),
        ip: "127.0.0.1".into(),
        shell_port: shell,
        iopub_port: iopub,
        stdin_port: stdin,
        control_port: control,
        hb_port: hb,
        key: KEY.into(),
        signature_scheme: "hmac-sha256".into(),
        kernel_name: Some("tessera".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("kernel.json");
    std::fs::write(&path, serde_json::to_string(&info).unwrap()).unwrap();
    let thread =
        std::thread::spawn(move || run_kernel(&path, ToyBackend::new(), History::in_memory()));
    RunningKernel {
        info,
        thread: Some(thread),
        _dir: dir,
    }
}

impl RunningKernel {
    /// Waits for the kernel thread to return.
    fn join(mut self) -> Result<(), KernelError> {
        let thread = self.thread.take().unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !thread.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "kernel did not stop after shutdown"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        thread.join().unwrap()
    }
}

fn to_zmq(frames: Vec<Vec<u8>>) -> ZmqMessage {
    let mut frames = frames.into_iter();
    let mut message = ZmqMessage::from(frames.next().unwrap());
    for frame in frames {
        message.push_back(frame.into());
    }
    message
}

fn from_zmq(message: ZmqMessage) -> Vec<Vec<u8>> {
    message.into_vec().into_iter().map(|f| f.to_vec()).collect()
}

struct Client {
    shell: DealerSocket,
    control: DealerSocket,
    iopub: SubSocket,
    hb: ReqSocket,
    signer: Signer,
    session: String,
}

#[derive(Clone, Copy)]
enum Chan {
    Shell,
    Control,
}

impl Client {
    async fn connect(info: &ConnectionInfo) -> Client {
        let mut shell = DealerSocket::new();
        shell
            .connect(&info.endpoint(info.shell_port))
            .await
            .unwrap();
        let mut control = DealerSocket::new();
        control
            .connect(&info.endpoint(info.control_port))
            .await
            .unwrap();
        let mut iopub = SubSocket::new();
        iopub
            .connect(&info.endpoint(info.iopub_port))
            .await
            .unwrap();
        iopub.subscribe("").await.unwrap();
        let mut hb = ReqSocket::new();
        hb.connect(&info.endpoint(info.hb_port)).await.unwrap();
        let mut client = Client {
            shell,
            control,
            iopub,
            hb,
            signer: Signer::new(info.key.as_bytes()),
            session: tessera_kernel::wire::new_id(),
        };
        client.wait_for_ready().await;
        client
    }

    /// Like jupyter_client: ask for kernel info until a reply arrives on shell and
    /// iopub is seen to deliver (the PUB socket drops messages until we subscribe).
    async fn wait_for_ready(&mut self) {
        for _ in 0..40 {
            let request = self
                .send(Chan::Shell, "kernel_info_request", json!({}))
                .await;
            if let Ok(reply) =
                tokio::time::timeout(Duration::from_secs(1), self.recv(Chan::Shell)).await
            {
                assert_eq!(reply.header.msg_type, "kernel_info_reply");
                assert_eq!(
                    reply.parent_header["msg_id"],
                    request.header.msg_id.as_str()
                );
                if tokio::time::timeout(Duration::from_millis(300), self.recv_iopub())
                    .await
                    .is_ok()
                {
                    // Drain the rest of that request's status messages.
                    while tokio::time::timeout(Duration::from_millis(100), self.recv_iopub())
                        .await
                        .is_ok()
                    {}
                    return;
                }
            }
        }
        panic!("kernel never became ready");
    }

    fn socket(&mut self, chan: Chan) -> &mut DealerSocket {
        match chan {
            Chan::Shell => &mut self.shell,
            Chan::Control => &mut self.control,
        }
    }

    async fn send(&mut self, chan: Chan, msg_type: &str, content: Value) -> Message {
        let message = Message::new(msg_type, content, &self.session);
        let frames = message.to_frames(&self.signer).unwrap();
        self.socket(chan).send(to_zmq(frames)).await.unwrap();
        message
    }

    async fn recv(&mut self, chan: Chan) -> Message {
        let frames = from_zmq(self.socket(chan).recv().await.unwrap());
        let message = Message::from_frames(frames, &self.signer).expect("kernel signs replies");
        assert!(message.identities.is_empty(), "dealer sees no identities");
        message
    }

    async fn reply(&mut self, chan: Chan, request: &Message) -> Message {
        let reply = tokio::time::timeout(TIMEOUT, self.recv(chan))
            .await
            .expect("no reply in time");
        assert_eq!(
            reply.parent_header["msg_id"],
            request.header.msg_id.as_str(),
            "reply must carry the request as parent"
        );
        assert_eq!(reply.header.version, "5.3");
        reply
    }

    async fn recv_iopub(&mut self) -> Message {
        let frames = from_zmq(self.iopub.recv().await.unwrap());
        let message = Message::from_frames(frames, &self.signer).expect("kernel signs iopub");
        assert_eq!(message.identities.len(), 1, "iopub messages carry a topic");
        message
    }

    /// The iopub messages for `request`, from its `busy` to its `idle`.
    async fn iopub_for(&mut self, request: &Message) -> Vec<Message> {
        let mut messages = Vec::new();
        loop {
            let message = tokio::time::timeout(TIMEOUT, self.recv_iopub())
                .await
                .expect("no iopub idle in time");
            if message.parent_header["msg_id"] != request.header.msg_id.as_str() {
                continue;
            }
            let idle =
                message.header.msg_type == "status" && message.content["execution_state"] == "idle";
            messages.push(message);
            if idle {
                return messages;
            }
        }
    }

    async fn execute(&mut self, code: &str) -> (Message, Vec<Message>) {
        self.execute_with(json!({ "code": code, "silent": false }))
            .await
    }

    async fn execute_with(&mut self, content: Value) -> (Message, Vec<Message>) {
        let request = self.send(Chan::Shell, "execute_request", content).await;
        let reply = self.reply(Chan::Shell, &request).await;
        assert_eq!(reply.header.msg_type, "execute_reply");
        let iopub = self.iopub_for(&request).await;
        (reply, iopub)
    }
}

fn types(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m.header.msg_type.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_drives_the_kernel_through_a_session() {
    let kernel = start_kernel();
    let mut client = Client::connect(&kernel.info).await;

    // kernel_info
    let request = client
        .send(Chan::Shell, "kernel_info_request", json!({}))
        .await;
    let info = client.reply(Chan::Shell, &request).await;
    assert_eq!(info.header.msg_type, "kernel_info_reply");
    assert_eq!(info.content["status"], "ok");
    assert_eq!(info.content["protocol_version"], "5.3");
    assert_eq!(info.content["implementation"], "tessera");
    assert_eq!(info.content["language_info"]["name"], "rust");
    assert_eq!(info.content["language_info"]["mimetype"], "text/rust");
    assert_eq!(info.content["language_info"]["file_extension"], ".rs");
    assert_eq!(info.content["language_info"]["pygments_lexer"], "rust");
    assert_eq!(info.content["language_info"]["codemirror_mode"], "rust");
    assert!(info.content["banner"].as_str().unwrap().contains("toy"));
    let statuses = client.iopub_for(&request).await;
    assert_eq!(types(&statuses), ["status", "status"]);
    assert_eq!(statuses[0].content["execution_state"], "busy");

    // kernel_info on control too
    let request = client
        .send(Chan::Control, "kernel_info_request", json!({}))
        .await;
    let info = client.reply(Chan::Control, &request).await;
    assert_eq!(info.content["implementation"], "tessera");

    // heartbeat echoes
    client.hb.send(ZmqMessage::from("ping")).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, client.hb.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.get(0).unwrap().as_ref(), b"ping");

    // a cell with a stream and a result
    let (reply, iopub) = client.execute(r#"println!("hi"); 40 + 2"#).await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["execution_count"], 1);
    assert_eq!(
        types(&iopub),
        [
            "status",
            "execute_input",
            "stream",
            "execute_result",
            "status"
        ]
    );
    assert_eq!(iopub[0].content["execution_state"], "busy");
    assert_eq!(iopub[1].content["code"], r#"println!("hi"); 40 + 2"#);
    assert_eq!(iopub[1].content["execution_count"], 1);
    assert_eq!(iopub[2].content["name"], "stdout");
    assert_eq!(iopub[2].content["text"], "hi\n");
    assert_eq!(iopub[3].content["data"]["text/plain"], "42");
    assert_eq!(iopub[3].content["execution_count"], 1);
    assert_eq!(iopub[4].content["execution_state"], "idle");

    // a statement has no result; stderr is a stream too
    let (reply, iopub) = client.execute(r#"eprintln!("careful"); 1;"#).await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["execution_count"], 2);
    assert_eq!(
        types(&iopub),
        ["status", "execute_input", "stream", "status"]
    );
    assert_eq!(iopub[2].content["name"], "stderr");

    // live progress: display_data, then update_display_data with the same id
    let (reply, iopub) = client.execute("progress(2); html(\"<b>done</b>\")").await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(
        types(&iopub),
        [
            "status",
            "execute_input",
            "display_data",
            "update_display_data",
            "update_display_data",
            "display_data",
            "status"
        ]
    );
    let id = &iopub[2].content["transient"]["display_id"];
    assert!(id.is_string());
    assert_eq!(&iopub[3].content["transient"]["display_id"], id);
    assert_eq!(iopub[4].content["data"]["text/plain"], "2/2");
    assert_eq!(iopub[5].content["data"]["text/html"], "<b>done</b>");

    // an error
    let (reply, iopub) = client.execute("undefined_name + 1").await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["execution_count"], 4);
    assert_eq!(reply.content["ename"], "E0425");
    assert!(
        reply.content["evalue"]
            .as_str()
            .unwrap()
            .contains("cannot find value `undefined_name`")
    );
    assert_eq!(
        types(&iopub),
        ["status", "execute_input", "error", "status"]
    );
    assert_eq!(iopub[2].content["ename"], "E0425");
    assert!(!iopub[2].content["traceback"].as_array().unwrap().is_empty());

    // silent: nothing but status on iopub, the count does not move
    let (reply, iopub) = client
        .execute_with(json!({ "code": "println!(\"x\"); 5", "silent": true }))
        .await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["execution_count"], 4);
    assert_eq!(types(&iopub), ["status", "status"]);

    // store_history false: output, but the count does not move
    let (reply, iopub) = client
        .execute_with(json!({ "code": "7", "silent": false, "store_history": false }))
        .await;
    assert_eq!(reply.content["execution_count"], 4);
    assert_eq!(
        types(&iopub),
        ["status", "execute_input", "execute_result", "status"]
    );

    // a failed cell aborts the execute requests already queued behind it
    let first = client
        .send(
            Chan::Shell,
            "execute_request",
            json!({ "code": "sleep(300); nope", "silent": false }),
        )
        .await;
    let second = client
        .send(
            Chan::Shell,
            "execute_request",
            json!({ "code": "1 + 1", "silent": false }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &first).await;
    assert_eq!(reply.content["status"], "error");
    let reply = client.reply(Chan::Shell, &second).await;
    assert_eq!(reply.content["status"], "aborted");
    client.iopub_for(&first).await;
    client.iopub_for(&second).await;
    // ... and the next one runs
    let (reply, _) = client.execute("1 + 1").await;
    assert_eq!(reply.content["status"], "ok");

    // a panicking backend is an error, not a dead kernel
    let (reply, _) = client.execute("panic").await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "KernelPanic");
    let (reply, iopub) = client.execute("2 * 3").await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(iopub[2].content["data"]["text/plain"], "6");

    // complete: positions in code points ("é" is one code point, two bytes)
    let request = client
        .send(
            Chan::Shell,
            "complete_request",
            json!({ "code": "é; pri", "cursor_pos": 6 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "complete_reply");
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["matches"], json!(["println!"]));
    assert_eq!(reply.content["cursor_start"], 3);
    assert_eq!(reply.content["cursor_end"], 6);
    client.iopub_for(&request).await;

    // inspect
    let request = client
        .send(
            Chan::Shell,
            "inspect_request",
            json!({ "code": "println!(\"a\")", "cursor_pos": 3, "detail_level": 0 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "inspect_reply");
    assert_eq!(reply.content["found"], true);
    assert!(
        reply.content["data"]["text/plain"]
            .as_str()
            .unwrap()
            .contains("standard output")
    );
    let request = client
        .send(
            Chan::Shell,
            "inspect_request",
            json!({ "code": "zzz", "cursor_pos": 1, "detail_level": 0 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.content["found"], false);

    // is_complete
    for (code, status) in [
        ("fn f() {", "incomplete"),
        ("1 + 1", "complete"),
        (")", "invalid"),
    ] {
        let request = client
            .send(Chan::Shell, "is_complete_request", json!({ "code": code }))
            .await;
        let reply = client.reply(Chan::Shell, &request).await;
        assert_eq!(reply.header.msg_type, "is_complete_reply");
        assert_eq!(reply.content["status"], status, "for {code:?}");
        if status == "incomplete" {
            assert_eq!(reply.content["indent"], "    ");
        }
    }

    // history: the cells stored, with their values; silent, store_history false and
    // aborted cells are not among them
    let request = client
        .send(
            Chan::Shell,
            "history_request",
            json!({ "output": true, "raw": true, "hist_access_type": "tail", "n": 3 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "history_reply");
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(
        reply.content["history"],
        json!([
            [1, 6, ["1 + 1", "2"]],
            [1, 7, ["panic", null]],
            [1, 8, ["2 * 3", "6"]]
        ])
    );
    let request = client
        .send(
            Chan::Shell,
            "history_request",
            json!({ "output": false, "raw": true, "hist_access_type": "range", "session": 0, "start": 4, "stop": 6 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(
        reply.content["history"],
        json!([[0, 4, "undefined_name + 1"], [0, 5, "sleep(300); nope"]])
    );
    let request = client
        .send(
            Chan::Shell,
            "history_request",
            json!({ "output": false, "raw": true, "hist_access_type": "search", "pattern": "*+*", "n": 2 }),
        )
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(
        reply.content["history"],
        json!([[1, 4, "undefined_name + 1"], [1, 6, "1 + 1"]])
    );

    // comm info: empty, but answered
    let request = client
        .send(Chan::Shell, "comm_info_request", json!({}))
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "comm_info_reply");
    assert_eq!(reply.content["comms"], json!({}));

    // a message with a bad signature is dropped; the kernel keeps serving
    let forged = Message::new("kernel_info_request", json!({}), &client.session);
    let mut frames = forged.to_frames(&Signer::new(b"wrong key")).unwrap();
    assert_eq!(frames[0], b"<IDS|MSG>");
    frames[1] = b"0".repeat(64);
    client.shell.send(to_zmq(frames)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), client.recv(Chan::Shell))
            .await
            .is_err(),
        "a forged message must get no reply"
    );
    let request = client
        .send(Chan::Shell, "kernel_info_request", json!({}))
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "kernel_info_reply");

    // interrupt a running cell through control
    let running = client
        .send(
            Chan::Shell,
            "execute_request",
            json!({ "code": "wait", "silent": false }),
        )
        .await;
    loop {
        let message = tokio::time::timeout(TIMEOUT, client.recv_iopub())
            .await
            .expect("the waiting cell never printed");
        if message.header.msg_type == "stream" {
            assert_eq!(message.content["text"], "waiting\n");
            break;
        }
    }
    let interrupt = client
        .send(Chan::Control, "interrupt_request", json!({}))
        .await;
    let reply = client.reply(Chan::Control, &interrupt).await;
    assert_eq!(reply.header.msg_type, "interrupt_reply");
    assert_eq!(reply.content["status"], "ok");
    let reply = client.reply(Chan::Shell, &running).await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "Interrupted");

    // the session goes on after the interrupt
    let (reply, _) = client.execute("1 + 2").await;
    assert_eq!(reply.content["status"], "ok");

    // shutdown through control: reply, then the kernel returns
    let request = client
        .send(
            Chan::Control,
            "shutdown_request",
            json!({ "restart": false }),
        )
        .await;
    let reply = client.reply(Chan::Control, &request).await;
    assert_eq!(reply.header.msg_type, "shutdown_reply");
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["restart"], false);
    tokio::task::spawn_blocking(move || kernel.join())
        .await
        .unwrap()
        .expect("kernel exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_shell_stops_the_kernel() {
    let kernel = start_kernel();
    let mut client = Client::connect(&kernel.info).await;
    let request = client
        .send(Chan::Shell, "shutdown_request", json!({ "restart": true }))
        .await;
    let reply = client.reply(Chan::Shell, &request).await;
    assert_eq!(reply.header.msg_type, "shutdown_reply");
    assert_eq!(reply.content["restart"], true);
    tokio::task::spawn_blocking(move || kernel.join())
        .await
        .unwrap()
        .expect("kernel exits cleanly");
}

#[test]
fn a_missing_connection_file_is_a_clear_error() {
    let err = run_kernel(
        std::path::Path::new("/nonexistent/kernel-x.json"),
        ToyBackend::new(),
        History::in_memory(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("kernel-x.json"), "{err}");
}
