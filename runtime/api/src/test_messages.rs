//! Checks of error messages shared by the API's unit tests.

/// `error`'s message, checked to hold each of `parts`.
pub fn says(error: &dyn std::fmt::Display, parts: &[&str]) -> String {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "{part:?} is not in {message:?}");
    }
    message
}
