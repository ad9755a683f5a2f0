//! The crates every cell may use, built once per user with cargo into a project of their own
//! (`CACHE/deps-HASH`, one per set of dependency lines and rustc version), so that a cell is
//! one rustc run against finished rlibs and a new session reuses the build.
//!
//! What rustc needs for a cell is what cargo passed to rustc for that project's own (empty)
//! library: its `--extern` and `-L` arguments, read from `cargo build -v`. They are kept in
//! `build.json` with the modification times of the sources of path dependencies (the
//! `tessera` crate, when it is being worked on), so a later session checks freshness with a few
//! `stat`s instead of running cargo.

use crate::error::CellsError;
use crate::toolchain::Toolchain;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// The result of building the dependency project: how rustc finds the crates.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BuiltDependencies {
    /// `-L` and `-l` arguments (dependency directories, native libraries of build scripts).
    pub search_args: Vec<String>,
    /// `(name, rlib or proc-macro library)`, each passed as `--extern name=path`.
    pub externs: Vec<(String, PathBuf)>,
    /// Source files of path dependencies and their modification times (nanoseconds), to know
    /// when to build again.
    pub sources: Vec<(PathBuf, u128)>,
}

impl BuiltDependencies {
    /// A key for everything a cell library depends on besides its own source: the crates'
    /// paths (cargo puts a hash of their build in each name) and the sources' times.
    pub fn fingerprint(&self) -> String {
        crate::content_hash::hash_hex(&serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The dependency line `current` (an inline table, `name = { path = ".." }`) with the
/// `features = [...]` list of `asked` in place of any it had; `None` when `asked` has no list.
pub(crate) fn with_features(current: &str, asked: &str) -> Option<String> {
    let after = asked.split_once("features")?.1;
    let open = after.find('[')?;
    let list = &after[open..open + after[open..].find(']')? + 1];
    let table = current.trim_end().strip_suffix('}')?;
    let kept = match table.find(", features") {
        Some(at) => &table[..at],
        None => table.trim_end().trim_end_matches(','),
    };
    Some(format!("{}, features = {list} }}", kept.trim_end()))
}

/// The project that builds `lines` (Cargo.toml dependency lines).
pub struct DependencyProject {
    dir: PathBuf,
    lines: Vec<String>,
}

impl DependencyProject {
    /// The project for `lines` under `cache_dir`, for the toolchain's rustc.
    pub fn new(cache_dir: &Path, lines: &[String], toolchain: &Toolchain) -> DependencyProject {
        let key = crate::content_hash::hash_hex(
            format!("{}\n{}", toolchain.version, lines.join("\n")).as_bytes(),
        );
        DependencyProject {
            dir: cache_dir.join(format!("deps-{}", &key[..16])),
            lines: lines.to_vec(),
        }
    }

    /// The project's directory (its Cargo.toml is what rust-analyzer loads, too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The crates, built: from `build.json` when every source is as it was, else by cargo,
    /// whose `Compiling ...` lines go to `progress`. Concurrent sessions wait for each other.
    pub fn ensure_built(
        &self,
        toolchain: &Toolchain,
        progress: &dyn Fn(&str),
    ) -> Result<BuiltDependencies, CellsError> {
        std::fs::create_dir_all(self.dir.join("src"))
            .map_err(CellsError::io("create", self.dir.join("src")))?;
        let lock_path = self.dir.join(".lock");
        let lock =
            std::fs::File::create(&lock_path).map_err(CellsError::io("create", &lock_path))?;
        // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        // When a session last used the project: the sweep of unusable projects spares it.
        let _ = std::fs::write(self.dir.join(USED_STAMP), b"");
        let manifest = self.dir.join("build.json");
        if let Some(built) = std::fs::read(&manifest)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BuiltDependencies>(&bytes).ok())
            .filter(|built| self.is_current() && is_fresh(built))
        {
            return Ok(built);
        }
        let built = self.build(toolchain, progress)?;
        let bytes = serde_json::to_vec_pretty(&built).unwrap_or_default();
        std::fs::write(&manifest, bytes).map_err(CellsError::io("write", &manifest))?;
        Ok(built)
    }

    fn cargo_toml(&self) -> String {
        format!(
            "[package]\nname = \"tessera_cell_deps\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             # A workspace of its own, wherever the cache is (cargo and rust-analyzer would\n\
             # otherwise take an enclosing one).\n[workspace]\n\n\
             [lib]\npath = \"src/lib.rs\"\n\n\
             # Cells run on executors: optimised, with overflow checks as in debug builds.\n\
             [profile.dev]\nopt-level = 2\ndebug = false\ndebug-assertions = false\n\
             overflow-checks = true\npanic = \"unwind\"\nincremental = false\n\n\
             [dependencies]\n{}\n",
            self.lines.join("\n")
        )
    }

    /// Whether `build.json` was made from this Cargo.toml.
    fn is_current(&self) -> bool {
        std::fs::read_to_string(self.dir.join("Cargo.toml")).is_ok_and(|t| t == self.cargo_toml())
    }

    fn build(
        &self,
        toolchain: &Toolchain,
        progress: &dyn Fn(&str),
    ) -> Result<BuiltDependencies, CellsError> {
        let write = |name: &str, text: &str| {
            let path = self.dir.join(name);
            std::fs::write(&path, text).map_err(CellsError::io("write", path))
        };
        write("Cargo.toml", &self.cargo_toml())?;
        // Changed on every build, so that cargo runs rustc for it and prints its arguments.
        write(
            "src/lib.rs",
            &format!("// built {:?}\n", std::time::SystemTime::now()),
        )?;
        let mut child = Command::new(&toolchain.cargo)
            .args(["build", "--lib", "-v", "--color", "never"])
            .current_dir(&self.dir)
            .env("RUSTC", &toolchain.rustc)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CellsError::Toolchain {
                program: toolchain.cargo.display().to_string(),
                reason: e.to_string(),
            })?;
        let mut transcript = String::new();
        let mut own_invocation = None;
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let trimmed = line.trim_start();
                if trimmed.starts_with("Running `")
                    && trimmed.contains("--crate-name tessera_cell_deps")
                {
                    own_invocation = Some(trimmed.to_string());
                } else if !trimmed.starts_with("Running `") && !trimmed.starts_with("Fresh ") {
                    if trimmed.starts_with("Compiling")
                        || trimmed.starts_with("Downloaded")
                        || trimmed.starts_with("Updating")
                    {
                        progress(trimmed);
                    }
                    transcript.push_str(&line);
                    transcript.push('\n');
                }
            }
        }
        let status = child
            .wait()
            .map_err(CellsError::io("wait for cargo in", &self.dir))?;
        let failed = || CellsError::Dependencies {
            dir: self.dir.clone(),
            output: transcript.trim().to_string(),
        };
        if !status.success() {
            return Err(failed());
        }
        let invocation = own_invocation.ok_or_else(failed)?;
        let mut built = parse_invocation(&invocation);
        // Cargo pipelines builds: it gives a library's dependents their metadata (`.rmeta`);
        // a cell links them, so it needs the `.rlib` beside it.
        for (_, path) in &mut built.externs {
            let rlib = path.with_extension("rlib");
            if path.extension().is_some_and(|e| e == "rmeta") && rlib.exists() {
                *path = rlib;
            }
        }
        built.sources = path_sources(&self.dir.join("target/debug/deps"));
        Ok(built)
    }
}

