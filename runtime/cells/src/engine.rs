//! The engine: what the session knows between cells (items, variables and their types, the
//! dependencies), and the steps of one cell — split it, generate its crate, compile it (and
//! probe the types of the variables it binds, on the other core), run it in the child, and
//! keep what it defined.

use crate::cell_cache::{CellCache, Compiled};
use crate::cell_parts::{self, CellParts, ItemKey};
use crate::child::{Child, ChildCommand};
use crate::crate_source::{self, CratePlan, LineRole, Purpose};
use crate::deps::{BuiltDependencies, DependencyProject};
use crate::diagnostics::{Diagnostic, RustcDiagnostic, probed_type};
use crate::error::CellsError;
use crate::optimisation::Optimisation;
use crate::output::OutputSink;
use crate::rustc::{self, Optimise, Output};
use crate::toolchain::Toolchain;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How to start an engine.
pub struct EngineConfig {
    /// The compiler and cargo ([`Toolchain::find`]).
    pub toolchain: Toolchain,
    /// Per user: dependency builds and compiled cells, kept between sessions.
    pub cache_dir: PathBuf,
    /// Per session: the sources of its cells.
    pub work_dir: PathBuf,
    /// Cargo.toml dependency lines every cell can use (`serde = "1"`).
    pub dependencies: Vec<String>,
    /// A trait (`fn mime_bundle(&self) -> Vec<(String, String)>`) results are shown with when
    /// they implement it; otherwise `Debug`, otherwise nothing.
    pub rich_display_trait: Option<String>,
    /// Names that mark code which may run somewhere else than the child (on executors), and so
    /// is compiled optimised: identifiers (`sc`, `Rdd`), crate names (`tessera`), and names in
    /// variables' types. A cell that mentions none of them, takes no variable whose type does,
    /// and uses none of the session's items (whose bodies could) is compiled without
    /// optimisation, a fifth faster. Empty: every cell is optimised.
    pub remote_markers: Vec<String>,
    /// How cells whose code may run on executors are optimised. The dependencies are built at
    /// `opt-level=2` whatever this is; the cell adds its closures and the instances of generic
    /// code for its types (the loops over records that call them).
    pub optimisation: Optimisation,
    /// The binary the child runs.
    pub child: ChildCommand,
    /// Where cells' output goes.
    pub sink: OutputSink,
    /// Where the progress of a dependency build goes (cargo's `Compiling ...` lines).
    pub progress: Arc<dyn Fn(&str) + Send + Sync>,
}

/// How a cell ran.
#[derive(Debug, Default)]
pub struct CellOutcome {
    /// Its result as (MIME type, content); empty when there is nothing to show.
    pub bundle: Vec<(String, String)>,
    /// The message of a panic, if it panicked (its variables from earlier cells are kept,
    /// except those it had moved).
    pub panic: Option<String>,
    /// The error a `?` in the cell returned.
    pub error: Option<String>,
    /// Things the person should know: variables that could not be kept, and why.
    pub notes: Vec<String>,
}

/// An item of the session, as compiled into every cell.
#[derive(Clone, Debug)]
struct KeptItem {
    key: ItemKey,
    text: String,
    is_use: bool,
}

/// Compiles and runs cells, keeping their variables in a child process.
pub struct Engine {
    config: EngineConfig,
    project: DependencyProject,
    built: BuiltDependencies,
    cache: CellCache,
    child: Child,
    crate_attributes: Vec<String>,
    items: Vec<KeptItem>,
    /// Variables and the types cells take them as.
    variables: BTreeMap<String, String>,
    cells: usize,
}

impl Engine {
    /// Makes sure the dependencies are built (cargo runs only when they are not, or a path
    /// dependency changed) and starts the child.
    pub fn start(config: EngineConfig) -> Result<Engine, CellsError> {
        let toolchain = &config.toolchain;
        for dir in [&config.cache_dir, &config.work_dir] {
            std::fs::create_dir_all(dir).map_err(CellsError::io("create", dir))?;
        }
        let project = DependencyProject::new(&config.cache_dir, &config.dependencies, toolchain);
        let child = Child::spawn(&config.child, &toolchain.std_lib_dir, config.sink.clone())?;
        let built = project.ensure_built(toolchain, &*config.progress)?;
        let cache = CellCache::new(
            &config.cache_dir.join("cells"),
            &toolchain.version,
            &built.fingerprint(),
        )?;
        Ok(Engine {
            config,
            project,
            built,
            cache,
            child,
            crate_attributes: Vec::new(),
            items: Vec::new(),
            variables: BTreeMap::new(),
            cells: 0,
        })
    }

