//! [`FrameworkClient`]: a framework's subscription to the master, its event
//! stream, and its calls (accept, decline, kill, reconcile, teardown).
//!
//! With a failover timeout ([`FrameworkInfo::failover_timeout`]) the client
//! survives a master restart or a network cut, as Mesos' scheduler library does:
//! when the subscription breaks it subscribes again with its framework id,
//! retrying with backoff until the failover timeout has passed, then asks the
//! master for the state of all its executors (implicit reconciliation). The
//! framework sees a second [`FrameworkEvent::Registered`] and the answers as
//! status updates; [`FrameworkEvent::Disconnected`] comes only when it gives up.

use std::sync::Arc;
use std::time::Duration;

use tessera_cluster_proto::master as pb;
use tessera_cluster_proto::master::master_client::MasterClient;
use tessera_credentials::describe_status;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

use crate::api::{
    AcceptOperation, ExecutorLaunch, FrameworkEvent, FrameworkInfo, MasterEndpoint, event_from_pb,
};
use crate::error::FrameworkError;
use crate::master_call::{CALL_TIMEOUT, call, status_error};
use crate::master_link::MasterLink;

/// Events not yet read by the framework; the master's stream waits beyond this.
const EVENT_BUFFER: usize = 1024;
/// A framework that hears nothing from the master for this many heartbeat intervals takes it
/// for gone.
const MISSED_HEARTBEATS: f64 = 3.0;

struct Inner {
    link: Arc<MasterLink>,
    framework_id: String,
    /// What subscribes again as this framework.
    subscription: pb::SubscribeRequest,
    /// Dropped with the last clone of the client: ends the subscription.
    _alive: oneshot::Sender<()>,
}

/// A framework subscribed to a master. Cheap to clone; the subscription (and,
/// with the master's default zero failover timeout, every executor of the
/// framework) ends when the last clone is dropped or the event receiver is
/// dropped.
#[derive(Clone)]
pub struct FrameworkClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FrameworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameworkClient")
            .field("master", &self.inner.link.address())
            .field("framework_id", &self.inner.framework_id)
            .finish()
    }
}

impl FrameworkClient {
    /// Subscribes to the master at `master` ("HOST:PORT"). The receiver gets
    /// [`FrameworkEvent::Registered`] first, then offers and status updates,
    /// and [`FrameworkEvent::Disconnected`] last if the subscription ends.
    pub async fn subscribe(
        endpoint: &MasterEndpoint,
        info: FrameworkInfo,
    ) -> Result<(FrameworkClient, mpsc::Receiver<FrameworkEvent>), FrameworkError> {
        let link = Arc::new(MasterLink::new(&endpoint.address, &endpoint.credential).await?);
        let user = if info.user.is_empty() {
            std::env::var("USER").unwrap_or_default()
        } else {
            info.user
        };
        let mut request = pb::SubscribeRequest {
            name: info.name,
            user,
            framework_id: info.framework_id.unwrap_or_default(),
            role: info.role,
            failover_timeout_seconds: info.failover_timeout.map(|t| t.as_secs_f64()),
            capabilities: info.capabilities,
            roles: info.roles,
        };
        let (master, client) = link.client().await?;
        let subscribed = subscribe_once(&client, &master, request.clone()).await?;
        let framework_id = subscribed.framework_id.clone();
        tracing::info!(%master, %framework_id, "subscribed to the Tessera master");
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let _ = tx
            .send(FrameworkEvent::Registered {
                framework_id: framework_id.clone(),
            })
            .await;
        let (alive_tx, alive_rx) = oneshot::channel();
        request.framework_id = framework_id.clone();
        let subscription = request.clone();
        let failover = info.failover_timeout.filter(|t| !t.is_zero());
        tokio::spawn(forward_events(
            Resubscriber {
                link: link.clone(),
                request,
                failover,
                acknowledge: !info.explicit_acknowledgements,
            },
            subscribed,
            tx,
            alive_rx,
        ));
        let inner = Inner {
            link,
            framework_id,
            subscription,
            _alive: alive_tx,
        };
        Ok((
            FrameworkClient {
                inner: Arc::new(inner),
            },
            rx,
        ))
    }

