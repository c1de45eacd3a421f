//! A software model of what an SMMUv3 does with a stage-2-only STE (tests only): decode the
//! STE's stage-2 fields and refuse an illegal configuration (IHI 0070 5.2, C_BAD_STE), then
//! walk the VMSAv8-64 stage-2 table for one input address as the Arm ARM's stage-2 rules
//! say (D8.2, 4 KiB granule, concatenated start-level tables, no LPA2), reading descriptors
//! from memory (tests translate PA = VA). Written from the specifications, independently of
//! the code that builds the table, so that a test walking the table with it checks what the
//! SMMU would see, not what the builder believes.

extern crate std;

/// The stage-2 translation an STE selects.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct S2Config {
    pub vmid: u16,
    /// Input address bits, `64 - S2T0SZ`.
    pub input_bits: u32,
    pub start_level: u32,
    /// Tables concatenated at the start level (1 to 16).
    pub concatenated: u32,
    /// Effective output size in bits: min(S2PS, IDR5.OAS).
    pub output_bits: u32,
    pub ttb: u64,
    pub affd: bool,
    pub record_faults: bool,
}

/// Why the SMMU would refuse the STE (C_BAD_STE) or fault a transaction.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum S2Error {
    BadSte(&'static str),
    /// Stage-2 translation fault at this level (input out of range: level `None`).
    Translation(Option<u32>),
    AddressSize(u32),
    AccessFlag(u32),
}

/// What the walk found for an input address.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct S2Leaf {
    pub pa: u64,
    pub level: u32,
    pub read: bool,
    pub write: bool,
}

fn bits(word: u64, lo: u32, width: u32) -> u64 {
    (word >> lo) & ((1 << width) - 1)
}

fn oas_bits(encoding: u64) -> u32 {
    [32, 36, 40, 42, 44, 48, 52, 52][encoding as usize & 7]
}

/// Decodes a stage-2-only STE for an SMMU whose IDR5.OAS is `oas` (encoding).
pub fn decode(ste: &[u64; 8], oas: u64) -> Result<S2Config, S2Error> {
    let bad = |why| Err(S2Error::BadSte(why));
    if ste[0] & 1 == 0 {
        return bad("STE.V = 0");
    }
    if bits(ste[0], 1, 3) != 0b110 {
        return bad("Config is not stage 2 only (0b110)");
    }
    // Word 2 = STE bits [191:128].
    let q2 = ste[2];
    let t0sz = bits(q2, 32, 6) as u32;
    let sl0 = bits(q2, 38, 2) as u32;
    if bits(q2, 46, 2) != 0 {
        return bad("S2TG is not 4 KiB");
    }
    if bits(q2, 51, 1) == 0 {
        return bad("S2AA64 = 0 (AArch32 tables)");
    }
    if bits(q2, 52, 1) != 0 {
        return bad("S2ENDI = 1 (big-endian walks)");
    }
    if bits(q2, 57, 1) != 0 {
        return bad("S2S = 1 (stall)");
    }
    let output_bits = oas_bits(bits(q2, 48, 3).min(oas)).min(48);
    // 4 KiB granule (SMMUv3.0, IDR3.STT = 0): S2T0SZ in [max(16, 64 - IAS), 39]; IAS = OAS
    // for an SMMU with AArch64 tables only.
    let input_bits = 64u32.saturating_sub(t0sz);
    if !(16..=39).contains(&t0sz) || input_bits > output_bits {
        return bad("S2T0SZ out of range");
    }
    // S2SL0 with 4 KiB: 0 -> level 2, 1 -> level 1, 2 -> level 0; 3 reserved (no TTST).
    if sl0 == 3 {
        return bad("S2SL0 = 3");
    }
    let start_level = 2 - sl0;
    // Arm ARM D8.2 (VTCR_EL2 rules): a level-0 start needs an output size above 42 bits;
    // the start level resolves 1 to 9 + 4 bits (up to 16 concatenated tables).
    if start_level == 0 && output_bits <= 42 {
        return bad("level-0 start with an output size of 42 bits or less");
    }
    let resolved = input_bits as i64 - (12 + 9 * (3 - start_level as i64));
    if !(1..=13).contains(&resolved) {
        return bad("S2T0SZ and S2SL0 are not a legal combination");
    }
    let concatenated = 1u32 << (resolved - 9).max(0);
    // S2TTB [243:196] = STE word 3 bits [51:4]; aligned to the concatenated tables' size.
    let ttb = ste[3] & 0x000f_ffff_ffff_fff0;
    if ttb >> output_bits != 0 {
        return bad("S2TTB outside the output size");
    }
    if !ttb.is_multiple_of(u64::from(concatenated) * 4096) {
        return bad("S2TTB not aligned to the start-level tables");
    }
    Ok(S2Config {
        vmid: bits(q2, 0, 16) as u16,
        input_bits,
        start_level,
        concatenated,
        output_bits,
        ttb,
        affd: bits(q2, 53, 1) != 0,
        record_faults: bits(q2, 58, 1) != 0,
    })
}

/// Walks `cfg`'s table for input address `ia`.
pub fn walk(cfg: &S2Config, ia: u64) -> Result<S2Leaf, S2Error> {
    if ia >> cfg.input_bits != 0 {
        return Err(S2Error::Translation(None));
    }
    let mut level = cfg.start_level;
    let mut table = cfg.ttb;
    loop {
        let shift = 12 + 9 * (3 - level);
        // At the start level the index spans the concatenated tables; below it, 9 bits.
        let index_bits = if level == cfg.start_level {
            cfg.input_bits - shift
        } else {
            9
        };
        let index = (ia >> shift) & ((1 << index_bits) - 1);
        // SAFETY: tests only: `table` is a table page (or concatenated run) of a table the
        // test built in its own memory, identity-mapped; `index` stays inside it.
        let desc = unsafe { core::ptr::read_volatile((table as *const u64).add(index as usize)) };
        let kind = desc & 0b11;
        if desc & 1 == 0 || (level == 3 && kind == 0b01) || (level == 0 && kind == 0b01) {
            // Invalid, a reserved level-3 encoding, or a level-0 block (4 KiB, no LPA2).
            return Err(S2Error::Translation(Some(level)));
        }
        let address = desc & 0x0000_ffff_ffff_f000;
        if address >> cfg.output_bits != 0 {
            return Err(S2Error::AddressSize(level));
        }
        if level < 3 && kind == 0b11 {
            table = address;
            level += 1;
            continue;
        }
        // A block (levels 1 and 2) or a page.
        let size_mask = (1u64 << shift) - 1;
        if desc & (1 << 10) == 0 && !cfg.affd {
            return Err(S2Error::AccessFlag(level));
        }
        let s2ap = bits(desc, 6, 2);
        return Ok(S2Leaf {
            pa: (address & !size_mask) | (ia & size_mask),
            level,
            read: s2ap & 0b01 != 0,
            write: s2ap & 0b10 != 0,
        });
    }
}

/// Whether a device read and write of the page at `ia` reaches `ia` itself (the identity map
/// the host's DMA table must be), as the SMMU would translate it.
pub fn reaches_itself(cfg: &S2Config, ia: u64) -> bool {
    matches!(walk(cfg, ia), Ok(l) if l.pa == ia && l.read && l.write)
}
