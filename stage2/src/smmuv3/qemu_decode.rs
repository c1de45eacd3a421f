//! A second, independent reading of the STE and commands EL2 writes, the way QEMU's SMMUv3
//! model reads them (tests only). QEMU 7.2 (the only QEMU here) has no stage 2, so the
//! stage-2 path cannot run under emulation; its newer model (hw/arm/smmuv3.c `decode_ste`,
//! `decode_ste_s2_cfg`, hw/arm/smmu-common.c `smmu_ptw_64_s2`, hw/arm/smmuv3-internal.h
//! field macros; stage 2 since QEMU 8.1) was read and its rules are restated here, not
//! copied: it sees an STE as sixteen 32-bit words and a command as four, and extracts each
//! field from its word. A field EL2 put at the wrong bit, or a combination QEMU would
//! refuse as C_BAD_STE, fails the tests below, from a source other than `s2_walk`.
//!
//! One difference from the specification found while reading: QEMU's stage-2 walk (in the
//! versions read) clears the concatenated-table offset it has just added to S2TTB (it masks
//! the base with the start level's alignment after adding `index * 4 KiB`) and takes only
//! 9 index bits at the start level, so with concatenated roots it walks the first table for
//! every IPA. The cross-check of walks therefore covers unconcatenated configurations and
//! the first concatenated table; `s2_walk` (from the specification) covers the rest.

/// What QEMU's decoder keeps of a stage-2-only STE.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct QemuS2 {
    pub vmid: u16,
    pub tsz: u32,
    pub sl0: u32,
    pub granule_bits: u32,
    pub eff_ps: u32,
    pub vttb: u64,
    pub affd: bool,
    pub record_faults: bool,
}

fn words(q: &[u64]) -> std::vec::Vec<u32> {
    q.iter()
        .flat_map(|w| [*w as u32, (*w >> 32) as u32])
        .collect()
}

fn ex(word: u32, lo: u32, width: u32) -> u32 {
    (word >> lo) & ((1 << width) - 1)
}

fn oas_bits(field: u32) -> u32 {
    [32, 36, 40, 42, 44, 48, 52][field.min(6) as usize]
}

extern crate std;

/// QEMU's verdict on `ste` for an SMMU advertising stage 2 only with IDR5.OAS = `oas`:
/// `Err` is C_BAD_STE (or a configuration QEMU treats as abort/bypass).
pub fn decode_ste(ste: &[u64; 8], oas: u32) -> Result<QemuS2, &'static str> {
    let w = words(ste);
    if ex(w[0], 0, 1) == 0 {
        return Err("STE not valid");
    }
    let config = ex(w[0], 1, 3);
    if config & 0b100 == 0 {
        return Err("abort");
    }
    if config == 0b100 {
        return Err("bypass");
    }
    if config & 0b001 != 0 {
        return Err("stage 1 enabled on a stage-2-only SMMU");
    }
    if config & 0b010 == 0 {
        return Err("stage 2 not enabled");
    }
    if ex(w[5], 19, 1) == 0 {
        return Err("S2AA64 = 0");
    }
    let granule_bits = match ex(w[5], 14, 2) {
        0 => 12,
        1 => 16,
        2 => 14,
        _ => return Err("bad S2TG"),
    };
    let sl0 = ex(w[5], 6, 2);
    if sl0 == 3 {
        return Err("S2SL0 = 3");
    }
    let mut eff_ps = oas_bits(ex(w[5], 16, 3).min(oas));
    if granule_bits != 16 {
        eff_ps = eff_ps.min(48);
    }
    let vttb = (u64::from(ex(w[7], 0, 16)) << 32) | u64::from(w[6] & 0xffff_fff0);
    if vttb >> eff_ps != 0 {
        return Err("S2TTB beyond the effective PS");
    }
    let tsz = ex(w[5], 0, 6);
    let min_tsz = if granule_bits == 16 {
        64 - eff_ps
    } else {
        (64 - eff_ps).max(16)
    };
    if tsz > 39 || tsz < min_tsz {
        return Err("bad S2T0SZ");
    }
    // Start level 2 - SL0 (4 KiB; 3 - SL0 otherwise); the tables concatenated there are the
    // largest IPA's bits above what one table at the level above would resolve, plus one.
    let level = if granule_bits == 12 { 2 - sl0 } else { 3 - sl0 };
    let above = granule_bits + (3 - (level as i32 - 1)) as u32 * (granule_bits - 3);
    let max_ipa = (1u64 << (64 - tsz)) - 1;
    if (max_ipa >> above.min(63)) + 1 > 16 {
        return Err("stage-2 configuration not valid (more than 16 concatenated tables)");
    }
    if ex(w[5], 20, 1) != 0 {
        return Err("S2ENDI: big-endian");
    }
    if ex(w[5], 25, 1) != 0 {
        return Err("S2S: stall");
    }
    if ex(w[1], 27, 5) != 0 {
        return Err("S1CDMAX != 0");
    }
    if ex(w[2], 27, 1) != 0 {
        return Err("S1STALLD");
    }
    Ok(QemuS2 {
        vmid: ex(w[4], 0, 16) as u16,
        tsz,
        sl0,
        granule_bits,
        eff_ps,
        vttb,
        affd: ex(w[5], 21, 1) != 0,
        record_faults: ex(w[5], 26, 1) != 0,
    })
}

