//! What notebook users call without `sc`: `display(&x)`, `display_html`, `clear_output()`,
//! `input("...")` and `show(&x)`, as Jupyter's Python kernels offer them. Functions (in a cell's
//! own `fn`s too) cannot capture `sc`, so each connects to the session's driver as `sc` did
//! ([`Context::from_session`]). In the prelude.

use crate::context::Context;
use crate::rich::RichDisplay;
use std::fmt;

/// Shows `value` now, before the cell ends (its `Debug` text; in Jupyter a `display_data`).
pub fn display<T: fmt::Debug + ?Sized>(value: &T) {
    Context::from_session().display(value)
}

/// Shows `html` now in Jupyter (the terminal shows nothing).
pub fn display_html(html: &str) {
    Context::from_session().display_html(html)
}

/// Clears what the cell has shown so far (Jupyter's `clear_output`).
pub fn clear_output() {
    Context::from_session().clear_output()
}

/// Asks the person for a line of text (`prompt` first) and returns it.
pub fn input(prompt: &str) -> String {
    Context::from_session().input(prompt)
}

/// Shows `value` richly now: a table, a plot, an RDD's lineage.
pub fn show<T: RichDisplay + ?Sized>(value: &T) {
    Context::from_session().show(value)
}
