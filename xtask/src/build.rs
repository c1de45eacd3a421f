//! `cargo xtask build`: the bare-metal binaries, turned into raw images QEMU and U-Boot load.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::layout::{self, ARM64_MAGIC_OFFSET};
use crate::{cmd, paths, prereqs};

/// A bare-metal binary of the workspace that xtask turns into `target/images/<name>.bin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// The EL2 payload; must be a raw arm64 Image (QEMU `-kernel`, U-Boot `booti`).
    El2,
    /// The payload's test build (`--features selftest`, `el2-selftest.bin`): adds the
    /// debug calls the stress host uses (DEBUG_CHECK_INVARIANTS). Never the release payload.
    El2Selftest,
    /// The protected guest the test hosts run (embedded in them).
    TestGuest,
    /// The demo host the payload starts at EL1 (`cargo xtask run`).
    DemoHost,
    /// The host that runs the ABI scenarios against the payload.
    AbiHost,
    /// The host that counts instructions per hypercall (`cargo xtask bench`).
    BenchHost,
    /// The host that runs the SMP stress and the adversarial cases (on `El2Selftest`).
    StressHost,
    /// The host that runs the conformance suite of docs/abi.md (`cargo xtask conformance`).
    ConformanceHost,
    /// The host that attacks through the DMA masters EL2 cannot confine (on `El2Selftest`).
    DmaHost,
    /// The host that aims a PCI DMA engine (QEMU's edu) behind the SMMUv3 at memory it does
    /// not own.
    SmmuHost,
}

/// Target of the payload: soft-float, so that EL2's own code never touches the FP/SIMD
/// registers that hold the host's or a guest's state.
pub const EL2_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Target of the EL1 test images.
pub const IMAGE_TARGET: &str = "aarch64-unknown-none";

impl Image {
    /// Every image, in an order where each comes after the images it embeds.
    pub const ALL: [Image; 10] = [
        Image::El2,
        Image::El2Selftest,
        Image::TestGuest,
        Image::DemoHost,
        Image::AbiHost,
        Image::BenchHost,
        Image::StressHost,
        Image::ConformanceHost,
        Image::DmaHost,
        Image::SmmuHost,
    ];

    /// Cargo package (and binary) name.
    pub fn package(self) -> &'static str {
        match self {
            Image::El2 | Image::El2Selftest => "el2",
            Image::TestGuest => "test-guest",
            Image::DemoHost => "demo-host",
            Image::AbiHost => "abi-host",
            Image::StressHost => "stress-host",
            Image::BenchHost => "bench-host",
            Image::ConformanceHost => "conformance-host",
            Image::DmaHost => "dma-host",
            Image::SmmuHost => "smmu-host",
        }
    }

    pub fn target(self) -> &'static str {
        match self {
            // The guest too: soft-float keeps its code off the FP/SIMD registers, so it
            // runs the same whether or not its CPACR_EL1 enables them.
            Image::El2 | Image::El2Selftest | Image::TestGuest => EL2_TARGET,
            _ => IMAGE_TARGET,
        }
    }

    /// Images this one includes (`include_bytes!`), with the environment variable that
    /// names each one's raw file at build time.
    pub fn embeds(self) -> &'static [(Image, &'static str)] {
        match self {
            Image::DemoHost
            | Image::AbiHost
            | Image::BenchHost
            | Image::StressHost
            | Image::DmaHost => &[(Image::TestGuest, "TEST_GUEST_BIN")],
            Image::SmmuHost => &[(Image::TestGuest, "TEST_GUEST_BIN")],
            _ => &[],
        }
    }

    /// Cargo features the image is built with.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Image::El2Selftest => &["selftest"],
            _ => &[],
        }
    }

    /// The raw image's name: `target/images/<name>.bin`.
    pub fn name(self) -> &'static str {
        match self {
            Image::El2Selftest => "el2-selftest",
            other => other.package(),
        }
    }

    /// The raw image xtask writes.
    pub fn path(self) -> PathBuf {
        paths::images().join(format!("{}.bin", self.name()))
    }

    /// Cargo's target directory for the image. The selftest payload is the same package
    /// as the payload with other features: it gets its own directory so that neither
    /// build overwrites the other's ELF.
    fn cargo_target_dir(self) -> PathBuf {
        match self {
            Image::El2Selftest => paths::cargo_target().join("selftest"),
            _ => paths::cargo_target(),
        }
    }

    pub fn elf(self) -> PathBuf {
        self.cargo_target_dir()
            .join(self.target())
            .join("release")
            .join(self.package())
    }
}

/// `cargo xtask build`.
pub fn build_all() -> Result<()> {
    prereqs::ensure()?;
    for path in build(&Image::ALL)? {
        println!("built {}", paths::pretty(&path));
    }
    Ok(())
}

/// `images` and everything they embed, each after what it embeds.
fn with_dependencies(images: &[Image]) -> Vec<Image> {
    Image::ALL
        .into_iter()
        .filter(|i| {
            images.contains(i)
                || images
                    .iter()
                    .any(|wanted| wanted.embeds().iter().any(|(e, _)| e == i))
        })
        .collect()
}

/// The cargo command that builds one image (release, its own target, with the paths of
/// the images it embeds in the environment).
pub fn cargo_build_command(image: Image) -> Command {
    let mut cargo = cargo_command();
    cargo
        .args([
            "build",
            "--release",
            "--target",
            image.target(),
            "-p",
            image.package(),
        ])
        .env("CARGO_TARGET_DIR", image.cargo_target_dir())
        .current_dir(paths::repo_root());
    if !image.features().is_empty() {
        cargo.args(["--features", &image.features().join(",")]);
    }
    for (embedded, var) in image.embeds() {
        cargo.env(var, embedded.path());
    }
    cargo
}

