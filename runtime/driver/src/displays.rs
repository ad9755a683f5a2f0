//! What cells ask front ends to show besides their printed output and result: rich displays
//! (`display(&x)`) and clearing the output, passed from the cell server to whichever front end
//! listens (the kernel turns them into `display_data` and `clear_output`; the REPL prints text).

use tokio::sync::broadcast;

/// One request of a cell to its front end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellDisplay {
    /// Show `data` (MIME type, content); with `display_id` and `update`, in place of what was
    /// shown under that id.
    Show {
        /// The output in one or more forms, as (MIME type, content) pairs: the front end picks
        /// the richest it can show.
        data: Vec<(String, String)>,
        /// The display's id, by which later updates replace it (with `update`, the id of the
        /// display this one replaces); `None`: it cannot be updated.
        display_id: Option<String>,
        /// True to replace what was shown under `display_id` rather than show it anew.
        update: bool,
    },
    /// Clear the cell's output; with `wait`, once new output arrives.
    Clear {
        /// True to clear once new output arrives rather than at once.
        wait: bool,
    },
}

/// The channel cells' display requests go through.
pub struct Displays(broadcast::Sender<CellDisplay>);

impl Default for Displays {
    fn default() -> Displays {
        Displays(broadcast::channel(256).0)
    }
}

impl Displays {
    /// Passes `display` to the front ends listening now (none listening is fine: a script
    /// without a front end for rich output).
    pub fn send(&self, display: CellDisplay) {
        let _ = self.0.send(display);
    }

    /// A receiver of every display request from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CellDisplay> {
        self.0.subscribe()
    }
}