/// QEMU's stage-2 walk result for `ipa`: the output address and whether it may be read and
/// written, or `None` for any fault.
pub fn walk(cfg: &QemuS2, ipa: u64) -> Option<(u64, bool, bool)> {
    let g = cfg.granule_bits;
    let stride = g - 3;
    let input = 64 - cfg.tsz;
    let mut level = if g == 12 { 2 - cfg.sl0 } else { 3 - cfg.sl0 };
    let shift = |l: u32| g + (3 - l) * stride;
    let concat_idx = ipa >> (g + (4 - level) * stride);
    let idxmask = (1u64 << (input - stride * (4 - level))) - 1;
    // As QEMU does: offset into the concatenation, then aligned down (see the module doc).
    let mut base = (cfg.vttb + (concat_idx << g)) & !idxmask;
    if ipa >> input != 0 {
        return None;
    }
    while level < 4 {
        let offset = ((ipa & ((1 << input) - 1)) >> shift(level)) & ((1 << stride) - 1);
        // SAFETY: tests only: `base` is a table page the test built in its own memory.
        let pte = unsafe { core::ptr::read_volatile((base as *const u64).add(offset as usize)) };
        let kind = pte & 3;
        if pte & 1 == 0 || (level == 3 && kind == 1) {
            return None;
        }
        let addr = pte & 0x0000_ffff_ffff_f000;
        if level < 3 && kind == 3 {
            base = addr;
            level += 1;
            continue;
        }
        let mask = (1u64 << shift(level)) - 1;
        if pte & (1 << 10) == 0 && !cfg.affd {
            return None;
        }
        let gpa = (addr & !mask) | (ipa & mask);
        if gpa >> cfg.eff_ps != 0 {
            return None;
        }
        let s2ap = (pte >> 6) & 3;
        return Some((gpa, s2ap & 1 != 0, s2ap & 2 != 0));
    }
    None
}

