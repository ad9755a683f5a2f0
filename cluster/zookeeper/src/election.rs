//! Leader election among masters, ZooKeeper's recipe: each master creates an ephemeral
//! sequential node under the election path with its [`MasterInfo`]; the lowest sequence number
//! leads. The others stand by, watching the children, and the next in line takes over when the
//! leader's node goes — deleted when its session closes, or expired by the ensemble when its
//! process dies.
//!
//! A leader whose session expires has lost its leadership — a standby may lead already — and
//! must stop serving at once (Mesos' master aborts); its standing becomes [`Standing::Lost`].

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::election_nodes::{MasterInfo, NODE_PREFIX, leader_of};
use crate::error::ZkError;
use crate::protocol::CreateMode;
use crate::session::{SessionEvent, ZooKeeper};
use crate::url::ZkUrl;

/// Where a master stands in the election.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// Another master leads (`None`: none right now, or it cannot be read); this one waits.
    Standby {
        /// The leader, when known.
        leader: Option<MasterInfo>,
    },
    /// This master leads.
    Leading,
    /// This master may no longer lead (its session expired or its node is gone); it must stop.
    Lost {
        /// Why.
        reason: String,
    },
}

/// A master standing for election.
pub struct Contender {
    standing: watch::Receiver<Standing>,
    zk: ZooKeeper,
}

impl Contender {
    /// Where it stands now.
    pub fn standing(&self) -> Standing {
        self.standing.borrow().clone()
    }

    /// A receiver of its standing as it changes.
    pub fn standing_receiver(&self) -> watch::Receiver<Standing> {
        self.standing.clone()
    }

    /// Waits until this master leads (`Ok`) or can no longer (`Err` with why), reporting each
    /// change of standby leader to `on_standby`.
    pub async fn elected(
        &mut self,
        mut on_standby: impl FnMut(Option<&MasterInfo>),
    ) -> Result<(), String> {
        loop {
            match &*self.standing.borrow_and_update() {
                Standing::Leading => return Ok(()),
                Standing::Lost { reason } => return Err(reason.clone()),
                Standing::Standby { leader } => on_standby(leader.as_ref()),
            }
            if self.standing.changed().await.is_err() {
                return Err("the election ended".into());
            }
        }
    }

    /// Waits until this master has lost its standing; returns why.
    pub async fn lost(&mut self) -> String {
        loop {
            if let Standing::Lost { reason } = &*self.standing.borrow_and_update() {
                return reason.clone();
            }
            if self.standing.changed().await.is_err() {
                return "the election ended".into();
            }
        }
    }

    /// Leaves the election at once (its node is deleted with the session), so that a standby
    /// takes over without waiting for the session to expire.
    pub async fn withdraw(self) {
        self.zk.close().await;
    }
}

/// Stands for election under `url`'s path as `info`, with a session of `session_timeout`.
pub async fn contend(
    url: &ZkUrl,
    info: &MasterInfo,
    session_timeout: Duration,
) -> Result<Contender, ZkError> {
    let (zk, events) = ZooKeeper::connect(url, session_timeout).await?;
    zk.create_parents(&url.path).await?;
    let data = serde_json::to_vec(info).expect("MasterInfo serializes");
    let node = zk
        .create(
            &format!("{}/{NODE_PREFIX}", url.path),
            &data,
            CreateMode::EphemeralSequential,
        )
        .await?;
    let name = node.rsplit('/').next().unwrap_or(&node).to_string();
    tracing::info!(%node, "standing for election as the leading master");
    let (tx, standing) = watch::channel(Standing::Standby { leader: None });
    tokio::spawn(follow_election(
        zk.clone(),
        url.path.clone(),
        name,
        events,
        tx,
    ));
    Ok(Contender { standing, zk })
}

async fn follow_election(
    zk: ZooKeeper,
    path: String,
    name: String,
    mut events: mpsc::UnboundedReceiver<SessionEvent>,
    tx: watch::Sender<Standing>,
) {
    let lost = |reason: String| Standing::Lost { reason };
    loop {
        let standing = match zk.get_children(&path, true).await {
            Ok(children) if !children.contains(&name) => Some(lost(format!(
                "this master's election node {path}/{name} was deleted"
            ))),
            Ok(children) => match leader_of(&children) {
                Some(leader) if leader == name => Some(Standing::Leading),
                Some(leader) => {
                    let info = zk
                        .get_data(&format!("{path}/{leader}"), false)
                        .await
                        .ok()
                        .and_then(|data| serde_json::from_slice(&data).ok());
                    Some(Standing::Standby { leader: info })
                }
                None => Some(lost(format!("no election node under {path}"))),
            },
            Err(ZkError::SessionExpired) => Some(lost(ZkError::SessionExpired.to_string())),
            // The connection broke: what the session says next decides.
            Err(_) => None,
        };
        if let Some(standing) = standing {
            let done = matches!(standing, Standing::Lost { .. });
            // Once leading, a master leads until it loses its standing.
            let demoted =
                *tx.borrow() == Standing::Leading && matches!(standing, Standing::Standby { .. });
            if !demoted {
                tx.send_if_modified(|now| {
                    let changed = *now != standing;
                    *now = standing;
                    changed
                });
            }
            if done {
                return;
            }
        }
        // Wait for what makes the standing worth reading again; a contender dropped withdraws.
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = tx.closed() => {
                    zk.close().await;
                    return;
                }
            };
            match event {
                Some(SessionEvent::Watch(_)) | Some(SessionEvent::Reconnected) => break,
                Some(SessionEvent::Disconnected) => continue,
                Some(SessionEvent::Expired) | None => {
                    let _ = tx.send(lost(ZkError::SessionExpired.to_string()));
                    return;
                }
            }
        }
    }
}
