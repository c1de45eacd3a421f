//! Guest-physical addresses xtask relies on, in one place, and the check that what it loads
//! there fits in RAM without overlapping.
//!
//! The host kernel module goes at [`HOST_KERNEL_ADDR`], just above QEMU's DTB at RAM base +
//! 128 MiB, and the ramdisk right after the kernel's in-memory size ([`ramdisk_addr`]), so
//! that `--mem 256M` holds the demo host and Debian's Linux with its initramfs.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Context, Result, bail};

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Start of RAM on QEMU `virt`.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Where QEMU's `-kernel` puts a raw arm64 Image with text_offset 0.
pub const PAYLOAD_DIRECT_LOAD: u64 = 0x4020_0000;
/// Where QEMU puts the DTB when booting `-kernel` without `-initrd` (RAM base + 128 MiB).
pub const QEMU_DTB_ADDR: u64 = 0x4800_0000;
/// Room kept for that DTB (QEMU limits it to 1 MiB plus its own padding).
pub const QEMU_DTB_ROOM: u64 = 2 * MIB;
/// Host kernel (or test image): the `multiboot,kernel` module. The test hosts are linked
/// here (`linker/*-host.ld`); Linux may be anywhere 2 MiB-aligned (its boot protocol).
pub const HOST_KERNEL_ADDR: u64 = 0x4840_0000;
/// Alignment of the ramdisk after the kernel (Linux only needs a page; 2 MiB keeps the
/// kernel's stage-2 blocks whole).
pub const RAMDISK_ALIGN: u64 = 2 * MIB;
/// The least `--mem`: QEMU's DTB sits at RAM base + 128 MiB and the modules above it.
pub const MIN_MEM: u64 = 256 * MIB;
/// Where U-Boot's `qfw load` puts QEMU's `-kernel` image.
pub const UBOOT_KERNEL_STAGING: u64 = 0x4040_0000;
/// Where U-Boot's `qfw load` puts QEMU's `-initrd` (also bounds the staged kernel).
pub const UBOOT_INITRD_STAGING: u64 = 0x4400_0000;
/// Where `booti` moves an Image whose header asks for "anywhere" placement (RAM base +
/// text_offset 0).
pub const UBOOT_BOOTI_LOAD: u64 = RAM_BASE;
/// U-Boot relocates itself, its heap, stack and its DTB copy to the top of RAM.
pub const UBOOT_TOP_RESERVE: u64 = 64 * MIB;

// The kernel module sits above QEMU's DTB and inside the smallest RAM accepted, 2 MiB-aligned.
const _: () = assert!(QEMU_DTB_ADDR + QEMU_DTB_ROOM <= HOST_KERNEL_ADDR);
const _: () = assert!(HOST_KERNEL_ADDR < RAM_BASE + MIN_MEM);
const _: () = assert!(HOST_KERNEL_ADDR.is_multiple_of(2 * MIB));

/// Where the ramdisk goes: after the kernel's in-memory size (`image_size`, which covers
/// its .bss), so nothing the kernel clears at boot lands on it.
pub fn ramdisk_addr(kernel_addr: u64, kernel_span: u64) -> u64 {
    (kernel_addr + kernel_span).next_multiple_of(RAMDISK_ALIGN)
}

/// Offset of the arm64 Image magic `ARM\x64` in the Image header.
pub const ARM64_MAGIC_OFFSET: usize = 0x38;
pub const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";

/// RAM size as given to QEMU's `-m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemSize(u64);

impl MemSize {
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// First address after RAM.
    pub fn ram_end(self) -> u64 {
        RAM_BASE + self.0
    }

    /// The `-m` argument (QEMU reads a bare number as MiB).
    pub fn qemu_arg(self) -> String {
        if self.0.is_multiple_of(GIB) {
            format!("{}G", self.0 / GIB)
        } else {
            format!("{}M", self.0 / MIB)
        }
    }
}

impl FromStr for MemSize {
    type Err = String;

    /// Accepts what `-m` accepts: a number with an optional K/M/G/T suffix (MiB by default).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((i, _)) => s.split_at(i),
            None => (s, "M"),
        };
        let shift = match unit.trim_end_matches(['B', 'b', 'i']) {
            "K" | "k" => 10,
            "M" | "m" => 20,
            "G" | "g" => 30,
            "T" | "t" => 40,
            other => return Err(format!("unknown size unit {other:?} in {s:?}")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size like 1G or 2048M"))?;
        let bytes = n
            .checked_mul(1 << shift)
            .filter(|b| *b >= MIN_MEM && b.is_multiple_of(MIB))
            .ok_or_else(|| {
                format!(
                    "{s:?}: RAM must be a whole number of MiB, at least {}M (QEMU's DTB is at \
                     RAM + 128 MiB and the host modules go above it)",
                    MIN_MEM / MIB
                )
            })?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for MemSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qemu_arg())
    }
}

/// A named range of guest-physical memory that something is loaded into or owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub start: u64,
    pub len: u64,
}

impl Region {
    pub fn new(name: impl Into<String>, start: u64, len: u64) -> Self {
        Self {
            name: name.into(),
            start,
            len,
        }
    }

    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{:#x}..{:#x})", self.name, self.start, self.end())
    }
}

/// Fails with a message naming the culprits if a region leaves RAM or two regions overlap.
pub fn check_regions(regions: &[Region], mem: MemSize) -> Result<()> {
    for r in regions {
        if r.start < RAM_BASE || r.end() > mem.ram_end() {
            bail!(
                "{r} does not fit in RAM [{RAM_BASE:#x}..{:#x}) with -m {mem}",
                mem.ram_end()
            );
        }
    }
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            if a.overlaps(b) {
                bail!(
                    "{a} overlaps {b}: the images are too large for the fixed load addresses or RAM is too small"
                );
            }
        }
    }
    Ok(())
}

