//! One table: a title, a header and rows of text, rendered for a terminal or for HTML.

use comfy_table::presets::UTF8_FULL_CONDENSED;

/// A table of text cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Shown above the table, when there is one.
    pub title: Option<String>,
    /// Column names.
    pub header: Vec<String>,
    /// One `Vec` per row, a cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `header` and `rows`, without a title.
    pub fn new(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
        Table {
            title: None,
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: rows.into_iter().collect(),
        }
    }

    /// The same table under `title`.
    pub fn titled(mut self, title: &str) -> Table {
        self.title = Some(title.to_string());
        self
    }

    /// The table as a terminal shows it: a grid of box-drawing characters.
    pub fn text(&self) -> String {
        let mut grid = comfy_table::Table::new();
        grid.load_preset(UTF8_FULL_CONDENSED)
            .set_header(self.header.clone());
        for row in &self.rows {
            grid.add_row(row.clone());
        }
        match &self.title {
            Some(title) => format!("{title}\n{grid}"),
            None => grid.to_string(),
        }
    }

    /// The table as HTML, as Jupyter shows a `text/html` result.
    pub fn html(&self) -> String {
        let mut html = String::new();
        if let Some(title) = &self.title {
            html += &format!("<h4>{}</h4>\n", escape_html(title));
        }
        html += "<table>\n<thead><tr>";
        for name in &self.header {
            html += &format!("<th>{}</th>", escape_html(name));
        }
        html += "</tr></thead>\n<tbody>\n";
        for row in &self.rows {
            html += "<tr>";
            for cell in row {
                html += &format!("<td>{}</td>", escape_html(cell));
            }
            html += "</tr>\n";
        }
        html + "</tbody>\n</table>\n"
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
        assert!(html.contains("<th>rdd</th><th>type</th>"), "{html}");
        assert!(html.contains("<td>Vec&lt;u8&gt;</td>"), "{html}");
    }
}
