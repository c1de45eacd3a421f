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
use crate::pgtable::Stage2Config;

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

/// The ASID of the host's DMA context (stage 1).
pub const HOST_ASID: u16 = 1;
/// The VMID of the host's streams (stage 2). Private to the SMMU: CR2.PTM keeps the CPUs'
/// broadcast TLBIs (whose VMIDs are the CPU's) away from the SMMU's TLB.
pub const HOST_VMID: u16 = 1;

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

/// The STE of every host stream on an SMMU with stage 2 (IHI 0070 5.2): valid, stage 1
/// bypassed and stage 2 translating (Config = 0b110), VMID [`HOST_VMID`], walking the table
/// at `s2ttb` (`DmaTable::root_pa`) as `config` says. S2T0SZ [165:160], S2SL0 [167:166],
/// S2IR0 [169:168], S2OR0 [171:170], S2SH0 [173:172], S2TG [175:174] and S2PS [178:176]
/// have `VTCR_EL2`'s layout and meaning, so they are `config.vtcr[18:0]`: input size, start
/// level (concatenated roots included), write-back inner-shareable walks, 4 KiB granule,
/// output size. S2AA64 (AArch64 tables), S2AFFD (no access-flag faults; the leaves have AF
/// set anyway), S2PTW (as Linux sets it: would make a stage-1 walk to device memory fault,
/// none happens here), S2R (faults recorded); S2ENDI = 0 (little-endian), S2HD = S2HA = 0
/// (no hardware updates), S2S = 0 (faults terminate, never stall). Stream attributes as in
/// [`host_ste`]: SHCFG = incoming, STRW = NS-EL1, no ATS.
pub fn host_ste_s2(s2ttb: usize, config: &Stage2Config) -> [u64; 8] {
    let q0 = 1 | (0b110 << 1);
    let q1 = 0b01 << 44; // SHCFG
    let q2 = u64::from(HOST_VMID)
        | ((config.vtcr & 0x7_ffff) << 32)
        | (1 << 51) // S2AA64
        | (1 << 53) // S2AFFD
        | (1 << 54) // S2PTW
        | (1 << 58); // S2R
    let q3 = s2ttb as u64 & ((1 << 52) - 1) & !0xf;
    [q0, q1, q2, q3, 0, 0, 0, 0]
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

    /// STE bit `bit` (IHI 0070 5.2 numbers the 512 bits of the entry from 0), `width` wide.
    fn field(ste: &[u64; 8], bit: u32, width: u32) -> u64 {
        (ste[(bit / 64) as usize] >> (bit % 64)) & ((1 << width) - 1)
    }

    #[test]
    fn the_stage_2_ste_puts_every_field_where_the_spec_does() {
        use crate::pgtable::stage2_config;
        // A 44-bit SMMU: 44-bit input, level-0 start, one root table.
        let cfg = stage2_config(4);
        let ste = host_ste_s2(0x0000_0812_3456_7000, &cfg);
        assert_eq!(field(&ste, 0, 1), 1, "V");
        assert_eq!(field(&ste, 1, 3), 0b110, "Config: S1 bypass, S2 translate");
        assert_eq!(field(&ste, 4, 2), 0, "S1Fmt");
        assert_eq!(field(&ste, 6, 46), 0, "S1ContextPtr: none");
        assert_eq!(field(&ste, 59, 5), 0, "S1CDMax");
        assert_eq!(field(&ste, 64, 2), 0, "S1DSS");
        assert_eq!(field(&ste, 92, 2), 0, "EATS: no ATS");
        assert_eq!(field(&ste, 94, 2), 0, "STRW: NS-EL1");
        assert_eq!(field(&ste, 96, 4), 0, "MemAttr (MTCFG = 0: unused)");
        assert_eq!(field(&ste, 100, 1), 0, "MTCFG: incoming memory type");
        assert_eq!(field(&ste, 108, 2), 0b01, "SHCFG: incoming shareability");
        assert_eq!(field(&ste, 110, 2), 0, "NSCFG");
        assert_eq!(field(&ste, 112, 2), 0, "PRIVCFG: incoming");
        assert_eq!(field(&ste, 114, 2), 0, "INSTCFG: incoming");
        assert_eq!(field(&ste, 128, 16), u64::from(HOST_VMID), "S2VMID");
        assert_eq!(field(&ste, 160, 6), 64 - 44, "S2T0SZ: 44-bit input");
        assert_eq!(field(&ste, 166, 2), 0b10, "S2SL0: start at level 0");
        assert_eq!(field(&ste, 168, 2), 0b01, "S2IR0: write-back");
        assert_eq!(field(&ste, 170, 2), 0b01, "S2OR0: write-back");
        assert_eq!(field(&ste, 172, 2), 0b11, "S2SH0: inner shareable");
        assert_eq!(field(&ste, 174, 2), 0b00, "S2TG: 4 KiB");
        assert_eq!(field(&ste, 176, 3), 4, "S2PS: 44 bits");
        assert_eq!(field(&ste, 179, 1), 1, "S2AA64");
        assert_eq!(field(&ste, 180, 1), 0, "S2ENDI: little-endian");
        assert_eq!(field(&ste, 181, 1), 1, "S2AFFD");
        assert_eq!(field(&ste, 182, 1), 1, "S2PTW");
        assert_eq!(field(&ste, 183, 2), 0, "S2HD, S2HA: no hardware updates");
        assert_eq!(field(&ste, 185, 1), 0, "S2S: terminate, never stall");
        assert_eq!(field(&ste, 186, 1), 1, "S2R: record faults");
        assert_eq!(field(&ste, 187, 5), 0, "bits [191:187]");
        assert_eq!(field(&ste, 192, 4), 0, "bits [195:192]");
        assert_eq!(field(&ste, 196, 48) << 4, 0x0000_0812_3456_7000, "S2TTB");
        assert_eq!(ste[4..], [0; 4], "no VMSPtr, no S2 secure fields");
    }

    #[test]
    fn the_stage_2_ste_follows_the_start_level_and_size_of_every_output_size() {
        use crate::pgtable::stage2_config;
        // (IDR5.OAS, S2T0SZ, S2SL0, S2PS)
        for (oas, t0sz, sl0, ps) in [
            (0, 32, 1, 0),
            (1, 28, 1, 1),
            (2, 24, 1, 2), // 2 concatenated level-1 tables
            (3, 22, 1, 3), // 8 concatenated level-1 tables
            (4, 20, 2, 4),
            (5, 16, 2, 5),
            (6, 16, 2, 5), // 52-bit SMMU: 48 bits without LPA2
        ] {
            let ste = host_ste_s2(0x8000, &stage2_config(oas));
            assert_eq!(
                (
                    field(&ste, 160, 6),
                    field(&ste, 166, 2),
                    field(&ste, 176, 3)
                ),
                (t0sz, sl0, ps),
                "OAS {oas}"
            );
            let decoded = crate::smmuv3::s2_walk::decode(&ste, oas)
                .unwrap_or_else(|e| panic!("OAS {oas}: {e:?}"));
            assert_eq!(decoded.vmid, HOST_VMID);
            assert_eq!(decoded.ttb, 0x8000);
        }
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