/// What QEMU reads from a TLBI command: (opcode, VMID, address, Leaf, NUM, SCALE, TTL, TG).
pub fn decode_tlbi(cmd: [u64; 2]) -> (u32, u16, u64, bool, u32, u32, u32, u32) {
    let w = words(&cmd);
    let addr = (u64::from(w[3]) << 32) | (u64::from(ex(w[2], 12, 20)) << 12);
    (
        ex(w[0], 0, 8),
        ex(w[1], 0, 16) as u16,
        addr,
        ex(w[2], 0, 1) != 0,
        ex(w[0], 12, 5),
        ex(w[0], 20, 5),
        ex(w[2], 8, 2),
        ex(w[2], 10, 2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma_table::{DmaTable, table_pages_stage2};
    use crate::pgtable::stage2_config;
    use crate::pool::{PAGE_SIZE, PagePool, test_memory::Arena};
    use crate::smmuv3::commands::Command;
    use crate::smmuv3::s2_walk;
    use crate::smmuv3::tables::{HOST_VMID, host_ste_s2};

    #[test]
    fn qemus_decoder_accepts_every_stage_2_ste_el2_writes_with_the_same_fields() {
        for oas in 0..=6u32 {
            let config = stage2_config(u64::from(oas));
            let ste = host_ste_s2(0x2_0000, &config);
            let q = decode_ste(&ste, oas).unwrap_or_else(|e| panic!("OAS {oas}: {e}"));
            assert_eq!(q.vmid, HOST_VMID);
            assert_eq!(q.granule_bits, 12);
            assert_eq!(64 - q.tsz, config.ipa_bits, "OAS {oas}: input size");
            assert_eq!(
                2 - q.sl0,
                config.root_level as u32,
                "OAS {oas}: start level"
            );
            assert_eq!(q.eff_ps, oas_bits(oas).min(48), "OAS {oas}: output size");
            assert_eq!(q.vttb, 0x2_0000);
            assert!(q.affd && q.record_faults);
        }
    }

    #[test]
    fn qemus_decoder_refuses_what_the_spec_refuses() {
        let good = host_ste_s2(0x2_0000, &stage2_config(4));
        let with = |word: usize, bit: u32, on: bool| {
            let mut s = good;
            if on {
                s[word] |= 1 << bit;
            } else {
                s[word] &= !(1 << bit);
            }
            s
        };
        assert!(decode_ste(&with(0, 0, false), 4).is_err(), "V = 0");
        assert!(
            decode_ste(&with(0, 1, true), 4).is_err(),
            "stage 1 enabled too"
        );
        assert!(decode_ste(&with(2, 51, false), 4).is_err(), "S2AA64 = 0");
        assert!(decode_ste(&with(2, 52, true), 4).is_err(), "S2ENDI = 1");
        assert!(decode_ste(&with(2, 57, true), 4).is_err(), "S2S = 1");
        // A 48-bit table on a 44-bit SMMU: S2T0SZ below 64 - OAS.
        let wide = host_ste_s2(0x2_0000, &stage2_config(5));
        assert!(decode_ste(&wide, 4).is_err());
        assert!(s2_walk::decode(&wide, 4).is_err(), "the spec model agrees");
    }

    #[test]
    fn qemus_walk_and_the_spec_walk_agree_on_the_table_el2_builds() {
        // Unconcatenated starts (levels 0 and 1) and the first of the concatenated tables.
        for oas in [0u64, 1, 2, 3, 4, 5] {
            let config = stage2_config(oas);
            let bank = (0x8000_0000, 0x8000_0000 + (4 << 20));
            let pages = table_pages_stage2(&[bank], &config);
            let arena = Arena::fixed_at(0x2400_0000, pages * PAGE_SIZE);
            // SAFETY: the arena is ours, page-aligned and outlives the table.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            let mut t = DmaTable::new_stage2(pool, &[bank], &config).unwrap();
            t.map(bank.0, bank.1).unwrap();
            t.unmap(bank.0 + 0x5000, bank.0 + 0x9000).unwrap();
            let ste = host_ste_s2(t.root_pa(), &config);
            let q = decode_ste(&ste, oas as u32).unwrap();
            let spec = s2_walk::decode(&ste, oas).unwrap();
            for pa in (bank.0 - 0x2000..bank.1 + 0x2000).step_by(PAGE_SIZE) {
                let by_spec = s2_walk::walk(&spec, pa as u64)
                    .ok()
                    .map(|l| (l.pa, l.read, l.write));
                assert_eq!(walk(&q, pa as u64), by_spec, "OAS {oas}: {pa:#x}");
            }
            assert_eq!(walk(&q, bank.0 as u64), Some((bank.0 as u64, true, true)));
            assert_eq!(walk(&q, bank.0 as u64 + 0x5000), None);
        }
    }

    #[test]
    fn qemu_reads_the_stage_2_tlbi_commands_as_el2_means_them() {
        let c = Command::tlbi_s2_ipa(HOST_VMID, 0x0000_0123_4567_8000);
        assert_eq!(
            decode_tlbi(c.0),
            (0x2a, HOST_VMID, 0x0000_0123_4567_8000, true, 0, 0, 0, 0),
            "CMD_TLBI_S2_IPA: one 4 KiB leaf at the IPA, no range, no TTL hint"
        );
        let c = Command::tlbi_s12_vmall(HOST_VMID);
        let (op, vmid, ..) = decode_tlbi(c.0);
        assert_eq!((op, vmid), (0x28, HOST_VMID), "CMD_TLBI_S12_VMALL");
    }
}
