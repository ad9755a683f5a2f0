//! Rich display: values that show as more than their `Debug` text.
//!
//! evcxr shows a cell's final value by calling `(value).evcxr_display()` if that compiles, and
//! its `Debug` text otherwise. [`RichDisplay`] provides `evcxr_display`, and the session's
//! prelude brings the trait into scope, so method lookup finds it for the results of actions
//! without changing their types: a `Vec<T>` or slice of records (`collect`, `take`), a map
//! (`count_by_key`, `count_by_value`), [`Stats`](crate::Stats), an RDD handle (its lineage) and a
//! [`Plot`](crate::plot::Plot). Each gives its forms by MIME type: Jupyter shows the richest
//! (`text/html`, `image/svg+xml`), a terminal the `text/plain`. Records whose type is not
//! `Serialize` fail the trait's bound, so evcxr falls back to `Debug` as before.
//!
//! [`Context::show`](crate::Context::show) (and `show(&x)` in a session) sends the same forms as a
//! display before the cell ends, for values that are not a cell's last expression.

use crate::record_cells::{Cell, Row, cell, flatten};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use tessera_table::Table;

/// At most this many records are shown, as Spark's `show()`; a note says how many more there are.
pub const MAX_ROWS: usize = 20;

/// A cell's text is cut to this many characters (ending in `…`), so that a row stays readable.
pub const MAX_CELL_CHARS: usize = 50;

/// A value that can be shown in several forms: `text/plain` for terminals, and richer ones
/// (`text/html`, `image/svg+xml`) for notebooks.
pub trait RichDisplay {
    /// The value's forms, as (MIME type, content); `text/plain` among them.
    fn mime_bundle(&self) -> Vec<(String, String)>;

    /// Prints the value's forms in the framing evcxr reads a cell's result from; evcxr calls it
    /// on a cell's last expression.
    fn evcxr_display(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for (mime, content) in self.mime_bundle() {
            let _ = writeln!(
                out,
                "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT"
            );
        }
        let _ = out.flush();
    }
}

/// Records: one row each (the first [`MAX_ROWS`]); a tuple gives columns `_1`, `_2`, ..., a struct
/// its field names, anything else one column `value`.
impl<T: Serialize> RichDisplay for [T] {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        match records_table(self.iter().take(MAX_ROWS).collect(), self.len()) {
            Some(table) => table_bundle(&table),
            None => nothing_bundle("no records"),
        }
    }
}

/// As a slice: `show(&records)` takes a `&Vec` without a deref (a generic argument is not
/// coerced).
impl<T: Serialize> RichDisplay for Vec<T> {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        self.as_slice().mime_bundle()
    }
}

/// As a slice.
impl<T: Serialize, const N: usize> RichDisplay for [T; N] {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        self.as_slice().mime_bundle()
    }
}

/// A map: one row per entry, sorted by key, in columns `key` and `value`.
impl<K: Serialize, V: Serialize, S> RichDisplay for HashMap<K, V, S> {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        map_bundle(self.iter())
    }
}

/// A map: one row per entry, in key order, in columns `key` and `value`.
impl<K: Serialize, V: Serialize> RichDisplay for BTreeMap<K, V> {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        map_bundle(self.iter())
    }
}

/// Values with nothing richer to show than their `Debug` text, exactly as evcxr would print
/// them. evcxr compiles a cell's last expression as `(expr).evcxr_display()` first and, when
/// that does not compile, compiles the whole cell again with `Debug`: implementing it for the
/// values cells end with most (numbers, counts, strings, `()`) saves that second compile.
macro_rules! debug_text {
    ($($t:ty),* $(,)?) => {$(
        impl RichDisplay for $t {
            fn mime_bundle(&self) -> Vec<(String, String)> {
                vec![("text/plain".to_string(), format!("{self:?}"))]
            }
        }
    )*};
}
debug_text! {
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char, (),
    str, String
}

/// As its `Debug` text (see `debug_text!`).
impl<T: std::fmt::Debug> RichDisplay for Option<T> {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        vec![("text/plain".to_string(), format!("{self:?}"))]
    }
}

