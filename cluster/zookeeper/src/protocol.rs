//! ZooKeeper's messages, as the server's `zookeeper.jute` defines them: the session handshake,
//! the request and reply headers, the few operations Tessera uses, and watch notifications.
//! Encoding and decoding only; the session (`session.rs`) sends and matches them.

use crate::error::ZkError;
use crate::jute::{Reader, Writer};

/// Reply `xid`s the server uses for what no request asked for.
pub(crate) const WATCH_XID: i32 = -1;
pub(crate) const PING_XID: i32 = -2;

/// The operations' codes (`ZooDefs.OpCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpCode {
    Create = 1,
    Delete = 2,
    GetData = 4,
    GetChildren = 8,
    Ping = 11,
    CloseSession = -11,
}

/// How a node lives (`CreateMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent = 0,
    /// Deleted when the session that made it ends.
    Ephemeral = 1,
    /// Ephemeral, its name suffixed by the parent's next sequence number (10 digits).
    EphemeralSequential = 3,
}

/// An operation with its body, ready to be framed with a header.
pub(crate) struct Request {
    pub(crate) op: OpCode,
    pub(crate) body: Vec<u8>,
}

/// World-readable and writable, as nodes that only Tessera's processes use need
/// (`ZooDefs.Ids.OPEN_ACL_UNSAFE`: all permissions to `world:anyone`).
fn open_acl(w: &mut Writer) {
    w.int(1).int(0x1f).string("world").string("anyone");
}

impl Request {
    pub(crate) fn create(path: &str, data: &[u8], mode: CreateMode) -> Request {
        let mut w = Writer::default();
        w.string(path).buffer(data);
        open_acl(&mut w);
        w.int(mode as i32);
        Request {
            op: OpCode::Create,
            body: w.bytes,
        }
    }

    pub(crate) fn delete(path: &str) -> Request {
        let mut w = Writer::default();
        w.string(path).int(-1);
        Request {
            op: OpCode::Delete,
            body: w.bytes,
        }
    }

    pub(crate) fn get_data(path: &str, watch: bool) -> Request {
        let mut w = Writer::default();
        w.string(path).bool(watch);
        Request {
            op: OpCode::GetData,
            body: w.bytes,
        }
    }

    pub(crate) fn get_children(path: &str, watch: bool) -> Request {
        let mut w = Writer::default();
        w.string(path).bool(watch);
        Request {
            op: OpCode::GetChildren,
            body: w.bytes,
        }
    }

    pub(crate) fn close() -> Request {
        Request {
            op: OpCode::CloseSession,
            body: Vec::new(),
        }
    }

    /// The frame's payload (without the length prefix) under `xid`.
    pub(crate) fn payload(&self, xid: i32) -> Vec<u8> {
        let mut w = Writer::default();
        w.int(xid).int(self.op as i32);
        w.bytes.extend_from_slice(&self.body);
        w.bytes
    }

    pub(crate) fn ping_payload() -> Vec<u8> {
        let mut w = Writer::default();
        w.int(PING_XID).int(OpCode::Ping as i32);
        w.bytes
    }
}

/// The session a client asks for or resumes (`ConnectRequest`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SessionTicket {
    pub(crate) session_id: i64,
    pub(crate) password: Vec<u8>,
    pub(crate) timeout_ms: i32,
}

pub(crate) fn connect_payload(ticket: &SessionTicket, last_zxid: i64) -> Vec<u8> {
    let mut w = Writer::default();
    let password = if ticket.password.is_empty() {
        vec![0; 16]
    } else {
        ticket.password.clone()
    };
    w.int(0)
        .long(last_zxid)
        .int(ticket.timeout_ms)
        .long(ticket.session_id)
        .buffer(&password)
        .bool(false);
    w.bytes
}

/// The server's answer to a ConnectRequest: `None` when the session has expired (the server
/// answers a resumed session it no longer has with a zero timeout).
pub(crate) fn decode_connect_response(frame: &[u8]) -> Result<Option<SessionTicket>, ZkError> {
    let mut r = Reader::new(frame);
    let _protocol_version = r.int()?;
    let timeout_ms = r.int()?;
    let session_id = r.long()?;
    let password = r.buffer()?.to_vec();
    // A trailing read-only flag is optional (older servers omit it).
    if timeout_ms <= 0 {
        return Ok(None);
    }
    Ok(Some(SessionTicket {
        session_id,
        password,
        timeout_ms,
    }))
}

/// What a reply frame is.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply<'a> {
    Ping,
    Watch(WatchedEvent),
    /// The answer to the request `xid`: its body, or the server's error code.
    Answer {
        xid: i32,
        zxid: i64,
        result: Result<&'a [u8], i32>,
    },
}

