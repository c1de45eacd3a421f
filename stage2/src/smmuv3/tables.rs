//! Where the SMMU's structures sit in EL2's carve-out, and the two descriptors EL2 writes:
//! the stream table entry (STE, IHI 0070 5.2) and the context descriptor (CD, 5.4).
//!
//! Every host stream gets the same configuration: stage-1 translation through one CD whose
//! TTB0 is the host's DMA table. So the stream table needs only one level-2 table: every
//! level-1 descriptor points at it (an STE says nothing about which stream uses it). That
//! covers the 65,536 streams of a PCIe segment with 16 KiB + 2 KiB instead of the 4 MiB of a
//! linear table. SMMUs without 2-level tables get a linear table of up to 256 streams.

use crate::dma_table::{MAIR, T0SZ};
use crate::memory_plan::SMMU_STRUCTURE_BYTES;

/// STEs in the shared level-2 table (STRTAB_BASE_CFG.SPLIT = 8).
pub const SPLIT: u32 = 8;
const STE_BYTES: usize = 64;
const L2_BYTES: usize = STE_BYTES << SPLIT;
const L1_MAX_BYTES: usize = 4096;
const CD_BYTES: usize = 64;
/// Command queue: 256 x 16 bytes; event queue: 128 x 32 bytes (or fewer if IDR1 says so).
pub const CMDQ_LOG2: u32 = 8;
pub const EVENTQ_LOG2: u32 = 7;
const QUEUE_BYTES: usize = 4096;

/// The ASID of the host's DMA context.
pub const HOST_ASID: u16 = 1;

/// Addresses of the structures inside the SMMU block of the memory plan.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// The shared level-2 table, or the linear table.
    pub ste: usize,
    pub l1: usize,
    pub cd: usize,
    pub cmdq: usize,
    pub eventq: usize,
    /// First byte after the structures: the DMA table's pool starts here.
    pub end: usize,
}

impl Layout {
    /// Places the structures at the start of `[base, base + SMMU_STRUCTURE_BYTES)`, each
    /// aligned to its size (queues and tables must be, IHI 0070 6.3.23-6.3.26).
    pub fn new(base: usize) -> Self {
        let ste = base.next_multiple_of(L2_BYTES);
        let l1 = ste + L2_BYTES;
        let cd = l1 + L1_MAX_BYTES;
        let cmdq = (cd + CD_BYTES).next_multiple_of(QUEUE_BYTES);
        let eventq = cmdq + QUEUE_BYTES;
        let layout = Self {
            ste,
            l1,
            cd,
            cmdq,
            eventq,
            end: base + SMMU_STRUCTURE_BYTES as usize,
        };
        debug_assert!(eventq + QUEUE_BYTES <= layout.end);
        layout
    }
}

/// Level-1 descriptors for `2^sid_bits` streams with `SPLIT`, or `None` if they would not
/// fit the level-1 slot.
pub fn l1_entries(sid_bits: u32) -> Option<usize> {
    let n = 1usize << sid_bits.saturating_sub(SPLIT);
    (n * 8 <= L1_MAX_BYTES).then_some(n)
}

/// The most streams a linear table in the level-2 slot can hold.
pub const LINEAR_MAX_SID_BITS: u32 = SPLIT;

/// A level-1 descriptor: span covering all `2^SPLIT` STEs of the table at `l2` (Span =
/// SPLIT + 1).
pub fn l1_descriptor(l2: usize) -> u64 {
    (u64::from(SPLIT) + 1) | (l2 as u64 & ((1 << 52) - 1) & !0x3f)
}

/// The STE of every host stream: valid, stage-1 translation with stage 2 bypassed
/// (Config = 0b101), one CD (S1Fmt = 0, S1CDMax = 0) at `cd`; CD fetches inner-shareable
/// write-back; StreamWorld NS-EL1; memory attributes, privilege and instruction/data as the
/// device presents them.
pub fn host_ste(cd: usize) -> [u64; 8] {
    let q0 = 1 | (0b101 << 1) | (cd as u64 & ((1 << 52) - 1) & !0x3f);
    // S1CIR = S1COR = 0b01 (write-back), S1CSH = 0b11 (inner shareable); SHCFG = 0b01
    // (use incoming shareability).
    let q1 = (0b01 << 2) | (0b01 << 4) | (0b11 << 6) | (0b01 << 44);
    [q0, q1, 0, 0, 0, 0, 0, 0]
}

