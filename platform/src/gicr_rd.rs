//! What EL2 lets the host do with a GICv3 redistributor's RD_base frame, and how it reads a
//! trapped access from its syndrome: the pure half of `el2/src/host_gicr.rs`, tested here.
//!
//! The rule (GICv3 architecture specification 12.11, the RD_base register map): the host
//! gets no LPIs, because with GICR_CTLR.EnableLPIs = 1 the redistributor reads and writes
//! the tables at GICR_PROPBASER/GICR_PENDBASER, which take any physical address.
//! - GICR_CTLR: through, with EnableLPIs cleared on every write and every read;
//! - GICR_IIDR, GICR_TYPER (32 or 64 bits), GICR_STATUSR, GICR_WAKER, GICR_SYNCR and the ID
//!   registers: through;
//! - everything else (PROPBASER, PENDBASER, SETLPIR, CLRLPIR, INVLPIR, INVALLR, and
//!   IMPLEMENTATION DEFINED registers): reads as zero, writes are dropped.

/// GICR_CTLR.
pub const CTLR: usize = 0x0000;
pub const IIDR: usize = 0x0004;
pub const TYPER: usize = 0x0008;
pub const STATUSR: usize = 0x0010;
pub const WAKER: usize = 0x0014;
pub const PROPBASER: usize = 0x0070;
pub const PENDBASER: usize = 0x0078;
pub const SYNCR: usize = 0x00c0;
/// GICR_PIDR4 .. GICR_CIDR3.
pub const ID_REGISTERS: core::ops::Range<usize> = 0xffd0..0x1_0000;
/// GICR_CTLR.EnableLPIs.
pub const CTLR_ENABLE_LPIS: u32 = 1 << 0;

/// A data access decoded from ESR_EL2 (Arm ARM, ISS encoding for a Data Abort).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// 1, 2, 4 or 8 bytes.
    pub width: usize,
    pub write: bool,
    /// The general-purpose register (31 = XZR/WZR).
    pub register: usize,
    /// ISS.SSE: the load sign-extends.
    pub sign_extend: bool,
    /// ISS.SF: the register is 64 bits wide.
    pub sixty_four: bool,
    /// ESR.IL: the instruction is 4 bytes (else 2).
    pub length: u64,
}

const ISS_ISV: u64 = 1 << 24;
const ISS_SSE: u64 = 1 << 21;
const ISS_SF: u64 = 1 << 15;
const ISS_S1PTW: u64 = 1 << 7;
const ISS_WNR: u64 = 1 << 6;
const ESR_IL: u64 = 1 << 25;

/// The access a stage-2 translation fault describes, or `None` if EL2 cannot or must not
/// emulate it: no valid syndrome (ISS.ISV = 0: load/store pair, atomics, cache
/// maintenance, writeback addressing), a fault on the stage-1 table walk, or any fault other
/// than a translation fault (DFSC 0b0001xx).
pub fn decode(esr: u64) -> Option<Access> {
    let iss = esr & 0x1ff_ffff;
    let translation_fault = iss & 0x3c == 0x04;
    if iss & ISS_ISV == 0 || iss & ISS_S1PTW != 0 || !translation_fault {
        return None;
    }
    Some(Access {
        width: 1 << ((iss >> 22) & 3),
        write: iss & ISS_WNR != 0,
        register: ((iss >> 16) & 0x1f) as usize,
        sign_extend: iss & ISS_SSE != 0,
        sixty_four: iss & ISS_SF != 0,
        length: if esr & ESR_IL != 0 { 4 } else { 2 },
    })
}

impl Access {
    /// The register value a load leaves, from the `width`-byte value read.
    pub fn loaded(&self, raw: u64) -> u64 {
        let bits = 8 * self.width as u32;
        let mut value = if bits < 64 {
            raw & ((1 << bits) - 1)
        } else {
            raw
        };
        if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            value = (((value << shift) as i64) >> shift) as u64;
        }
        if !self.sixty_four {
            value &= 0xffff_ffff;
        }
        value
    }
}

