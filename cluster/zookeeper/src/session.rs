//! A ZooKeeper session: one TCP connection at a time to one server of the ensemble, requests
//! answered in order, pings while idle, and watch notifications passed on.
//!
//! When the connection breaks the session moves to another server and resumes under the same
//! id and password, so ephemeral nodes survive the loss of one ZooKeeper server. If no server
//! takes it back within the session timeout it is expired, as the ensemble will have expired
//! it too; the owner hears [`SessionEvent::Expired`] and must start a new session. Watches are
//! one-shot and are not carried across a reconnection: the owner hears
//! [`SessionEvent::Reconnected`] and reads again with a watch.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::ZkError;
use crate::protocol::{self, CreateMode, Reply, Request, SessionTicket, WatchedEvent};
use crate::url::ZkUrl;

/// The largest frame read: ZooKeeper's own default `jute.maxbuffer` is 1 MiB of data.
const MAX_FRAME: usize = 4 << 20;

/// What happened to the session or under its watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A watched node changed.
    Watch(WatchedEvent),
    /// The connection broke; the session is being resumed on another server.
    Disconnected,
    /// The session is connected again (to the same or another server); watches must be set
    /// again.
    Reconnected,
    /// The session is gone, and with it its ephemeral nodes: nothing more works on it.
    Expired,
}

struct Call {
    request: Request,
    path: String,
    answer: oneshot::Sender<Result<Vec<u8>, ZkError>>,
}

/// A ZooKeeper session. Cheap to clone; dropping the last clone closes the session, which
/// deletes its ephemeral nodes at once.
#[derive(Clone)]
pub struct ZooKeeper {
    calls: mpsc::UnboundedSender<Call>,
    url: ZkUrl,
}

impl std::fmt::Debug for ZooKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZooKeeper({})", self.url)
    }
}

