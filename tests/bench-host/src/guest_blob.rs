//! The bench guest (asm/guest.S): loops that make exactly one exit per VCPU_RUN, copied
//! into one page the host donates at [`IMAGE_GFN`].

use core::arch::global_asm;

global_asm!(include_str!("asm/guest.S"));

/// Guest frame of the guest's page (IPA 0x4000_0000); the guest runs with its MMU off.
pub const IMAGE_GFN: u64 = 0x4_0000;
/// The VM's IPA size: 4 GiB covers the image and every data range of the bench.
pub const IPA_BITS: u32 = 32;
/// An IPA without a page: `guest_mmio_exit` stores there.
pub const MMIO_IPA: u64 = 0x0900_0000;

unsafe extern "C" {
    static bench_guest_start: u8;
    static bench_guest_boot: u8;
    static bench_guest_hvc_exit: u8;
    static bench_guest_mmio_exit: u8;
    static bench_guest_share_seq: u8;
    static bench_guest_unshare_seq: u8;
    static bench_guest_end: u8;
}

/// Where a vCPU starts: one of the guest's loops.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    /// vCPU 0: x0 = the IPA of the (entry, x0) table; starts vCPUs 1..5 with CPU_ON.
    Boot,
    /// x0 = a function id of another owner: exit GUEST_HVC on every run.
    HvcExit,
    /// x0 = an IPA without a page: exit MMIO (8-byte write of XZR) on every run.
    MmioExit,
    /// x0 = `ipa | (nr - 1)`: MEM_SHARE of the next `nr` pages on every run.
    ShareSeq,
    /// x0 = `ipa | (nr - 1)`: MEM_UNSHARE of the next `nr` pages on every run.
    UnshareSeq,
}

/// The guest's bytes, arm64 Image header first.
pub fn image() -> &'static [u8] {
    let start = &raw const bench_guest_start;
    let len = &raw const bench_guest_end as usize - start as usize;
    // SAFETY: the two symbols delimit the guest in this image's .rodata (asm/guest.S), which
    // nothing writes.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// The IPA of `entry` once the image is at [`IMAGE_GFN`].
pub fn entry_ipa(entry: Entry) -> u64 {
    let label = match entry {
        Entry::Boot => &raw const bench_guest_boot,
        Entry::HvcExit => &raw const bench_guest_hvc_exit,
        Entry::MmioExit => &raw const bench_guest_mmio_exit,
        Entry::ShareSeq => &raw const bench_guest_share_seq,
        Entry::UnshareSeq => &raw const bench_guest_unshare_seq,
    };
    let offset = label as usize - &raw const bench_guest_start as usize;
    (IMAGE_GFN << 12) + offset as u64
}

/// The vCPU x0 for a share or unshare sequence of `nr` (1..=512) pages from `ipa`.
pub fn sequence_x0(ipa: u64, nr: u32) -> u64 {
    ipa | u64::from(nr - 1)
}
