//! Host tools xtask needs, installed with apt-get when missing (as root on Debian) or else
//! named with the exact command to run.

use std::path::PathBuf;
use std::process::Command;

use crate::error::{Result, bail};
use crate::{apt, cmd, paths};

/// Debian packages that provide everything below, installed together.
pub const PACKAGES: &[&str] = &[
    "qemu-system-arm",
    "u-boot-qemu",
    "u-boot-tools",
    "device-tree-compiler",
    "cpio",
];

/// Programs that must be on PATH, with the package that ships each.
const PROGRAMS: &[(&str, &str)] = &[
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("dtc", "device-tree-compiler"),
    ("mkenvimage", "u-boot-tools"),
    ("cpio", "cpio"),
    ("gzip", "gzip"),
];

/// The bare-metal Rust target `el2` and the test images build for.
/// Bare-metal targets the images are built for (rust-toolchain.toml lists them too).
pub const RUST_TARGETS: [&str; 2] = [crate::build::EL2_TARGET, crate::build::IMAGE_TARGET];

/// Where Debian's `u-boot-qemu` puts the arm64 QEMU build.
const UBOOT_BIN_DEFAULT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// Makes sure every tool is there, installing them if this is root on Debian.
pub fn ensure() -> Result<()> {
    ensure_rust_target()?;
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let install_line = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
         --no-install-recommends {}",
        PACKAGES.join(" ")
    );
    if !(cmd::is_root() && apt::is_debian()) {
        bail!(
            "missing tools from packages {}; install them with:\n    {install_line}",
            missing.join(", ")
        );
    }
    apt::install(PACKAGES)?;
    let still = missing_packages();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(", "));
    }
    Ok(())
}

/// Packages whose program or file is not there.
fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(program, _)| cmd::find_on_path(program).is_none())
        .map(|(_, package)| *package)
        .collect();
    if uboot_bin().is_none() {
        missing.push("u-boot-qemu");
    }
    missing.dedup();
    missing
}

/// U-Boot for QEMU's arm64 `virt` machine, from the `u-boot-qemu` package.
pub fn uboot_bin() -> Option<PathBuf> {
    let default = PathBuf::from(UBOOT_BIN_DEFAULT);
    if default.is_file() {
        return Some(default);
    }
    // Another Debian release may move it: ask dpkg where the package put it.
    let listing = cmd::output(Command::new("dpkg").args(["-L", "u-boot-qemu"])).ok()?;
    listing
        .lines()
        .map(PathBuf::from)
        .find(|p| p.ends_with("qemu_arm64/u-boot.bin") && p.is_file())
}

/// rust-toolchain.toml makes rustup install the target on first use; this covers a rustup
/// that did not (for example one with auto-install turned off).
fn ensure_rust_target() -> Result<()> {
    if cmd::find_on_path("rustup").is_none() {
        return Ok(());
    }
    let installed = cmd::output(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(paths::repo_root()),
    )?;
    for target in RUST_TARGETS {
        if installed.lines().any(|l| l.trim() == target) {
            continue;
        }
        eprintln!("xtask: rustup target add {target}");
        cmd::run(
            Command::new("rustup")
                .args(["target", "add", target])
                .current_dir(paths::repo_root()),
        )?;
    }
    Ok(())
}
