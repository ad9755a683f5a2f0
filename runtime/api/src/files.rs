//! Files sent to every executor with [`Context::add_file`](crate::Context::add_file), as
//! Spark's `SparkFiles`: each process that runs the session's code (the session itself and
//! every executor) keeps its own copy in a directory of its own.

use std::path::PathBuf;
use tessera_plan::FILES_DIR_ENV;

/// The directory that holds this process's copies of added files.
pub fn root_directory() -> PathBuf {
    match std::env::var_os(FILES_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => crate::Error::new(format!(
            "{FILES_DIR_ENV} is not set: files added with sc.add_file are there only in a \
             Tessera session and its executors"
        ))
        .raise(),
    }
}

/// The path of this process's copy of the file added as `name` (the added path's file name),
/// as Spark's `SparkFiles.get`. A name that was never added is an error naming it.
pub fn get(name: &str) -> PathBuf {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        crate::Error::new(format!(
            "{name:?} is not a file name: pass the name of the added file, such as \"lookup.csv\""
        ))
        .raise()
    }
    let path = root_directory().join(name);
    if !path.is_file() {
        crate::Error::new(format!(
            "no file {name:?} was added to this session: call sc.add_file(\"path/to/{name}\") first"
        ))
        .raise()
    }
    path
}
