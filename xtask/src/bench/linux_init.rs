//! The initramfs of the bench's Linux boots: `/dev/console` and one program, `/init`
//! (tests/bench-host/linux-init/init.rs), which prints CNTVCT_EL0 as its first act and
//! powers off. The program is compiled here with rustc for `aarch64-unknown-none` (static
//! ELF, raw system calls: no Linux target or libc needed) and the archive is written here
//! too (newc cpio, uncompressed), so no root is needed for the device node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::IMAGE_TARGET;
use crate::error::{Context, Result};
use crate::{cmd, paths};

/// The source of `/init`.
pub fn source() -> PathBuf {
    paths::repo_root().join("tests/bench-host/linux-init/init.rs")
}

/// Builds `/init` and the initramfs under `target/bench/`; returns the archive's path.
pub fn build() -> Result<PathBuf> {
    let dir = paths::target().join("bench");
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    let init = dir.join("init");
    compile(&source(), &init)?;
    let program = std::fs::read(&init).context(|| format!("reading {}", init.display()))?;
    let archive = dir.join("initramfs.cpio");
    std::fs::write(&archive, initramfs(&program))
        .context(|| format!("writing {}", archive.display()))?;
    Ok(archive)
}

/// rustc, from the repository root so that rust-toolchain.toml picks the toolchain.
fn compile(source: &Path, out: &Path) -> Result<()> {
    let mut rustc = Command::new("rustc");
    rustc
        .args(["--edition", "2024", "--target", IMAGE_TARGET])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "relocation-model=static",
        ])
        .args([
            "-C",
            "debuginfo=0",
            "-C",
            "strip=symbols",
            "-C",
            "link-arg=--entry=_start",
        ])
        .arg("-o")
        .arg(out)
        .arg(source)
        .current_dir(paths::repo_root());
    cmd::output(&mut rustc).map(drop)
}

/// File types and permissions of the archive's entries (st_mode).
const DIRECTORY: u32 = 0o040_755;
const CHAR_DEVICE: u32 = 0o020_600;
const EXECUTABLE: u32 = 0o100_755;

/// One file of the archive.
struct Entry<'a> {
    name: &'a str,
    /// st_mode: type and permissions.
    mode: u32,
    /// Major and minor number of a device node.
    rdev: (u32, u32),
    data: &'a [u8],
}

/// A newc cpio archive holding `/dev`, `/dev/console` (char 5:1) and `/init`.
pub fn initramfs(init: &[u8]) -> Vec<u8> {
    let entries = [
        Entry {
            name: "dev",
            mode: DIRECTORY,
            rdev: (0, 0),
            data: &[],
        },
        Entry {
            name: "dev/console",
            mode: CHAR_DEVICE,
            rdev: (5, 1),
            data: &[],
        },
        Entry {
            name: "init",
            mode: EXECUTABLE,
            rdev: (0, 0),
            data: init,
        },
    ];
    let mut archive = Vec::new();
    for (inode, entry) in entries.iter().enumerate() {
        push_entry(&mut archive, inode as u32 + 1, entry);
    }
    let trailer = Entry {
        name: "TRAILER!!!",
        mode: 0,
        rdev: (0, 0),
        data: &[],
    };
    push_entry(&mut archive, 0, &trailer);
    archive
}

/// One newc entry: the 110-byte ASCII header, the name with its NUL, the data, each padded
/// to 4 bytes (the kernel's initramfs reader insists on the alignment).
fn push_entry(out: &mut Vec<u8>, inode: u32, entry: &Entry) {
    let links = if entry.mode == DIRECTORY { 2 } else { 1 };
    let fields = [
        inode,
        entry.mode,
        0, // uid
        0, // gid
        links,
        0, // mtime
        entry.data.len() as u32,
        0, // dev major
        0, // dev minor
        entry.rdev.0,
        entry.rdev.1,
        entry.name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(entry.name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(entry.data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_is_newc_with_console_init_and_trailer() {
        let archive = initramfs(b"\x7fELF");
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        let text = String::from_utf8_lossy(&archive);
        for name in ["dev\0", "dev/console\0", "init\0", "TRAILER!!!\0"] {
            assert!(text.contains(name), "{name}");
        }
        // The console entry: mode 020600, rdev 5:1 (fields 2, 10 and 11 of its header).
        let console = text.find("dev/console").unwrap() - 110;
        let header = &text[console..console + 110];
        assert_eq!(&header[14..22], "00002180");
        assert_eq!(&header[78..94], "0000000500000001");
    }

    #[test]
    fn entries_are_padded_so_every_header_is_aligned() {
        let archive = initramfs(b"12345");
        let text = String::from_utf8_lossy(&archive);
        let mut at = 0;
        while let Some(found) = text[at..].find("070701") {
            assert_eq!((at + found) % 4, 0);
            at += found + 6;
        }
    }
}
