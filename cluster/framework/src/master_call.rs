//! One call to the master: run with a timeout, and its failure turned into a
//! [`FrameworkError`] that says what to do (a master that cannot be reached, one that does not
//! trust this framework's certificate, one that no longer knows the framework, or a refusal).

use std::time::Duration;

use tessera_credentials::describe_status;

use crate::error::FrameworkError;

/// How long a call to the master may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn port_of(master: &str) -> String {
    master
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "5050".into())
}

/// A connection that failed: a TLS refusal (the text names its remedy) or an
/// unreachable master.
pub(crate) fn unreachable(master: &str, reason: String) -> FrameworkError {
    if tessera_credentials::tls_remedy(&reason).is_some() {
        return FrameworkError::Untrusted {
            master: master.to_string(),
            reason,
        };
    }
    FrameworkError::Unreachable {
        master: master.to_string(),
        port: port_of(master),
        reason,
    }
}

pub(crate) fn status_error(
    master: &str,
    action: &'static str,
    status: tonic::Status,
) -> FrameworkError {
    match status.code() {
        // The master never cancels a call: a cancelled one is a connection that broke (e.g.
        // hyper's "operation was canceled: connection closed" when the master died).
        tonic::Code::Unavailable | tonic::Code::Cancelled => {
            unreachable(master, describe_status(&status))
        }
        // A broken connection (e.g. the master died) surfaces as Unknown with
        // the transport error as its source.
        tonic::Code::Unknown
            if std::error::Error::source(&status).is_some()
                || status.message().starts_with("transport error") =>
        {
            unreachable(master, describe_status(&status))
        }
        tonic::Code::NotFound => FrameworkError::NotRegistered {
            master: master.to_string(),
            message: status.message().to_string(),
        },
        _ => FrameworkError::Rejected {
            master: master.to_string(),
            action,
            message: describe_status(&status),
        },
    }
}

/// Runs a unary call with a timeout and turns failures into clear errors.
pub(crate) async fn call<T>(
    master: &str,
    action: &'static str,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, FrameworkError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status_error(master, action, status)),
        Err(_) => Err(FrameworkError::Timeout {
            master: master.to_string(),
            action,
            seconds: CALL_TIMEOUT.as_secs(),
        }),
    }
}