/// The `--extern` and `-L`/`-l` arguments of cargo's `Running `rustc ...`` line.
fn parse_invocation(line: &str) -> BuiltDependencies {
    let command = line.trim_start_matches("Running `").trim_end_matches('`');
    let words = split_words(command);
    let mut built = BuiltDependencies {
        search_args: Vec::new(),
        externs: Vec::new(),
        sources: Vec::new(),
    };
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--extern" => {
                if let Some((name, path)) = words.next().as_deref().and_then(|w| w.split_once('='))
                {
                    built.externs.push((name.to_string(), PathBuf::from(path)));
                }
            }
            "-L" | "-l" => {
                if let Some(value) = words.next() {
                    built.search_args.push(word.clone());
                    built.search_args.push(value);
                }
            }
            _ => {}
        }
    }
    built
}

/// Words of a command line as cargo prints it (single and double quotes around words with
/// spaces).
fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The source files of crates that are not from a registry or git (path dependencies), with
/// their modification times, from the dep-info files cargo leaves beside the rlibs.
fn path_sources(deps_dir: &Path) -> Vec<(PathBuf, u128)> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut sources = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(deps_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "d") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let Some((_, files)) = line.split_once(": ") else {
                continue;
            };
            for file in files.split_whitespace() {
                let file = PathBuf::from(file);
                let from_registry = cargo_home
                    .as_ref()
                    .is_some_and(|home| file.starts_with(home));
                if from_registry || !file.is_absolute() {
                    continue;
                }
                if let Some(time) = modified(&file) {
                    sources.insert(file, time);
                }
            }
        }
    }
    sources.into_iter().collect()
}

