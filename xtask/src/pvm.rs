//! The Linux host's protected-VM pieces: the `el2_pvm` kernel module (linux-driver/, built
//! against Debian's own headers for the kernel `--host linux` boots), the VMM (vmm/, a
//! static aarch64-unknown-linux-musl binary) and the guest it runs (tests/test-guest).
//! The headers and the module are cached under `target/linux/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{self, Image};
use crate::error::{Context, Result, bail};
use crate::{apt, cmd, paths};

/// The VMM's cargo target.
pub const VMM_TARGET: &str = "aarch64-unknown-linux-musl";
/// The cross compiler Kbuild uses for the module.
const CROSS_COMPILE: &str = "aarch64-linux-gnu-";

/// What the initramfs gets.
pub struct PvmAssets {
    pub module: PathBuf,
    pub vmm: PathBuf,
    pub guest: PathBuf,
}

/// Builds (or finds up to date) the module, the VMM and the guest, for the kernel of
/// Debian package `kernel_package` (`linux-image-<abi>-arm64-unsigned`).
pub fn ensure(kernel_package: &str) -> Result<PvmAssets> {
    let guest = build::build(&[Image::TestGuest])?.remove(0);
    let vmm = build_vmm()?;
    let module = build_module(kernel_package)?;
    Ok(PvmAssets { module, vmm, guest })
}

fn build_vmm() -> Result<PathBuf> {
    cmd::run(
        build::cargo_command()
            .args(["build", "--release", "--target", VMM_TARGET, "-p", "vmm"])
            .current_dir(paths::repo_root()),
    )?;
    Ok(paths::cargo_target()
        .join(VMM_TARGET)
        .join("release")
        .join("vmm"))
}

/// `6.1.0-57-arm64` for `linux-image-6.1.0-57-arm64-unsigned`.
fn kernel_release(package: &str) -> Option<&str> {
    package
        .strip_prefix("linux-image-")?
        .strip_suffix("-unsigned")
}

/// The headers of `release`, extracted under `target/linux/headers/`, with the flavour
/// Makefile's absolute `include /usr/src/...` pointed into that folder.
fn ensure_headers(release: &str) -> Result<PathBuf> {
    let root = paths::linux().join("headers");
    let flavour = root.join(format!("usr/src/linux-headers-{release}"));
    if flavour.join("Makefile").is_file() && flavour.join("scripts/mod/modpost").exists() {
        return Ok(flavour);
    }
    if !(cmd::is_root() && apt::is_debian()) {
        bail!(
            "the module is built against Debian's linux-headers-{release}, fetched with \
             apt-get download; run `cargo xtask` as root on Debian once"
        );
    }
    let Some(abi) = release.strip_suffix("-arm64") else {
        bail!("kernel release {release} is not an -arm64 flavour");
    };
    let major_minor: Vec<&str> = abi.split('.').take(2).collect();
    let kbuild = format!("linux-kbuild-{}", major_minor.join("."));
    apt::update_once()?;
    let debs = root.with_extension("debs");
    if debs.exists() {
        std::fs::remove_dir_all(&debs)?;
    }
    std::fs::create_dir_all(&debs)?;
    // The kbuild package must be the machine's own (amd64): its tools run here.
    cmd::run(
        apt::apt_get()
            .args([
                "download",
                &format!("linux-headers-{release}:arm64"),
                &format!("linux-headers-{abi}-common"),
                &kbuild,
            ])
            .current_dir(&debs),
    )?;
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    for deb in std::fs::read_dir(&debs)? {
        let deb = deb?.path();
        cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    }
    std::fs::remove_dir_all(&debs)?;
    let makefile = flavour.join("Makefile");
    let text = std::fs::read_to_string(&makefile)
        .context(|| format!("linux-headers-{release} has no {}", makefile.display()))?;
    let fixed = text.replace(
        "include /usr/src/",
        &format!("include {}/usr/src/", root.display()),
    );
    std::fs::write(&makefile, fixed)?;
    Ok(flavour)
}

fn ensure_cross_compiler() -> Result<()> {
    if cmd::find_on_path(&format!("{CROSS_COMPILE}gcc")).is_some() {
        return Ok(());
    }
    if !(cmd::is_root() && apt::is_debian()) {
        bail!("{CROSS_COMPILE}gcc not found: apt-get install gcc-aarch64-linux-gnu");
    }
    apt::install(&["gcc-aarch64-linux-gnu"])
}

/// Newest modification time of the files under `dir`.
fn newest(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(time) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(time);
            }
        }
    }
    newest
}

/// `make modules` in a copy of linux-driver/ under `target/linux/el2_pvm/` (Kbuild writes
/// its objects next to the sources); skipped when the module is newer than every source.
fn build_module(kernel_package: &str) -> Result<PathBuf> {
    let Some(release) = kernel_release(kernel_package) else {
        bail!("cannot tell the kernel release from the package {kernel_package}");
    };
    let source = paths::repo_root().join("linux-driver");
    let work = paths::linux().join("el2_pvm");
    let module = work.join("el2_pvm.ko");
    let stamp = work.join("release");
    let up_to_date = std::fs::read_to_string(&stamp).is_ok_and(|r| r.trim() == release)
        && module
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|built| built > newest(&source));
    if up_to_date {
        return Ok(module);
    }
    ensure_cross_compiler()?;
    let headers = ensure_headers(release)?;
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    cmd::run(Command::new("cp").arg("-r").arg(&source).arg(&work))?;
    cmd::run(
        Command::new("make")
            .arg("-C")
            .arg(&headers)
            .arg(format!("M={}", work.display()))
            .args([
                "ARCH=arm64",
                &format!("CROSS_COMPILE={CROSS_COMPILE}"),
                "modules",
            ]),
    )?;
    if !module.is_file() {
        bail!("make modules left no {}", module.display());
    }
    std::fs::write(&stamp, format!("{release}\n"))?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_release_comes_from_the_image_package() {
        assert_eq!(
            kernel_release("linux-image-6.1.0-57-arm64-unsigned"),
            Some("6.1.0-57-arm64")
        );
        assert_eq!(kernel_release("busybox"), None);
    }
}
