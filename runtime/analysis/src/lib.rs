//! rust-analyzer over the cargo project cells are compiled as, for tab completion and hover
//! ("inspect" in Jupyter). The cell engine loads the project once (and again when its Cargo.toml
//! changes), replaces the text of its src/lib.rs as the user types, and asks for completions or
//! hover at a byte offset of that text. Everything is in memory: nothing is written to the
//! project, and its files are not watched.

#![deny(missing_docs)]

mod completion;
mod error;
mod hover;
mod project;
mod raw_html;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use ra_ap_hir::ChangeWithProcMacros;
use ra_ap_ide::{AnalysisHost, Cancellable, FileId, FilePosition, FileRange, TextRange, TextSize};

pub use completion::{Completion, Completions};
pub use error::AnalysisError;
pub use hover::Hover;

/// rust-analyzer over one cargo project: the crate cells are compiled as.
pub struct Analysis {
    host: AnalysisHost,
    /// The project's src/lib.rs.
    source_file: FileId,
    /// Its current text, which offsets index.
    source: String,
}

impl Analysis {
    /// Loads the cargo project at `project_dir` (its Cargo.toml and src/lib.rs) with its
    /// dependencies and the sysroot. Slow (seconds): the caller runs it off the critical path.
    pub fn load(project_dir: &Path) -> Result<Analysis, AnalysisError> {
        let loaded = project::load(project_dir)?;
        let mut analysis = Analysis {
            host: loaded.host,
            source_file: loaded.source_file,
            source: loaded.source,
        };
        analysis.warm_up();
        Ok(analysis)
    }

    /// rust-analyzer computes lazily, so the first completion would pay for resolving the
    /// standard library (seconds); completing a method and a name on a scratch source pays for it
    /// here instead, off the critical path. The caches outlive the scratch source: they only
    /// depend on the other crates.
    fn warm_up(&mut self) {
        let source = std::mem::take(&mut self.source);
        let scratch = "fn warm_up() {\n    let v: Vec<String> = Vec::new();\n    v.\n    v\n}\n";
        self.set_source(scratch.to_string());
        let method = scratch.len() - "\n    v\n}\n".len();
        let name = scratch.len() - "\n}\n".len();
        for offset in [method, name] {
            // A failure here only means the first real request is slow, or fails in turn.
            if let Err(error) = self.completions(offset) {
                tracing::debug!(%error, "warming up rust-analyzer");
            }
        }
        self.set_source(source);
    }

    /// Replaces the text of the project's src/lib.rs (in memory only).
    pub fn set_source(&mut self, text: String) {
        let mut change = ChangeWithProcMacros::default();
        change.change_file(self.source_file, Some(text.clone()));
        self.host.apply_change(change);
        self.source = text;
    }

    /// Completions at byte `offset` of the source: the byte range they replace and each item's
    /// name (what to insert: the bare name, no argument placeholders or snippet syntax), its kind
    /// as a lowercase word, and its detail (the type or signature rust-analyzer gives, if any),
    /// most relevant first and without duplicate names.
    pub fn completions(&self, offset: usize) -> Result<Completions, AnalysisError> {
        let position = FilePosition {
            file_id: self.source_file,
            offset: self.text_size(offset)?,
        };
        let config = completion::config();
        let items = self.ask(|analysis| analysis.completions(&config, position, None))?;
        Ok(completion::collect(
            &self.source,
            offset,
            items.unwrap_or_default(),
        ))
    }

    /// What rust-analyzer shows on hover at `offset`: plain text (signature then docs), and
    /// HTML (signature in `<pre>`, docs as paragraphs). `None` when there is nothing there
    /// (an unknown name, whitespace).
    pub fn hover(&self, offset: usize) -> Result<Option<Hover>, AnalysisError> {
        let range = FileRange {
            file_id: self.source_file,
            range: TextRange::empty(self.text_size(offset)?),
        };
        let config = hover::config();
        let result = self.ask(|analysis| analysis.hover(&config, range))?;
        Ok(result.and_then(|result| hover::render(result.info.markup.as_str())))
    }

    /// `offset` as rust-analyzer's offset, if it is a character boundary of the source.
    fn text_size(&self, offset: usize) -> Result<TextSize, AnalysisError> {
        let error = || AnalysisError::Offset {
            offset,
            len: self.source.len(),
        };
        if !self.source.is_char_boundary(offset) {
            return Err(error());
        }
        u32::try_from(offset)
            .map(TextSize::from)
            .map_err(|_| error())
    }

    /// Runs one request against the current state of the database.
    fn ask<T>(
        &self,
        request: impl FnOnce(&ra_ap_ide::Analysis) -> Cancellable<T>,
    ) -> Result<T, AnalysisError> {
        let analysis = self.host.analysis();
        // A rust-analyzer bug on some input must cost one completion, not the engine's thread.
        match panic::catch_unwind(AssertUnwindSafe(|| request(&analysis))) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_cancelled)) => Err(AnalysisError::Cancelled),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|message| message.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                Err(AnalysisError::Internal { message })
            }
        }
    }
}
