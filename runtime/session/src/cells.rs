//! Scripts as cells: Rust source whose cells are separated by `// %%` lines (the percent format
//! jupytext uses for Rust, so notebooks and scripts convert both ways).

/// One cell of a script, with the line it starts on (1-based, after its marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The cell's source, without its marker line.
    pub code: String,
    /// The script line the cell's code starts on, 1-based.
    pub first_line: usize,
}

fn is_marker(line: &str) -> bool {
    let t = line.trim_start();
    t == "// %%" || t.starts_with("// %% ") || t.starts_with("// %%[")
}

/// Whether a marker line starts a markdown cell (`// %% [markdown]`, jupytext's percent format).
fn is_markdown_marker(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches("// %%").trim_start();
    t.starts_with("[markdown]") || t.starts_with("[md]")
}

/// Splits a script into cells; a script without markers is one cell. Empty cells and markdown
/// cells (their text is comments) are dropped.
pub fn split_cells(script: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut code = String::new();
    let mut first_line = 1;
    let mut markdown = false;
    for (index, line) in script.lines().enumerate() {
        if is_marker(line) {
            if !markdown && !code.trim().is_empty() {
                cells.push(Cell {
                    code: std::mem::take(&mut code),
                    first_line,
                });
            }
            code.clear();
            first_line = index + 2;
            markdown = is_markdown_marker(line);
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }
    if !markdown && !code.trim().is_empty() {
        cells.push(Cell { code, first_line });
    }
    cells
}

/// The `:` command a cell consists of, if it is one line (besides comments and blank lines)
/// that starts with ':' — a cell such as `:storage` in a script or a notebook.
pub fn command_line(code: &str) -> Option<&str> {
    let mut lines = code
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"));
    let line = lines.next()?;
    (line.starts_with(':') && lines.next().is_none()).then_some(line)
}

/// The code a cell asks to see as compiled when it starts with `:expand` (the rest of that
/// line and the lines after it).
pub fn expand_request(code: &str) -> Option<&str> {
    let trimmed = code.trim_start();
    let rest = trimmed.strip_prefix(":expand")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

/// Writes cells in the same format, for `:save`.
pub fn join_cells<S: AsRef<str>>(cells: &[S]) -> String {
    cells
        .iter()
        .map(|c| format!("// %%\n{}\n", c.as_ref().trim_end()))
        .collect()
}

/// Whether `code` has an unclosed bracket, string or block comment, so the REPL should read
/// another line. A cell with a bracket that can never match is not incomplete: it runs, and the
/// compiler reports it. See [`completeness`](crate::completeness) for the three-way answer.
pub fn is_incomplete(code: &str) -> bool {
    matches!(
        crate::cell_syntax::completeness(code),
        crate::cell_syntax::Completeness::Incomplete
    )
}

/// A cell whose `:dep` lines (they come first) name the `tessera` crate — to turn on its
/// features — as those lines, and the rest of the cell with them blanked (its lines keep their
/// numbers).
pub fn tessera_dependency(code: &str) -> Option<(String, String)> {
    let mut dependencies = String::new();
    let mut rest = String::new();
    let mut names_tessera = false;
    let mut in_header = true;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim();
        in_header &= trimmed.is_empty() || trimmed.starts_with(":dep ");
        match trimmed.strip_prefix(":dep ") {
            Some(dependency) if in_header => {
                let name = dependency.split('=').next().unwrap_or("").trim();
                names_tessera |= name == "tessera";
                dependencies.push_str(line);
                rest.push('\n');
            }
            _ => rest.push_str(line),
        }
    }
    names_tessera.then_some((dependencies, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_turns_on_tessera_features_is_split_after_its_dependencies() {
        let cell = ":dep tessera = { features = [\"polars\"] }\n:dep rand = \"0.8\"\nlet x = 1;\n";
        let (dependencies, rest) = tessera_dependency(cell).unwrap();
        assert_eq!(
            dependencies,
            ":dep tessera = { features = [\"polars\"] }\n:dep rand = \"0.8\"\n"
        );
        assert_eq!(rest, "\n\nlet x = 1;\n");
        assert_eq!(tessera_dependency(":dep rand = \"0.8\"\nlet x = 1;"), None);
        assert_eq!(tessera_dependency("let s = \":dep tessera\";"), None);
    }

    #[test]
    fn expand_takes_the_rest_of_the_cell() {
        assert_eq!(
            expand_request(":expand r.map(move |x| x + k)"),
            Some("r.map(move |x| x + k)")
        );
        assert_eq!(
            expand_request(":expand\nlet a = 1;\na"),
            Some("let a = 1;\na")
        );
        assert_eq!(expand_request(":expanded"), None);
        assert_eq!(expand_request("let a = 1;"), None);
    }

    #[test]
    fn a_command_cell_is_one_colon_line_besides_comments() {
        assert_eq!(
            command_line("// what is cached\n:storage\n"),
            Some(":storage")
        );
        assert_eq!(command_line(":storage\n1 + 1"), None);
        assert_eq!(command_line("let x = 1;"), None);
    }

    #[test]
    fn splits_on_percent_markers_and_keeps_line_numbers() {
        let cells = split_cells("let a = 1;\n// %%\nlet b = 2;\nb\n// %% [markdown]\n\n");
        assert_eq!(cells.len(), 2);
        assert_eq!(
            cells[0],
            Cell {
                code: "let a = 1;\n".into(),
                first_line: 1
            }
        );
        assert_eq!(
            cells[1],
            Cell {
                code: "let b = 2;\nb\n".into(),
                first_line: 3
            }
        );
        let with_markdown =
            split_cells("// %% [markdown]\n// # Title\n// %%\nlet a = 1;\n// %% [md]\n// more\n");
        assert_eq!(with_markdown.len(), 1);
        assert_eq!(with_markdown[0].code, "let a = 1;\n");
        assert_eq!(with_markdown[0].first_line, 4);
    }

    #[test]
    fn open_brackets_and_strings_continue_the_input() {
        assert!(is_incomplete("let f = |x| {"));
        assert!(is_incomplete("let s = \"abc"));
        assert!(!is_incomplete("let v = vec![1, 2]; // {"));
        assert!(!is_incomplete("println!(\"{}\", \"}\")"));
        assert!(is_incomplete("/* unclosed"));
        assert!(!is_incomplete("let c = '{';"));
        // Invalid is not incomplete: reading more lines cannot fix it.
        assert!(!is_incomplete("foo(]"));
    }

    #[test]
    fn save_then_split_round_trips() {
        let saved = join_cells(&["let a = 1;", "a + 1"]);
        let cells: Vec<String> = split_cells(&saved)
            .into_iter()
            .map(|c| c.code.trim().to_string())
            .collect();
        assert_eq!(cells, vec!["let a = 1;", "a + 1"]);
    }
}