fn modified(path: &Path) -> Option<u128> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos())
}

/// Whether every recorded source is unchanged and every crate is still there.
fn is_fresh(built: &BuiltDependencies) -> bool {
    built
        .sources
        .iter()
        .all(|(file, time)| modified(file) == Some(*time))
        && built.externs.iter().all(|(_, path)| path.exists())
}

/// The file whose modification time says when a session last used a project.
const USED_STAMP: &str = "used";
/// A project whose path dependency is gone is removed once unused this long (a session
/// started from that checkout before it went may still compile cells against it).
const GONE_PATH_GRACE: Duration = Duration::from_secs(3600);
/// Any project is removed once unused this long (those of Tessera versions given up).
const UNUSED_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Removes the dependency projects under `cache_dir`, other than `in_use`, that no session
/// will use again: those whose path dependency is gone (each checkout of Tessera, each clone
/// a CI run made, has a project of its own, half a gigabyte with polars) and those unused for
/// a month. A project being built (its lock held) is left alone.
pub(crate) fn remove_stale_projects(cache_dir: &Path, in_use: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_project = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("deps-"));
        if !is_project || dir == in_use {
            continue;
        }
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let last_use = [USED_STAMP, "build.json", "Cargo.toml"]
            .iter()
            .find_map(|name| {
                std::fs::metadata(dir.join(name))
                    .and_then(|m| m.modified())
                    .ok()
            });
        let unused_for = last_use
            .and_then(|at| now.duration_since(at).ok())
            .unwrap_or_default();
        if !is_stale(&manifest, unused_for, |path| Path::new(path).exists()) {
            continue;
        }
        let Ok(lock) = std::fs::File::open(dir.join(".lock")) else {
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        };
        // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Whether a project with this Cargo.toml, unused for `unused_for`, is to be removed.
fn is_stale(manifest: &str, unused_for: Duration, exists: impl Fn(&str) -> bool) -> bool {
    let gone = path_dependencies(manifest).any(|path| !exists(path));
    (gone && unused_for >= GONE_PATH_GRACE) || unused_for >= UNUSED_LIMIT
}

