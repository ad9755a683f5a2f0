//! rustc's diagnostics (its JSON output), mapped from the generated crate back onto the cell,
//! and shown as rustc shows them, pointing into the cell.

use crate::crate_source::{CrateSource, LineRole};
use serde::Deserialize;
use std::ops::Range;

/// rustc's JSON form of a diagnostic (the fields used here).
#[derive(Debug, Deserialize)]
pub(crate) struct RustcDiagnostic {
    pub message: String,
    pub code: Option<RustcCode>,
    pub level: String,
    #[serde(default)]
    pub spans: Vec<RustcSpan>,
    #[serde(default)]
    pub children: Vec<RustcDiagnostic>,
    pub rendered: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RustcCode {
    pub code: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RustcSpan {
    pub byte_start: usize,
    pub byte_end: usize,
    pub line_start: usize,
    pub is_primary: bool,
    pub label: Option<String>,
}

/// The errors among rustc's stderr lines (warnings and the summary lines are dropped).
pub(crate) fn parse_errors(stderr: &str) -> Vec<RustcDiagnostic> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<RustcDiagnostic>(line).ok())
        .filter(|d| d.level == "error" && !d.message.starts_with("aborting due to"))
        .collect()
}

/// One error, in terms of the cell.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// rustc's message (`mismatched types`).
    pub message: String,
    /// Its code (`E0308`), if it has one.
    pub code: Option<String>,
    /// Parts of the cell it points at.
    pub labels: Vec<Label>,
    /// Notes and help, as `note: ...` / `help: ...`.
    pub notes: Vec<String>,
    /// rustc's own rendering (of the generated crate), shown when nothing points into the cell.
    pub rendered: String,
    /// Roles of the generated lines its primary spans are on (a variable taken or put).
    pub roles: Vec<LineRole>,
    /// Roles of the generated lines its other spans are on (`borrow later used here`).
    pub context_roles: Vec<LineRole>,
}

/// A part of the cell an error points at.
#[derive(Clone, Debug)]
pub struct Label {
    /// Bytes of the cell.
    pub range: Range<usize>,
    /// What rustc says there.
    pub text: Option<String>,
    /// Whether it is where the error is (not context).
    pub primary: bool,
}

impl Diagnostic {
    /// `raw`, mapped through `source`.
    pub(crate) fn map(raw: &RustcDiagnostic, source: &CrateSource) -> Diagnostic {
        let mut labels = Vec::new();
        let mut roles = Vec::new();
        let mut context_roles = Vec::new();
        for span in &raw.spans {
            if let Some(role) = source.role(span.line_start) {
                if span.is_primary {
                    roles.push(role.clone());
                } else {
                    context_roles.push(role.clone());
                }
            }
            if let Some(range) = source.cell_range(span.byte_start..span.byte_end) {
                labels.push(Label {
                    range,
                    text: span.label.clone(),
                    primary: span.is_primary,
                });
            }
        }
        let notes = raw
            .children
            .iter()
            .filter(|child| !child.message.is_empty())
            .map(|child| format!("{}: {}", child.level, child.message))
            .collect();
        Diagnostic {
            message: raw.message.clone(),
            code: raw.code.as_ref().map(|c| c.code.clone()),
            labels,
            notes,
            rendered: raw.rendered.clone().unwrap_or_default(),
            roles,
            context_roles,
        }
    }

    /// Whether it points into the cell.
    pub fn is_in_cell(&self) -> bool {
        !self.labels.is_empty()
    }

    /// The line of the cell (1-based) it is on, if it points into the cell.
    pub fn line(&self, code: &str) -> Option<usize> {
        let label = self
            .labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())?;
        Some(
            code[..label.range.start.min(code.len())]
                .matches('\n')
                .count()
                + 1,
        )
    }
}

