//! Where the leading master is: a fixed `HOST:PORT`, or the leader of the election under a
//! `zk://` URL, followed as it changes (Mesos' standalone and ZooKeeper master detectors).
//! Agents, sessions and `tessera cluster` ask a [`MasterDetector`] before each connection and
//! wait on [`MasterDetector::changed`] to hurry a reconnection when a new leader is elected.

use std::time::Duration;

use tokio::sync::watch;

use crate::election_nodes::{MasterInfo, leader_of};
use crate::error::ZkError;
use crate::session::{SessionEvent, ZooKeeper};
use crate::url::ZkUrl;

/// Finds the leading master. Cheap to clone.
#[derive(Clone, Debug)]
pub enum MasterDetector {
    /// A single master at a fixed "HOST:PORT".
    Standalone(String),
    /// The leader of the election under a `zk://` URL.
    ZooKeeper {
        /// The ensemble and election path.
        url: ZkUrl,
        /// The leader as last read (`None`: no master leads now).
        leader: watch::Receiver<Option<MasterInfo>>,
    },
}

impl MasterDetector {
    /// A detector for `master`: "HOST:PORT", or `zk://HOST:PORT,.../PATH`, in which case a
    /// session with the ensemble follows the election from now on. Fails when the URL is
    /// malformed or no ZooKeeper server answers.
    pub async fn new(master: &str) -> Result<Self, ZkError> {
        // The detector's session only reads; its timeout bounds nothing that users wait for
        // (Mesos' default).
        let session_timeout = Duration::from_secs(10);
        if !ZkUrl::is_zk(master) {
            return Ok(MasterDetector::Standalone(master.trim().to_string()));
        }
        let url = ZkUrl::parse(master)?;
        let (zk, events) = ZooKeeper::connect(&url, session_timeout).await?;
        let (tx, leader) = watch::channel(None);
        tokio::spawn(follow_leader(url.clone(), session_timeout, zk, events, tx));
        Ok(MasterDetector::ZooKeeper { url, leader })
    }

    /// The leading master's "HOST:PORT", if one leads.
    pub fn leader(&self) -> Option<String> {
        match self {
            MasterDetector::Standalone(address) => Some(address.clone()),
            MasterDetector::ZooKeeper { leader, .. } => {
                leader.borrow().as_ref().map(|info| info.address.clone())
            }
        }
    }

    /// Waits until the leader's address differs from the one when called (forever for a
    /// standalone master).
    pub async fn changed(&mut self) {
        let known = self.leader();
        let MasterDetector::ZooKeeper { leader, .. } = self else {
            return std::future::pending().await;
        };
        loop {
            let now = leader
                .borrow_and_update()
                .as_ref()
                .map(|i| i.address.clone());
            if now != known {
                return;
            }
            if leader.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The leading master, waiting up to `patience` for one to be elected.
    pub async fn leader_within(&mut self, patience: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(address) = self.leader() {
                return Some(address);
            }
            if tokio::time::timeout_at(deadline, self.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// The leader's address for messages, or the `zk://` URL while none leads.
    pub fn leader_or_url(&self) -> String {
        self.leader().unwrap_or_else(|| self.describe())
    }

    /// What was given: the address, or the `zk://` URL.
    pub fn describe(&self) -> String {
        match self {
            MasterDetector::Standalone(address) => address.clone(),
            MasterDetector::ZooKeeper { url, .. } => url.to_string(),
        }
    }
}

/// Reads the election's leader into `tx` whenever it may have changed, opening a new session
/// when one expires, until every detector is dropped.
async fn follow_leader(
    url: ZkUrl,
    session_timeout: Duration,
    mut zk: ZooKeeper,
    mut events: tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    tx: watch::Sender<Option<MasterInfo>>,
) {
    loop {
        // A session: read, watch, read again on every change.
        let expired = loop {
            let _ = zk.create_parents(&url.path).await;
            match read_leader(&zk, &url.path).await {
                Ok(leader) => {
                    tx.send_if_modified(|now| {
                        let changed = *now != leader;
                        *now = leader;
                        changed
                    });
                }
                Err(ZkError::SessionExpired) => break true,
                Err(_) => {}
            }
            let expired = loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(SessionEvent::Watch(_)) | Some(SessionEvent::Reconnected) => break false,
                        Some(SessionEvent::Disconnected) => continue,
                        Some(SessionEvent::Expired) | None => break true,
                    },
                    _ = tx.closed() => {
                        zk.close().await;
                        return;
                    }
                }
            };
            if expired {
                break true;
            }
        };
        if expired {
            tracing::warn!(%url, "the ZooKeeper session that follows the leading master expired; opening another");
        }
        // A new session, retried until the ensemble answers.
        loop {
            if tx.is_closed() {
                return;
            }
            match ZooKeeper::connect(&url, session_timeout).await {
                Ok((z, e)) => {
                    (zk, events) = (z, e);
                    break;
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// The election's leader as ZooKeeper has it now, setting a watch on the children.
async fn read_leader(zk: &ZooKeeper, path: &str) -> Result<Option<MasterInfo>, ZkError> {
    loop {
        let children = zk.get_children(path, true).await?;
        let Some(leader) = leader_of(&children) else {
            return Ok(None);
        };
        match zk.get_data(&format!("{path}/{leader}"), false).await {
            Ok(data) => {
                return Ok(serde_json::from_slice(&data).ok());
            }
            // It went between the two reads: read again (the watch fires too).
            Err(ZkError::NoNode { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}
