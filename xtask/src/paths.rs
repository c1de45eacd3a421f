//! Where things live: the repository root and the folders under `target/` that xtask fills.

use std::path::{Path, PathBuf};

/// The workspace root (the folder above `xtask/`), wherever xtask is run from.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `target/` of the workspace: images, DTBs, Linux assets and logs go here even when
/// `CARGO_TARGET_DIR` points cargo's own output elsewhere.
pub fn target() -> PathBuf {
    repo_root().join("target")
}

/// Where cargo puts its build output (honours `CARGO_TARGET_DIR`).
pub fn cargo_target() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        _ => target(),
    }
}

/// Raw images for QEMU: `el2.bin`, `demo-host.bin`.
pub fn images() -> PathBuf {
    target().join("images")
}

/// QEMU's own DTBs (cached by machine options) and per-boot work folders.
pub fn qemu() -> PathBuf {
    target().join("qemu")
}

/// Console logs of the QEMU tests, one file per test.
pub fn qemu_logs() -> PathBuf {
    target().join("qemu-logs")
}

/// Debian's arm64 kernel, busybox and the initramfs built from it.
pub fn linux() -> PathBuf {
    target().join("linux")
}

/// `path` relative to the repository root when it is inside it, for shorter messages.
pub fn pretty(path: &Path) -> String {
    let root = repo_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
