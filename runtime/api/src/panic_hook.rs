//! How a panic in a cell reaches its session: as the cell's error, once.

use crate::context::Context;
use crate::error::{Error, panic_message};

/// Tells the session that the running cell failed, and why, instead of printing the panic: the
/// front end shows the message once, as the cell's error (a raised [`Error`] without the
/// location inside this crate, which would only distract). With `TESSERA_BACKTRACE=1` in the
/// session's environment the panic's line and backtrace are printed too. Sessions install it
/// for you.
pub fn install_panic_hook(sc: Context) {
    std::panic::set_hook(Box::new(move |info| {
        let message = match info.payload().downcast_ref::<Error>() {
            Some(error) => error.to_string(),
            None => panic_message(info.payload()),
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
