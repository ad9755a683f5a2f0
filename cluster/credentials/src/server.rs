//! The server side of mutual TLS: [`TlsServer::incoming`] accepts connections and finishes
//! their handshakes, and [`Authenticator`] (a tonic interceptor on every service) checks the
//! caller's certificate chain before any call runs. [`Credential::https_server`] is the same for
//! HTTPS (HTTP/1.1: browsers, curl, metrics scrapers), whose server checks the chain per request
//! with [`Authenticator::verify`] where a request needs a certificate.
//!
//! Why the chain is checked per call and not in the handshake: in TLS 1.3 a client learns that
//! the server refused its certificate only as a closed connection ("connection closed"), which
//! tells a person nothing. So the handshake proves only that the client holds the key of the
//! certificate it presents; the [`Authenticator`] then verifies that certificate against the
//! CA, as rustls would have, and refuses a call with a status that names what was missing or
//! wrong — no certificate, another cluster's CA, an expired certificate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::DistinguishedName;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::credential::{Credential, HANDSHAKE_TIMEOUT};
use crate::error::CredentialError;
use crate::principal::Principal;

/// Accepts mutual-TLS connections for a server holding a credential.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
    authenticator: Authenticator,
}

/// Checks every call's client certificate against the CA and records the caller's
/// [`Principal`] for [`crate::caller`].
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<dyn ClientCertVerifier>,
    /// Certificates verified lately, and when: a peer's calls (every task, every shuffle
    /// fetch) present the same certificate, and its chain need not be checked again each time.
    verified: Arc<std::sync::Mutex<HashMap<Vec<u8>, (Principal, Instant)>>>,
}

/// How long a verified certificate is taken on trust before its chain is checked again (so
/// that one expiring meanwhile is refused within this long).
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// At most this many verified certificates are remembered (a session has two, a cluster one
/// per agent and principal).
const VERIFIED_AT_MOST: usize = 1024;

/// Asks for a client certificate and checks the handshake's signature with it, leaving the
/// chain to the [`Authenticator`].
#[derive(Debug)]
struct DeferredChainCheck {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for DeferredChainCheck {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn tls_error(e: impl std::fmt::Display) -> CredentialError {
    CredentialError::Unparsable(e.to_string())
}

impl Credential {
    /// The TLS server for a process holding this credential (gRPC: HTTP/2).
    pub fn server(&self) -> Result<TlsServer, CredentialError> {
        self.tls_server(b"h2")
    }

    /// The TLS server for this credential's HTTPS endpoints (HTTP/1.1). As [`Credential::server`]
    /// it asks every client for a certificate and checks none in the handshake: a browser or a
    /// scraper without one connects, and the server decides per request whether it needs one.
    pub fn https_server(&self) -> Result<TlsServer, CredentialError> {
        self.tls_server(b"http/1.1")
    }

    /// A TLS server speaking `protocol` (its ALPN name).
    fn tls_server(&self, protocol: &[u8]) -> Result<TlsServer, CredentialError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_pem().as_bytes()) {
            roots.add(ca.map_err(tls_error)?).map_err(tls_error)?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(tls_error)?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem().as_bytes())
                .collect::<Result<_, _>>()
                .map_err(tls_error)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem().as_bytes()).map_err(tls_error)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_client_cert_verifier(Arc::new(DeferredChainCheck {
                inner: inner.clone(),
            }))
            .with_single_cert(chain, key)
            .map_err(tls_error)?;
        config.alpn_protocols = vec![protocol.to_vec()];
        Ok(TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            authenticator: Authenticator {
                verifier: inner,
                verified: Default::default(),
            },
        })
    }
}

impl TlsServer {
    /// The interceptor that every service of this server must be wrapped in.
    pub fn authenticator(&self) -> Authenticator {
        self.authenticator.clone()
    }

    /// The connections `listener` accepts, once their TLS handshake finished (within
    /// [`HANDSHAKE_TIMEOUT`]), with Nagle's algorithm off. A peer that fails or stalls its
    /// handshake (garbage bytes, a plain-text client) is dropped; the others carry on.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, and keep serving.
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// Why a peer is not authenticated: each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The peer presented no certificate.
    #[error(
        "the request came without a client certificate; present one issued by this cluster's \
         CA (`tessera cluster init-credentials` makes them; Tessera's programs take the \
         directory as --credentials DIR)"
    )]
    NoCertificate,
    /// The certificate's chain does not lead to this cluster's CA, or it is not valid now.
    #[error("{}", refusal(.0))]
    NotAccepted(rustls::Error),
    /// The certificate is valid but names no Tessera principal.
    #[error("your certificate: {0}")]
    NoPrincipal(CredentialError),
}

/// What a certificate the CA does not accept means to its holder.
fn refusal(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(E::UnknownIssuer | E::BadSignature) => {
            "your certificate was not issued by this cluster's CA (it is another cluster's); use \
             credentials made by this cluster's `tessera cluster init-credentials`"
                .to_string()
        }
        rustls::Error::InvalidCertificate(
            E::Expired | E::ExpiredContext { .. } | E::NotValidYet | E::NotValidYetContext { .. },
        ) => "your certificate expired (or is not valid yet); issue a new one with `tessera \
              cluster init-credentials`"
            .to_string(),
        other => format!("your certificate is not accepted: {other}"),
    }
}

impl Authenticator {
    /// The principal whose valid certificate made `request`, or why there is none.
    pub fn authenticate<T>(&self, request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
        let certs = request.peer_certs();
        self.verify(certs.as_deref().map(Vec::as_slice))
            .map_err(|refusal| tonic::Status::unauthenticated(refusal.to_string()))
    }

    /// The principal of a peer that presented `certs` (its certificate first, then any
    /// intermediates) in its handshake, once their chain is checked against the CA; or why it
    /// is not authenticated.
    pub fn verify(&self, certs: Option<&[CertificateDer<'_>]>) -> Result<Principal, Refusal> {
        let certs = certs
            .filter(|c| !c.is_empty())
            .ok_or(Refusal::NoCertificate)?;
        let end_entity = certs[0].as_ref();
        let now = Instant::now();
        if let Some((principal, at)) = self.verified.lock().unwrap().get(end_entity)
            && now.duration_since(*at) < VERIFIED_FOR
        {
            return Ok(principal.clone());
        }
        self.verifier
            .verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
            .map_err(Refusal::NotAccepted)?;
        let principal = Principal::from_certificate(end_entity).map_err(Refusal::NoPrincipal)?;
        let mut verified = self.verified.lock().unwrap();
        if verified.len() >= VERIFIED_AT_MOST {
            verified.clear();
        }
        verified.insert(end_entity.to_vec(), (principal.clone(), now));
        Ok(principal)
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let principal = self.authenticate(&request)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}
