//! What every socket task of a running kernel shares: the session's signer, the iopub queue,
//! the kernel's info and history, whether a cell runs, and how to interrupt it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::backend::Interrupter;
use crate::cell_output::{IopubEvent, StdinRequest, parent_header_of, publish_to};
use crate::history::History;
use crate::wire::{Message, Signer};

/// State every socket task shares.
pub(crate) struct Shared {
    pub(crate) session: String,
    pub(crate) signer: Signer,
    pub(crate) iopub: mpsc::UnboundedSender<IopubEvent>,
    pub(crate) kernel_info: Value,
    pub(crate) interrupter: Arc<Interrupter>,
    /// The cells executed with `store_history`, of this session and earlier ones.
    pub(crate) history: parking_lot::Mutex<History>,
    /// True while a cell runs.
    pub(crate) busy: AtomicBool,
    /// Carries the `restart` flag of a shutdown request to the main task.
    pub(crate) shutdown: mpsc::UnboundedSender<bool>,
    /// Questions for the person at the front end, asked on the stdin channel.
    pub(crate) stdin: mpsc::UnboundedSender<StdinRequest>,
    /// Wakes an `input_request` waiting for its answer when the cell is interrupted.
    pub(crate) input_interrupted: tokio::sync::Notify,
}

impl Shared {
    /// Queues one iopub message whose parent is `parent`.
    pub(crate) fn publish(&self, parent: &Message, msg_type: &str, content: Value) {
        publish_to(&self.iopub, parent_header_of(parent), msg_type, content);
    }

    pub(crate) fn status(&self, parent: &Message, state: &str) {
        self.publish(parent, "status", json!({ "execution_state": state }));
    }

    /// Interrupts the running cell, and the question it is waiting on, if any.
    pub(crate) fn interrupt(&self) {
        self.input_interrupted.notify_waiters();
        (self.interrupter)();
    }
}
