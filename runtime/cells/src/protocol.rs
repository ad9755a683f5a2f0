//! What the engine and its child process say to each other: one JSON object per line on a
//! socket the child has as descriptor 3 (its stdin, stdout and stderr stay the cells' own).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The descriptor the child finds the engine's socket on.
pub const CHANNEL_FD: i32 = 3;

/// The environment variable that makes a binary run as the child
/// ([`crate::run_child_if_requested`]).
pub const CHILD_ENV: &str = "TESSERA_CELLS_CHILD";

/// What the child writes to its stdout and stderr after a cell, so that the engine knows it
/// has every line the cell printed before it answers.
pub const END_OF_CELL: &str = "\u{0}tessera-cell-end\u{0}";

/// From the engine to the child.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Load a cell library and run its entry point.
    Run {
        /// The library.
        library: PathBuf,
    },
    /// Drop these variables (their type was redefined, or they cannot be used again).
    Forget {
        /// Their names.
        names: Vec<String>,
    },
}

/// From the child to the engine.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A cell ran.
    Ran(Ran),
    /// The library could not be loaded.
    LoadFailed {
        /// The loader's message.
        message: String,
    },
    /// Variables were dropped.
    Forgotten,
}

/// How a cell ran.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ran {
    /// Its result, as (MIME type, content) pairs; empty when there is nothing to show.
    pub bundle: Vec<(String, String)>,
    /// The message of a panic, if it panicked.
    pub panic: Option<String>,
    /// The error a `?` returned, if one did.
    pub error: Option<String>,
    /// The variables in the store afterwards, with the names of their types.
    pub variables: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn replies() -> Vec<Reply> {
        vec![
            Reply::Ran(Ran {
                bundle: vec![("text/plain".into(), "2".into())],
                panic: Some("boom".into()),
                error: None,
                variables: vec![("x".into(), "u64".into())],
            }),
            Reply::LoadFailed {
                message: "no such file".into(),
            },
            Reply::Forgotten,
        ]
    }

    proptest! {
        /// A line that is not what the other side writes is refused, whatever it holds.
        #[test]
        fn arbitrary_lines_never_panic(line in any::<String>()) {
            let _ = serde_json::from_str::<Request>(&line);
            let _ = serde_json::from_str::<Reply>(&line);
        }

        #[test]
        fn damaged_lines_never_panic(
            which in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let requests = [
                serde_json::to_vec(&Request::Run { library: "/cells/libctx.so".into() }).unwrap(),
                serde_json::to_vec(&Request::Forget { names: vec!["a".into(), "b".into()] }).unwrap(),
            ];
            let replies: Vec<Vec<u8>> =
                replies().iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
            let mut request = which.get(&requests).clone();
            let mut reply = which.get(&replies).clone();
            for (at, byte) in edits {
                let i = at.index(request.len());
                request[i] = byte;
                let i = at.index(reply.len());
                reply[i] = byte;
            }
            let _ = serde_json::from_slice::<Request>(&request);
            let _ = serde_json::from_slice::<Reply>(&reply);
        }
    }
}
