//! What the master's gRPC service, its HTTP endpoints and its loops share: the state under one
//! lock, the allocator's wake-up, the configuration and the master's identity.

use crate::config::MasterConfig;
use crate::state::MasterState;
use std::sync::Mutex;
use tessera_credentials::Credential;
use tokio::sync::Notify;

/// The master's shared state (see the module's doc).
pub(crate) struct Shared {
    pub(crate) state: Mutex<MasterState>,
    /// Wakes the allocation loop early (an agent or framework joined).
    pub(crate) wake_allocator: Notify,
    pub(crate) config: MasterConfig,
    /// The master's identity, presented to agents it dials.
    pub(crate) credential: Credential,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, MasterState> {
        // A panic while holding the lock is a bug; keep serving with the state
        // as it was left rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