    /// Clearing what other sessions left in the cache: dependency projects no session has
    /// used for long, then the least recently used cells past the cache's bound. A look at
    /// every file there (26,000 on a busy machine: 80 ms of a core), for the caller to run
    /// where it takes no core from the session's jobs.
    pub fn housekeeping(&self) -> impl FnOnce() + Send + 'static {
        let (cache, cache_dir, in_use) = (
            self.cache.clone(),
            self.config.cache_dir.clone(),
            self.project.dir().to_path_buf(),
        );
        move || {
            // The quicker look first: a short `tessera run` may end before the other.
            crate::deps::remove_stale_projects(&cache_dir, &in_use);
            cache.trim();
        }
    }

    /// The session's variables and their types.
    pub fn variables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.variables.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// The child process, to kill a cell that does not stop (then [`Engine::restart`]).
    pub fn process(&self) -> Arc<Mutex<std::process::Child>> {
        self.child.process()
    }

    /// The cargo project of the dependencies (for rust-analyzer).
    pub fn dependency_project(&self) -> &Path {
        self.project.dir()
    }

    /// Starts a new child; the variables are gone, the items kept.
    pub fn restart(&mut self) -> Result<(), CellsError> {
        self.child.restart(
            &self.config.child,
            &self.config.toolchain.std_lib_dir,
            self.config.sink.clone(),
        )?;
        self.variables.clear();
        Ok(())
    }

    /// A source for rust-analyzer with the session's items and variables and `code` as a
    /// function body; the byte offset where `code` starts in it.
    pub fn analysis_source(&self, code: &str) -> (String, usize) {
        let mut text = String::new();
        for attribute in &self.crate_attributes {
            text.push_str(attribute);
            text.push('\n');
        }
        for item in self.ordered_items(&BTreeSet::new()) {
            text.push_str(item);
            text.push('\n');
        }
        text.push_str("fn __tessera_cell() {\n");
        for (name, ty) in &self.variables {
            text.push_str(&format!("let mut {name}: {ty} = todo!();\n"));
        }
        let offset = text.len();
        text.push_str(code);
        text.push_str("\n}\n");
        (text, offset)
    }

    /// Compiles and runs one cell.
    pub fn execute(&mut self, code: &str) -> Result<CellOutcome, CellsError> {
        let started = Instant::now();
        let parts = cell_parts::split(code);
        let mut notes = Vec::new();
        if !parts.dependencies.is_empty() {
            // A crate built anew (other features) has new types: variables of its old ones
            // cannot be read back.
            let rebuilt = self.add_dependencies(&parts.dependencies)?;
            let stale: Vec<(String, String)> = self
                .variables
                .iter()
                .filter(|(_, ty)| rebuilt.iter().any(|c| mentions(ty, c)))
                .map(|(name, ty)| (name.clone(), ty.clone()))
                .collect();
            self.child
                .forget(stale.iter().map(|(name, _)| name.clone()).collect())?;
            for (name, ty) in stale {
                self.variables.remove(&name);
                notes.push(format!(
                    "`{name}` (a `{ty}`) is gone: its crate was built anew; make it again"
                ));
            }
        }
        if parts.items.is_empty() && parts.statements.is_empty() && parts.tail.is_none() {
            self.crate_attributes
                .extend(parts.crate_attributes.iter().cloned());
            return Ok(CellOutcome {
                notes,
                ..CellOutcome::default()
            });
        }
        let replaced: BTreeSet<ItemKey> = parts.items.iter().map(|i| i.key.clone()).collect();
        let redefined_types = self.redefined_types(code, &parts);
        let stale: Vec<String> = self
            .variables
            .iter()
            .filter(|(_, ty)| redefined_types.iter().any(|t| mentions(ty, t)))
            .map(|(name, _)| name.clone())
            .collect();
        if !stale.is_empty() {
            self.child.forget(stale.clone())?;
            for name in &stale {
                let ty = self.variables.remove(name).unwrap_or_default();
                notes.push(format!(
                    "`{name}` (a `{ty}`) is gone: its type was defined again; make it again"
                ));
            }
        }
        let takes: Vec<(String, String)> = self
            .variables
            .iter()
            .filter(|(name, _)| parts.identifiers.contains(*name))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let bound: Vec<String> = parts.bindings.iter().map(|b| b.name.clone()).collect();
        let put_back: Vec<String> = takes
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !bound.contains(n))
            .collect();
        self.cells += 1;
        let compiled = self.compile(code, &parts, &replaced, &takes, &put_back)?;
        for name in bound.iter().filter(|n| compiled.moved.contains(n)) {
            notes.push(format!(
                "`{name}` is not kept for later cells: the cell moves it, or it borrows a value \
                 that ends with the cell (keep an owned value instead, e.g. `.to_owned()`)"
            ));
        }
        let new_variables: Vec<String> = bound
            .into_iter()
            .filter(|n| !compiled.moved.contains(n))
            .collect();
        let (library, types) = (compiled.library, compiled.types);
        tracing::debug!(elapsed = ?started.elapsed(), "cell compiled");
        let ran = match self.child.run(&library) {
            Ok(ran) => ran,
            Err(died @ CellsError::ChildDied { .. }) => {
                let _ = self.restart();
                return Err(died);
            }
            Err(other) => return Err(other),
        };
        tracing::debug!(elapsed = ?started.elapsed(), "cell ran");
        // What the cell defined stays, even if it panicked: it compiled.
        self.keep_items(code, &parts, &replaced);
        let stored: BTreeSet<&str> = ran.variables.iter().map(|(n, _)| n.as_str()).collect();
        let annotated: BTreeMap<&str, &str> = parts
            .bindings
            .iter()
            .filter_map(|b| Some((b.name.as_str(), b.annotated.as_deref()?)))
            .collect();
        let mut unnamed = Vec::new();
        for name in &new_variables {
            if !stored.contains(name.as_str()) {
                continue;
            }
            match annotated
                .get(name.as_str())
                .map(|t| t.to_string())
                .or_else(|| types.get(name).cloned())
            {
                Some(ty) => {
                    self.variables.insert(name.clone(), ty);
                }
                None => unnamed.push(name.clone()),
            }
        }
        self.variables
            .retain(|name, _| stored.contains(name.as_str()) && !unnamed.contains(name));
        for name in &unnamed {
            let ty = ran
                .variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.as_str())
                .unwrap_or("?");
            notes.push(format!(
                "`{name}` is not kept for later cells: its type (`{ty}`) has no name a cell can \
                 write (a closure or an `impl Trait`); box it (`Box<dyn Fn(..)>`) or define a `fn`"
            ));
        }
        self.child.forget(unnamed)?;
        Ok(CellOutcome {
            bundle: ran.bundle,
            panic: ran.panic,
            error: ran.error,
            notes,
        })
    }

    /// The library for a cell (from the cache, or compiled now with its type probe beside it),
    /// the variables it moves (left out of the store) and the types of those it binds.
    fn compile(
        &self,
        code: &str,
        parts: &CellParts,
        replaced: &BTreeSet<ItemKey>,
        takes: &[(String, String)],
        put_back: &[String],
    ) -> Result<Compiled, CellsError> {
        let earlier_items: Vec<&str> = self.ordered_items(replaced);
        let bound: Vec<String> = parts.bindings.iter().map(|b| b.name.clone()).collect();
        let plan = |moved: &[String], purpose: Purpose| {
            let new_variables: Vec<String> = bound
                .iter()
                .filter(|n| !moved.contains(n))
                .cloned()
                .collect();
            let put_back: Vec<String> = put_back
                .iter()
                .filter(|n| !moved.contains(n))
                .cloned()
                .collect();
            crate_source::generate(&CratePlan {
                code,
                parts,
                crate_attributes: &self.crate_attributes,
                earlier_items: &earlier_items,
                takes,
                new_variables: &new_variables,
                put_back: &put_back,
                rich_display_trait: self.config.rich_display_trait.as_deref(),
                purpose,
            })
        };
        let first = plan(&[], Purpose::Run);
        let optimise = optimise(
            self.config.optimisation,
            &self.config.remote_markers,
            parts,
            takes,
            &self.items,
        );
        // What the cache knows a library by: its source, and whether it is optimised.
        let keyed = |text: &str| format!("{optimise:?}\n{text}");
        let first_keyed = keyed(&first.text);
        if let Some(compiled) = self.cache.find(&first_keyed) {
            return Ok(compiled);
        }
        let to_probe: Vec<String> = parts
            .bindings
            .iter()
            .filter(|b| b.annotated.is_none())
            .map(|b| b.name.clone())
            .collect();
        let probe = (!to_probe.is_empty()).then(|| plan(&[], Purpose::Probe(to_probe)));
        let number = self.cells;
        std::thread::scope(|scope| {
            let probe = probe.map(|probe| {
                let file = self.config.work_dir.join(format!("cell-{number}-probe.rs"));
                let (toolchain, built) = (&self.config.toolchain, &self.built);
                scope.spawn(move || probe_types(toolchain, built, &probe, &file))
            });
            let mut moved: Vec<String> = Vec::new();
            let mut source = first;
            let file = self.config.work_dir.join(format!("cell-{number}.rs"));
            let (key, library) = loop {
                let key = self.cache.key(&keyed(&source.text));
                std::fs::write(&file, &source.text).map_err(CellsError::io("write", &file))?;
                // Built in the session's own directory: rustc's intermediate files are named
                // after the crate, the same for every cell, so sessions compiling at the same
                // time must not share a directory. Then moved into the cache whole.
                let built = self.config.work_dir.join(format!("{key}.so"));
                match rustc::compile(
                    &self.config.toolchain,
                    &self.built,
                    &file,
                    Output::Library(&built, optimise),
                )? {
                    Ok(()) => {
                        let library = self.cache.keep(&built, &key)?;
                        break (key, library);
                    }
                    Err(errors) => {
                        let diagnostics: Vec<Diagnostic> =
                            errors.iter().map(|e| Diagnostic::map(e, &source)).collect();
                        let unputtable = unputtable_variables(&diagnostics);
                        if unputtable.is_empty() || unputtable.iter().any(|n| moved.contains(n)) {
                            return Err(CellsError::Compile {
                                code: code.to_string(),
                                diagnostics,
                            });
                        }
                        moved.extend(unputtable);
                        source = plan(&moved, Purpose::Run);
                    }
                }
            };
            let types = match probe {
                Some(handle) => handle.join().unwrap_or_else(|_| Ok(BTreeMap::new()))?,
                None => BTreeMap::new(),
            };
            let compiled = Compiled {
                library,
                moved,
                types,
            };
            self.cache.record(&first_keyed, &key, &compiled);
            Ok(compiled)
        })
    }

    /// Items of the session not replaced by `replaced`, `use`s first.
    fn ordered_items(&self, replaced: &BTreeSet<ItemKey>) -> Vec<&str> {
        let kept = self.items.iter().filter(|i| !replaced.contains(&i.key));
        let (uses, others): (Vec<_>, Vec<_>) = kept.partition(|i| i.is_use);
        uses.into_iter()
            .chain(others)
            .map(|i| i.text.as_str())
            .collect()
    }

    /// Names of the types the cell defines again differently.
    fn redefined_types(&self, code: &str, parts: &CellParts) -> Vec<String> {
        parts
            .items
            .iter()
            .filter(|item| item.defines_type)
            .filter_map(|item| {
                let old = self.items.iter().find(|kept| kept.key == item.key)?;
                let ItemKey::Named { name, .. } = &item.key else {
                    return None;
                };
                (old.text != code[item.range.clone()]).then(|| name.clone())
            })
            .collect()
    }

    fn keep_items(&mut self, code: &str, parts: &CellParts, replaced: &BTreeSet<ItemKey>) {
        self.items.retain(|i| !replaced.contains(&i.key));
        for item in &parts.items {
            self.items.push(KeptItem {
                key: item.key.clone(),
                text: code[item.range.clone()].to_string(),
                is_use: item.is_use,
            });
        }
        for attribute in &parts.crate_attributes {
            if !self.crate_attributes.contains(attribute) {
                self.crate_attributes.push(attribute.clone());
            }
        }
    }

    /// Adds `:dep` lines and builds the new set of dependencies.
    /// Builds the crates cells use with `lines` added; returns the names of crates that were
    /// there with another line (other features, another version), which are built anew.
    fn add_dependencies(&mut self, lines: &[String]) -> Result<Vec<String>, CellsError> {
        let mut rebuilt = Vec::new();
        let mut dependencies = self.config.dependencies.clone();
        for line in lines {
            let Some((name, _)) = line.split_once('=') else {
                return Err(CellsError::BadDependency { line: line.clone() });
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                return Err(CellsError::BadDependency { line: line.clone() });
            }
            let same_name = |d: &String| d.split_once('=').is_some_and(|(n, _)| n.trim() == name);
            // `:dep tessera = { features = [...] }` turns on features of the session's own
            // `tessera` crate, whose path a cell cannot know.
            let line = match dependencies.iter().find(|d| same_name(d)) {
                Some(current) if name == "tessera" && !line.contains("path") => {
                    crate::deps::with_features(current, line)
                        .ok_or_else(|| CellsError::BadDependency { line: line.clone() })?
                }
                _ => line.clone(),
            };
            if dependencies.iter().any(|d| same_name(d) && *d != line) {
                rebuilt.push(name.to_string());
            }
            dependencies.retain(|d| !same_name(d));
            dependencies.push(line);
        }
        let project = DependencyProject::new(
            &self.config.cache_dir,
            &dependencies,
            &self.config.toolchain,
        );
        self.built = project.ensure_built(&self.config.toolchain, &*self.config.progress)?;
        self.cache = CellCache::new(
            &self.config.cache_dir.join("cells"),
            &self.config.toolchain.version,
            &self.built.fingerprint(),
        )?;
        self.project = project;
        self.config.dependencies = dependencies;
        Ok(rebuilt)
    }
}

