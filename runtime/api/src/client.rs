//! The cell's side of the local socket to the driver: one connection per request, so that a
//! handle needs no state beyond the socket's name and the session's token.

use crate::error::Error;
use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use tessera_plan::cell_protocol::{CellRequest, CellResponse, Envelope, RESPONSE, decode_response};
use tessera_plan::decode::read_frame;

/// The driver's address: a Linux abstract socket name, stored inline so handles stay `Copy`.
#[derive(Clone, Copy)]
pub(crate) struct Endpoint {
    name: [u8; 64],
    name_len: u8,
    token: u64,
}

impl Endpoint {
    pub fn new(name: &str, token: u64) -> Endpoint {
        assert!(
            name.len() <= 64,
            "driver socket name is longer than 64 bytes"
        );
        let mut stored = [0u8; 64];
        stored[..name.len()].copy_from_slice(name.as_bytes());
        Endpoint {
            name: stored,
            name_len: name.len() as u8,
            token,
        }
    }

    fn name(&self) -> &[u8] {
        &self.name[..self.name_len as usize]
    }

    /// Sends `request` and waits for the driver's answer.
    pub fn call(&self, request: CellRequest) -> Result<CellResponse, Error> {
        let unreachable = |source| Error::DriverUnreachable { source };
        let addr = SocketAddr::from_abstract_name(self.name()).map_err(unreachable)?;
        let mut stream = UnixStream::connect_addr(&addr).map_err(unreachable)?;
        let body = bincode::serialize(&Envelope {
            token: self.token,
            request,
        })
        .map_err(|source| Error::RequestEncode { source })?;
        stream
            .write_all(&(body.len() as u32).to_le_bytes())
            .map_err(unreachable)?;
        stream.write_all(&body).map_err(unreachable)?;
        let reply = read_frame(RESPONSE, &mut stream).map_err(unreachable)?;
        match decode_response(&reply) {
            Ok(CellResponse::Error(message)) => Err(Error::from_driver(message)),
            Ok(response) => Ok(response),
            Err(source) => Err(Error::UndecodableReply { source }),
        }
    }
}
