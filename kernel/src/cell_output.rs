//! A cell's output on its way to the front end: the iopub messages the kernel publishes
//! ([`IopubEvent`]), the [`OutputSink`] a running cell writes to ([`IopubSink`]), and the
//! questions it asks the person on the stdin channel ([`StdinRequest`]).

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::warn;

use crate::backend::{MimeBundle, OutputSink, StdinError};
use crate::wire::Message;

pub(crate) fn parent_header_of(message: &Message) -> Value {
    serde_json::to_value(&message.header).unwrap_or_else(|_| json!({}))
}

pub(crate) fn publish_to(
    iopub: &mpsc::UnboundedSender<IopubEvent>,
    parent_header: Value,
    msg_type: &str,
    content: Value,
) {
    // A closed channel means the kernel is shutting down; the message has nowhere to go.
    let _ = iopub.send(IopubEvent {
        parent_header,
        msg_type: msg_type.to_owned(),
        content,
    });
}

/// One message for the iopub socket; the iopub task adds header and signature.
pub(crate) struct IopubEvent {
    pub(crate) parent_header: Value,
    pub(crate) msg_type: String,
    pub(crate) content: Value,
}

/// A question for the person at the front end, from a running cell.
pub(crate) struct StdinRequest {
    /// The execute request of the cell that asks: the question goes to its client.
    pub(crate) parent: Message,
    pub(crate) prompt: String,
    pub(crate) password: bool,
    pub(crate) answer: std::sync::mpsc::Sender<Result<String, StdinError>>,
}

/// The [`OutputSink`] a cell writes to: every call becomes an iopub message whose
/// parent is the execute request. Silent executions publish nothing.
pub(crate) struct IopubSink {
    pub(crate) iopub: mpsc::UnboundedSender<IopubEvent>,
    pub(crate) parent_header: Value,
    pub(crate) silent: bool,
    /// Where to ask for input, and the execute request asking; `None` without `allow_stdin`.
    pub(crate) stdin: Option<(mpsc::UnboundedSender<StdinRequest>, Message)>,
}

impl IopubSink {
    fn send(&self, msg_type: &str, content: Value) {
        if !self.silent {
            publish_to(&self.iopub, self.parent_header.clone(), msg_type, content);
        }
    }
}

impl OutputSink for IopubSink {
    fn read_input(&mut self, prompt: &str, password: bool) -> Result<String, StdinError> {
        let Some((requests, parent)) = &self.stdin else {
            return Err(StdinError::NotAllowed);
        };
        let (answer, answered) = std::sync::mpsc::channel();
        requests
            .send(StdinRequest {
                parent: parent.clone(),
                prompt: prompt.to_string(),
                password,
                answer,
            })
            .map_err(|_| StdinError::Closed)?;
        answered.recv().unwrap_or(Err(StdinError::Closed))
    }

    fn stdout(&mut self, text: &str) {
        if !text.is_empty() {
            self.send("stream", json!({ "name": "stdout", "text": text }));
        }
    }

    fn stderr(&mut self, text: &str) {
        if !text.is_empty() {
            self.send("stream", json!({ "name": "stderr", "text": text }));
        }
    }

    fn display(&mut self, data: MimeBundle, display_id: Option<&str>, update: bool) {
        let mut content = json!({ "data": data, "metadata": {} });
        if let Some(id) = display_id {
            content["transient"] = json!({ "display_id": id });
        }
        let msg_type = match (update, display_id) {
            (true, Some(_)) => "update_display_data",
            (true, None) => {
                warn!("a display update without a display id is shown as new output");
                "display_data"
            }
            (false, _) => "display_data",
        };
        self.send(msg_type, content);
    }

    fn clear_output(&mut self, wait: bool) {
        self.send("clear_output", json!({ "wait": wait }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_turns_calls_into_iopub_messages() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = IopubSink {
            iopub: tx,
            parent_header: json!({"msg_id": "p"}),
            silent: false,
            stdin: None,
        };
        sink.stdout("hi\n");
        sink.stderr("");
        sink.display(MimeBundle::plain("0%"), Some("job-1"), false);
        sink.display(MimeBundle::plain("50%"), Some("job-1"), true);
        let events: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let types: Vec<_> = events.iter().map(|e| e.msg_type.as_str()).collect();
        assert_eq!(types, ["stream", "display_data", "update_display_data"]);
        assert_eq!(events[0].content["text"], "hi\n");
        assert_eq!(events[0].parent_header["msg_id"], "p");
        assert_eq!(events[2].content["transient"]["display_id"], "job-1");
        assert_eq!(events[2].content["data"]["text/plain"], "50%");

        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut silent = IopubSink {
            iopub: tx,
            parent_header: json!({}),
            silent: true,
            stdin: None,
        };
        silent.stdout("hidden");
        assert!(rx.try_recv().is_err());
        // Without allow_stdin a cell asking for input is told so.
        assert_eq!(
            silent.read_input("name? ", false),
            Err(StdinError::NotAllowed)
        );
    }
}