    /// The id the master gave this framework.
    pub fn framework_id(&self) -> &str {
        &self.inner.framework_id
    }

    /// The leading master's "HOST:PORT" (the `zk://` URL while none leads).
    pub fn master(&self) -> String {
        self.inner.link.address()
    }

    /// Accepts an offer, launching executors with (part of) its resources.
    /// What the launches do not use goes back to the pool. Status updates for
    /// the executors arrive as events. An empty `launches` releases the offer.
    pub async fn accept(
        &self,
        offer_id: &str,
        launches: Vec<ExecutorLaunch>,
    ) -> Result<(), FrameworkError> {
        let operations = launches.into_iter().map(AcceptOperation::Launch).collect();
        self.accept_operations(offer_id, operations).await
    }

    /// Accepts an offer with operations, done in order: launches, reservations for this
    /// framework's role, unreservations. What they do not use goes back to the pool; if one
    /// does not fit, none is done.
    pub async fn accept_operations(
        &self,
        offer_id: &str,
        operations: Vec<AcceptOperation>,
    ) -> Result<(), FrameworkError> {
        let request = pb::AcceptRequest {
            framework_id: self.inner.framework_id.clone(),
            offer_ids: vec![offer_id.to_string()],
            operations: operations
                .into_iter()
                .map(AcceptOperation::into_pb)
                .collect(),
            ..Default::default()
        };
        self.inner
            .link
            .call("accept the offer", |mut client| {
                let request = request.clone();
                async move { client.accept(request).await }
            })
            .await?;
        Ok(())
    }

