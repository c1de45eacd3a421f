//! Refusing, before QEMU starts, a file the boot cannot use: a missing path, a directory,
//! or a host kernel that is not an arm64 Image. The payload enters the kernel module at its
//! first byte at EL1 and never looks at its format, so a wrong file otherwise shows up only
//! as a silent hang after "entering host".

use std::io::Read;
use std::path::Path;

use crate::error::{Context, Result, bail};
use crate::layout::{ARM64_MAGIC_OFFSET, has_arm64_magic};

/// `path` exists and is a regular file; `what` names its role ("host kernel").
pub fn check_file(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Err(_) => bail!("{what} {} does not exist", path.display()),
        Ok(m) if m.is_dir() => bail!("{what} {} is a directory, not a file", path.display()),
        Ok(m) if !m.is_file() => bail!("{what} {} is not a regular file", path.display()),
        Ok(_) => Ok(()),
    }
}

/// `path` is a file with the arm64 Image header (Linux's Documentation/arch/arm64/booting.rst:
/// the magic "ARM\x64" at offset 0x38), the format the payload (and QEMU's -kernel, U-Boot's
/// booti) boot. The error says what the file looks like instead.
pub fn check_arm64_image(path: &Path, what: &str) -> Result<()> {
    check_file(path, what)?;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .context(|| format!("opening {}", path.display()))?
        .take(64)
        .read_to_end(&mut head)?;
    if has_arm64_magic(&head) {
        return Ok(());
    }
    bail!(
        "{what} {} is not an arm64 Image: {}; the payload enters the module's first byte, \
         so only an arm64 Image (magic \"ARM\\x64\" at offset {ARM64_MAGIC_OFFSET:#x}) boots. \
         A raw binary built to run from its first byte (kvm-unit-tests' .flat) can be \
         allowed with --raw-kernel",
        path.display(),
        what_it_is(&head)
    )
}

/// A short description of a file that is not an arm64 Image, from its first bytes.
pub fn what_it_is(head: &[u8]) -> String {
    if head.starts_with(b"\x7fELF") {
        "it is an ELF file (objcopy -O binary turns it into a raw image; for Linux use \
         arch/arm64/boot/Image, not vmlinux)"
            .into()
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "it is gzip-compressed (a vmlinuz or Image.gz: gunzip it first)".into()
    } else if head.starts_with(b"070701") || head.starts_with(b"070702") {
        "it is a cpio archive (an initramfs: give it as --initrd)".into()
    } else if head.len() < ARM64_MAGIC_OFFSET + 4 {
        format!(
            "it is only {} bytes long, shorter than an Image header",
            head.len()
        )
    } else if head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "it is a text file".into()
    } else {
        format!(
            "its bytes at {ARM64_MAGIC_OFFSET:#x} are {:02x?}, not 41 52 4d 64",
            &head[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-image-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn image_header() -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn a_directory_says_it_is_a_directory() {
        let err = check_file(&std::env::temp_dir(), "host kernel")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = check_arm64_image(&std::env::temp_dir(), "host kernel")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn a_missing_file_says_it_does_not_exist() {
        let err = check_file(Path::new("/nonexistent/kernel"), "host kernel")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "host kernel /nonexistent/kernel does not exist");
    }

    #[test]
    fn an_arm64_image_is_accepted() {
        check_arm64_image(&temp("Image", &image_header()), "host kernel").unwrap();
    }

    #[test]
    fn a_text_file_is_refused_before_booting_with_the_reason() {
        let path = temp(
            "notes.txt",
            b"console=ttyAMA0 this is not a kernel\n"
                .repeat(4)
                .as_slice(),
        );
        let err = check_arm64_image(&path, "host kernel")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not an arm64 Image: it is a text file"),
            "{err}"
        );
        assert!(err.contains("--raw-kernel"), "{err}");
    }

    #[test]
    fn an_elf_file_is_refused_and_named() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        let err = check_arm64_image(&temp("vmlinux", &elf), "host kernel")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is an ELF file"), "{err}");
    }

    #[test]
    fn compressed_and_cpio_files_are_named() {
        assert!(what_it_is(&[0x1f, 0x8b, 8, 0]).contains("gzip"));
        assert!(what_it_is(b"070701000000").contains("cpio"));
        assert!(what_it_is(&[0u8; 64]).contains("not 41 52 4d 64"));
        assert!(what_it_is(&[0u8; 8]).contains("only 8 bytes"));
    }
}