/// `diagnostics` as rustc would show them for a file named `cell`.
pub fn render(code: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    use ariadne::{Config, IndexType, Label as Mark, Report, ReportKind, Source};
    let mut out = String::new();
    for diagnostic in diagnostics {
        if !diagnostic.is_in_cell() {
            out.push_str(diagnostic.rendered.trim_end());
            out.push('\n');
            continue;
        }
        let anchor = diagnostic
            .labels
            .iter()
            .find(|l| l.primary)
            .unwrap_or(&diagnostic.labels[0])
            .range
            .clone();
        let mut report = Report::build(ReportKind::Error, ("cell", anchor))
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_index_type(IndexType::Byte),
            )
            .with_message(&diagnostic.message);
        if let Some(code) = &diagnostic.code {
            report = report.with_code(code);
        }
        for label in &diagnostic.labels {
            let mut mark = Mark::new(("cell", label.range.clone()));
            if let Some(text) = &label.text {
                mark = mark.with_message(text);
            }
            report = report.with_label(mark);
        }
        for note in &diagnostic.notes {
            report = report.with_note(note);
        }
        let mut buffer = Vec::new();
        if report
            .finish()
            .write(("cell", Source::from(code)), &mut buffer)
            .is_ok()
        {
            out.push_str(&String::from_utf8_lossy(&buffer));
        } else {
            out.push_str(diagnostic.rendered.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The type of `x` as rustc reports it for `let _: () = (&x,);` (the note's `found tuple
/// `(&T,)``), made nameable for a later cell: integer and float literals get their default
/// types, and references their only possible lifetime, `'static`. `None` when the type has no
/// name (a closure, an `impl Trait`, an error).
pub(crate) fn probed_type(diagnostic: &RustcDiagnostic) -> Option<String> {
    let note = diagnostic.children.iter().find_map(|c| {
        c.message
            .split_once("found tuple `")
            .map(|(_, found)| found)
    })?;
    let found = note
        .trim_end()
        .strip_suffix('`')?
        .strip_prefix("(&")?
        .strip_suffix(",)")?;
    let unnameable = [
        "{closure",
        "{async",
        "{coroutine",
        "impl ",
        "{type error}",
        "{unknown}",
        "{opaque",
    ];
    if unnameable.iter().any(|u| found.contains(u)) {
        return None;
    }
    Some(static_references(
        &found.replace("{integer}", "i32").replace("{float}", "f64"),
    ))
}

/// Every reference and elided lifetime in `ty` as `'static`.
fn static_references(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len() + 8);
    let mut chars = ty.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '&' {
            out.push('&');
            if chars.peek() == Some(&'\'') {
                // An existing lifetime: replaced.
                chars.next();
                while chars
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    chars.next();
                }
            }
            out.push_str("'static ");
            while chars.peek() == Some(&' ') {
                chars.next();
            }
        } else if c == '\'' {
            while chars
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            out.push_str("'static");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch(found: &str) -> RustcDiagnostic {
        RustcDiagnostic {
            message: "mismatched types".into(),
            code: None,
            level: "error".into(),
            spans: vec![],
            children: vec![RustcDiagnostic {
                message: format!("expected unit type `()`\n      found tuple `(&{found},)`"),
                code: None,
                level: "note".into(),
                spans: vec![],
                children: vec![],
                rendered: None,
            }],
            rendered: None,
        }
    }

    #[test]
    fn probed_types_are_made_nameable() {
        let cases = [
            (
                "std::collections::HashMap<std::string::String, u64>",
                Some("std::collections::HashMap<std::string::String, u64>"),
            ),
            (
                "({integer}, {float}, char, &str)",
                Some("(i32, f64, char, &'static str)"),
            ),
            ("{integer}", Some("i32")),
            ("&str", Some("&'static str")),
            (
                "std::slice::Iter<'_, u64>",
                Some("std::slice::Iter<'static, u64>"),
            ),
            ("{closure@src/lib.rs:3:9: 3:12}", None),
        ];
        for (found, expected) in cases {
            assert_eq!(
                probed_type(&mismatch(found)).as_deref(),
                expected,
                "{found}"
            );
        }
    }
}