    /// Declines an offer. With `refuse_seconds > 0`, this framework is not
    /// offered that agent again for that long.
    pub async fn decline(&self, offer_id: &str, refuse_seconds: f64) -> Result<(), FrameworkError> {
        let request = pb::DeclineRequest {
            framework_id: self.inner.framework_id.clone(),
            offer_ids: vec![offer_id.to_string()],
            refuse_seconds,
        };
        self.inner
            .link
            .call("decline the offer", |mut client| {
                let request = request.clone();
                async move { client.decline(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for no offers until [`revive`](FrameworkClient::revive) (Mesos' SUPPRESS): for a
    /// framework that has all it needs. Offers it holds stay.
    pub async fn suppress(&self) -> Result<(), FrameworkError> {
        self.suppress_roles(&[]).await
    }

    /// Asks for no offers in `roles` (empty: all its roles) until they are revived (Mesos'
    /// SUPPRESS with roles). Naming a role the framework is not in is refused.
    pub async fn suppress_roles(&self, roles: &[&str]) -> Result<(), FrameworkError> {
        let request = pb::SuppressRequest {
            framework_id: self.inner.framework_id.clone(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        self.inner
            .link
            .call("suppress offers", |mut client| {
                let request = request.clone();
                async move { client.suppress(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for offers again, on every agent, dropping earlier decline filters (Mesos'
    /// REVIVE).
    pub async fn revive(&self) -> Result<(), FrameworkError> {
        self.revive_roles(&[]).await
    }

    /// Asks for offers again in `roles` (empty: all its roles), dropping earlier decline
    /// filters (Mesos' REVIVE with roles).
    pub async fn revive_roles(&self, roles: &[&str]) -> Result<(), FrameworkError> {
        let request = pb::ReviveRequest {
            framework_id: self.inner.framework_id.clone(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        self.inner
            .link
            .call("revive offers", |mut client| {
                let request = request.clone();
                async move { client.revive(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for an executor to be killed at once (SIGKILL to its processes); a KILLED status
    /// update follows.
    pub async fn kill_executor(&self, executor_id: &str) -> Result<(), FrameworkError> {
        let request = pb::KillRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
        };
        self.inner
            .link
            .call("kill the executor", |mut client| {
                let request = request.clone();
                async move { client.kill(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for an executor to be shut down gracefully (Mesos' SHUTDOWN): SIGTERM, then SIGKILL
    /// after its agent's grace period; a KILLED status update follows.
    pub async fn shutdown_executor(&self, executor_id: &str) -> Result<(), FrameworkError> {
        let request = pb::ShutdownRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
        };
        self.inner
            .link
            .call("shut down the executor", |mut client| {
                let request = request.clone();
                async move { client.shutdown(request).await }
            })
            .await?;
        Ok(())
    }

    /// Sends bytes to a running executor (Mesos' MESSAGE): its agent puts them in the
    /// executor's sandbox as the file `messages/NNNNNNNNNN`, numbered in the order they reach
    /// it. Best effort: not retried, and two messages may arrive in either order.
    pub async fn send_message(
        &self,
        executor_id: &str,
        data: Vec<u8>,
    ) -> Result<(), FrameworkError> {
        let request = pb::MessageRequest {
            framework_id: self.inner.framework_id.clone(),
            executor_id: executor_id.to_string(),
            data,
        };
        self.inner
            .link
            .call("send a message to the executor", |mut client| {
                let request = request.clone();
                async move { client.message(request).await }
            })
            .await?;
        Ok(())
    }

    /// Asks for the latest state of executors, which comes as
    /// [`FrameworkEvent::ExecutorStatus`] events (Mesos' RECONCILE): of those named —
    /// [`ExecutorState::Lost`](crate::ExecutorState::Lost) for ones the master does not know — or, with none named, of
    /// every executor of this framework that has not ended (implicit reconciliation).
    pub async fn reconcile(&self, executor_ids: Vec<String>) -> Result<(), FrameworkError> {
        reconcile(&self.inner.link, &self.inner.framework_id, executor_ids).await
    }

    /// Acknowledges a status update ([`FrameworkEvent::ExecutorStatus`]'s `agent_id`,
    /// `executor_id` and `uuid`), with [`FrameworkInfo::explicit_acknowledgements`]: the master
    /// and the agent stop sending it, and the executor's next update comes.
    pub async fn acknowledge(
        &self,
        agent_id: &str,
        executor_id: &str,
        uuid: &str,
    ) -> Result<(), FrameworkError> {
        acknowledge(
            &self.inner.link,
            pb::AcknowledgeRequest {
                framework_id: self.inner.framework_id.clone(),
                agent_id: agent_id.to_string(),
                executor_id: executor_id.to_string(),
                uuid: uuid.to_string(),
            },
        )
        .await
    }

    /// Ends the framework: the master kills all its executors and frees its
    /// resources; the event stream ends.
    pub async fn teardown(&self) -> Result<(), FrameworkError> {
        let request = pb::TeardownRequest {
            framework_id: self.inner.framework_id.clone(),
        };
        let teardown = || {
            self.inner
                .link
                .call("tear down the framework", |mut client| {
                    let request = request.clone();
                    async move { client.teardown(request).await }
                })
        };
        match teardown().await {
            // A master elected since, that has not heard from this framework yet: subscribe to
            // it by id (it then knows whose executors agents bring back), then tear down.
            Err(FrameworkError::NotRegistered { .. }) => {
                let (master, client) = self.inner.link.client().await?;
                let subscribed =
                    subscribe_once(&client, &master, self.inner.subscription.clone()).await?;
                let done = teardown().await;
                drop(subscribed);
                done.map(drop)
            }
            done => done.map(drop),
        }
    }
}

async fn reconcile(
    link: &MasterLink,
    framework_id: &str,
    executor_ids: Vec<String>,
) -> Result<(), FrameworkError> {
    let request = pb::ReconcileRequest {
        framework_id: framework_id.to_string(),
        executor_ids,
    };
    link.call("reconcile executor states", |mut client| {
        let request = request.clone();
        async move { client.reconcile(request).await }
    })
    .await?;
    Ok(())
}

async fn acknowledge(
    link: &MasterLink,
    request: pb::AcknowledgeRequest,
) -> Result<(), FrameworkError> {
    link.call("acknowledge a status update", |mut client| {
        let request = request.clone();
        async move { client.acknowledge(request).await }
    })
    .await?;
    Ok(())
}

/// A subscription stream that has just said Registered.
struct Subscribed {
    stream: tonic::Streaming<pb::Event>,
    framework_id: String,
    /// After this long without a word (several heartbeats missed), the master is taken for
    /// stopped or cut off; `None` from a master that sends no heartbeats.
    silence_limit: Option<Duration>,
}

/// Subscribes with `request` and reads the master's first answer, which must be Registered.
async fn subscribe_once(
    client: &MasterClient<Channel>,
    master: &str,
    request: pb::SubscribeRequest,
) -> Result<Subscribed, FrameworkError> {
    let mut stream = call(master, "subscribe", client.clone().subscribe(request)).await?;
    let first = tokio::time::timeout(CALL_TIMEOUT, stream.message()).await;
    let (framework_id, heartbeat_interval) = match first {
        Ok(Ok(Some(pb::Event {
            event: Some(pb::event::Event::Registered(r)),
        }))) => (r.framework_id, r.heartbeat_interval_seconds),
        Ok(Ok(Some(pb::Event {
            event: Some(pb::event::Event::Error(e)),
        }))) => {
            return Err(FrameworkError::Rejected {
                master: master.to_string(),
                action: "subscribe",
                message: e.message,
            });
        }
        Ok(Ok(other)) => {
            return Err(FrameworkError::Protocol {
                master: master.to_string(),
                detail: format!("expected Registered first, got {other:?}"),
            });
        }
        Ok(Err(status)) => return Err(status_error(master, "subscribe", status)),
        Err(_) => {
            return Err(FrameworkError::Timeout {
                master: master.to_string(),
                action: "subscribe",
                seconds: CALL_TIMEOUT.as_secs(),
            });
        }
    };
    // Several heartbeats missed: the master is stopped or cut off (a master of an older
    // release sends none, and says so with 0).
    let silence_limit = (heartbeat_interval > 0.0).then(|| {
        Duration::from_secs_f64(heartbeat_interval * MISSED_HEARTBEATS).max(Duration::from_secs(1))
    });
    Ok(Subscribed {
        stream,
        framework_id,
        silence_limit,
    })
}

/// What it takes to subscribe again as the same framework.
struct Resubscriber {
    link: Arc<MasterLink>,
    /// Carries the framework id.
    request: pb::SubscribeRequest,
    /// Subscribes again for this long after a disconnect; never when `None`.
    failover: Option<Duration>,
    /// Acknowledges status updates once handed over to the framework.
    acknowledge: bool,
}

/// Waits between attempts to subscribe again: from 100 ms, doubling, at most 2 s.
fn resubscribe_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(5))
        .min(Duration::from_secs(2))
}

impl Resubscriber {
    /// Subscribes again until it works or the failover timeout since `since` has passed; a
    /// master that refuses (e.g. it removed this framework) ends the attempts at once. Then
    /// asks for the states of all the framework's executors.
    async fn resubscribe(&self, since: tokio::time::Instant) -> Result<Subscribed, String> {
        let Some(failover) = self.failover else {
            return Err(String::new());
        };
        let deadline = since + failover;
        let mut attempt = 0;
        loop {
            let subscription = async {
                let (master, client) = self.link.client().await?;
                subscribe_once(&client, &master, self.request.clone()).await
            };
            match subscription.await {
                Ok(subscribed) => {
                    tracing::info!(master = %self.link.address(), framework_id = %subscribed.framework_id, "subscribed again to the Tessera master");
                    if let Err(e) =
                        reconcile(&self.link, &subscribed.framework_id, Vec::new()).await
                    {
                        tracing::warn!("cannot reconcile after subscribing again: {e}");
                    }
                    return Ok(subscribed);
                }
                Err(e @ FrameworkError::Rejected { .. }) => return Err(e.to_string()),
                Err(e) => {
                    let wait = resubscribe_backoff(attempt);
                    if tokio::time::Instant::now() + wait >= deadline {
                        return Err(format!(
                            "gave up subscribing again within the failover timeout of {:.0} s: {e}",
                            failover.as_secs_f64()
                        ));
                    }
                    if attempt == 0 || attempt % 10 == 9 {
                        tracing::warn!("cannot subscribe again yet, retrying: {e}");
                    }
                    attempt += 1;
                    // A newly elected master is tried at once.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.link.leader_changed() => attempt = 0,
                    }
                }
            }
        }
    }
}

/// How a subscription stream ended.
enum StreamEnd {
    /// The framework's side went away: nothing more to do.
    Dropped,
    /// The master said so (an Error event: e.g. it removed the framework): final.
    Refused(String),
    /// The connection broke, the master closed it or fell silent: worth subscribing again.
    Broken(String),
}

/// Moves events from the master's stream to the framework until either side
/// goes away; when the connection breaks, subscribes again (within the failover
/// timeout) and goes on.
async fn forward_events(
    again: Resubscriber,
    mut subscribed: Subscribed,
    tx: mpsc::Sender<FrameworkEvent>,
    mut alive: oneshot::Receiver<()>,
) {
    loop {
        let why = match forward_stream(&mut subscribed, &tx, &mut alive, &again).await {
            StreamEnd::Dropped => return,
            StreamEnd::Refused(why) => why,
            StreamEnd::Broken(why) => {
                tracing::warn!(master = %again.link.address(), "{why}");
                let since = tokio::time::Instant::now();
                let attempt = tokio::select! {
                    attempt = again.resubscribe(since) => attempt,
                    _ = &mut alive => return,
                    _ = tx.closed() => return,
                };
                match attempt {
                    Ok(next) => {
                        subscribed = next;
                        let registered = FrameworkEvent::Registered {
                            framework_id: subscribed.framework_id.clone(),
                        };
                        if tx.send(registered).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(more) if more.is_empty() => why,
                    Err(more) => format!("{why}; {more}"),
                }
            }
        };
        let _ = tx.send(FrameworkEvent::Disconnected(why)).await;
        return;
    }
}

/// Forwards the events of one subscription stream until it ends.
async fn forward_stream(
    subscribed: &mut Subscribed,
    tx: &mpsc::Sender<FrameworkEvent>,
    alive: &mut oneshot::Receiver<()>,
    again: &Resubscriber,
) -> StreamEnd {
    let master = again.link.address();
    // Without heartbeats, a year: only the connection's end ends the wait.
    let limit = subscribed
        .silence_limit
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(limit, subscribed.stream.message()) => match next {
                Ok(next) => next,
                Err(_) => {
                    return StreamEnd::Broken(format!(
                        "no word from the Tessera master at {master} for {:.0} s (it sends a \
                         heartbeat more often): it is stopped or cannot be reached",
                        limit.as_secs_f64()
                    ));
                }
            },
            _ = &mut *alive => {
                tracing::debug!(%master, "framework client dropped; ending the subscription");
                return StreamEnd::Dropped;
            }
            _ = tx.closed() => {
                tracing::debug!(%master, "framework event receiver dropped; ending the subscription");
                return StreamEnd::Dropped;
            }
        };
        let event = match next {
            Ok(Some(pb::Event {
                event: Some(pb::event::Event::Error(e)),
            })) => return StreamEnd::Refused(e.message),
            Ok(Some(pb::Event { event: Some(e) })) => match event_from_pb(e) {
                Some(e) => e,
                None => continue,
            },
            Ok(Some(pb::Event { event: None })) => continue,
            Ok(None) => {
                return StreamEnd::Broken(format!(
                    "the Tessera master at {master} closed the subscription"
                ));
            }
            Err(status) => {
                return StreamEnd::Broken(format!(
                    "lost the connection to the Tessera master at {master}: {}",
                    describe_status(&status)
                ));
            }
        };
        let ack = match &event {
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                uuid,
                ..
            } if again.acknowledge && !uuid.is_empty() => Some(pb::AcknowledgeRequest {
                framework_id: subscribed.framework_id.clone(),
                agent_id: agent_id.clone(),
                executor_id: executor_id.clone(),
                uuid: uuid.clone(),
            }),
            _ => None,
        };
        if tx.send(event).await.is_err() {
            return StreamEnd::Dropped;
        }
        // Handed over: acknowledged, off this loop (a lost acknowledgement only means the
        // update comes again).
        if let Some(request) = ack {
            let link = again.link.clone();
            tokio::spawn(async move {
                if let Err(e) = acknowledge(&link, request).await {
                    tracing::debug!("cannot acknowledge a status update: {e}");
                }
            });
        }
    }
}
