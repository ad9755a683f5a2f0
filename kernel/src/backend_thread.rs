//! The backend's own thread: the kernel's socket tasks reach it through [`BackendHandle`], one
//! request at a time, and a panic in the backend becomes an error of the request, not the end
//! of the kernel.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;
use tracing::{debug, error};

use crate::backend::{
    Completion, ExecuteError, ExecuteOutput, IsComplete, KernelBackend, MimeBundle,
};
use crate::cell_output::IopubSink;

/// Requests to the backend thread; each carries where to send the answer.
pub(crate) enum BackendRequest {
    Execute {
        code: String,
        /// Boxed: the sink is many times the size of the other requests.
        sink: Box<IopubSink>,
        reply: oneshot::Sender<Result<ExecuteOutput, ExecuteError>>,
    },
    Complete {
        code: String,
        cursor_pos: usize,
        reply: oneshot::Sender<Completion>,
    },
    Inspect {
        code: String,
        cursor_pos: usize,
        reply: oneshot::Sender<Option<MimeBundle>>,
    },
    IsComplete {
        code: String,
        reply: oneshot::Sender<IsComplete>,
    },
}

#[derive(Clone)]
pub(crate) struct BackendHandle {
    pub(crate) requests: std::sync::mpsc::Sender<BackendRequest>,
}

impl BackendHandle {
    /// Sends a request and waits for its answer; `None` if the backend thread is gone.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> BackendRequest,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).ok()?;
        rx.await.ok()
    }
}

pub(crate) fn backend_loop<B: KernelBackend>(
    mut backend: B,
    requests: std::sync::mpsc::Receiver<BackendRequest>,
) {
    while let Ok(request) = requests.recv() {
        match request {
            BackendRequest::Execute {
                code,
                mut sink,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.execute(&code, &mut *sink)))
                    .unwrap_or_else(|panic| {
                        let message = panic_message(&*panic);
                        error!("the backend panicked while running a cell: {message}");
                        Err(ExecuteError::new(
                            "KernelPanic",
                            format!("the kernel panicked while running this cell: {message}"),
                        ))
                    });
                let _ = reply.send(result);
            }
            BackendRequest::Complete {
                code,
                cursor_pos,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.complete(&code, cursor_pos)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked while completing: {}",
                            panic_message(&*panic)
                        );
                        Completion::nothing_at(cursor_pos)
                    });
                let _ = reply.send(result);
            }
            BackendRequest::Inspect {
                code,
                cursor_pos,
                reply,
            } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.inspect(&code, cursor_pos)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked while inspecting: {}",
                            panic_message(&*panic)
                        );
                        None
                    });
                let _ = reply.send(result);
            }
            BackendRequest::IsComplete { code, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| backend.is_complete(&code)))
                    .unwrap_or_else(|panic| {
                        error!(
                            "the backend panicked in is_complete: {}",
                            panic_message(&*panic)
                        );
                        IsComplete::Unknown
                    });
                let _ = reply.send(result);
            }
        }
    }
    debug!("backend thread finished");
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    tessera_plan::panic_text::panic_text(panic).unwrap_or_else(|| "(no message)".to_owned())
}
