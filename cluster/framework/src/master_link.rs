//! The framework's connection to the leading master: the one address it was given, or
//! whichever master leads the election under a `zk://` URL ([`MasterDetector`]). Calls and
//! re-subscriptions ask for the client of the current leader, so a framework follows a
//! failover without its user doing anything.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_credentials::{Credential, Principal, describe_error};
use tessera_zookeeper::MasterDetector;
use tonic::transport::{Channel, Endpoint};

use crate::error::FrameworkError;
use crate::master_call::{call, unreachable};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a call waits for a master to be elected.
const LEADER_PATIENCE: Duration = Duration::from_secs(10);

/// A client of the leading master.
pub(crate) struct MasterLink {
    detector: MasterDetector,
    credential: Credential,
    /// The connection to the leader last used, and its address.
    current: Mutex<Option<(String, MasterClient<Channel>)>>,
}

impl MasterLink {
    /// Follows `master` ("HOST:PORT" or a `zk://` URL) as `credential`'s holder.
    pub(crate) async fn new(master: &str, credential: &Credential) -> Result<Self, FrameworkError> {
        if master.is_empty()
            || (!master.contains("zk://") && master.contains("://"))
            || !master.contains(':')
        {
            return Err(FrameworkError::BadAddress {
                master: master.to_string(),
            });
        }
        let detector = MasterDetector::new(master)
            .await
            .map_err(|source| FrameworkError::ZooKeeper { source })?;
        Ok(MasterLink {
            detector,
            credential: credential.clone(),
            current: Mutex::new(None),
        })
    }

    /// The leading master's address and a client of it, connecting when the leader is new.
    /// Under ZooKeeper it waits a while for a master to be elected, and for the next one when
    /// the leader it names cannot be reached (it died and its node has not expired yet).
    pub(crate) async fn client(&self) -> Result<(String, MasterClient<Channel>), FrameworkError> {
        let deadline = tokio::time::Instant::now() + LEADER_PATIENCE;
        loop {
            let mut detector = self.detector.clone();
            let leader = detector
                .leader_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
                .ok_or_else(|| FrameworkError::NoLeader {
                    masters: self.detector.describe(),
                    seconds: LEADER_PATIENCE.as_secs(),
                })?;
            let cached = self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some((address, client)) = cached
                && address == leader
            {
                return Ok((address, client));
            }
            match connect(&leader, &self.credential).await {
                Ok(channel) => {
                    let client = MasterClient::new(channel);
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((leader.clone(), client.clone()));
                    return Ok((leader, client));
                }
                Err(FrameworkError::Unreachable { .. })
                    if matches!(self.detector, MasterDetector::ZooKeeper { .. })
                        && tokio::time::Instant::now() < deadline =>
                {
                    if detector.leader().as_deref() == Some(leader.as_str()) {
                        let _ = tokio::time::timeout_at(deadline, detector.changed()).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a unary call (`make` builds it for a client) on the leading master. Under
    /// ZooKeeper, a call that cannot reach the leader — it died, and ZooKeeper still names it —
    /// is made again on the next one, within a while; elsewhere its error stands.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        action: &'static str,
        make: F,
    ) -> Result<T, FrameworkError>
    where
        F: Fn(MasterClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + LEADER_PATIENCE;
        loop {
            let mut detector = self.detector.clone();
            let (master, client) = self.client().await?;
            match call(&master, action, make(client)).await {
                Err(FrameworkError::Unreachable { .. })
                    if matches!(self.detector, MasterDetector::ZooKeeper { .. })
                        && tokio::time::Instant::now() < deadline =>
                {
                    if detector.leader().as_deref() == Some(master.as_str()) {
                        let _ = tokio::time::timeout_at(deadline, detector.changed()).await;
                    }
                }
                answer => return answer,
            }
        }
    }

    /// The leading master's address, for messages (the `zk://` URL while none leads).
    pub(crate) fn address(&self) -> String {
        self.detector.leader_or_url()
    }

    /// Returns when another master is elected (never for a single master).
    pub(crate) async fn leader_changed(&self) {
        self.detector.clone().changed().await
    }
}

/// An authenticated channel to the master at `address` ("HOST:PORT").
async fn connect(address: &str, credential: &Credential) -> Result<Channel, FrameworkError> {
    let bad = || FrameworkError::BadAddress {
        master: address.to_string(),
    };
    if address.is_empty() || address.contains("://") || !address.contains(':') {
        return Err(bad());
    }
    let endpoint = Endpoint::from_shared(format!("https://{address}"))
        .and_then(|e| e.tls_config(credential.client_tls(&Principal::Master)))
        .map_err(|_| bad())?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20));
    endpoint
        .connect()
        .await
        .map_err(|e| unreachable(address, describe_error(&e)))
}