/// Types of variables from a probe build of `source`.
fn probe_types(
    toolchain: &Toolchain,
    built: &BuiltDependencies,
    source: &crate_source::CrateSource,
    file: &Path,
) -> Result<BTreeMap<String, String>, CellsError> {
    std::fs::write(file, &source.text).map_err(CellsError::io("write", file))?;
    let errors: Vec<RustcDiagnostic> = match rustc::compile(toolchain, built, file, Output::Probe)?
    {
        Ok(()) => Vec::new(),
        Err(errors) => errors,
    };
    let mut types = BTreeMap::new();
    for error in &errors {
        let Some(span) = error.spans.iter().find(|s| s.is_primary) else {
            continue;
        };
        if let Some(LineRole::Probe(name)) = source.role(span.line_start)
            && let Some(ty) = probed_type(error)
        {
            types.insert(name.clone(), ty);
        }
    }
    Ok(types)
}

impl Drop for Engine {
    /// The session's generated sources and type-check outputs go with it (compiled cells stay
    /// in the per-user cache).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.config.work_dir);
    }
}

/// Whether a cell's code may run on executors, and so is compiled optimised: when it mentions
/// a marker ([`EngineConfig::remote_markers`]), takes a variable whose type mentions one or a
/// type of the session's, defines an item, or uses one of the session's (whose body could start
/// a job). Otherwise its code can only run in the child, where a fifth less compile time
/// matters more than the speed of code that is typically an expression or two.
fn optimise(
    optimisation: Optimisation,
    markers: &[String],
    parts: &CellParts,
    takes: &[(String, String)],
    items: &[KeptItem],
) -> Optimise {
    if markers.is_empty() {
        return Optimise::Yes(optimisation);
    }
    let names: Vec<&str> = items
        .iter()
        .filter_map(|item| match &item.key {
            ItemKey::Named { name, .. } => Some(name.as_str()),
            ItemKey::Text(_) => None,
        })
        .collect();
    let marked = parts.identifiers.iter().any(|i| markers.contains(i))
        || takes.iter().any(|(_, ty)| {
            markers.iter().any(|m| mentions(ty, m)) || names.iter().any(|n| mentions(ty, n))
        });
    let uses_items = parts.items.iter().any(|item| !item.is_use)
        || names.iter().any(|n| parts.identifiers.contains(*n));
    if marked || uses_items {
        Optimise::Yes(optimisation)
    } else {
        Optimise::No
    }
}