/// Builds `images` (and what they embed) and converts each to a raw binary; returns the
/// paths of `images` in the same order. Cargo's output goes to the terminal.
pub fn build(images: &[Image]) -> Result<Vec<PathBuf>> {
    for image in with_dependencies(images) {
        cmd::run(&mut cargo_build_command(image))?;
        convert(&[image])?;
    }
    Ok(images.iter().map(|i| i.path()).collect())
}

/// As [`build`], with cargo's output captured and returned on failure (for the suite).
pub fn build_quiet(images: &[Image]) -> std::result::Result<Vec<PathBuf>, (String, Vec<String>)> {
    for image in with_dependencies(images) {
        let mut cargo = cargo_build_command(image);
        let out = cargo
            .output()
            .map_err(|e| (format!("running cargo: {e}"), Vec::new()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err((
                format!("building {} failed", image.package()),
                text.lines().map(str::to_string).collect(),
            ));
        }
        convert(&[image]).map_err(|e| (e.to_string(), Vec::new()))?;
    }
    Ok(images.iter().map(|i| i.path()).collect())
}

/// ELF -> `target/images/<name>.bin` for images cargo has built; checks el2's header.
pub fn convert(images: &[Image]) -> Result<Vec<PathBuf>> {
    let out_dir = paths::images();
    std::fs::create_dir_all(&out_dir).context(|| format!("creating {}", out_dir.display()))?;
    let objcopy = objcopy()?;
    let mut outputs = Vec::new();
    for image in images {
        let elf = image.elf();
        let bin = image.path();
        let fresh = bin.with_extension("bin.new");
        cmd::run(
            Command::new(&objcopy)
                .args(["-O", "binary"])
                .arg(&elf)
                .arg(&fresh),
        )?;
        replace_if_changed(&fresh, &bin)?;
        if matches!(image, Image::El2 | Image::El2Selftest) {
            check_arm64_image(&bin)?;
        }
        outputs.push(bin);
    }
    Ok(outputs)
}

/// Moves `fresh` over `target` only if their contents differ; otherwise deletes `fresh`
/// and leaves `target` (and its modification time) alone. The images that embed another
/// (`include_bytes!` of test-guest.bin) have build scripts that say
/// `cargo:rerun-if-changed` on it: rewriting an identical file would make cargo rebuild
/// all six of them on every `cargo xtask run` or `build` (about 15 s here). Returns whether
/// `target` changed.
fn replace_if_changed(fresh: &Path, target: &Path) -> Result<bool> {
    let new = std::fs::read(fresh).context(|| format!("reading {}", fresh.display()))?;
    if std::fs::read(target).is_ok_and(|old| old == new) {
        std::fs::remove_file(fresh).context(|| format!("removing {}", fresh.display()))?;
        return Ok(false);
    }
    std::fs::rename(fresh, target)
        .context(|| format!("renaming {} to {}", fresh.display(), target.display()))?;
    Ok(true)
}

/// The cargo that runs xtask (set by `cargo run`), so nested builds use the same toolchain.
pub fn cargo_command() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `rust-objcopy` from the toolchain's sysroot, else `llvm-objcopy` from PATH.
fn objcopy() -> Result<PathBuf> {
    let sysroot = cmd::output(
        Command::new("rustc")
            .args(["--print", "sysroot"])
            .current_dir(paths::repo_root()),
    )?;
    let host = host_triple()?;
    let bundled = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-objcopy");
    if bundled.is_file() {
        return Ok(bundled);
    }
    if let Some(llvm) = cmd::find_on_path("llvm-objcopy") {
        return Ok(llvm);
    }
    bail!(
        "no objcopy: neither {} nor llvm-objcopy on PATH (apt-get install llvm)",
        bundled.display()
    )
}

/// The toolchain's host triple (`x86_64-unknown-linux-gnu` on the project's machines).
fn host_triple() -> Result<String> {
    let verbose = cmd::output(
        Command::new("rustc")
            .arg("-vV")
            .current_dir(paths::repo_root()),
    )?;
    match verbose.lines().find_map(|l| l.strip_prefix("host: ")) {
        Some(host) => Ok(host.trim().to_string()),
        None => bail!("`rustc -vV` printed no host triple"),
    }
}

/// QEMU's `-kernel` and U-Boot's `booti` only accept the payload as an arm64 Image.
fn check_arm64_image(bin: &Path) -> Result<()> {
    let data = std::fs::read(bin).context(|| format!("reading {}", bin.display()))?;
    if layout::has_arm64_magic(&data) {
        return Ok(());
    }
    let found = data
        .get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4)
        .map(|b| format!("{b:02x?}"))
        .unwrap_or_else(|| format!("a file of only {} bytes", data.len()));
    bail!(
        "{} is not an arm64 Image: expected the magic \"ARM\\x64\" (41 52 4d 64) at offset \
         {ARM64_MAGIC_OFFSET:#x}, found {found}; the payload's entry must start with the \
         arm64 Image header",
        paths::pretty(bin)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_image_keeps_its_file_and_modification_time() {
        let dir = std::env::temp_dir().join(format!("xtask-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.bin");
        let fresh = dir.join("x.bin.new");
        std::fs::write(&target, b"same").unwrap();
        let old_time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(old_time)
            .unwrap();

        std::fs::write(&fresh, b"same").unwrap();
        assert!(!replace_if_changed(&fresh, &target).unwrap());
        assert_eq!(
            std::fs::metadata(&target).unwrap().modified().unwrap(),
            old_time
        );
        assert!(!fresh.exists());

        std::fs::write(&fresh, b"different").unwrap();
        assert!(replace_if_changed(&fresh, &target).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"different");
        assert!(!fresh.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