/// What changed under a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedEvent {
    /// The node the watch was set on.
    pub path: String,
    /// The kind of change (`EventType`: 1 created, 2 deleted, 3 data changed, 4 children
    /// changed).
    pub kind: i32,
}

pub(crate) fn decode_reply(frame: &[u8]) -> Result<Reply<'_>, ZkError> {
    let mut r = Reader::new(frame);
    let xid = r.int()?;
    let zxid = r.long()?;
    let err = r.int()?;
    match xid {
        PING_XID => Ok(Reply::Ping),
        WATCH_XID => {
            let kind = r.int()?;
            let _state = r.int()?;
            let path = r.string()?;
            Ok(Reply::Watch(WatchedEvent { path, kind }))
        }
        _ => {
            let result = if err == 0 {
                let (_, body) = frame.split_at(16);
                Ok(body)
            } else {
                Err(err)
            };
            Ok(Reply::Answer { xid, zxid, result })
        }
    }
}

/// The body of a Create reply: the node's path (with its sequence number, if any).
pub(crate) fn decode_created(body: &[u8]) -> Result<String, ZkError> {
    Reader::new(body).string()
}

/// The body of a GetData reply: the data (its Stat, which follows, is not needed).
pub(crate) fn decode_data(body: &[u8]) -> Result<Vec<u8>, ZkError> {
    Ok(Reader::new(body).buffer()?.to_vec())
}

/// The body of a GetChildren reply: the children's names.
pub(crate) fn decode_children(body: &[u8]) -> Result<Vec<String>, ZkError> {
    Reader::new(body).strings()
}

/// The server's error code as an error about `path`.
pub(crate) fn server_error(code: i32, path: &str) -> ZkError {
    let path = path.to_string();
    match code {
        -101 => ZkError::NoNode { path },
        -110 => ZkError::NodeExists { path },
        -112 => ZkError::SessionExpired,
        -4 => ZkError::ConnectionLoss,
        code => ZkError::Server { code, path },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.int(xid).long(zxid).int(err);
        w.bytes.extend_from_slice(body);
        w.bytes
    }

    #[test]
    fn replies_are_told_apart_by_xid() {
        assert_eq!(
            decode_reply(&reply(PING_XID, 0, 0, b"")).unwrap(),
            Reply::Ping
        );
        let mut w = Writer::default();
        w.int(4).int(3).string("/tessera");
        assert_eq!(
            decode_reply(&reply(WATCH_XID, -1, 0, &w.bytes)).unwrap(),
            Reply::Watch(WatchedEvent {
                path: "/tessera".into(),
                kind: 4
            })
        );
        let mut w = Writer::default();
        w.int(2)
            .string("master_0000000001")
            .string("master_0000000000");
        let frame = reply(7, 42, 0, &w.bytes);
        let Reply::Answer { xid, zxid, result } = decode_reply(&frame).unwrap() else {
            panic!("an answer")
        };
        assert_eq!((xid, zxid), (7, 42));
        assert_eq!(
            decode_children(result.unwrap()).unwrap(),
            ["master_0000000001", "master_0000000000"]
        );
        let frame = reply(8, 43, -101, b"");
        assert!(matches!(
            decode_reply(&frame).unwrap(),
            Reply::Answer {
                result: Err(-101),
                ..
            }
        ));
    }

    #[test]
    fn an_expired_session_is_answered_with_a_zero_timeout() {
        let mut w = Writer::default();
        w.int(0).int(4000).long(77).buffer(&[9; 16]).bool(false);
        let ticket = decode_connect_response(&w.bytes).unwrap().unwrap();
        assert_eq!((ticket.session_id, ticket.timeout_ms), (77, 4000));
        let mut w = Writer::default();
        w.int(0).int(0).long(0).buffer(&[]);
        assert_eq!(decode_connect_response(&w.bytes).unwrap(), None);
    }

    /// Every prefix of valid frames and a spread of arbitrary bytes decode to a value or an
    /// error, never a panic.
    #[test]
    fn hostile_frames_are_errors() {
        let mut w = Writer::default();
        w.int(2).string("a").string("b");
        let valid = [
            reply(3, 1, 0, &w.bytes),
            reply(
                WATCH_XID,
                -1,
                0,
                &[0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 1, b'/'],
            ),
        ];
        for frame in &valid {
            for end in 0..frame.len() {
                let cut = &frame[..end];
                if let Ok(Reply::Answer {
                    result: Ok(body), ..
                }) = decode_reply(cut)
                {
                    let _ = decode_children(body);
                }
                let _ = decode_connect_response(cut);
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if let Ok(Reply::Answer {
                result: Ok(body), ..
            }) = decode_reply(&bytes)
            {
                let _ = decode_children(body);
                let _ = decode_data(body);
                let _ = decode_created(body);
            }
            let _ = decode_connect_response(&bytes);
        }
    }
}