/// Variables whose storing is what failed, when every error is on a line that puts one
/// (it was moved, or it borrows something that ends with the cell); empty when any error is
/// the cell's own. When storing one variable fails because another borrows it (`let r = &v;`),
/// only the borrower is named: `v` can be kept once `r` is not.
fn unputtable_variables(diagnostics: &[Diagnostic]) -> Vec<String> {
    let put = |role: &LineRole| match role {
        LineRole::Put(name) => Some(name.clone()),
        _ => None,
    };
    if diagnostics.iter().any(|d| {
        !d.roles
            .iter()
            .chain(&d.context_roles)
            .any(|r| put(r).is_some())
    }) {
        return Vec::new();
    }
    let borrowers: Vec<String> = diagnostics
        .iter()
        .flat_map(|d| d.context_roles.iter().filter_map(put))
        .collect();
    let mut names = if borrowers.is_empty() {
        diagnostics
            .iter()
            .flat_map(|d| d.roles.iter().filter_map(put))
            .collect()
    } else {
        borrowers
    };
    names.sort();
    names.dedup();
    names
}

/// Whether type `ty` mentions the type named `name` (as a whole word).
fn mentions(ty: &str, name: &str) -> bool {
    ty.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Label;

    fn diagnostic(roles: Vec<LineRole>, context_roles: Vec<LineRole>) -> Diagnostic {
        Diagnostic {
            message: String::new(),
            code: None,
            labels: vec![Label {
                range: 0..1,
                text: None,
                primary: true,
            }],
            notes: vec![],
            rendered: String::new(),
            roles,
            context_roles,
        }
    }

    fn put(name: &str) -> LineRole {
        LineRole::Put(name.into())
    }

    #[test]
    fn only_variables_whose_storing_fails_are_left_out() {
        // `let t = s;` then putting `s` back: `s` was moved.
        assert_eq!(
            unputtable_variables(&[diagnostic(vec![put("s")], vec![])]),
            ["s"]
        );
        // `let r = &v;`: storing `v` fails because `r` borrows it; `r` is the one to leave out.
        assert_eq!(
            unputtable_variables(&[
                diagnostic(vec![put("v")], vec![put("r")]),
                diagnostic(vec![], vec![put("r")]),
            ]),
            ["r"]
        );
        // Any error of the cell's own: nothing is left out, the errors are reported.
        assert!(
            unputtable_variables(&[
                diagnostic(vec![put("s")], vec![]),
                diagnostic(vec![], vec![])
            ])
            .is_empty()
        );
    }

    #[test]
    fn only_cells_whose_code_cannot_reach_an_executor_are_compiled_unoptimised() {
        let markers: Vec<String> = ["sc", "tessera", "Rdd"].map(String::from).to_vec();
        let kept = |text: &str| {
            let parts = cell_parts::split(text);
            let item = &parts.items[0];
            KeptItem {
                key: item.key.clone(),
                text: text.to_string(),
                is_use: item.is_use,
            }
        };
        let items = vec![kept("fn pagerank() {}"), kept("struct Model { w: f64 }")];
        const TWO: Optimisation = Optimisation {
            opt_level: 2,
            codegen_units: 1,
            inline_threshold: None,
        };
        let decide = |code: &str, takes: &[(&str, &str)]| {
            let takes: Vec<(String, String)> = takes
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            optimise(TWO, &markers, &cell_parts::split(code), &takes, &items)
        };
        assert_eq!(decide("1 + 1", &[]), Optimise::No);
        assert_eq!(
            decide("v.len()", &[("v", "std::vec::Vec<u64>")]),
            Optimise::No
        );
        assert_eq!(
            decide("sc.parallelize(v, 2).count()", &[]),
            Optimise::Yes(TWO)
        );
        assert_eq!(
            decide("r.count()", &[("r", "tessera::Rdd<u64>")]),
            Optimise::Yes(TWO)
        );
        assert_eq!(
            decide("pagerank()", &[]),
            Optimise::Yes(TWO),
            "a function of the session"
        );
        assert_eq!(
            decide("m.w", &[("m", "Model")]),
            Optimise::Yes(TWO),
            "a type of the session"
        );
        assert_eq!(
            decide("fn f() {}\n1", &[]),
            Optimise::Yes(TWO),
            "an item of its own"
        );
        assert_eq!(
            optimise(
                Optimisation::INTERACTIVE,
                &[],
                &cell_parts::split("1"),
                &[],
                &items
            ),
            Optimise::Yes(Optimisation::INTERACTIVE)
        );
    }

    #[test]
    fn a_type_is_mentioned_only_as_a_whole_word() {
        assert!(mentions("std::vec::Vec<Point>", "Point"));
        assert!(mentions("Point", "Point"));
        assert!(!mentions("std::vec::Vec<Point3>", "Point"));
        assert!(!mentions("MyPoint", "Point"));
    }
}
