//! Loading a cargo project into a rust-analyzer database: `cargo metadata` (through
//! rust-analyzer's project model) gives the crate graph of the project, its dependencies and the
//! sysroot's standard library; vfs-notify reads every `.rs` file under their roots; the files, the
//! source roots and the crate graph then go into one change applied to a fresh database.

use std::path::Path;

use ra_ap_hir::ChangeWithProcMacros;
use ra_ap_ide::{AnalysisHost, FileId, SourceRoot};
use ra_ap_ide_db::FxHashMap;
use ra_ap_project_model::{
    CargoConfig, ProjectManifest, ProjectWorkspace, ProjectWorkspaceKind, RustLibSource,
};
use ra_ap_vfs::loader::{self, Handle, LoadingProgress};
use ra_ap_vfs::{AbsPathBuf, Change, Vfs, VfsPath, file_set::FileSetConfig};
use ra_ap_vfs_notify::NotifyHandle;

use crate::error::AnalysisError;

/// A project loaded into rust-analyzer.
pub(crate) struct Loaded {
    /// The database, holding every file of the project, its dependencies and the sysroot.
    pub(crate) host: AnalysisHost,
    /// The project's src/lib.rs.
    pub(crate) source_file: FileId,
    /// The text of src/lib.rs as read from disk.
    pub(crate) source: String,
}

/// Loads the cargo project in `dir` (its Cargo.toml and src/lib.rs).
pub(crate) fn load(dir: &Path) -> Result<Loaded, AnalysisError> {
    let load_error = |cause: String| AnalysisError::Load {
        dir: dir.to_path_buf(),
        cause,
    };
    // Canonical, because cargo metadata reports canonical paths and the crate root is looked up
    // by path among the files read.
    let root = dir
        .canonicalize()
        .map_err(|error| load_error(format!("the directory cannot be opened ({error})")))?;
    let root = root
        .to_str()
        .and_then(|root| AbsPathBuf::try_from(root).ok())
        .ok_or_else(|| load_error("the path is not valid UTF-8".to_string()))?;
    let manifest = ProjectManifest::from_manifest_file(root.join("Cargo.toml"))
        .map_err(|error| load_error(format!("{error:#}")))?;
    let config = CargoConfig {
        // `rustc --print sysroot`, run in the project, finds the toolchain's std sources (the
        // rust-src component); without them only the project and its dependencies are known.
        sysroot: Some(RustLibSource::Discover),
        ..CargoConfig::default()
    };
    let workspace = ProjectWorkspace::load(manifest, &config, &|_| {})
        .map_err(|error| load_error(format!("{error:#}")))?;
    warn_about_gaps(&workspace, dir);

    let roots = workspace.to_roots();
    let mut vfs = read_files(&roots).map_err(load_error)?;

    let mut change = ChangeWithProcMacros::default();
    let mut source = None;
    let source_path = VfsPath::from(root.join("src/lib.rs"));
    let source_file = vfs.file_id(&source_path).map(|(id, _)| id);
    for (file_id, changed) in vfs.take_changes() {
        let text = match changed.change {
            Change::Create(bytes, _) | Change::Modify(bytes, _) => String::from_utf8(bytes).ok(),
            Change::Delete => None,
        };
        if Some(file_id) == source_file {
            source = text.clone();
        }
        change.change_file(file_id, text);
    }

    // One file set per package root, in order, then one for files outside them all: library
    // roots are marked as such, which tells rust-analyzer they do not change as cells are typed.
    let mut file_sets = FileSetConfig::builder();
    for root in &roots {
        file_sets.add_file_set(root.include.iter().cloned().map(VfsPath::from).collect());
    }
    let source_roots = file_sets
        .build()
        .partition(&vfs)
        .into_iter()
        .enumerate()
        .map(|(index, file_set)| match roots.get(index) {
            Some(root) if !root.is_local => SourceRoot::new_library(file_set),
            _ => SourceRoot::new_local(file_set),
        })
        .collect();
    change.set_roots(source_roots);

    let (crate_graph, _proc_macros) = workspace.to_crate_graph(
        &mut |path| {
            vfs.file_id(&VfsPath::from(path.to_path_buf()))
                .map(|(id, _)| id)
        },
        &FxHashMap::default(),
    );
    change.set_crate_graph(crate_graph);

    let (Some(source_file), Some(source)) = (source_file, source) else {
        return Err(AnalysisError::MissingSource {
            dir: dir.to_path_buf(),
            source_file: dir.join("src/lib.rs"),
        });
    };
    let mut host = AnalysisHost::new(None);
    host.apply_change(change);
    Ok(Loaded {
        host,
        source_file,
        source,
    })
}

/// Reads every `.rs` file under `roots` into a fresh [`Vfs`].
fn read_files(roots: &[ra_ap_project_model::PackageRoot]) -> Result<Vfs, String> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    // The loader reads on its own threads; it is dropped (and stopped) once everything is read,
    // since the project's files are never watched: cells reach the database through set_source.
    let mut loader = NotifyHandle::spawn(sender);
    let load = roots
        .iter()
        .map(|root| {
            loader::Entry::Directories(loader::Directories {
                extensions: vec!["rs".to_string()],
                include: root.include.clone(),
                exclude: root.exclude.clone(),
            })
        })
        .collect();
    loader.set_config(loader::Config {
        version: 0,
        load,
        watch: Vec::new(),
    });
    let mut vfs = Vfs::default();
    for message in &receiver {
        match message {
            loader::Message::Progress {
                n_done: LoadingProgress::Finished,
                ..
            } => return Ok(vfs),
            loader::Message::Progress { .. } => {}
            loader::Message::Loaded { files } | loader::Message::Changed { files } => {
                for (path, contents) in files {
                    vfs.set_file_contents(path.into(), contents);
                }
            }
        }
    }
    Err("rust-analyzer's file loader stopped before reading every file".to_string())
}

/// Logs what a load without errors may still be missing, and what to do about it.
fn warn_about_gaps(workspace: &ProjectWorkspace, dir: &Path) {
    if workspace.sysroot.is_rust_lib_src_empty() {
        tracing::warn!(
            project = %dir.display(),
            error = workspace.sysroot.error().unwrap_or("not found"),
            "rust-analyzer found no standard library source, so std has no completions: \
             install it with `rustup component add rust-src`"
        );
    }
    if let ProjectWorkspaceKind::Cargo {
        error: Some(error), ..
    } = &workspace.kind
    {
        tracing::warn!(
            project = %dir.display(),
            "`cargo metadata` failed, so the project's dependencies have no completions: {error:#}"
        );
    }
}