/// The forms of `table`: its text grid and its HTML.
pub(crate) fn table_bundle(table: &Table) -> Vec<(String, String)> {
    vec![
        ("text/plain".to_string(), table.text()),
        ("text/html".to_string(), table.html()),
    ]
}

/// The forms of an empty result: `(what)`.
fn nothing_bundle(what: &str) -> Vec<(String, String)> {
    vec![
        ("text/plain".to_string(), format!("({what})")),
        ("text/html".to_string(), format!("<p>({what})</p>")),
    ]
}

/// The table of the first records of a collection of `total`; `None` when it is empty. Records
/// of one shape (the same columns) spread over their columns; records of different shapes (an
/// enum's variants) show one `value` each.
pub(crate) fn records_table<T: Serialize>(shown: Vec<&T>, total: usize) -> Option<Table> {
    let rows: Vec<Row> = shown.iter().map(|record| flatten(*record)).collect();
    let first = rows.first()?;
    let header = if rows.iter().all(|row| row.columns == first.columns) {
        first.columns.clone()
    } else {
        None
    };
    let cells: Vec<Vec<Cell>> = match header {
        Some(_) => rows.into_iter().map(|row| row.cells).collect(),
        None => shown.iter().map(|record| vec![cell(*record)]).collect(),
    };
    let header = header.unwrap_or_else(|| vec!["value".to_string()]);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Some(with_more_rows(
        Table::new(&header, cells.iter().map(|row| texts(row))),
        total,
    ))
}

/// The forms of a map's entries, sorted by key (a `HashMap` has no order of its own).
fn map_bundle<'a, K: Serialize + 'a, V: Serialize + 'a>(
    entries: impl Iterator<Item = (&'a K, &'a V)>,
) -> Vec<(String, String)> {
    let mut keyed: Vec<(Cell, &V)> = entries.map(|(k, v)| (cell(k), v)).collect();
    if keyed.is_empty() {
        return nothing_bundle("no entries");
    }
    let total = keyed.len();
    if total > MAX_ROWS {
        keyed.select_nth_unstable_by(MAX_ROWS - 1, |a, b| a.0.order(&b.0));
        keyed.truncate(MAX_ROWS);
    }
    keyed.sort_by(|a, b| a.0.order(&b.0));
    let rows = keyed
        .into_iter()
        .map(|(key, value)| texts(&[key, cell(value)]));
    table_bundle(&with_more_rows(Table::new(&["key", "value"], rows), total))
}

/// `table` (of the first rows of `total`) with a note of how many rows it leaves out.
fn with_more_rows(table: Table, total: usize) -> Table {
    let more = total.saturating_sub(table.rows.len());
    match more {
        0 => table,
        1 => table.noted("… 1 more row"),
        n => table.noted(&format!("… {n} more rows")),
    }
}

/// The cells' text, each cut to [`MAX_CELL_CHARS`].
fn texts(cells: &[Cell]) -> Vec<String> {
    cells.iter().map(|c| shorten(&c.text())).collect()
}

