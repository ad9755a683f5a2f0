//! Compiled cells, kept per user: a cell whose generated source was compiled before (the
//! session's prelude, every cell of a script or notebook run again) is not compiled again.
//!
//! A cell is found by a hash of its generated source, the rustc version and the dependencies'
//! build; beside its library the cache keeps what building it learned (the types of the
//! variables it binds, those it moves). Libraries are built in the session's own directory and
//! moved in whole, so concurrent sessions never see half a file. The cache is trimmed, least
//! recently used first, when it grows past a bound, sparing anything used in the last day (a
//! running session's executors may still fetch it).

use crate::error::CellsError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Past this size the cache is trimmed.
const TRIM_ABOVE_BYTES: u64 = 1 << 30;
/// Trimming stops below this size.
const TRIM_TO_BYTES: u64 = 1 << 29;
/// Files used more recently than this are never trimmed.
const KEEP_RECENT: Duration = Duration::from_secs(24 * 3600);

/// A cell's library and what building it learned.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    /// The library.
    pub library: PathBuf,
    /// Variables left out of the store because storing them does not compile (the cell moves
    /// them, or they borrow from it).
    pub moved: Vec<String>,
    /// Types of the variables the cell binds, as rustc named them.
    pub types: BTreeMap<String, String>,
}

/// What the cache keeps beside a library, under the key of the cell's first source.
#[derive(Serialize, Deserialize)]
struct Record {
    library: String,
    moved: Vec<String>,
    types: BTreeMap<String, String>,
}

/// The cache, for one rustc and one build of the dependencies.
#[derive(Clone)]
pub(crate) struct CellCache {
    dir: PathBuf,
    salt: String,
}

impl CellCache {
    /// The cache in `dir` for libraries built by rustc `version` against dependencies whose
    /// build has `fingerprint`.
    pub fn new(dir: &Path, version: &str, fingerprint: &str) -> Result<CellCache, CellsError> {
        std::fs::create_dir_all(dir).map_err(CellsError::io("create", dir))?;
        Ok(CellCache {
            dir: dir.to_path_buf(),
            salt: format!("{version}\n{fingerprint}\nflags 1\n"),
        })
    }

    /// The key of a generated source.
    pub fn key(&self, source: &str) -> String {
        crate::content_hash::hash_hex(format!("{}{source}", self.salt).as_bytes())[..32].to_string()
    }

    /// Where the library of `key` is kept.
    pub fn library(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.so"))
    }

    /// The cell compiled from `source` before, if its library is still there.
    pub fn find(&self, source: &str) -> Option<Compiled> {
        let record_path = self.dir.join(format!("{}.json", self.key(source)));
        let record: Record = serde_json::from_slice(&std::fs::read(&record_path).ok()?).ok()?;
        let library = self.library(&record.library);
        // Used now: the last to be trimmed.
        let now = SystemTime::now();
        for path in [&record_path, &library] {
            let file = std::fs::File::options().append(true).open(path).ok()?;
            let _ = file.set_modified(now);
        }
        Some(Compiled {
            library,
            moved: record.moved,
            types: record.types,
        })
    }

    /// Moves a library just built for `key` into the cache (copying it when the cache is on
    /// another file system); another session may have put the same one there meanwhile, which
    /// is as good.
    pub fn keep(&self, built: &Path, key: &str) -> Result<PathBuf, CellsError> {
        let library = self.library(key);
        if std::fs::rename(built, &library).is_ok() {
            return Ok(library);
        }
        let partial = library.with_extension(format!("{}.partial", std::process::id()));
        std::fs::copy(built, &partial).map_err(CellsError::io("copy into the cache", &partial))?;
        std::fs::rename(&partial, &library).map_err(CellsError::io("keep", &library))?;
        let _ = std::fs::remove_file(built);
        Ok(library)
    }

    /// Records what compiling `first_source` gave (its library may be that of a later
    /// source, with moved variables left out).
    pub fn record(&self, first_source: &str, key: &str, compiled: &Compiled) {
        let record = Record {
            library: key.to_string(),
            moved: compiled.moved.clone(),
            types: compiled.types.clone(),
        };
        let path = self.dir.join(format!("{}.json", self.key(first_source)));
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        if std::fs::write(&partial, serde_json::to_vec(&record).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&partial, &path);
        }
    }

    /// Trims the cache if it is larger than it should be (see the module's documentation).
    pub fn trim(&self) {
        trim(&self.dir, TRIM_ABOVE_BYTES, TRIM_TO_BYTES, KEEP_RECENT);
    }
}

fn trim(dir: &Path, above: u64, to: u64, keep_recent: Duration) {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((metadata.modified().ok()?, metadata.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
    if total <= above {
        return;
    }
    files.sort();
    let recent = SystemTime::now() - keep_recent;
    for (modified, size, path) in files {
        if total <= to || modified > recent {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_found_by_its_source_with_what_its_build_learned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CellCache::new(dir.path(), "rustc 1", "deps 1").unwrap();
        assert!(cache.find("let x = 1;").is_none());
        let built = dir.path().join("built.so");
        std::fs::write(&built, b"library").unwrap();
        let key = cache.key("the source without x");
        let library = cache.keep(&built, &key).unwrap();
        let compiled = Compiled {
            library: library.clone(),
            moved: vec!["x".into()],
            types: [("y".to_string(), "u64".to_string())].into(),
        };
        cache.record("let x = 1;", &key, &compiled);
        let found = cache.find("let x = 1;").expect("found");
        assert_eq!(found.library, library);
        assert_eq!(found.moved, ["x"]);
        assert_eq!(found.types, compiled.types);
        // Another rustc or another build of the dependencies: not the same cell.
        let other = CellCache::new(dir.path(), "rustc 2", "deps 1").unwrap();
        assert!(other.find("let x = 1;").is_none());
        std::fs::remove_file(&library).unwrap();
        assert!(
            cache.find("let x = 1;").is_none(),
            "a record without its library is no cell"
        );
    }

    #[test]
    fn trimming_removes_the_least_recently_used_down_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(old + Duration::from_secs(i as u64))
                .unwrap();
        }
        let left = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        trim(dir.path(), 1000, 200, Duration::from_secs(60));
        assert_eq!(
            left(dir.path()),
            ["a", "b", "c", "d"],
            "under the bound: nothing goes"
        );
        trim(dir.path(), 300, 200, Duration::from_secs(60));
        assert_eq!(
            left(dir.path()),
            ["c", "d"],
            "the oldest go first, down to the bound"
        );
        trim(dir.path(), 100, 0, Duration::from_secs(7200));
        assert_eq!(left(dir.path()), ["c", "d"], "what was used recently stays");
    }
}
