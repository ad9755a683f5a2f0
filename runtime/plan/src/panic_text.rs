//! The text of a caught panic, wherever one is caught: in an operator, on an executor's task
//! thread, around polars, in the kernel's backend. Each place says in its own words that a
//! payload had no text.

use std::any::Any;

/// The message of a panic whose `payload` is text (`panic!` with a literal or a format gives
/// `&str` or `String`); `None` for any other payload.
pub fn panic_text(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caught(body: impl FnOnce() + std::panic::UnwindSafe) -> Box<dyn Any + Send> {
        std::panic::catch_unwind(body).unwrap_err()
    }

    #[test]
    fn a_literal_or_a_formatted_panic_gives_its_text_and_another_payload_none() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let literal = caught(|| panic!("broken"));
        let formatted = caught(|| panic!("broken at {}", 7));
        let other = caught(|| std::panic::panic_any(42u32));
        std::panic::set_hook(quiet);
        assert_eq!(panic_text(literal.as_ref()).as_deref(), Some("broken"));
        assert_eq!(
            panic_text(formatted.as_ref()).as_deref(),
            Some("broken at 7")
        );
        assert_eq!(panic_text(other.as_ref()), None);
    }
}