/// `text` cut to [`MAX_CELL_CHARS`] characters, the last of them `…` when it was cut.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_CELL_CHARS {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(bundle: &[(String, String)]) -> &str {
        &bundle.iter().find(|(m, _)| m == "text/plain").unwrap().1
    }

    fn html_of(bundle: &[(String, String)]) -> &str {
        &bundle.iter().find(|(m, _)| m == "text/html").unwrap().1
    }

    #[test]
    fn numbers_strings_and_options_show_their_debug_text_as_evcxr_would() {
        assert_eq!(
            (1 + 1).mime_bundle(),
            [("text/plain".to_string(), "2".to_string())]
        );
        assert_eq!(text_of(&"a\"b".mime_bundle()), "\"a\\\"b\"");
        assert_eq!(text_of(&String::from("x").mime_bundle()), "\"x\"");
        assert_eq!(text_of(&Some(2.5f64).mime_bundle()), "Some(2.5)");
        assert_eq!(text_of(&().mime_bundle()), "()");
    }

    #[test]
    fn collected_pairs_show_as_a_table_with_positional_columns() {
        let records = vec![("apple".to_string(), 3u64), ("cherry".to_string(), 12)];
        let bundle = records.mime_bundle();
        let text = text_of(&bundle);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "┌────────┬────┐",
                "│ _1     ┆ _2 │",
                "╞════════╪════╡",
                "│ apple  ┆  3 │",
                "│ cherry ┆ 12 │",
                "└────────┴────┘",
            ],
            "{text}"
        );
        let html = html_of(&bundle);
        assert!(html.contains("<table>"), "{html}");
        assert!(
            html.contains(">_1</th>") && html.contains(">cherry</td>"),
            "{html}"
        );
    }

    #[test]
    fn vectors_and_arrays_show_as_their_slices() {
        fn bundle_of<T: RichDisplay + ?Sized>(value: &T) -> Vec<(String, String)> {
            value.mime_bundle()
        }
        let slice: &[u8] = &[1, 2];
        assert_eq!(bundle_of(&vec![1u8, 2]), bundle_of(slice));
        assert_eq!(bundle_of(&[1u8, 2]), bundle_of(slice));
    }

    #[test]
    fn only_twenty_rows_show_and_a_note_counts_the_rest() {
        let records: Vec<u32> = (0..1000).collect();
        let bundle = records.mime_bundle();
        let text = text_of(&bundle);
        assert!(text.contains("│    19 │"), "{text}");
        assert!(!text.contains("│    20 │"), "{text}");
        assert!(text.ends_with("\n… 980 more rows"), "{text}");
        assert!(html_of(&bundle).contains("<p>… 980 more rows</p>"));
        assert_eq!(
            html_of(&bundle).matches("<tr>").count(),
            21,
            "header and 20 rows"
        );
    }

    #[test]
    fn a_map_shows_its_entries_sorted_by_key() {
        let counts: HashMap<String, u64> = (0..30)
            .map(|i| (format!("w{i:02}"), i as u64 * 10))
            .collect();
        let bundle = counts.mime_bundle();
        let text = text_of(&bundle);
        let rows: Vec<&str> = text.lines().filter(|l| l.contains(" w")).collect();
        assert_eq!(rows.len(), MAX_ROWS, "{text}");
        assert!(
            rows[0].contains("w00") && rows[0].contains(" 0 │"),
            "{text}"
        );
        assert!(
            rows[19].contains("w19") && rows[19].contains(" 190 │"),
            "{text}"
        );
        assert!(
            text.contains("│ key ") && text.ends_with("… 10 more rows"),
            "{text}"
        );
        let numbers: HashMap<u32, u8> = [(10, 1), (9, 2), (100, 3)].into_iter().collect();
        let text = text_of(&numbers.mime_bundle()).to_string();
        let keys: Vec<&str> = text
            .lines()
            .skip(3)
            .filter_map(|l| l.split('│').nth(1))
            .map(|c| c.split('┆').next().unwrap().trim())
            .collect();
        assert_eq!(keys, ["9", "10", "100"], "numbers sort by value: {text}");
    }

    #[test]
    fn records_of_different_shapes_show_one_value_each() {
        #[derive(Serialize)]
        enum Event {
            Click { x: u32 },
            Key(char),
        }
        let bundle = [Event::Click { x: 3 }, Event::Key('q')].mime_bundle();
        let text = text_of(&bundle);
        assert!(text.contains("│ value "), "{text}");
        assert!(text.contains("Click { x: 3 }"), "{text}");
        assert!(text.contains("Key(\"q\")"), "{text}");
    }

    #[test]
    fn long_cells_are_cut_and_empty_results_say_so() {
        let long = "x".repeat(200);
        let text = text_of(&[long].mime_bundle()).to_string();
        assert!(
            text.contains(&format!("{}…", "x".repeat(MAX_CELL_CHARS - 1))),
            "{text}"
        );
        assert!(!text.contains(&"x".repeat(MAX_CELL_CHARS)), "{text}");
        assert_eq!(text_of(&Vec::<u8>::new().mime_bundle()), "(no records)");
        assert_eq!(
            text_of(&HashMap::<u8, u8>::new().mime_bundle()),
            "(no entries)"
        );
    }
}
