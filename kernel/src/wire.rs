//! The Jupyter wire format: message headers, HMAC-SHA256 signing, and the multipart
//! framing `[identities…, <IDS|MSG>, signature, header, parent_header, metadata,
//! content, buffers…]` that every Jupyter socket carries.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use tessera_plan::frame::civil_from_days;

use crate::error::WireError;

/// The frame that separates routing identities from the message proper.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The messaging protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.3";

/// A message header. Fields a client adds that this kernel does not know are kept, so
/// a request's header comes back unchanged as the reply's parent header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The id of this message, unique per message (a UUID v4 for those this kernel sends).
    pub msg_id: String,
    /// The kind of message, e.g. `execute_request`, `status`, `kernel_info_reply`.
    pub msg_type: String,
    /// The id of the sender's session: the client's for requests, the kernel's (a UUID v4
    /// made at start) for what the kernel sends.
    #[serde(default)]
    pub session: String,
    /// The user who sent the message (`tessera` for messages this kernel sends).
    #[serde(default)]
    pub username: String,
    /// When the message was made, in ISO 8601 (UTC with microseconds when this kernel sends it).
    #[serde(default)]
    pub date: String,
    /// The messaging protocol version of the sender (`5.3` for this kernel).
    #[serde(default)]
    pub version: String,
    /// Header fields this kernel does not know, kept so that they come back in the reply's
    /// parent_header.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// A fresh header for a message this side originates.
    pub fn new(msg_type: &str, session: &str) -> Self {
        Header {
            msg_id: new_id(),
            msg_type: msg_type.to_owned(),
            session: session.to_owned(),
            username: "tessera".to_owned(),
            date: now_iso8601(),
            version: PROTOCOL_VERSION.to_owned(),
            extra: Map::new(),
        }
    }
}

/// One Jupyter message, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Routing identities (everything before the delimiter). On ROUTER sockets the
    /// first one is the peer; replies echo them all. On iopub this is the topic.
    pub identities: Vec<Vec<u8>>,
    /// The message's own header: its msg_id, msg_type, session and so on.
    pub header: Header,
    /// The header of the message this one answers, or an empty object.
    pub parent_header: Value,
    /// The metadata dict: information about the message outside its content (usually empty).
    pub metadata: Value,
    /// The content dict, whose fields the msg_type defines (e.g. `code` for an
    /// `execute_request`).
    pub content: Value,
    /// Raw binary buffers, the frames after content; neither signed nor parsed as JSON.
    pub buffers: Vec<Vec<u8>>,
}

impl Message {
    /// A message with no parent, no identities and empty metadata.
    pub fn new(msg_type: &str, content: Value, session: &str) -> Self {
        Message {
            identities: Vec::new(),
            header: Header::new(msg_type, session),
            parent_header: Value::Object(Map::new()),
            metadata: Value::Object(Map::new()),
            content,
            buffers: Vec::new(),
        }
    }

    /// A message answering `parent`: same identities, `parent`'s header as parent header.
    pub fn reply_to(parent: &Message, msg_type: &str, content: Value, session: &str) -> Self {
        Message {
            identities: parent.identities.clone(),
            parent_header: header_value(&parent.header),
            ..Message::new(msg_type, content, session)
        }
    }

    /// The parent header as a typed header, if there is one.
    pub fn parent(&self) -> Option<Header> {
        serde_json::from_value(self.parent_header.clone()).ok()
    }

    /// Encodes and signs the message into ZeroMQ frames.
    pub fn to_frames(&self, signer: &Signer) -> Result<Vec<Vec<u8>>, WireError> {
        let header = to_json("header", &self.header)?;
        let parent = to_json("parent_header", &self.parent_header)?;
        let metadata = to_json("metadata", &self.metadata)?;
        let content = to_json("content", &self.content)?;
        let signature = signer.sign(&[&header, &parent, &metadata, &content]);
        let mut frames = Vec::with_capacity(self.identities.len() + 6 + self.buffers.len());
        frames.extend(self.identities.iter().cloned());
        frames.push(DELIMITER.to_vec());
        frames.push(signature.into_bytes());
        frames.push(header);
        frames.push(parent);
        frames.push(metadata);
        frames.push(content);
        frames.extend(self.buffers.iter().cloned());
        Ok(frames)
    }

