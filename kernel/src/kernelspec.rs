//! The kernelspec: the `kernel.json` that tells Jupyter how to start this kernel, and
//! where to install it (per user, under a prefix, or system-wide).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::KernelspecError;

/// The kernel's name in Jupyter (`jupyter kernelspec list`, `--kernel tessera`).
pub const KERNEL_NAME: &str = "tessera";

/// The `kernel.json` for a kernel started as `exe --connection-file {connection_file}`.
pub fn kernelspec_json(exe: &Path) -> Value {
    json!({
        "argv": [exe.to_string_lossy(), "--connection-file", "{connection_file}"],
        "display_name": "Tessera (Rust)",
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": {},
    })
}

/// Installs the kernelspec for the running executable and returns the directory it
/// wrote (`…/share/jupyter/kernels/tessera`).
///
/// * `user`: Jupyter's per-user data directory (`$JUPYTER_DATA_DIR`, else
///   `$XDG_DATA_HOME/jupyter`, else `~/.local/share/jupyter`; `~/Library/Jupyter` on
///   macOS).
/// * `prefix`: `PREFIX/share/jupyter` (e.g. a virtualenv, or a directory on
///   `JUPYTER_PATH`).
/// * neither: the system directory `/usr/local/share/jupyter`.
pub fn install_kernelspec(user: bool, prefix: Option<&Path>) -> Result<PathBuf, KernelspecError> {
    let data_dir = match (user, prefix) {
        (true, Some(_)) => return Err(KernelspecError::UserAndPrefix),
        (true, None) => user_data_dir()?,
        (false, Some(prefix)) => prefix.join("share").join("jupyter"),
        (false, None) => PathBuf::from("/usr/local/share/jupyter"),
    };
    let exe = std::env::current_exe().map_err(KernelspecError::CurrentExe)?;
    let dir = data_dir.join("kernels").join(KERNEL_NAME);
    write_kernelspec(&dir, &exe)?;
    Ok(dir)
}

/// Writes `kernel.json` for `exe` into `dir`, creating it.
pub fn write_kernelspec(dir: &Path, exe: &Path) -> Result<(), KernelspecError> {
    let write_error = |path: &Path, source: std::io::Error| {
        let hint = if source.kind() == std::io::ErrorKind::PermissionDenied {
            "; install with --user, or with --prefix to a directory you can write"
        } else {
            ""
        };
        KernelspecError::Write {
            path: path.to_owned(),
            source,
            hint,
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let file = dir.join("kernel.json");
    let text = serde_json::to_string_pretty(&kernelspec_json(exe))
        .expect("a JSON value always serializes");
    std::fs::write(&file, text + "\n").map_err(|e| write_error(&file, e))?;
    Ok(())
}

fn user_data_dir() -> Result<PathBuf, KernelspecError> {
    if let Some(dir) = non_empty_env("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = non_empty_env("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return Ok(home.ok_or(KernelspecError::NoHome)?.join("Library/Jupyter"));
    }
    if let Some(xdg) = non_empty_env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("jupyter"));
    }
    Ok(home
        .ok_or(KernelspecError::NoHome)?
        .join(".local/share/jupyter"))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_under_a_prefix() {
        let prefix = tempfile::tempdir().unwrap();
        let dir = install_kernelspec(false, Some(prefix.path())).unwrap();
        assert_eq!(dir, prefix.path().join("share/jupyter/kernels/tessera"));
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap())
                .unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(spec["argv"][0], exe.to_string_lossy().as_ref());
        assert!(Path::new(spec["argv"][0].as_str().unwrap()).is_absolute());
        assert_eq!(spec["argv"][1], "--connection-file");
        assert_eq!(spec["argv"][2], "{connection_file}");
        assert_eq!(spec["display_name"], "Tessera (Rust)");
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
    }

    #[test]
    fn user_and_prefix_together_is_an_error() {
        let err = install_kernelspec(true, Some(Path::new("/tmp"))).unwrap_err();
        assert!(matches!(err, KernelspecError::UserAndPrefix));
    }

    #[test]
    fn unwritable_directory_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = write_kernelspec(&blocker.join("kernels"), Path::new("/bin/true")).unwrap_err();
        assert!(
            err.to_string().contains("could not write the kernelspec"),
            "{err}"
        );
    }
}
