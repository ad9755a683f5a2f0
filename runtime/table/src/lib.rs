//! One table: a title, a header, rows of text and a note under it, rendered as a comfy-table
//! grid for terminals and as an HTML table for Jupyter. The session's reports (`:storage`,
//! `:jobs`, ...) and the results cells show as tables (collected records, `stats()`, lineage)
//! both render through it, so a table looks the same wherever it comes from.

#![deny(missing_docs)]

use comfy_table::CellAlignment;
use comfy_table::presets::UTF8_FULL_CONDENSED;

/// A table of text cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Shown above the table, when there is one.
    pub title: Option<String>,
    /// Column names.
    pub header: Vec<String>,
    /// One `Vec` per row, a cell per column.
    pub rows: Vec<Vec<String>>,
    /// Shown under the table, when there is one (e.g. how many rows were left out).
    pub note: Option<String>,
}

impl Table {
    /// A table with `header` and `rows`, without a title.
    pub fn new(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: rows.into_iter().collect(),
            ..Table::default()
        }
    }

    /// The same table under `title`.
    pub fn titled(mut self, title: &str) -> Table {
        self.title = Some(title.to_string());
        self
    }

    /// The same table with `note` under it.
    pub fn noted(mut self, note: &str) -> Table {
        self.note = Some(note.to_string());
        self
    }

    /// The table as a terminal shows it: a grid of box-drawing characters, numbers
    /// right-aligned.
    pub fn text(&self) -> String {
        let mut grid = comfy_table::Table::new();
        grid.load_preset(UTF8_FULL_CONDENSED)
            .set_header(self.header.clone());
        for row in &self.rows {
            grid.add_row(row.clone());
        }
        for (index, column) in grid.column_iter_mut().enumerate() {
            if self.is_numeric(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut text = String::new();
        if let Some(title) = &self.title {
            text += title;
            text.push('\n');
        }
        text += &grid.to_string();
        if let Some(note) = &self.note {
            text.push('\n');
            text += note;
        }
        text
    }

    /// The table as HTML, as Jupyter shows a `text/html` result.
    pub fn html(&self) -> String {
        let mut html = String::new();
        if let Some(title) = &self.title {
            html += &format!("<h4>{}</h4>\n", escape_html(title));
        }
        let align = |index: usize| {
            if self.is_numeric(index) {
                " style=\"text-align: right\""
            } else {
                " style=\"text-align: left\""
            }
        };
        html += "<table>\n<thead><tr>";
        for (index, name) in self.header.iter().enumerate() {
            html += &format!("<th{}>{}</th>", align(index), escape_html(name));
        }
        html += "</tr></thead>\n<tbody>\n";
        for row in &self.rows {
            html += "<tr>";
            for (index, cell) in row.iter().enumerate() {
                html += &format!("<td{}>{}</td>", align(index), escape_html(cell));
            }
            html += "</tr>\n";
        }
        html += "</tbody>\n</table>\n";
        if let Some(note) = &self.note {
            html += &format!("<p>{}</p>\n", escape_html(note));
        }
        html
    }

    /// Whether column `index` holds numbers only (and at least one): those read best aligned
    /// on the right.
    fn is_numeric(&self, index: usize) -> bool {
        let mut cells = self.rows.iter().filter_map(|row| row.get(index)).peekable();
        cells.peek().is_some()
            && cells.all(|cell| {
                let cell = cell.trim();
                cell.parse::<f64>().is_ok() || matches!(cell, "NaN" | "inf" | "-inf")
            })
    }
}

/// `text` with HTML's special characters escaped, for text put inside HTML.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_renders_as_a_grid_and_as_escaped_html() {
        let table =
            Table::new(&["rdd", "type"], vec![vec!["1".into(), "Vec<u8>".into()]]).titled("Cached");
        let text = table.text();
        assert!(text.starts_with("Cached\n"), "{text}");
        assert!(text.contains("Vec<u8>") && text.contains('│'), "{text}");
        let html = table.html();
        assert!(html.contains("<h4>Cached</h4>"), "{html}");
        assert!(html.contains(">rdd</th><th"), "{html}");
        assert!(html.contains(">Vec&lt;u8&gt;</td>"), "{html}");
    }

    #[test]
    fn numbers_are_aligned_right_and_the_note_follows_the_table() {
        let table = Table::new(
            &["word", "count"],
            vec![
                vec!["a".into(), "7".into()],
                vec!["bb".into(), "1234".into()],
            ],
        )
        .noted("… 3 more rows");
        let text = table.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            vec![
                "┌──────┬───────┐",
                "│ word ┆ count │",
                "╞══════╪═══════╡",
                "│ a    ┆     7 │",
                "│ bb   ┆  1234 │",
                "└──────┴───────┘",
                "… 3 more rows",
            ],
            "{text}"
        );
        let html = table.html();
        assert!(
            html.contains(
                "<td style=\"text-align: left\">bb</td><td style=\"text-align: right\">1234</td>"
            ),
            "{html}"
        );
        assert!(html.ends_with("<p>… 3 more rows</p>\n"), "{html}");
    }

    #[test]
    fn a_table_without_rows_has_its_header() {
        let text = Table::new(&["value"], Vec::new()).text();
        assert!(text.contains("value"), "{text}");
    }
}