/// What a host read of the RD_base frame at `offset` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Read the register (of this width) and hand the value back, with `clear` bits cleared.
    Register { clear: u32 },
    /// Reads as zero; the hardware is not touched.
    Zero,
}

/// What a host write of `value` to the RD_base frame at `offset` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Write this 32-bit value to the register.
    Register(u32),
    /// Dropped.
    Ignored,
    /// Dropped, and worth a log line: the host tried to give the GIC a table or turn on
    /// LPIs (the name of what it tried).
    Refused(&'static str),
    /// Written with these bits cleared, which the host had set (CTLR with EnableLPIs).
    RegisterRefusing(u32, &'static str),
}

/// The read rule for `width` bytes at `offset` (aligned; EL2 refuses misaligned ones).
pub fn read(offset: usize, width: usize) -> Read {
    match (offset, width) {
        (CTLR, 4) => Read::Register {
            clear: CTLR_ENABLE_LPIS,
        },
        (TYPER, 8) => Read::Register { clear: 0 },
        (IIDR | TYPER | 0x000c | STATUSR | WAKER | SYNCR, 4) => Read::Register { clear: 0 },
        (o, 4) if ID_REGISTERS.contains(&o) => Read::Register { clear: 0 },
        _ => Read::Zero,
    }
}

/// The write rule for `width` bytes of `value` at `offset`.
pub fn write(offset: usize, width: usize, value: u64) -> Write {
    match (offset, width) {
        (CTLR, 4) if value as u32 & CTLR_ENABLE_LPIS != 0 => {
            Write::RegisterRefusing(value as u32 & !CTLR_ENABLE_LPIS, "GICR_CTLR.EnableLPIs")
        }
        (CTLR, 4) => Write::Register(value as u32),
        (STATUSR | WAKER, 4) => Write::Register(value as u32),
        (o, _) if (PROPBASER..PROPBASER + 8).contains(&o) => Write::Refused("GICR_PROPBASER"),
        (o, _) if (PENDBASER..PENDBASER + 8).contains(&o) => Write::Refused("GICR_PENDBASER"),
        _ => Write::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESR_EL2 of a stage-2 translation fault (level 3) on a lower-EL data access.
    fn esr(width_log2: u64, write: bool, register: u64, sse: bool, sf: bool) -> u64 {
        (0x24 << 26)
            | ESR_IL
            | ISS_ISV
            | (width_log2 << 22)
            | if sse { ISS_SSE } else { 0 }
            | (register << 16)
            | if sf { ISS_SF } else { 0 }
            | if write { ISS_WNR } else { 0 }
            | 0x07
    }

    #[test]
    fn a_32_bit_load_is_decoded_with_its_register_and_length() {
        let access = decode(esr(2, false, 19, false, false)).unwrap();
        assert_eq!(
            access,
            Access {
                width: 4,
                write: false,
                register: 19,
                sign_extend: false,
                sixty_four: false,
                length: 4,
            }
        );
        assert_eq!(access.loaded(0xffff_ffff_8000_0001), 0x8000_0001);
    }

    /// ESR values written out bit by bit from the Arm ARM (ISS for a Data Abort), not built
    /// from this module's constants: a wrong constant shows here.
    #[test]
    fn syndromes_written_out_by_hand_decode_to_their_accesses() {
        // EC 0x24, IL, ISV, SAS = 2 (word), SRT = 5, WnR, DFSC 0x07 (level-3 translation).
        assert_eq!(
            decode(0x9385_0047),
            Some(Access {
                width: 4,
                write: true,
                register: 5,
                sign_extend: false,
                sixty_four: false,
                length: 4,
            })
        );
        // A 16-bit instruction (IL = 0), SAS = 3, SSE, SRT = 30, SF, a read, level 1.
        assert_eq!(
            decode(0x91fe_8005),
            Some(Access {
                width: 8,
                write: false,
                register: 30,
                sign_extend: true,
                sixty_four: true,
                length: 2,
            })
        );
        // S1PTW set (bit 7): not emulated.
        assert_eq!(decode(0x9385_00c7), None);
    }

    #[test]
    fn narrow_unsigned_loads_keep_only_their_bytes() {
        let byte = decode(esr(0, false, 1, false, true)).unwrap();
        assert_eq!(byte.loaded(0x1234_5678_9abc_def0), 0xf0);
        let half = decode(esr(1, false, 1, false, false)).unwrap();
        assert_eq!(half.loaded(0xffff_ffff_ffff_8001), 0x8001);
    }

    #[test]
    fn a_sign_extending_load_fills_the_x_register() {
        let access = decode(esr(2, false, 3, true, true)).unwrap();
        assert_eq!(access.loaded(0x8000_0001), 0xffff_ffff_8000_0001);
        let access = decode(esr(3, false, 3, false, true)).unwrap();
        assert_eq!(access.loaded(0x1234_5678_9abc_def0), 0x1234_5678_9abc_def0);
    }

    #[test]
    fn accesses_without_a_valid_syndrome_or_on_a_table_walk_are_not_emulated() {
        assert_eq!(decode(esr(2, true, 1, false, false) & !ISS_ISV), None);
        assert_eq!(decode(esr(2, true, 1, false, false) | ISS_S1PTW), None);
        // A permission fault (DFSC 0b001111) is not a missing mapping.
        assert_eq!(decode((esr(2, true, 1, false, false) & !0x3f) | 0x0f), None);
    }

    #[test]
    fn enable_lpis_never_reaches_the_redistributor() {
        assert_eq!(
            write(CTLR, 4, 0x1),
            Write::RegisterRefusing(0, "GICR_CTLR.EnableLPIs")
        );
        assert_eq!(write(CTLR, 4, 0x0), Write::Register(0));
        assert_eq!(
            read(CTLR, 4),
            Read::Register {
                clear: CTLR_ENABLE_LPIS
            }
        );
        // A 64-bit access to CTLR/IIDR is not a register access the rule knows.
        assert_eq!(write(CTLR, 8, 0x1), Write::Ignored);
        assert_eq!(read(CTLR, 8), Read::Zero);
    }

    #[test]
    fn lpi_table_bases_are_refused_and_read_as_zero() {
        for width in [4, 8] {
            assert_eq!(
                write(PROPBASER, width, 0x5800_0000),
                Write::Refused("GICR_PROPBASER")
            );
            assert_eq!(
                write(PENDBASER, width, 0x5800_0000),
                Write::Refused("GICR_PENDBASER")
            );
            assert_eq!(read(PROPBASER, width), Read::Zero);
            assert_eq!(read(PENDBASER, width), Read::Zero);
        }
        assert_eq!(write(PENDBASER + 4, 4, 0), Write::Refused("GICR_PENDBASER"));
    }

    #[test]
    fn direct_lpi_registers_and_unknown_offsets_are_dropped() {
        for offset in [0x40, 0x48, 0xa0, 0xb0, 0x18, 0x24, 0x1000] {
            assert_eq!(write(offset, 4, 0xffff_ffff), Write::Ignored, "{offset:#x}");
            assert_eq!(read(offset, 4), Read::Zero, "{offset:#x}");
        }
    }

    #[test]
    fn identification_and_power_registers_pass_through() {
        for offset in [IIDR, TYPER, TYPER + 4, STATUSR, WAKER, SYNCR, 0xffe8] {
            assert_eq!(read(offset, 4), Read::Register { clear: 0 }, "{offset:#x}");
        }
        assert_eq!(read(TYPER, 8), Read::Register { clear: 0 });
        assert_eq!(write(WAKER, 4, 0x2), Write::Register(0x2));
        assert_eq!(write(TYPER, 4, 0x2), Write::Ignored);
    }
}