/// The host's context descriptor: TTB0 = the DMA table, 4 KiB granule, 48-bit input
/// (T0SZ), walks inner-shareable write-back, TTB1 walks disabled (EPD1), AArch64, output
/// size `ips` (IDR5.OAS), access-flag faults off (AFFD; the leaves have AF set anyway),
/// faults recorded (R) and terminated with an abort to the device (A), ASID private to the
/// SMMU (ASET = 1, not matched by broadcast TLBIs), MAIR as `stage2::dma_table` expects.
pub fn host_cd(ttb0: usize, ips: u64) -> [u64; 8] {
    // TG0 (bits 7:6) = 0b00: 4 KiB granule.
    let q0 = T0SZ
        | (0b01 << 8) // IR0
        | (0b01 << 10) // OR0
        | (0b11 << 12) // SH0
        | (1 << 30) // EPD1
        | (1 << 31) // V
        | (ips << 32)
        | (1 << 35) // AFFD
        | (1 << 41) // AA64
        | (1 << 45) // R
        | (1 << 46) // A
        | (1 << 47) // ASET
        | (u64::from(HOST_ASID) << 48);
    let q1 = ttb0 as u64 & ((1 << 52) - 1) & !0xf;
    [q0, q1, 0, MAIR, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_are_aligned_to_their_size_and_fit_the_planned_block() {
        for base in [0x4058_9000usize, 0x4000_0000, 0x4000_1000, 0x4000_f000] {
            let l = Layout::new(base);
            assert_eq!(l.ste % L2_BYTES, 0);
            assert_eq!(l.l1 % L1_MAX_BYTES, 0);
            assert_eq!(l.cd % CD_BYTES, 0);
            assert_eq!((l.cmdq % QUEUE_BYTES, l.eventq % QUEUE_BYTES), (0, 0));
            assert!(base <= l.ste && l.eventq + QUEUE_BYTES <= l.end);
            assert_eq!(l.end - base, SMMU_STRUCTURE_BYTES as usize);
        }
    }

    #[test]
    fn the_ste_translates_stage_1_through_the_cd() {
        let ste = host_ste(0x4058_9040);
        assert_eq!(ste[0] & 1, 1, "V");
        assert_eq!((ste[0] >> 1) & 7, 0b101, "Config: S1 translate, S2 bypass");
        assert_eq!((ste[0] >> 4) & 3, 0, "S1Fmt linear");
        assert_eq!(ste[0] & 0x000f_ffff_ffff_ffc0, 0x4058_9040, "S1ContextPtr");
        assert_eq!(ste[0] >> 59, 0, "S1CDMax: one CD");
        assert_eq!((ste[1] >> 30) & 3, 0, "STRW: NS-EL1");
        assert_eq!(ste[2..], [0; 6]);
    }

    #[test]
    fn the_cd_matches_the_dma_table() {
        let cd = host_cd(0x4059_2000, 4);
        assert_eq!(cd[0] & 0x3f, 16, "T0SZ: 48-bit input");
        assert_eq!((cd[0] >> 6) & 3, 0, "TG0: 4 KiB");
        assert_eq!((cd[0] >> 12) & 3, 0b11, "SH0 inner shareable");
        assert_eq!((cd[0] >> 30) & 3, 0b11, "EPD1 and V");
        assert_eq!((cd[0] >> 32) & 7, 4, "IPS: 44 bits");
        assert_eq!((cd[0] >> 41) & 1, 1, "AA64");
        assert_eq!(
            (cd[0] >> 45) & 3,
            0b11,
            "R and A: faults recorded and aborted"
        );
        assert_eq!(cd[0] >> 48, u64::from(HOST_ASID));
        assert_eq!(cd[1], 0x4059_2000, "TTB0");
        assert_eq!(cd[3], MAIR);
    }

    #[test]
    fn level_1_descriptors_span_the_whole_shared_level_2_table() {
        let d = l1_descriptor(0x4058_c000);
        assert_eq!(d & 0x1f, u64::from(SPLIT) + 1);
        assert_eq!(d & !0x3f, 0x4058_c000);
        assert_eq!(l1_entries(16), Some(256));
        assert_eq!(l1_entries(8), Some(1));
        // 4 KiB of level-1 descriptors: 512 of them, 2^17 streams.
        assert_eq!(l1_entries(17), Some(512));
        assert_eq!(l1_entries(18), None);
    }
}