    /// Decodes ZeroMQ frames into a message, verifying the signature first.
    pub fn from_frames(mut frames: Vec<Vec<u8>>, signer: &Signer) -> Result<Self, WireError> {
        let delimiter = frames
            .iter()
            .position(|frame| frame.as_slice() == DELIMITER)
            .ok_or(WireError::MissingDelimiter)?;
        let after = frames.len() - delimiter - 1;
        if after < 5 {
            return Err(WireError::TooFewFrames(after));
        }
        let mut rest = frames.split_off(delimiter);
        let identities = frames;
        let buffers = rest.split_off(6);
        let [_, signature, header, parent, metadata, content]: [Vec<u8>; 6] = rest
            .try_into()
            .expect("exactly six frames after split_off(6)");
        signer.verify(&[&header, &parent, &metadata, &content], &signature)?;
        Ok(Message {
            identities,
            header: from_json("header", &header)?,
            parent_header: from_json("parent_header", &parent)?,
            metadata: from_json("metadata", &metadata)?,
            content: from_json("content", &content)?,
            buffers,
        })
    }
}

fn header_value(header: &Header) -> Value {
    serde_json::to_value(header).unwrap_or_else(|_| Value::Object(Map::new()))
}

fn to_json<T: Serialize>(frame: &'static str, value: &T) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(value).map_err(|source| WireError::Serialize { frame, source })
}

fn from_json<T: for<'de> Deserialize<'de>>(
    frame: &'static str,
    bytes: &[u8],
) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError::Json { frame, source })
}

/// Signs and verifies messages with HMAC-SHA256 over header, parent header, metadata
/// and content. An empty key means "no signing": signatures are empty and not checked.
#[derive(Clone)]
pub struct Signer {
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("signing", &self.mac.is_some())
            .finish()
    }
}

impl Signer {
    /// A signer with the connection file's `key` (its bytes); an empty key turns signing off.
    pub fn new(key: &[u8]) -> Self {
        let mac = if key.is_empty() {
            None
        } else {
            Some(Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length"))
        };
        Signer { mac }
    }

    /// The lowercase hex signature of the given frames ("" when not signing).
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                to_hex(&mac.finalize().into_bytes())
            }
        }
    }

    /// Checks a hex signature in constant time.
    pub fn verify(&self, parts: &[&[u8]], signature: &[u8]) -> Result<(), WireError> {
        let Some(mac) = &self.mac else {
            return Ok(());
        };
        let expected = from_hex(signature).ok_or(WireError::BadSignature)?;
        let mut mac = mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(&expected)
            .map_err(|_| WireError::BadSignature)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    out
}

fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A new random message or session id (a UUID v4).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The current UTC time as ISO 8601 with microseconds, e.g. `2024-05-01T12:00:00.000123Z`.
pub fn now_iso8601() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_iso8601(now.as_secs(), now.subsec_micros())
}

