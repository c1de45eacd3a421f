//! The few Debian package-manager calls xtask makes (only as root on Debian).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmd;
use crate::error::Result;

/// Whether this is a Debian (or derived) system where apt-get is the way to install tools.
pub fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists()
}

static UPDATED: AtomicBool = AtomicBool::new(false);

/// `apt-get update`, at most once per xtask process.
pub fn update_once() -> Result<()> {
    if UPDATED.load(Ordering::Relaxed) {
        return Ok(());
    }
    update()
}

/// `apt-get update` now, e.g. after a new architecture was added (lists fetched earlier in
/// this process do not cover it).
pub fn update() -> Result<()> {
    eprintln!("xtask: apt-get update");
    cmd::run(apt_get().arg("update"))?;
    UPDATED.store(true, Ordering::Relaxed);
    Ok(())
}

/// `apt-get install -y --no-install-recommends PACKAGES`.
pub fn install(packages: &[&str]) -> Result<()> {
    update_once()?;
    eprintln!("xtask: apt-get install {}", packages.join(" "));
    cmd::run(
        apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages),
    )
}

/// `apt-get` that never asks questions.
pub fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}
