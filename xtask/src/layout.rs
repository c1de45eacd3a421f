//! Guest-physical addresses xtask relies on, in one place, and the check that what it loads
//! there fits in RAM without overlapping.
//!
//! The host kernel module goes at [`HOST_KERNEL_ADDR`], just above QEMU's DTB at RAM base +
//! 128 MiB, and the ramdisk right after the kernel's in-memory size ([`ramdisk_addr`]), so
//! that `--mem 256M` holds the demo host and Debian's Linux with its initramfs.
//!
//! On xlnx-zcu102 RAM starts at 0, not 0x4000_0000: QEMU puts the payload and its DTB at
//! the same offsets from RAM base ([`payload_direct_load`], [`qemu_dtb_addr`]), but the
//! modules stay at [`HOST_KERNEL_ADDR`] because the test hosts are linked there. That
//! needs at least [`ZCU102_MIN_MEM`] of RAM, and the board's low DDR bank ends at 2 GiB
//! ([`mem_limits`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Context, Result, bail};
use crate::qemu::Board;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Start of RAM on QEMU `virt`.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Where QEMU's `-kernel` puts a raw arm64 Image with text_offset 0 on `virt` (RAM base +
/// 2 MiB: QEMU keeps the bottom 2 MiB for its boot stub).
pub const PAYLOAD_DIRECT_LOAD: u64 = 0x4020_0000;
/// Where QEMU puts the DTB when booting `-kernel` without `-initrd` on `virt` (RAM base +
/// 128 MiB).
pub const QEMU_DTB_ADDR: u64 = 0x4800_0000;
/// Offsets from RAM base of the two above, the same on every QEMU arm machine (hw/arm/boot.c).
const PAYLOAD_OFFSET: u64 = PAYLOAD_DIRECT_LOAD - RAM_BASE;
const QEMU_DTB_OFFSET: u64 = QEMU_DTB_ADDR - RAM_BASE;
/// The least `--mem` on xlnx-zcu102: RAM from 0 must reach past the modules at
/// [`HOST_KERNEL_ADDR`] (1156 MiB), with room for Debian's kernel (32 MiB with its .bss),
/// the initramfs and what Linux allocates at boot above them.
pub const ZCU102_MIN_MEM: u64 = 1280 * MIB;
/// The most `--mem` on xlnx-zcu102: its low DDR bank is 0..2 GiB; above that QEMU maps the
/// rest at 0x8_0000_0000 but describes `-m` as one bank from 0 in the DTB's `/memory`,
/// which would hand the host the board's MMIO space as RAM.
pub const ZCU102_MAX_MEM: u64 = 2 * GIB;
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
const _: () = assert!(HOST_KERNEL_ADDR + 64 * MIB < ZCU102_MIN_MEM);

/// Start of RAM on `board`.
pub fn ram_base(board: Board) -> u64 {
    match board {
        Board::Virt => RAM_BASE,
        Board::Zcu102 => 0,
    }
}

/// Where QEMU's `-kernel` puts the payload (an arm64 Image with text_offset 0) on `board`.
pub fn payload_direct_load(board: Board) -> u64 {
    ram_base(board) + PAYLOAD_OFFSET
}

/// Where QEMU puts the DTB when it boots `-kernel` without `-initrd` on `board`.
pub fn qemu_dtb_addr(board: Board) -> u64 {
    ram_base(board) + QEMU_DTB_OFFSET
}

/// The least and the most `--mem` on `board` (`None`: no limit of the board's own).
pub fn mem_limits(board: Board) -> (u64, Option<u64>) {
    match board {
        Board::Virt => (MIN_MEM, None),
        Board::Zcu102 => (ZCU102_MIN_MEM, Some(ZCU102_MAX_MEM)),
    }
}

/// `--mem`'s default on `board`: 1G on `virt`; all of xlnx-zcu102's low bank, which the
/// fixed module address needs most of.
pub fn default_mem(board: Board) -> MemSize {
    match board {
        Board::Virt => MemSize::from_bytes(GIB),
        Board::Zcu102 => MemSize::from_bytes(ZCU102_MAX_MEM),
    }
}