impl ZooKeeper {
    /// Opens a session with one of `url`'s servers (tried in turn) asking for
    /// `session_timeout` (the server may grant another, between 2 and 20 of its ticks). The
    /// receiver hears watches and what happens to the session.
    pub async fn connect(
        url: &ZkUrl,
        session_timeout: Duration,
    ) -> Result<(ZooKeeper, mpsc::UnboundedReceiver<SessionEvent>), ZkError> {
        let mut ticket = SessionTicket {
            timeout_ms: session_timeout.as_millis().clamp(1, i32::MAX as u128) as i32,
            ..SessionTicket::default()
        };
        let deadline = Instant::now() + session_timeout.max(Duration::from_secs(2));
        let connection = loop {
            match open(url, &mut ticket, 0, 0).await {
                Ok(Some(connection)) => break connection,
                Ok(None) => return Err(ZkError::SessionExpired),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tracing::debug!(
            session = format_args!("{:#x}", ticket.session_id),
            timeout_ms = ticket.timeout_ms,
            "ZooKeeper session opened"
        );
        let (calls_tx, calls_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(run_session(
            url.clone(),
            ticket,
            connection,
            calls_rx,
            events_tx,
        ));
        Ok((
            ZooKeeper {
                calls: calls_tx,
                url: url.clone(),
            },
            events_rx,
        ))
    }

    /// The ensemble this session is with.
    pub fn url(&self) -> &ZkUrl {
        &self.url
    }

    async fn call(&self, request: Request, path: &str) -> Result<Vec<u8>, ZkError> {
        let (answer, answered) = oneshot::channel();
        self.calls
            .send(Call {
                request,
                path: path.to_string(),
                answer,
            })
            .map_err(|_| ZkError::SessionExpired)?;
        answered.await.unwrap_or(Err(ZkError::SessionExpired))
    }

    /// Creates `path` with `data`; returns the path made (with the sequence number, for
    /// sequential nodes).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ZkError> {
        let body = self.call(Request::create(path, data, mode), path).await?;
        protocol::decode_created(&body)
    }

    /// Creates `path` and every missing parent as empty persistent nodes.
    pub async fn create_parents(&self, path: &str) -> Result<(), ZkError> {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            match self.create(&at, b"", CreateMode::Persistent).await {
                Ok(_) | Err(ZkError::NodeExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes `path`, whatever its version.
    pub async fn delete(&self, path: &str) -> Result<(), ZkError> {
        self.call(Request::delete(path), path).await.map(drop)
    }

    /// `path`'s data; with `watch`, a [`SessionEvent::Watch`] follows its next change.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<Vec<u8>, ZkError> {
        let body = self.call(Request::get_data(path, watch), path).await?;
        protocol::decode_data(&body)
    }

    /// `path`'s children's names; with `watch`, a [`SessionEvent::Watch`] follows the next
    /// change among them.
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ZkError> {
        let body = self.call(Request::get_children(path, watch), path).await?;
        protocol::decode_children(&body)
    }

    /// Ends the session now: its ephemeral nodes go at once rather than after its timeout.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.call(Request::close(), "")).await;
    }
}

/// A connection to one server, the session established on it.
struct Connection {
    writer: OwnedWriteHalf,
    frames: mpsc::Receiver<Result<Vec<u8>, ZkError>>,
    server: String,
}

/// Reads length-prefixed frames into a channel, so the session can wait on them beside its
/// other work (reads are not cancel-safe).
async fn read_frames(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    frames: mpsc::Sender<Result<Vec<u8>, ZkError>>,
) {
    loop {
        let frame = read_frame(&mut reader).await;
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

async fn read_frame(reader: &mut (impl AsyncReadExt + Unpin)) -> Result<Vec<u8>, ZkError> {
    let len = reader
        .read_u32()
        .await
        .map_err(|_| ZkError::ConnectionLoss)? as usize;
    if len > MAX_FRAME {
        return Err(ZkError::Protocol {
            detail: format!("a frame of {len} bytes, more than the {MAX_FRAME} allowed"),
        });
    }
    let mut frame = vec![0; len];
    reader
        .read_exact(&mut frame)
        .await
        .map_err(|_| ZkError::ConnectionLoss)?;
    Ok(frame)
}

async fn write_frame(writer: &mut OwnedWriteHalf, payload: &[u8]) -> Result<(), ZkError> {
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    writer
        .write_all(&frame)
        .await
        .map_err(|_| ZkError::ConnectionLoss)
}

/// Connects to the servers in turn from `first`, establishing (or resuming) the session in
/// `ticket`; `None` when a server says the session has expired.
async fn open(
    url: &ZkUrl,
    ticket: &mut SessionTicket,
    last_zxid: i64,
    first: usize,
) -> Result<Option<Connection>, ZkError> {
    let n = url.servers.len();
    let per_server = Duration::from_millis((ticket.timeout_ms as u64 / n as u64).clamp(250, 2000));
    let mut last_error = ZkError::Unreachable {
        servers: url.servers.join(","),
    };
    for i in 0..n {
        let server = &url.servers[(first + i) % n];
        let attempt = async {
            let stream = TcpStream::connect(server.as_str())
                .await
                .map_err(|_| ZkError::ConnectionLoss)?;
            stream.set_nodelay(true).ok();
            let (mut reader, mut writer) = stream.into_split();
            write_frame(&mut writer, &protocol::connect_payload(ticket, last_zxid)).await?;
            let answer = read_frame(&mut reader).await?;
            Ok::<_, ZkError>((reader, writer, protocol::decode_connect_response(&answer)?))
        };
        match tokio::time::timeout(per_server, attempt).await {
            Ok(Ok((reader, writer, Some(granted)))) => {
                *ticket = granted;
                let (tx, frames) = mpsc::channel(64);
                tokio::spawn(read_frames(reader, tx));
                return Ok(Some(Connection {
                    writer,
                    frames,
                    server: server.clone(),
                }));
            }
            Ok(Ok((_, _, None))) => return Ok(None),
            Ok(Err(e)) => last_error = e,
            Err(_) => {}
        }
    }
    Err(last_error)
}

/// Runs the session until it expires or its last handle is dropped.
async fn run_session(
    url: ZkUrl,
    mut ticket: SessionTicket,
    mut connection: Connection,
    mut calls: mpsc::UnboundedReceiver<Call>,
    events: mpsc::UnboundedSender<SessionEvent>,
) {
    let mut last_zxid = 0i64;
    let mut xid = 0i32;
    let mut server_index = url
        .servers
        .iter()
        .position(|s| *s == connection.server)
        .unwrap_or(0);
    loop {
        let ended = serve_connection(
            &mut connection,
            &ticket,
            &mut calls,
            &events,
            &mut xid,
            &mut last_zxid,
        )
        .await;
        match ended {
            ConnectionEnd::Closed => return,
            ConnectionEnd::Lost => {}
        }
        tracing::debug!(server = %connection.server, "ZooKeeper connection lost; resuming the session");
        let _ = events.send(SessionEvent::Disconnected);
        // The ensemble expires the session once no server has heard from it for its
        // timeout; stop trying then, and say so.
        let deadline = Instant::now() + Duration::from_millis(ticket.timeout_ms as u64);
        let resumed = loop {
            server_index = (server_index + 1) % url.servers.len();
            match open(&url, &mut ticket, last_zxid, server_index).await {
                Ok(Some(c)) => break Some(c),
                Ok(None) => break None,
                Err(_) if Instant::now() >= deadline => break None,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        match resumed {
            Some(c) => {
                connection = c;
                let _ = events.send(SessionEvent::Reconnected);
            }
            None => {
                let _ = events.send(SessionEvent::Expired);
                // Answer what waits, and what comes, with the expiry.
                calls.close();
                while let Some(call) = calls.recv().await {
                    let _ = call.answer.send(Err(ZkError::SessionExpired));
                }
                return;
            }
        }
    }
}

enum ConnectionEnd {
    /// The owner closed the session (or dropped every handle).
    Closed,
    /// The connection broke or fell silent.
    Lost,
}

async fn serve_connection(
    connection: &mut Connection,
    ticket: &SessionTicket,
    calls: &mut mpsc::UnboundedReceiver<Call>,
    events: &mpsc::UnboundedSender<SessionEvent>,
    xid: &mut i32,
    last_zxid: &mut i64,
) -> ConnectionEnd {
    let timeout = Duration::from_millis(ticket.timeout_ms as u64);
    // As ZooKeeper's own clients: a server silent for 2/3 of the timeout is gone, and an idle
    // client pings at half of that.
    let read_timeout = timeout * 2 / 3;
    let ping_every = read_timeout / 2;
    let mut pending: VecDeque<(i32, String, oneshot::Sender<Result<Vec<u8>, ZkError>>)> =
        VecDeque::new();
    let mut heard = Instant::now();
    let mut sent = Instant::now();
    let end = loop {
        tokio::select! {
            call = calls.recv() => {
                let Some(call) = call else {
                    let _ = write_frame(&mut connection.writer, &Request::close().payload(*xid + 1)).await;
                    break ConnectionEnd::Closed;
                };
                *xid = xid.wrapping_add(1).max(1);
                let closing = call.request.op == protocol::OpCode::CloseSession;
                if write_frame(&mut connection.writer, &call.request.payload(*xid)).await.is_err() {
                    let _ = call.answer.send(Err(ZkError::ConnectionLoss));
                    break ConnectionEnd::Lost;
                }
                sent = Instant::now();
                if closing {
                    let _ = call.answer.send(Ok(Vec::new()));
                    break ConnectionEnd::Closed;
                }
                pending.push_back((*xid, call.path, call.answer));
            }
            frame = connection.frames.recv() => {
                let Some(Ok(frame)) = frame else { break ConnectionEnd::Lost };
                heard = Instant::now();
                match protocol::decode_reply(&frame) {
                    Ok(Reply::Ping) => {}
                    Ok(Reply::Watch(event)) => { let _ = events.send(SessionEvent::Watch(event)); }
                    Ok(Reply::Answer { xid, zxid, result }) => {
                        if zxid > 0 { *last_zxid = (*last_zxid).max(zxid); }
                        // The server answers in order: the first waiting call is this one.
                        let Some((expected, path, answer)) = pending.pop_front() else { break ConnectionEnd::Lost };
                        if expected != xid { break ConnectionEnd::Lost; }
                        let _ = answer.send(result.map(<[u8]>::to_vec).map_err(|code| protocol::server_error(code, &path)));
                    }
                    Err(e) => {
                        tracing::warn!(server = %connection.server, "{e}");
                        break ConnectionEnd::Lost;
                    }
                }
            }
            _ = tokio::time::sleep_until(sent + ping_every) => {
                if write_frame(&mut connection.writer, &Request::ping_payload()).await.is_err() {
                    break ConnectionEnd::Lost;
                }
                sent = Instant::now();
            }
            _ = tokio::time::sleep_until(heard + read_timeout) => break ConnectionEnd::Lost,
        }
    };
    for (_, _, answer) in pending {
        let _ = answer.send(Err(ZkError::ConnectionLoss));
    }
    end
}
