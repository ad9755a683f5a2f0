//! The master's HTTP endpoints, for operators, on a listener of their own (`--http-port`):
//!
//! * `/state` — JSON of what the master knows: agents, frameworks, roles (weight, quota),
//!   offers, executors and the allocation policy (Mesos' `/state`);
//! * `/metrics` — counters and gauges in Prometheus' text format (Mesos' `/metrics/snapshot`);
//! * `/health` — `200 ok` while the master serves (Mesos' `/health`);
//! * `/` — a page that shows `/state` as tables of agents, frameworks, roles and executors.
//!
//! HTTPS only, with the master's certificate, as its gRPC side. Every endpoint is read-only.
//! As Mesos' `--authenticate_http_readonly`, they answer requests without a client certificate
//! unless `--authenticate-http-readonly` is given; then a request must come with a certificate
//! of the cluster's CA (any principal: as `ClusterStatus`, anyone of the cluster may look) —
//! except `/health`, which load balancers and service managers probe without credentials (as
//! Mesos' `/health` needs no authentication).
//!
//! Why a listener of its own, not the gRPC port: the gRPC port speaks HTTP/2 only and refuses
//! every call without a client certificate; on a port of its own the HTTP side can be served to
//! browsers and scrapers (HTTP/1.1) and firewalled apart, with no change to the gRPC side.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tessera_credentials::{Authenticator, CertificateDer, Refusal, TlsServer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;

use crate::shared::Shared;

/// The page at `/`: tables filled from `/state` by [`PAGE_SCRIPT`].
const PAGE: &str = include_str!("http/page.html");
/// The page's script, at `/page.js` (a file of its own, so that the page's content security
/// policy can forbid inline scripts).
const PAGE_SCRIPT: &str = include_str!("http/page.js");

/// A client must send its request's headers within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers of one connection share.
#[derive(Clone)]
struct Http {
    shared: Arc<Shared>,
    authenticator: Authenticator,
    /// `--authenticate-http-readonly`: read-only endpoints need a client certificate.
    authenticate_readonly: bool,
    /// The certificates the connection's peer presented in its handshake.
    peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    /// `--authenticate-http-readonly` is on and the request has no valid certificate.
    #[error("{0}")]
    Unauthenticated(#[from] Refusal),
    /// The state could not be written as JSON.
    #[error("cannot write the master's state as JSON: {0}; this is a bug in Tessera")]
    Json(#[from] serde_json::Error),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match self {
            HttpError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            HttpError::Json(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, format!("{self}\n")).into_response()
    }
}

impl Http {
    /// Fails unless the request may read: always, or with a valid certificate when
    /// `--authenticate-http-readonly` is on.
    fn check_readonly(&self) -> Result<(), HttpError> {
        if self.authenticate_readonly {
            self.authenticator
                .verify(self.peer_certs.as_deref().map(Vec::as_slice))?;
        }
        Ok(())
    }
}

/// A response of `body` as `content_type`, never cached (it changes with the cluster).
fn fresh(content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn state(State(http): State<Http>) -> Result<Response, HttpError> {
    http.check_readonly()?;
    let snapshot = http.shared.lock().snapshot();
    let json = serde_json::to_string_pretty(&snapshot)? + "\n";
    Ok(fresh("application/json", json))
}

async fn metrics(State(http): State<Http>) -> Result<Response, HttpError> {
    http.check_readonly()?;
    let text = {
        let state = http.shared.lock();
        crate::prometheus::render(&state.metrics, &state.snapshot())
    };
    Ok(fresh("text/plain; version=0.0.4; charset=utf-8", text))
}

async fn health() -> Response {
    fresh("text/plain; charset=utf-8", "ok\n".to_string())
}

async fn page(State(http): State<Http>) -> Result<Response, HttpError> {
    http.check_readonly()?;
    let mut response = fresh("text/html; charset=utf-8", PAGE.to_string());
    // Names on the page come from frameworks and agents: never let them run as script.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'"),
    );
    Ok(response)
}

async fn page_script(State(http): State<Http>) -> Result<Response, HttpError> {
    http.check_readonly()?;
    Ok(fresh(
        "text/javascript; charset=utf-8",
        PAGE_SCRIPT.to_string(),
    ))
}

/// The endpoints, for one connection.
fn router(http: Http) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/page.js", get(page_script))
        .route("/state", get(state))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(http)
}

/// Serves the endpoints on `listener` over `tls` until the task is dropped (then every open
/// connection is dropped too).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: TlsServer,
    authenticate_readonly: bool,
) {
    let authenticator = tls.authenticator();
    let mut incoming = tls.incoming(listener);
    let mut connections = JoinSet::new();
    while let Some(accepted) = incoming.next().await {
        let Ok(stream) = accepted else { continue };
        let app = router(Http {
            shared: shared.clone(),
            authenticator: authenticator.clone(),
            authenticate_readonly,
            peer_certs: stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| Arc::new(certs.to_vec())),
        });
        connections.spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .await;
            if let Err(e) = served {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}
