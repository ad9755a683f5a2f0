//! The cell's side of the local socket to the driver. A handle needs no state beyond the
//! socket's name and the session's token; each thread keeps its own connection between
//! requests, so that a request costs one write and one read, not a connection made and
//! accepted as well (an RDD's every transformation is a request: with a connection each, a
//! `map` added a fifth to a small job's time). Threads of a cell that run jobs at once use
//! connections of their own, as they used to.

use crate::error::Error;
use std::cell::RefCell;
use std::io::{ErrorKind, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use tessera_plan::cell_protocol::{CellRequest, CellResponse, Envelope, RESPONSE, decode_response};
use tessera_plan::decode::{framed, read_frame};

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
        let body = bincode::serialize(&Envelope {
            token: self.token,
            request,
        })
        .map_err(|source| Error::RequestEncode { source })?;
        let reply = self
            .exchange(&framed(&body))
            .map_err(|source| Error::DriverUnreachable { source })?;
        match decode_response(&reply) {
            Ok(CellResponse::Error(message)) => Err(Error::from_driver(message)),
            Ok(response) => Ok(response),
            Err(source) => Err(Error::UndecodableReply { source }),
        }
    }

    /// Writes `frame` on this thread's connection to the driver (made first if it has none)
    /// and reads the reply's frame. A connection that failed is dropped, not kept. A kept
    /// connection that the driver closed in the meantime (it closes none while it runs, but a
    /// thread may outlive it) fails before any of the reply arrives: the request then goes
    /// once more, on a new connection.
    fn exchange(&self, frame: &[u8]) -> std::io::Result<Vec<u8>> {
        // Taken out for the exchange, so that nothing is borrowed while the driver works.
        let kept = CONNECTION
            .with(|slot| slot.borrow_mut().take())
            .filter(|(name, _)| name == self.name());
        let (stream, reply) = match kept {
            Some((_, mut stream)) => match send(&mut stream, frame) {
                Ok(reply) => (stream, reply),
                Err(e) if closed_before_reading(&e) => self.send_on_new(frame)?,
                Err(e) => return Err(e),
            },
            None => self.send_on_new(frame)?,
        };
        CONNECTION.with(|slot| *slot.borrow_mut() = Some((self.name().to_vec(), stream)));
        Ok(reply)
    }

    /// Connects to the driver and sends `frame`: the connection and the reply.
    fn send_on_new(&self, frame: &[u8]) -> std::io::Result<(UnixStream, Vec<u8>)> {
        let mut stream = UnixStream::connect_addr(&SocketAddr::from_abstract_name(self.name())?)?;
        let reply = send(&mut stream, frame)?;
        Ok((stream, reply))
    }
}

/// Whether `error` says that the driver had closed the connection before it read the request
/// (the request unread, or unwritable): it then did nothing with it.
fn closed_before_reading(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
    )
}

/// Writes `frame` on `stream` and reads the reply's frame.
fn send(stream: &mut UnixStream, frame: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(frame)?;
    read_frame(RESPONSE, stream)
}

thread_local! {
    /// This thread's connection to the driver, with the socket name it was made to.
    static CONNECTION: RefCell<Option<(Vec<u8>, UnixStream)>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A driver's socket that answers every request with an error saying `answer N.`, `N`
    /// counting requests, and closes each connection after `per_connection` requests; the
    /// count of connections it accepted.
    fn driver(name: &str, per_connection: usize) -> Arc<AtomicUsize> {
        let listener =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        std::thread::spawn(move || {
            let answered = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let answered = answered.clone();
                // A thread a connection, as the driver's task a connection.
                std::thread::spawn(move || {
                    for _ in 0..per_connection {
                        if read_frame("a request", &mut stream).is_err() {
                            break;
                        }
                        let n = answered.fetch_add(1, Ordering::SeqCst) + 1;
                        let reply =
                            bincode::serialize(&CellResponse::Error(format!("answer {n}.")))
                                .unwrap();
                        stream.write_all(&framed(&reply)).unwrap();
                    }
                });
            }
        });
        accepted
    }

    /// The message the driver answered a request of `endpoint`'s with.
    fn answer(endpoint: &Endpoint) -> String {
        match endpoint.call(CellRequest::Describe { rdd: 0 }) {
            Err(e) => e.to_string(),
            Ok(other) => panic!("unexpected reply {other:?}"),
        }
    }

    #[test]
    fn a_thread_keeps_one_connection_for_its_requests() {
        let name = format!("tessera-client-test-{}-keep", std::process::id());
        let accepted = driver(&name, usize::MAX);
        let endpoint = Endpoint::new(&name, 7);
        for n in 1..=5 {
            assert!(answer(&endpoint).contains(&format!("answer {n}.")));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Another thread has a connection of its own.
        std::thread::spawn(move || answer(&endpoint))
            .join()
            .unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_connection_the_driver_closed_is_made_again_without_losing_the_request() {
        let name = format!("tessera-client-test-{}-closed", std::process::id());
        let accepted = driver(&name, 1);
        let endpoint = Endpoint::new(&name, 7);
        for n in 1..=3 {
            let answered = answer(&endpoint);
            assert!(answered.contains(&format!("answer {n}.")), "{answered}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }
}
