//! Errors a cell can see, and how they are shown.

use std::fmt;

/// A failed Tessera operation: a job whose task failed, a driver that is gone, a closure whose
/// captures cannot be shipped. Actions raise it as a panic payload (like an exception in Spark),
/// which the session reports without losing the cell's earlier variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Raises this error in the calling cell.
    pub(crate) fn raise(self) -> ! {
        std::panic::panic_any(self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Tells the session that the running cell failed, and why, instead of printing the panic: the
/// front end shows the message once, as the cell's error (a raised [`Error`] without the
/// location inside this crate, which would only distract). With `TESSERA_BACKTRACE=1` in the
/// session's environment the panic's line and backtrace are printed too. Sessions install it
/// for you.
pub fn install_panic_hook(sc: crate::Context) {
    std::panic::set_hook(Box::new(move |info| {
        let message = match info.payload().downcast_ref::<Error>() {
            Some(error) => error.to_string(),
            None => crate::batch::panic_message(info.payload()),
        };
        // The front end shows the message once, as the cell's error; the backtrace only when
        // asked for, as it is long and mostly evcxr's frames.
        if std::env::var_os("TESSERA_BACKTRACE").is_some_and(|v| v != "0") {
            let at = info
                .location()
                .map(|l| format!(" at line {}", l.line()))
                .unwrap_or_default();
            eprintln!(
                "panicked{at}: {message}\n{}",
                std::backtrace::Backtrace::force_capture()
            );
        }
        let _ = sc.call(tessera_plan::cell_protocol::CellRequest::CellPanicked { message });
    }));
}
