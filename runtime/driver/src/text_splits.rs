//! Splits text input into partitions: a file, every file of a directory, or the files a glob
//! in the last path component (`logs/*.txt`) matches.

use crate::error::DriverError;
use std::path::{Path, PathBuf};
use tessera_plan::FileSplit;

/// Largest split of a text file RDD, like Hadoop's block size for a local file system.
pub const TEXT_SPLIT_BYTES: u64 = 32 << 20;
/// Largest split of a DataFrame's file, Spark SQL's `spark.sql.files.maxPartitionBytes`: a
/// DataFrame task's fixed costs (a task, a polars query) are paid once per split, and polars
/// runs a bigger partition's query as fast per row.
pub const FRAME_SPLIT_BYTES: u64 = 128 << 20;
/// A last split up to this much bigger than the split size is not split again (Hadoop's slop).
const SPLIT_SLOP: f64 = 1.1;

/// The splits of the files `pattern` names: at least `min_partitions` of them where the files
/// are big enough, none longer than `max_split_bytes` (give or take the slop).
pub fn splits(
    pattern: &str,
    min_partitions: u32,
    max_split_bytes: u64,
    cwd: &Path,
) -> Result<Vec<FileSplit>, DriverError> {
    let files = matching_files(pattern, cwd)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .map_err(|source| DriverError::UnreadableInput {
                    path: f.clone(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let total: u64 = sizes.iter().sum();
    let goal = total
        .div_ceil(min_partitions.max(1) as u64)
        .clamp(1, max_split_bytes.max(1));
    let mut splits = Vec::new();
    for (file, size) in files.iter().zip(sizes) {
        let path = file.to_string_lossy().into_owned();
        let mut start = 0;
        while (size - start) as f64 > goal as f64 * SPLIT_SLOP {
            splits.push(FileSplit {
                path: path.clone(),
                start,
                end: start + goal,
            });
            start += goal;
        }
        if size > start || size == 0 {
            splits.push(FileSplit {
                path,
                start,
                end: size,
            });
        }
    }
    Ok(splits)
}

/// The files `pattern` names: a file, every file of a directory, or those a glob in its last
/// component matches.
pub fn matching_files(pattern: &str, cwd: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let path = cwd.join(pattern);
    let not_found = || DriverError::NoInputFile {
        pattern: pattern.to_string(),
        cwd: cwd.to_path_buf(),
    };
    if path.is_file() {
        return Ok(vec![path]);
    }
    let (dir, name_pattern) = if path.is_dir() {
        (path.clone(), "*".to_string())
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(not_found)?;
        if !name.contains(['*', '?']) {
            return Err(not_found());
        }
        (
            path.parent().map(Path::to_path_buf).ok_or_else(not_found)?,
            name,
        )
    };
    let entries = std::fs::read_dir(&dir).map_err(|_| not_found())?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.starts_with('.')
                && !name.starts_with('_')
                && glob_match(name_pattern.as_bytes(), name.as_bytes())
        })
        .collect();
    files.sort();
    if files.is_empty() {
        Err(not_found())
    } else {
        Ok(files)
    }
}

/// `*` matches any run of characters, `?` any one.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        assert!(glob_match(b"*.log", b"a.log"));
        assert!(glob_match(b"part-?", b"part-1"));
        assert!(!glob_match(b"*.log", b"a.txt"));
    }

    #[test]
    fn splits_cover_every_byte_once() {
        let dir = std::env::temp_dir().join(format!("tessera-splits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), vec![b'x'; 1000]).unwrap();
        std::fs::write(dir.join("b.txt"), vec![b'y'; 10]).unwrap();
        let splits = splits("*.txt", 4, TEXT_SPLIT_BYTES, &dir).unwrap();
        let covered: u64 = splits.iter().map(|s| s.end - s.start).sum();
        assert_eq!(covered, 1010);
        assert!(splits.len() >= 4, "{splits:?}");
        // No split is longer than the largest asked for, give or take the slop.
        let small = super::splits("*.txt", 1, 100, &dir).unwrap();
        assert!(small.iter().all(|s| s.end - s.start <= 110), "{small:?}");
        assert_eq!(small.len(), 11, "{small:?}");
        assert!(
            matches!(super::splits("missing-*.csv", 1, TEXT_SPLIT_BYTES, &dir), Err(e) if e.to_string().contains("no file matches"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
