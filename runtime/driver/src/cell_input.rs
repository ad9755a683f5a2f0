//! `input()` in a cell: the driver asks whoever runs the session — a terminal, a notebook —
//! for a line. The front end installs an [`InputReader`]; without one, a cell that asks is
//! told why it cannot be answered.

use parking_lot::Mutex;
use std::sync::Arc;

/// What a cell asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRequest {
    /// Shown before the answer.
    pub prompt: String,
    /// What is typed is not shown (a password).
    pub password: bool,
}

/// Why a cell's `input()` got no line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Nothing can answer: no person is at this session's front end.
    #[error("input() cannot be answered here: {0}; pass the value in a variable or a file instead")]
    Unavailable(String),
    /// The person interrupted the cell while it waited.
    #[error("input() was interrupted")]
    Interrupted,
    /// The front end's input ended (end of file).
    #[error("input() reached the end of the input: nothing more to read")]
    Ended,
}

/// Reads one line for a cell, blocking until it has one.
pub type InputReader = Arc<dyn Fn(&InputRequest) -> Result<String, InputError> + Send + Sync>;

/// The reader the front end installed, if any.
#[derive(Default)]
pub(crate) struct CellInput {
    reader: Mutex<Option<InputReader>>,
}

impl CellInput {
    pub fn set(&self, reader: Option<InputReader>) {
        *self.reader.lock() = reader;
    }

    pub fn read(&self, request: &InputRequest) -> Result<String, InputError> {
        let reader = self.reader.lock().clone();
        match reader {
            Some(reader) => reader(request),
            None => Err(InputError::Unavailable(
                "this front end reads no input".to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_reader_a_request_is_told_why_and_what_to_do() {
        let input = CellInput::default();
        let request = InputRequest {
            prompt: "name? ".into(),
            password: false,
        };
        let error = input.read(&request).unwrap_err().to_string();
        assert!(error.contains("cannot be answered here"), "{error}");
        assert!(error.contains("pass the value in a variable"), "{error}");
        input.set(Some(Arc::new(|r: &InputRequest| {
            Ok(format!("echo {}", r.prompt))
        })));
        assert_eq!(input.read(&request).unwrap(), "echo name? ");
    }
}
