//! What a guest sees of the CPU's system registers (Command::IdRegisters,
//! Command::AuxControl): the payload traps the ID registers (HCR_EL2.TID3) and ACTLR_EL1
//! (HCR_EL2.TACR) and answers for them, so the guest sees only the features it may use
//! and cannot program the host's auxiliary control.

use crate::commands::Failure;
use test_guest::{ACTLR_PATTERN, GUEST_TPIDR2_PATTERN, IPA_BITS};

type Checked = Result<(), Failure>;

fn ensure(ok: bool, check: u16, value: u64, what: &'static str) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(Failure {
            check,
            value: value as u32,
            what,
        })
    }
}

macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading an ID or control register at EL1 has no side effect (the
        // payload traps and emulates it).
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

const fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// Command::IdRegisters. Each check reports the whole field it looked at.
pub fn id_registers() -> Checked {
    let pfr0 = read_sysreg!("s3_0_c0_c4_0");
    ensure(
        field(pfr0, 32) == 0,
        1,
        pfr0 >> 32,
        "ID_AA64PFR0_EL1.SVE is not 0",
    )?;
    ensure(
        field(pfr0, 24) == 0,
        2,
        pfr0 >> 24,
        "ID_AA64PFR0_EL1.GIC is not 0",
    )?;
    ensure(
        field(pfr0, 8) == 0,
        3,
        pfr0 >> 8,
        "ID_AA64PFR0_EL1.EL2 is not 0",
    )?;
    ensure(
        field(pfr0, 28) == 0,
        4,
        pfr0 >> 28,
        "ID_AA64PFR0_EL1.RAS is not 0",
    )?;
    ensure(
        field(pfr0, 16) != 0xf && field(pfr0, 20) != 0xf,
        5,
        pfr0 >> 16,
        "ID_AA64PFR0_EL1 says there is no FP/AdvSIMD",
    )?;
    let pfr1 = read_sysreg!("s3_0_c0_c4_1");
    ensure(
        field(pfr1, 24) == 0,
        6,
        pfr1 >> 24,
        "ID_AA64PFR1_EL1.SME is not 0",
    )?;
    ensure(
        field(pfr1, 8) == 0,
        7,
        pfr1 >> 8,
        "ID_AA64PFR1_EL1.MTE is not 0",
    )?;
    let zfr0 = read_sysreg!("s3_0_c0_c4_4");
    ensure(
        zfr0 == 0,
        8,
        zfr0,
        "ID_AA64ZFR0_EL1 (SVE features) is not 0",
    )?;
    let smfr0 = read_sysreg!("s3_0_c0_c4_5");
    ensure(
        smfr0 == 0,
        9,
        smfr0,
        "ID_AA64SMFR0_EL1 (SME features) is not 0",
    )?;
    let dfr0 = read_sysreg!("s3_0_c0_c5_0");
    ensure(
        field(dfr0, 8) == 0,
        10,
        dfr0 >> 8,
        "ID_AA64DFR0_EL1.PMUVer is not 0",
    )?;
    ensure(
        field(dfr0, 32) == 0,
        11,
        dfr0 >> 32,
        "ID_AA64DFR0_EL1.PMSVer is not 0",
    )?;
    ensure(
        field(dfr0, 4) == 0,
        12,
        dfr0 >> 4,
        "ID_AA64DFR0_EL1.TraceVer is not 0",
    )?;
    let mmfr0 = read_sysreg!("s3_0_c0_c7_0");
    // PARange 0b0000 is 32 bits: the VM's IPA size (IPA_BITS).
    let parange_bits = [32u32, 36, 40, 42, 44, 48, 52];
    let bits = parange_bits
        .get(field(mmfr0, 0) as usize)
        .copied()
        .unwrap_or(u32::MAX);
    ensure(
        bits <= IPA_BITS,
        13,
        mmfr0,
        "ID_AA64MMFR0_EL1.PARange is larger than the VM's IPA size",
    )?;
    let mmfr1 = read_sysreg!("s3_0_c0_c7_1");
    ensure(
        field(mmfr1, 8) == 0,
        14,
        mmfr1 >> 8,
        "ID_AA64MMFR1_EL1.VH is not 0",
    )?;
    ensure(
        field(mmfr1, 16) == 0,
        15,
        mmfr1 >> 16,
        "ID_AA64MMFR1_EL1.LO is not 0",
    )?;
    // AArch32 ID registers of an AArch64-only guest read as zero.
    let pfr0_32 = read_sysreg!("s3_0_c0_c1_0");
    ensure(pfr0_32 == 0, 16, pfr0_32, "ID_PFR0_EL1 (AArch32) is not 0")?;
    // SCXTNUM_ELx (FEAT_CSV2_2, FEAT_CSV2_1p2) trap for a guest (HCR_EL2.EnSCXT is the
    // host's only), so the guest's ID registers must not promise them.
    ensure(
        field(pfr0, 56) <= 1 && field(pfr1, 32) <= 1,
        17,
        (field(pfr0, 56) << 4) | field(pfr1, 32),
        "ID_AA64PFR0_EL1.CSV2 / PFR1.CSV2_frac promise SCXTNUM_ELx",
    )?;
    Ok(())
}

/// Command::AuxControl.
pub fn aux_control() -> Checked {
    // SAFETY: ACTLR_EL1 is trapped by the payload (HCR_EL2.TACR) and ignored; on a
    // payload that does not trap it, this programs the real auxiliary control, which is
    // exactly what the host-side test detects.
    unsafe {
        core::arch::asm!("msr actlr_el1, {}", "isb", in(reg) ACTLR_PATTERN, options(nostack, preserves_flags))
    };
    let actlr = read_sysreg!("actlr_el1");
    ensure(
        actlr == 0,
        1,
        actlr,
        "ACTLR_EL1 does not read as zero after a write",
    )
}

core::arch::global_asm!(include_str!("undef_probe.S"));

unsafe extern "C" {
    fn guest_probe_icc_pmr() -> u64;
    fn guest_probe_icc_iar1() -> u64;
    fn guest_probe_dc_cisw() -> u64;
    fn guest_probe_impdef() -> u64;
    fn guest_probe_pmcr() -> u64;
    fn guest_probe_lorc() -> u64;
    fn guest_probe_erridr() -> u64;
}

/// ESR_ELx.EC of an undefined-instruction exception (what the payload injects).
const EC_UNKNOWN: u64 = 0x00;

/// Command::TrappedRegisters: every access below is one the payload traps and does not
/// emulate, so each must raise an undefined-instruction exception in the guest.
pub fn trapped_registers() -> Checked {
    let probes: [(unsafe extern "C" fn() -> u64, &'static str); 7] = [
        (
            guest_probe_icc_pmr,
            "ICC_PMR_EL1 (GIC, ICH_HCR_EL2.TC) did not UNDEF",
        ),
        (
            guest_probe_icc_iar1,
            "ICC_IAR1_EL1 (GIC, ICH_HCR_EL2.TALL1) did not UNDEF",
        ),
        (guest_probe_dc_cisw, "DC CISW (HCR_EL2.TSW) did not UNDEF"),
        (
            guest_probe_impdef,
            "an IMPLEMENTATION DEFINED register (HCR_EL2.TIDCP) did not UNDEF",
        ),
        (guest_probe_pmcr, "PMCR_EL0 (MDCR_EL2.TPMCR) did not UNDEF"),
        (guest_probe_lorc, "LORC_EL1 (HCR_EL2.TLOR) did not UNDEF"),
        (
            guest_probe_erridr,
            "ERRIDR_EL1 (HCR_EL2.TERR) did not UNDEF",
        ),
    ];
    for (check, (probe, what)) in (1u16..).zip(probes) {
        // SAFETY: the probe installs its own vectors for the one access, steps over the
        // access if it faults, and puts VBAR_EL1 back; it touches x9-x12 only.
        let esr = unsafe { probe() };
        ensure(esr != u64::MAX && esr >> 26 == EC_UNKNOWN, check, esr, what)?;
    }
    Ok(())
}

/// ESR_EL1 of the probe's exception (or -1) and the value it read.
#[repr(C)]
struct ProbeResult {
    esr: u64,
    value: u64,
}

unsafe extern "C" {
    fn guest_probe_tpidr2(value: u64) -> ProbeResult;
}

/// Command::HostThreadPointer.
pub fn host_thread_pointer() -> Checked {
    // SAFETY: the probe installs its own vectors for the two accesses, steps over them if
    // they fault, and puts VBAR_EL1 back; it touches x9-x12 only. TPIDR2_EL0 is a plain
    // thread-pointer register nothing in this guest uses.
    let r = unsafe { guest_probe_tpidr2(GUEST_TPIDR2_PATTERN) };
    if r.esr != u64::MAX {
        return ensure(
            r.esr >> 26 == EC_UNKNOWN,
            1,
            r.esr,
            "TPIDR2_EL0 raised an exception other than an undefined instruction",
        );
    }
    ensure(
        r.value == 0,
        2,
        r.value,
        "TPIDR2_EL0 held a value the guest never wrote (the host's)",
    )
}