/// How much memory an image occupies once loaded: its file size, or for an arm64 Image the
/// `image_size` from its header if larger (it covers .bss, which the file does not hold).
pub fn image_span(contents_head: &[u8], file_len: u64) -> u64 {
    let header_size = arm64_image_size(contents_head).unwrap_or(0);
    file_len.max(header_size)
}

/// `text_offset + image_size` from an arm64 Image header, if `head` starts with one.
pub fn arm64_image_size(head: &[u8]) -> Option<u64> {
    if !has_arm64_magic(head) {
        return None;
    }
    let le64 = |at: usize| {
        let bytes: [u8; 8] = head.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    let text_offset = le64(0x08)?;
    let image_size = le64(0x10)?;
    Some(text_offset.saturating_add(image_size))
}

pub fn has_arm64_magic(head: &[u8]) -> bool {
    head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC.as_slice())
}

/// [`image_span`] of a file on disk.
pub fn file_span(path: &Path) -> Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(64);
    file.by_ref().take(64).read_to_end(&mut head)?;
    Ok(image_span(&head, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        h[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(ARM64_MAGIC);
        h
    }

    #[test]
    fn mem_sizes_parse_like_qemu_and_round_trip() {
        assert_eq!("1G".parse::<MemSize>(), Ok(MemSize::from_bytes(GIB)));
        assert_eq!("2048M".parse::<MemSize>().unwrap().qemu_arg(), "2G");
        assert_eq!("1536".parse::<MemSize>().unwrap().qemu_arg(), "1536M");
        assert_eq!("4GiB".parse::<MemSize>(), Ok(MemSize::from_bytes(4 * GIB)));
        assert!("1X".parse::<MemSize>().is_err());
        assert!("64M".parse::<MemSize>().is_err());
        assert_eq!(
            "256M".parse::<MemSize>(),
            Ok(MemSize::from_bytes(256 * MIB))
        );
        let err = "128M".parse::<MemSize>().unwrap_err();
        assert!(err.contains("at least 256M"), "{err}");
        assert!("".parse::<MemSize>().is_err());
    }

    #[test]
    fn image_span_uses_the_header_size_when_it_covers_bss() {
        assert_eq!(image_span(&header(0, 0x20_0000), 0x1000), 0x20_0000);
        assert_eq!(image_span(&header(0, 0x10), 0x1000), 0x1000);
        assert_eq!(image_span(&[0u8; 64], 0x1234), 0x1234);
        assert_eq!(arm64_image_size(&header(0x8_0000, 0x100)), Some(0x8_0100));
    }

    #[test]
    fn debians_kernel_and_initramfs_fit_in_256m() {
        // The sizes of Debian's 6.1 arm64 Image (image_size) and the Linux host's
        // initramfs, with a 64 MiB margin for the kernel's own memory.
        let mem = MemSize::from_bytes(MIN_MEM);
        let kernel = 0x201_0000;
        let ramdisk = ramdisk_addr(HOST_KERNEL_ADDR, kernel);
        assert_eq!(ramdisk, 0x4a60_0000);
        let regions = [
            Region::new("QEMU's DTB", QEMU_DTB_ADDR, QEMU_DTB_ROOM),
            Region::new("host kernel", HOST_KERNEL_ADDR, kernel),
            Region::new("ramdisk", ramdisk, 2 * MIB),
            Region::new(
                "U-Boot (relocated)",
                mem.ram_end() - UBOOT_TOP_RESERVE,
                UBOOT_TOP_RESERVE,
            ),
        ];
        check_regions(&regions, mem).unwrap();
    }

    #[test]
    fn the_ramdisk_follows_the_kernels_memory_size_not_its_file() {
        assert_eq!(ramdisk_addr(0x4840_0000, 0x7b000), 0x4860_0000);
        assert_eq!(ramdisk_addr(0x4840_0000, 0x20_0000), 0x4860_0000);
        assert_eq!(ramdisk_addr(0x4840_0000, 0x20_0001), 0x4880_0000);
    }

    /// The test hosts are not position independent: the payload enters them where xtask
    /// loads them, so their link address must be [`HOST_KERNEL_ADDR`].
    #[test]
    fn every_test_host_is_linked_at_the_kernel_module_address() {
        let linker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
        let mut hosts = 0;
        for entry in std::fs::read_dir(&linker).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with("-host.ld") {
                continue;
            }
            hosts += 1;
            let script = std::fs::read_to_string(&path).unwrap();
            assert!(
                script.contains(&format!(". = {HOST_KERNEL_ADDR:#x};")),
                "{name} is not linked at {HOST_KERNEL_ADDR:#x}"
            );
        }
        assert!(hosts >= 7, "found only {hosts} linker/*-host.ld");
    }

    #[test]
    fn overlapping_regions_are_refused_with_both_names() {
        let mem = MemSize::from_bytes(GIB);
        let regions = [
            Region::new("host kernel", HOST_KERNEL_ADDR, 0xc00_0001),
            Region::new("ramdisk", HOST_KERNEL_ADDR + 0xc00_0000, 2 * MIB),
        ];
        let err = check_regions(&regions, mem).unwrap_err().to_string();
        assert!(
            err.contains("host kernel") && err.contains("ramdisk"),
            "{err}"
        );
    }

    #[test]
    fn regions_past_the_end_of_ram_are_refused() {
        let mem = MemSize::from_bytes(256 * MIB);
        let regions = [Region::new("ramdisk", HOST_KERNEL_ADDR, 125 * MIB)];
        let err = check_regions(&regions, mem).unwrap_err().to_string();
        assert!(err.contains("does not fit in RAM"), "{err}");
    }
}
