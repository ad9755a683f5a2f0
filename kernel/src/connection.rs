//! Jupyter connection files: the JSON file Jupyter writes for each kernel it starts,
//! naming the transport, address, the five ports and the HMAC key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ConnectionError;

/// The contents of a Jupyter connection file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The ZeroMQ transport of every socket; only `tcp` (the default) is served.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// The address the kernel binds its sockets to (`127.0.0.1` when absent).
    #[serde(default = "default_ip")]
    pub ip: String,
    /// Port of the shell socket (ROUTER), which takes requests such as `execute_request`.
    pub shell_port: u16,
    /// Port of the iopub socket (PUB), which publishes outputs and busy/idle status.
    pub iopub_port: u16,
    /// Port of the stdin socket (ROUTER), on which the kernel asks the front end for input.
    pub stdin_port: u16,
    /// Port of the control socket (ROUTER), which takes `interrupt_request` and
    /// `shutdown_request` even while a cell runs.
    pub control_port: u16,
    /// Port of the heartbeat socket (REP), which echoes what clients send to show the
    /// kernel is alive.
    pub hb_port: u16,
    /// HMAC key; empty means messages are not signed.
    #[serde(default)]
    pub key: String,
    /// How messages are signed with `key`; only `hmac-sha256` (the default) is served.
    #[serde(default = "default_signature_scheme")]
    pub signature_scheme: String,
    /// The name of the kernelspec Jupyter started the kernel from (e.g. `tessera`), if
    /// the file gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
}

fn default_transport() -> String {
    "tcp".to_owned()
}

fn default_ip() -> String {
    "127.0.0.1".to_owned()
}

fn default_signature_scheme() -> String {
    "hmac-sha256".to_owned()
}

impl ConnectionInfo {
    /// Reads and validates a connection file.
    pub fn from_file(path: &Path) -> Result<Self, ConnectionError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConnectionError::Read {
            path: path.to_owned(),
            source,
        })?;
        let info: Self = serde_json::from_str(&text).map_err(|source| ConnectionError::Parse {
            path: path.to_owned(),
            source,
        })?;
        info.validate()?;
        Ok(info)
    }

    /// Checks that the kernel can serve this connection: tcp, hmac-sha256 (or no key),
    /// and concrete ports.
    pub fn validate(&self) -> Result<(), ConnectionError> {
        if self.transport != "tcp" {
            return Err(ConnectionError::UnsupportedTransport(
                self.transport.clone(),
            ));
        }
        if !self.key.is_empty() && self.signature_scheme != "hmac-sha256" {
            return Err(ConnectionError::UnsupportedSignatureScheme(
                self.signature_scheme.clone(),
            ));
        }
        for (name, port) in [
            ("shell", self.shell_port),
            ("iopub", self.iopub_port),
            ("stdin", self.stdin_port),
            ("control", self.control_port),
            ("heartbeat", self.hb_port),
        ] {
            if port == 0 {
                return Err(ConnectionError::ZeroPort(name));
            }
        }
        Ok(())
    }

    /// The ZeroMQ endpoint for a port, e.g. `tcp://127.0.0.1:5555`.
    pub fn endpoint(&self, port: u16) -> String {
        if self.ip.contains(':') && !self.ip.starts_with('[') {
            format!("{}://[{}]:{}", self.transport, self.ip, port)
        } else {
            format!("{}://{}:{}", self.transport, self.ip, port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "shell_port": 53794,
      "iopub_port": 53795,
      "stdin_port": 53796,
      "control_port": 53797,
      "hb_port": 53798,
      "ip": "127.0.0.1",
      "key": "a0436f6c-1916-498b-8eb9-e81ab9368e84",
      "transport": "tcp",
      "signature_scheme": "hmac-sha256",
      "kernel_name": "tessera"
    }"#;

    #[test]
    fn parses_a_connection_file_written_by_jupyter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernel-1.json");
        std::fs::write(&path, SAMPLE).unwrap();
        let info = ConnectionInfo::from_file(&path).unwrap();
        assert_eq!(info.shell_port, 53794);
        assert_eq!(info.iopub_port, 53795);
        assert_eq!(info.stdin_port, 53796);
        assert_eq!(info.control_port, 53797);
        assert_eq!(info.hb_port, 53798);
        assert_eq!(info.key, "a0436f6c-1916-498b-8eb9-e81ab9368e84");
        assert_eq!(info.kernel_name.as_deref(), Some("tessera"));
        assert_eq!(info.endpoint(info.shell_port), "tcp://127.0.0.1:53794");
    }

    #[test]
    fn missing_optional_fields_get_jupyter_defaults() {
        let info: ConnectionInfo = serde_json::from_str(
            r#"{"shell_port":1,"iopub_port":2,"stdin_port":3,"control_port":4,"hb_port":5}"#,
        )
        .unwrap();
        assert_eq!(info.transport, "tcp");
        assert_eq!(info.ip, "127.0.0.1");
        assert_eq!(info.signature_scheme, "hmac-sha256");
        assert_eq!(info.key, "");
        info.validate().unwrap();
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        let base: ConnectionInfo = serde_json::from_str(SAMPLE).unwrap();
        let ipc = ConnectionInfo {
            transport: "ipc".into(),
            ..base.clone()
        };
        assert!(matches!(
            ipc.validate(),
            Err(ConnectionError::UnsupportedTransport(_))
        ));
        let md5 = ConnectionInfo {
            signature_scheme: "hmac-md5".into(),
            ..base.clone()
        };
        assert!(matches!(
            md5.validate(),
            Err(ConnectionError::UnsupportedSignatureScheme(_))
        ));
        let zero = ConnectionInfo { hb_port: 0, ..base };
        assert!(matches!(
            zero.validate(),
            Err(ConnectionError::ZeroPort("heartbeat"))
        ));
    }

    #[test]
    fn unreadable_and_malformed_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = ConnectionInfo::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ not json").unwrap();
        let err = ConnectionInfo::from_file(&bad).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut info: ConnectionInfo = serde_json::from_str(SAMPLE).unwrap();
        info.ip = "::1".into();
        assert_eq!(info.endpoint(5), "tcp://[::1]:5");
    }
}
