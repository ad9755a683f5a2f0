//! Jupyter notebooks as scripts: `tessera run X.ipynb` replays the code cells of an nbformat 4
//! notebook, as `tessera run X.rs` replays the `// %%` cells of its paired script.

use serde_json::Value;

/// Why a file is not a notebook this can replay.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    #[error("it is not JSON ({0}); a notebook is a .ipynb file as Jupyter saves it")]
    Json(#[from] serde_json::Error),
    #[error("it is not an nbformat 4 notebook: {0}; save it from Jupyter 4 or later")]
    NotANotebook(&'static str),
}

/// The source of each code cell, in order (empty cells left out).
pub fn code_cells(text: &str) -> Result<Vec<String>, NotebookError> {
    let notebook: Value = serde_json::from_str(text)?;
    if notebook.get("nbformat").and_then(Value::as_u64) != Some(4) {
        return Err(NotebookError::NotANotebook("its nbformat is not 4"));
    }
    let cells = notebook
        .get("cells")
        .and_then(Value::as_array)
        .ok_or(NotebookError::NotANotebook("it has no list of cells"))?;
    let mut code = Vec::new();
    for cell in cells {
        if cell.get("cell_type").and_then(Value::as_str) != Some("code") {
            continue;
        }
        // nbformat keeps a cell's source as one string or as a list of lines.
        let source = match cell.get("source") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
            _ => return Err(NotebookError::NotANotebook("a code cell has no source")),
        };
        if !source.trim().is_empty() {
            code.push(source);
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_cells_come_in_order_in_either_source_form() {
        let notebook = r##"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
             "source": ["let x = 1;\n", "x + 1"]},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
             "source": ""},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
             "source": ":storage"}
        ]}"##;
        assert_eq!(
            code_cells(notebook).unwrap(),
            vec!["let x = 1;\nx + 1".to_string(), ":storage".to_string()]
        );
    }

    #[test]
    fn other_files_are_refused_saying_what_they_are() {
        assert!(
            code_cells("let x = 1;")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        let v3 = r#"{"nbformat": 3, "worksheets": []}"#;
        assert!(
            code_cells(v3)
                .unwrap_err()
                .to_string()
                .contains("nbformat is not 4")
        );
    }
}