fn format_iso8601(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?",
        // split across frames (HMAC over the concatenation).
        let signer = Signer::new(b"Jefe");
        let sig = signer.sign(&[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        signer
            .verify(&[b"what do ya want for nothing?"], sig.as_bytes())
            .unwrap();
        signer
            .verify(
                &[b"what do ya want for nothing?"],
                sig.to_uppercase().as_bytes(),
            )
            .unwrap();
    }

    #[test]
    fn verification_rejects_wrong_key_tampering_and_garbage() {
        let signer = Signer::new(b"secret");
        let sig = signer.sign(&[b"header", b"{}", b"{}", b"content"]);
        assert!(matches!(
            Signer::new(b"other").verify(&[b"header", b"{}", b"{}", b"content"], sig.as_bytes()),
            Err(WireError::BadSignature)
        ));
        assert!(matches!(
            signer.verify(&[b"header", b"{}", b"{}", b"CONTENT"], sig.as_bytes()),
            Err(WireError::BadSignature)
        ));
        assert!(matches!(
            signer.verify(&[b"header"], b"not hex"),
            Err(WireError::BadSignature)
        ));
        assert!(matches!(
            signer.verify(&[b"header"], b""),
            Err(WireError::BadSignature)
        ));
    }

    #[test]
    fn empty_key_means_unsigned() {
        let signer = Signer::new(b"");
        assert_eq!(signer.sign(&[b"anything"]), "");
        signer.verify(&[b"anything"], b"").unwrap();
    }

    fn sample() -> Message {
        let request = Message {
            identities: vec![b"peer-1".to_vec(), b"peer-2".to_vec()],
            ..Message::new(
                "execute_request",
                json!({"code": "1 + 1", "silent": false}),
                "client-session",
            )
        };
        let mut reply = Message::reply_to(
            &request,
            "execute_reply",
            json!({"status": "ok", "execution_count": 1}),
            "kernel-session",
        );
        reply.metadata = json!({"started": "now"});
        reply.buffers = vec![vec![0, 1, 2], vec![]];
        reply
    }

    #[test]
    fn framing_round_trips() {
        let signer = Signer::new(b"key");
        let message = sample();
        let frames = message.to_frames(&signer).unwrap();
        assert_eq!(frames[0], b"peer-1");
        assert_eq!(frames[1], b"peer-2");
        assert_eq!(frames[2], DELIMITER);
        assert_eq!(frames[3].len(), 64, "hex sha256 signature");
        assert_eq!(frames.len(), 2 + 6 + 2);
        let decoded = Message::from_frames(frames, &signer).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.parent().unwrap().msg_type, "execute_request");
        assert_eq!(decoded.parent().unwrap().session, "client-session");
    }

    #[test]
    fn unknown_header_fields_survive_as_parent_header() {
        let signer = Signer::new(b"key");
        let header = br#"{"msg_id":"m1","msg_type":"kernel_info_request","session":"s","username":"u","date":"2024-01-01T00:00:00Z","version":"5.3","subshell_id":null}"#;
        let (empty, content) = (b"{}".as_slice(), b"{}".as_slice());
        let signature = signer.sign(&[header, empty, empty, content]);
        let frames = vec![
            DELIMITER.to_vec(),
            signature.into_bytes(),
            header.to_vec(),
            empty.to_vec(),
            empty.to_vec(),
            content.to_vec(),
        ];
        let request = Message::from_frames(frames, &signer).unwrap();
        assert!(request.identities.is_empty());
        let reply = Message::reply_to(&request, "kernel_info_reply", json!({}), "k");
        assert_eq!(reply.parent_header["subshell_id"], Value::Null);
        assert_eq!(reply.parent_header["msg_id"], "m1");
        assert!(
            reply
                .parent_header
                .as_object()
                .unwrap()
                .contains_key("subshell_id")
        );
    }

    #[test]
    fn decoding_rejects_bad_frames() {
        let signer = Signer::new(b"key");
        let mut frames = sample().to_frames(&signer).unwrap();
        // Tamper with the content frame.
        let content_index = frames.len() - 3;
        frames[content_index] = br#"{"status":"error"}"#.to_vec();
        assert!(matches!(
            Message::from_frames(frames, &signer),
            Err(WireError::BadSignature)
        ));

        let frames = sample().to_frames(&signer).unwrap();
        assert!(matches!(
            Message::from_frames(frames[..6].to_vec(), &signer),
            Err(WireError::TooFewFrames(3))
        ));
        assert!(matches!(
            Message::from_frames(vec![b"a".to_vec(), b"b".to_vec()], &signer),
            Err(WireError::MissingDelimiter)
        ));

        let unsigned = Signer::new(b"");
        let frames = vec![
            DELIMITER.to_vec(),
            Vec::new(),
            b"not json".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ];
        assert!(matches!(
            Message::from_frames(frames, &unsigned),
            Err(WireError::Json {
                frame: "header",
                ..
            })
        ));
    }

    #[test]
    fn dates_are_iso8601_utc() {
        assert_eq!(format_iso8601(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T23:59:59.5Z (a leap day)
        assert_eq!(
            format_iso8601(1_709_251_199, 500_000),
            "2024-02-29T23:59:59.500000Z"
        );
        assert_eq!(now_iso8601().len(), "2024-02-29T23:59:59.500000Z".len());
    }

    /// Frames a client might send: arbitrary bytes, with the delimiter placed among them.
    fn hostile_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let frame = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..48),
            Just(DELIMITER.to_vec()),
            Just(b"{}".to_vec()),
            Just(br#"{"msg_id": "1", "msg_type": "execute_request"}"#.to_vec()),
            "[ -~]{0,40}".prop_map(String::into_bytes),
        ];
        proptest::collection::vec(frame, 0..12)
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(frames in hostile_frames(), signed in any::<bool>()) {
            let signer = Signer::new(if signed { b"key".as_slice() } else { b"" });
            if let Ok(message) = Message::from_frames(frames, &signer) {
                let _ = message.parent();
                prop_assert!(message.to_frames(&signer).is_ok());
            }
        }

        #[test]
        fn damaged_messages_are_refused_when_signed_and_never_panic(
            frame in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let signer = Signer::new(b"key");
            let mut frames = sample().to_frames(&signer).unwrap();
            let which = frame.index(frames.len());
            let before = frames[which].clone();
            if !frames[which].is_empty() {
                for (at, byte) in edits {
                    let at = at.index(frames[which].len());
                    frames[which][at] = byte;
                }
            }
            // A signature is hex: an edit from 'a' to 'A' leaves it the same.
            let changed = match which {
                3 => from_hex(&frames[3]) != from_hex(&before),
                4..=7 => frames[which] != before,
                _ => false,
            };
            let result = Message::from_frames(frames.clone(), &signer);
            if changed {
                // The signature, or what it signs, changed: the message is refused.
                prop_assert!(result.is_err());
            }
            let _ = Message::from_frames(frames, &Signer::new(b""));
        }
    }
}