/// The `path = "..."` of each line of the `[dependencies]` table.
fn path_dependencies(manifest: &str) -> impl Iterator<Item = &str> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| {
            let after = line.split_once("path = \"")?.1;
            Some(&after[..after.find('"')?])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_turns_on_features_of_the_sessions_own_crate() {
        let current = r#"tessera = { path = "/opt/api" }"#;
        let asked = r#"tessera = { features = ["polars"] }"#;
        let line = with_features(current, asked).unwrap();
        assert_eq!(
            line,
            r#"tessera = { path = "/opt/api", features = ["polars"] }"#
        );
        // Asked again, the new list replaces the old one.
        let again = with_features(&line, r#"tessera = { features = [] }"#).unwrap();
        assert_eq!(again, r#"tessera = { path = "/opt/api", features = [] }"#);
        assert_eq!(with_features(current, "tessera = \"1\""), None);
    }

    #[test]
    fn the_externs_and_search_paths_are_read_from_cargos_command_line() {
        let line = "     Running `/r/rustc --crate-name tessera_cell_deps --edition=2024 src/lib.rs \
                    -L dependency=/p/target/debug/deps --extern 'serde=/p/target/debug/deps/libserde-1.rlib' \
                    --extern tessera=/p/target/debug/deps/libtessera-2.rlib -L native=/x -l static=foo`";
        let built = parse_invocation(line.trim());
        assert_eq!(
            built.externs,
            vec![
                (
                    "serde".to_string(),
                    PathBuf::from("/p/target/debug/deps/libserde-1.rlib")
                ),
                (
                    "tessera".to_string(),
                    PathBuf::from("/p/target/debug/deps/libtessera-2.rlib")
                ),
            ]
        );
        assert_eq!(
            built.search_args,
            [
                "-L",
                "dependency=/p/target/debug/deps",
                "-L",
                "native=/x",
                "-l",
                "static=foo"
            ]
        );
    }

    #[test]
    fn a_changed_source_makes_the_build_stale() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.rs");
        std::fs::write(&file, "a").unwrap();
        let built = BuiltDependencies {
            search_args: vec![],
            externs: vec![],
            sources: vec![(file.clone(), modified(&file).unwrap())],
        };
        assert!(is_fresh(&built));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "b").unwrap();
        assert!(!is_fresh(&built));
    }

    fn manifest(tessera: &str) -> String {
        DependencyProject {
            dir: PathBuf::new(),
            lines: vec![
                format!("tessera = {{ path = \"{tessera}\", features = [\"polars\"] }}"),
                r#"serde = { version = "1" }"#.to_string(),
            ],
        }
        .cargo_toml()
    }

    #[test]
    fn the_path_dependencies_are_those_of_the_dependencies_table() {
        let text = manifest("/checkout/runtime/api");
        // Not `[lib] path = "src/lib.rs"`.
        assert_eq!(
            path_dependencies(&text).collect::<Vec<_>>(),
            vec!["/checkout/runtime/api"]
        );
    }

    #[test]
    fn a_project_goes_when_its_checkout_went_an_hour_ago_or_after_a_month_unused() {
        let hour = Duration::from_secs(3600);
        let text = manifest("/gone/runtime/api");
        let gone = |_: &str| false;
        let there = |_: &str| true;
        assert!(is_stale(&text, hour, gone));
        // A session started from it before it went may still use it.
        assert!(!is_stale(&text, hour / 2, gone));
        assert!(!is_stale(&text, 29 * 24 * hour, there));
        assert!(is_stale(&text, 30 * 24 * hour, there));
    }

    #[test]
    fn the_sweep_removes_unusable_projects_and_keeps_the_rest() {
        let cache = tempfile::tempdir().unwrap();
        let checkout = tempfile::tempdir().unwrap();
        let project = |name: &str, tessera: &Path, unused: Duration| {
            let dir = cache.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("Cargo.toml"),
                manifest(&tessera.display().to_string()),
            )
            .unwrap();
            let stamp = std::fs::File::create(dir.join(USED_STAMP)).unwrap();
            stamp.set_modified(SystemTime::now() - unused).unwrap();
            dir
        };
        let day = Duration::from_secs(24 * 3600);
        let gone = project("deps-gone", Path::new("/no/such/checkout"), day);
        let gone_just_now = project(
            "deps-gone-now",
            Path::new("/no/such/checkout"),
            Duration::ZERO,
        );
        let live = project("deps-live", checkout.path(), day);
        let in_use = project("deps-in-use", Path::new("/no/such/checkout"), day);
        let other = cache.path().join("cells");
        std::fs::create_dir_all(&other).unwrap();
        remove_stale_projects(cache.path(), &in_use);
        assert!(
            !gone.exists(),
            "a project of a checkout gone a day ago is removed"
        );
        assert!(gone_just_now.exists());
        assert!(live.exists());
        assert!(in_use.exists(), "the session's own project stays");
        assert!(other.exists(), "only dependency projects are swept");
    }
}