/// Refuses a RAM size `board` cannot have, saying why.
pub fn check_mem(board: Board, mem: MemSize) -> Result<()> {
    let (min, max) = mem_limits(board);
    if mem.bytes() < min {
        bail!(
            "--mem {mem} is too small for --machine {}: at least {}M (RAM starts at {:#x} and \
             the host modules go at {HOST_KERNEL_ADDR:#x}, where the test hosts are linked)",
            board.name(),
            min / MIB,
            ram_base(board)
        );
    }
    if let Some(max) = max.filter(|max| mem.bytes() > *max) {
        bail!(
            "--mem {mem} is too large for --machine {}: at most {}M (the board's low DDR bank \
             is 0..2 GiB; QEMU would describe more as one bank from 0, over the board's MMIO)",
            board.name(),
            max / MIB
        );
    }
    Ok(())
}

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

    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// First address after RAM on `board`.
    pub fn ram_end(self, board: Board) -> u64 {
        ram_base(board) + self.0
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
pub fn check_regions(regions: &[Region], board: Board, mem: MemSize) -> Result<()> {
    let (base, end) = (ram_base(board), mem.ram_end(board));
    for r in regions {
        if r.start < base || r.end() > end {
            bail!(
                "{r} does not fit in RAM [{base:#x}..{end:#x}) of {} with -m {mem}",
                board.qemu_name()
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
                mem.ram_end(Board::Virt) - UBOOT_TOP_RESERVE,
                UBOOT_TOP_RESERVE,
            ),
        ];
        check_regions(&regions, Board::Virt, mem).unwrap();
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
        let err = check_regions(&regions, Board::Virt, mem)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host kernel") && err.contains("ramdisk"),
            "{err}"
        );
    }

    #[test]
    fn regions_past_the_end_of_ram_are_refused() {
        let mem = MemSize::from_bytes(256 * MIB);
        let regions = [Region::new("ramdisk", HOST_KERNEL_ADDR, 125 * MIB)];
        let err = check_regions(&regions, Board::Virt, mem)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit in RAM"), "{err}");
    }

    /// xlnx-zcu102: RAM at 0, so QEMU's payload and DTB move down by 1 GiB, while the
    /// modules stay where the test hosts are linked; Debian's kernel and initramfs fit
    /// in the smallest RAM accepted there.
    #[test]
    fn zcu102_places_qemus_images_from_ram_at_0_and_the_modules_still_fit() {
        assert_eq!(payload_direct_load(Board::Zcu102), 0x20_0000);
        assert_eq!(qemu_dtb_addr(Board::Zcu102), 0x800_0000);
        assert_eq!(payload_direct_load(Board::Virt), PAYLOAD_DIRECT_LOAD);
        assert_eq!(qemu_dtb_addr(Board::Virt), QEMU_DTB_ADDR);
        let mem = MemSize::from_bytes(ZCU102_MIN_MEM);
        let kernel = 0x201_0000;
        let ramdisk = ramdisk_addr(HOST_KERNEL_ADDR, kernel);
        let regions = [
            Region::new("payload", payload_direct_load(Board::Zcu102), 2 * MIB),
            Region::new("QEMU's DTB", qemu_dtb_addr(Board::Zcu102), QEMU_DTB_ROOM),
            Region::new("host kernel", HOST_KERNEL_ADDR, kernel),
            Region::new("ramdisk", ramdisk, 8 * MIB),
        ];
        check_regions(&regions, Board::Zcu102, mem).unwrap();
        // The same regions are outside virt's RAM.
        assert!(check_regions(&regions[..1], Board::Virt, mem).is_err());
    }

    #[test]
    fn zcu102_mem_is_checked_against_its_low_bank_and_the_module_address() {
        check_mem(Board::Zcu102, default_mem(Board::Zcu102)).unwrap();
        check_mem(Board::Zcu102, MemSize::from_bytes(ZCU102_MIN_MEM)).unwrap();
        let err = check_mem(Board::Zcu102, MemSize::from_bytes(GIB))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 1280M"), "{err}");
        let err = check_mem(Board::Zcu102, MemSize::from_bytes(4 * GIB))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 2048M"), "{err}");
        check_mem(Board::Virt, MemSize::from_bytes(16 * GIB)).unwrap();
        check_mem(Board::Virt, MemSize::from_bytes(MIN_MEM)).unwrap();
    }
}
