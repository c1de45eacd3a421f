//! What the world switch keeps apart that the ABI scenarios do not see: the guest's view
//! of the CPU (sanitised ID registers, an auxiliary control it cannot program), the host's
//! PMU while a guest runs, and the host's SVE registers across VCPU_RUN.

use crate::runner::{Ctx, Failure, TestResult, bail};
use el1_rt::host_calls;
use hvc_abi::HostCall;
use test_guest::{ACTLR_PATTERN, Command, GUEST_TPIDR2_PATTERN};

core::arch::global_asm!(include_str!("sve.S"));

macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading one of the host's own system registers has no side effect.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the test restores every register it changes before it returns; the
        // registers are the host's own (PMU, SVE enables).
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value, options(nostack, preserves_flags))
        };
    }};
}

/// The guest reads no SVE, SME, PMU, SPE, trace, MTE, RAS, GIC, EL2 or LOR in its ID
/// registers, and an IPA size no larger than its VM's (the guest checks, see
/// tests/test-guest/src/sysregs.rs).
pub fn guest_sees_no_sve_or_pmu_in_its_id_registers(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::IdRegisters, 1)?;
    guest.expect_done(0, 0)?;
    Ok(())
}

/// The guest's accesses to registers the payload traps and does not emulate (the GIC CPU
/// interface, whose virtual state in ICH_VMCR_EL2 would otherwise pass from guest to
/// guest; set/way maintenance; IMPLEMENTATION DEFINED registers; PMU; LORegions; RAS
/// error records) each raise an undefined-instruction exception in the guest.
pub fn guest_access_to_trapped_registers_is_undefined(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::TrappedRegisters, 1)?;
    guest.expect_done(0, 0)?;
    Ok(())
}

/// The guest writes ACTLR_EL1 and reads zero back; the host's ACTLR_EL1 is what it was.
pub fn guest_write_to_actlr_el1_does_not_reach_the_host(ctx: &mut Ctx) -> TestResult {
    let before = read_sysreg!("actlr_el1");
    let mut guest = ctx.guest(Command::AuxControl, 1)?;
    guest.expect_done(0, 0)?;
    let after = read_sysreg!("actlr_el1");
    if after != before {
        bail!(
            "the host's ACTLR_EL1 was {before:#x} and is {after:#x} after the guest wrote {ACTLR_PATTERN:#x}"
        );
    }
    Ok(())
}

/// What the host keeps in TPIDR2_EL0 across the guest run.
const HOST_TPIDR2_PATTERN: u64 = 0x4057_1111_0000_7e57;

/// SME's TPIDR2_EL0 is not part of the switched state and, on a CPU without FEAT_FGT,
/// nothing traps a guest's access to it: the payload saves and zeroes it for the run. The
/// guest reads zero (or takes an UNDEF where fine-grained traps exist), and its write does
/// not reach the host.
pub fn guest_cannot_read_or_write_the_hosts_tpidr2_el0(ctx: &mut Ctx) -> TestResult {
    let pfr1 = read_sysreg!("id_aa64pfr1_el1");
    if (pfr1 >> 24) & 0xf == 0 {
        return Err(Failure::not_applicable(format_args!(
            "this CPU has no SME, so no TPIDR2_EL0 (ID_AA64PFR1_EL1 {pfr1:#x})"
        )));
    }
    let before = read_sysreg!("s3_3_c13_c0_5");
    write_sysreg!("s3_3_c13_c0_5", HOST_TPIDR2_PATTERN);
    let result = ctx
        .guest(Command::HostThreadPointer, 1)
        .and_then(|mut guest| guest.expect_done(0, 0).map_err(Failure::from));
    let after = read_sysreg!("s3_3_c13_c0_5");
    write_sysreg!("s3_3_c13_c0_5", before);
    result?;
    if after != HOST_TPIDR2_PATTERN {
        bail!(
            "the host's TPIDR2_EL0 was {HOST_TPIDR2_PATTERN:#x} and is {after:#x} after the guest wrote {GUEST_TPIDR2_PATTERN:#x}"
        );
    }
    Ok(())
}

/// PMCCFILTR_EL0: U (do not count at EL0) and NSH (count at EL2): the cycle counter
/// counts EL1 and EL2, i.e. everything a guest run is made of.
const CYCLES_AT_EL1_AND_EL2: u64 = (1 << 30) | (1 << 27);
/// PMCR_EL0.E (enable) and .C (reset the cycle counter).
const PMCR_ENABLE_AND_RESET_CYCLES: u64 = (1 << 0) | (1 << 2);
const CYCLE_COUNTER: u64 = 1 << 31;

/// Guest runs measured; the test judges the quietest one.
const PMU_RUNS: usize = 5;

/// The host's cycle counter, set to count EL1 and EL2, counts (almost) nothing while a
/// guest spins through a whole VCPU_RUN: the payload stops the host's counters for the
/// run. QEMU's cycle counter and generic timer both follow its virtual clock (1 GHz and
/// CNTFRQ_EL0), so a counter that ran through the guest would count about as many cycles
/// as nanoseconds passed; the bound is a quarter of that.
///
/// Without `-icount` QEMU's virtual clock is the host's clock, so if QEMU's CPU thread is
/// descheduled while EL2 runs outside the stopped window (on a loaded machine), the counter
/// gains that whole time slice. The test therefore measures several runs and judges the
/// one with the fewest cycles per nanosecond: a payload that counts the guest counts it in
/// every run, so even its quietest run is over the bound.
pub fn host_pmu_counts_nothing_while_a_guest_runs(ctx: &mut Ctx) -> TestResult {
    let dfr0 = read_sysreg!("id_aa64dfr0_el1");
    let pmuver = (dfr0 >> 8) & 0xf;
    if pmuver == 0 || pmuver == 0xf {
        return Err(Failure::not_applicable(format_args!(
            "this CPU has no PMUv3 (ID_AA64DFR0_EL1 {dfr0:#x})"
        )));
    }
    let guest = ctx.guest(Command::Spin, 1)?;
    let handle = guest.vm().handle();
    let freq = read_sysreg!("cntfrq_el0").max(1);
    // (cycles, elapsed ns) of the run with the lowest ratio so far.
    let mut quietest: Option<(u64, u64)> = None;
    for _ in 0..PMU_RUNS {
        let pmcr = read_sysreg!("pmcr_el0");
        let filter = read_sysreg!("pmccfiltr_el0");
        write_sysreg!("pmccfiltr_el0", CYCLES_AT_EL1_AND_EL2);
        write_sysreg!("pmcr_el0", pmcr | PMCR_ENABLE_AND_RESET_CYCLES);
        write_sysreg!("pmcntenset_el0", CYCLE_COUNTER);
        let t0 = read_sysreg!("cntvct_el0");
        let c0 = read_sysreg!("pmccntr_el0");
        // The spinning guest ends its run with its tick report, milliseconds later.
        let exit = host_calls::vcpu_run(handle, 0, 0);
        let c1 = read_sysreg!("pmccntr_el0");
        let t1 = read_sysreg!("cntvct_el0");
        write_sysreg!("pmcntenclr_el0", CYCLE_COUNTER);
        write_sysreg!("pmccfiltr_el0", filter);
        write_sysreg!("pmcr_el0", pmcr);
        exit?;
        let elapsed_ns = ((t1 - t0).saturating_mul(1_000_000_000) / freq).max(1);
        let cycles = c1.wrapping_sub(c0);
        // cycles / elapsed below the quietest's, compared without division.
        let quieter = quietest.is_none_or(|(qc, qe)| {
            u128::from(cycles) * u128::from(qe) < u128::from(qc) * u128::from(elapsed_ns)
        });
        if quieter {
            quietest = Some((cycles, elapsed_ns));
        }
    }
    let Some((cycles, elapsed_ns)) = quietest else {
        bail!("no guest run was measured");
    };
    if cycles.saturating_mul(4) > elapsed_ns {
        bail!(
            "the host's cycle counter counted {cycles} cycles at EL1/EL2 during a VCPU_RUN of {elapsed_ns} ns (the quietest of {PMU_RUNS} runs): it counted the guest"
        );
    }
    Ok(())
}

/// Z0-Z31 at 2048 bits, P0-P15 and FFR.
const SVE_STATE_BYTES: usize = 32 * 256 + 17 * 32;

#[repr(C, align(16))]
struct SveBuffer([u8; SVE_STATE_BYTES]);

static mut SVE_BEFORE: SveBuffer = SveBuffer([0; SVE_STATE_BYTES]);
static mut SVE_AFTER: SveBuffer = SveBuffer([0; SVE_STATE_BYTES]);

/// CPACR_EL1.ZEN = 0b11: SVE at EL1 and EL0 does not trap.
const CPACR_ZEN: u64 = 0b11 << 16;

/// The host fills every Z and P register and FFR, makes a VCPU_RUN (the guest's FP/SIMD
/// state is loaded and saved, and the host's V registers put back, on the way), and finds
/// every bit as it left it. All of it is one asm block: compiled code in between could
/// itself write a V register and zero a Z register's upper bits.
pub fn host_sve_state_survives_vcpu_run(ctx: &mut Ctx) -> TestResult {
    let pfr0 = read_sysreg!("id_aa64pfr0_el1");
    if (pfr0 >> 32) & 0xf == 0 {
        return Err(Failure::not_applicable(format_args!(
            "this CPU has no SVE (ID_AA64PFR0_EL1 {pfr0:#x}): run QEMU with -cpu max"
        )));
    }
    let guest = ctx.guest(Command::Spin, 1)?;
    let regs = HostCall::VcpuRun {
        handle: guest.vm().handle(),
        vcpu: 0,
        completion: 0,
    }
    .encode();
    let cpacr = read_sysreg!("cpacr_el1");
    write_sysreg!("cpacr_el1", cpacr | CPACR_ZEN);
    // ZCR_EL1.LEN: the largest vector length the CPU (and EL2) allows.
    write_sysreg!("s3_0_c1_c2_0", 0xf);
    let vl: u64;
    // SAFETY: RDVL only reads the vector length; SVE is enabled just above.
    unsafe {
        core::arch::asm!(".arch_extension sve", "rdvl {}, #1", out(reg) vl, options(nomem, nostack, preserves_flags))
    };
    let mut result = [0u64; 4];
    let before = (&raw mut SVE_BEFORE).cast::<u8>();
    let after = (&raw mut SVE_AFTER).cast::<u8>();
    // SAFETY: the two buffers are this test's own statics, large enough for the largest
    // vector length (SVE_STATE_BYTES); `abi_sve_fill`/`abi_sve_store` (sve.S) use only
    // x0, x1, the SVE registers and the link register, all declared clobbered here (the C
    // ABI's caller-saved set, which includes every Z/V, P and FFR); x20-x23 are preserved
    // by the calls and by the HVC (SMCCC 1.1: x4-x17 and above are preserved).
    unsafe {
        core::arch::asm!(
            "bl abi_sve_fill",
            "mov x0, x20",
            "bl abi_sve_store",
            "ldp x0, x1, [x22]",
            "ldp x2, x3, [x22, #16]",
            "ldp x4, x5, [x22, #32]",
            "ldp x6, x7, [x22, #48]",
            "hvc #0",
            "stp x0, x1, [x23]",
            "stp x2, x3, [x23, #16]",
            "mov x0, x21",
            "bl abi_sve_store",
            in("x20") before,
            in("x21") after,
            in("x22") regs.as_ptr(),
            in("x23") result.as_mut_ptr(),
            clobber_abi("C"),
        );
    }
    write_sysreg!("cpacr_el1", cpacr);
    if result[0] != 0 {
        bail!("VCPU_RUN returned x0 = {:#x}", result[0]);
    }
    let vl = vl as usize;
    if vl <= 16 {
        bail!("the vector length is {vl} bytes: nothing beyond the V registers to lose");
    }
    let len = 32 * vl + 17 * vl / 8;
    // SAFETY: the asm block above has finished writing both buffers; `len` is within them
    // (vl is at most 256).
    let (b, a) = unsafe {
        (
            core::slice::from_raw_parts(before, len.min(SVE_STATE_BYTES)),
            core::slice::from_raw_parts(after, len.min(SVE_STATE_BYTES)),
        )
    };
    if let Some(i) = (0..b.len()).find(|&i| a[i] != b[i]) {
        let what = if i < 32 * vl {
            ("Z", i / vl, i % vl)
        } else if i < 32 * vl + 16 * vl / 8 {
            ("P", (i - 32 * vl) / (vl / 8), (i - 32 * vl) % (vl / 8))
        } else {
            ("FFR", 0, i - 32 * vl - 16 * vl / 8)
        };
        bail!(
            "{}{} byte {} was {:#04x} before VCPU_RUN and is {:#04x} after (VL {} bytes)",
            what.0,
            what.1,
            what.2,
            b[i],
            a[i],
            vl
        );
    }
    Ok(())
}

/// SMCCC_ARCH_FEATURES and the two SMCCC conduits.
const SMCCC_ARCH_FEATURES: u64 = 0x8000_0001;
const SMCCC_ARCH_WORKAROUNDS: [u64; 3] = [0x8000_8000, 0x8000_7fff, 0x8000_3fff];

/// The host's queries for the Spectre workarounds (SMCCC_ARCH_WORKAROUND_1/2/3), on HVC and
/// on SMC, get the firmware's answer through EL2. QEMU's `virt` firmware has no SMCCC 1.1
/// (PSCI_FEATURES(SMCCC_VERSION) is NOT_SUPPORTED), so the answer is NOT_SUPPORTED, and
/// EL2 must get there without making an SMC the firmware does not implement (an undefined
/// instruction at EL2 on a machine without EL3).
pub fn host_spectre_workaround_queries_reach_the_firmware(_ctx: &mut Ctx) -> TestResult {
    for workaround in SMCCC_ARCH_WORKAROUNDS {
        let mut regs = [0u64; 8];
        regs[0] = SMCCC_ARCH_FEATURES;
        regs[1] = workaround;
        let hvc = el1_rt::hvc::call(regs).x0;
        let smc = smc(regs);
        for (conduit, answer) in [("HVC", hvc), ("SMC", smc)] {
            if answer != u64::MAX {
                bail!(
                    "ARCH_FEATURES({workaround:#x}) over {conduit} returned {answer:#x}; QEMU's firmware has no SMCCC 1.1, so NOT_SUPPORTED"
                );
            }
        }
    }
    Ok(())
}

fn smc(regs: [u64; 8]) -> u64 {
    let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = regs;
    // SAFETY: SMC #0 traps to the payload (HCR_EL2.TSC), which answers in x0..x3.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
            in("x4") x4, in("x5") x5, in("x6") x6, in("x7") x7,
            clobber_abi("C"), options(nostack),
        );
    }
    let _ = (x1, x2, x3);
    x0
}

/// CPACR_EL1.SMEN = 0b11: SME at EL1 and EL0 does not trap.
const CPACR_SMEN: u64 = 0b11 << 24;

/// A host in SME streaming mode (PSTATE.SM = 1) makes a VCPU_RUN: EL2 keeps its streaming
/// Z registers and its streaming mode. (EL2 saves and loads V registers with AdvSIMD
/// instructions, which the architecture makes illegal in streaming mode without FA64;
/// QEMU runs them anyway and so zeroes the Z registers' upper bits, which this catches.)
pub fn host_in_streaming_mode_can_run_a_guest(ctx: &mut Ctx) -> TestResult {
    let pfr1 = read_sysreg!("id_aa64pfr1_el1");
    if (pfr1 >> 24) & 0xf == 0 {
        return Err(Failure::not_applicable(format_args!(
            "this CPU has no SME (ID_AA64PFR1_EL1 {pfr1:#x}): run QEMU with -cpu max"
        )));
    }
    let guest = ctx.guest(Command::Spin, 1)?;
    let regs = HostCall::VcpuRun {
        handle: guest.vm().handle(),
        vcpu: 0,
        completion: 0,
    }
    .encode();
    let cpacr = read_sysreg!("cpacr_el1");
    write_sysreg!("cpacr_el1", cpacr | CPACR_SMEN | CPACR_ZEN);
    // SMCR_EL1.LEN: the largest streaming vector length.
    write_sysreg!("s3_0_c1_c2_6", 0xf);
    let mut result = [0u64; 4];
    let svcr_during: u64;
    let before = (&raw mut SVE_BEFORE).cast::<u8>();
    let after = (&raw mut SVE_AFTER).cast::<u8>();
    let svl: u64;
    // SAFETY: as in `host_sve_state_survives_vcpu_run`; between SMSTART SM and SMSTOP SM
    // only SVE instructions legal in streaming mode run (no compiled code), and streaming
    // mode is left before the block ends.
    unsafe {
        core::arch::asm!(
            ".arch_extension sve",
            ".inst 0xd503437f", // smstart sm
            "rdvl x24, #1",
            "index z0.b, #3, #5",
            "index z31.b, #-7, #3",
            "str z0, [x20, #0, mul vl]",
            "str z31, [x20, #1, mul vl]",
            "ldp x0, x1, [x22]",
            "ldp x2, x3, [x22, #16]",
            "ldp x4, x5, [x22, #32]",
            "ldp x6, x7, [x22, #48]",
            "hvc #0",
            "stp x0, x1, [x23]",
            "stp x2, x3, [x23, #16]",
            "mrs x25, s3_3_c4_c2_2", // SVCR
            "str z0, [x21, #0, mul vl]",
            "str z31, [x21, #1, mul vl]",
            ".inst 0xd503427f", // smstop sm
            in("x20") before,
            in("x21") after,
            in("x22") regs.as_ptr(),
            in("x23") result.as_mut_ptr(),
            out("x24") svl,
            out("x25") svcr_during,
            clobber_abi("C"),
        );
    }
    write_sysreg!("cpacr_el1", cpacr);
    if result[0] != 0 {
        bail!("VCPU_RUN in streaming mode returned x0 = {:#x}", result[0]);
    }
    if svcr_during & 1 == 0 {
        bail!("the host left VCPU_RUN out of streaming mode (SVCR {svcr_during:#x})");
    }
    let len = (2 * svl as usize).min(SVE_STATE_BYTES);
    // SAFETY: the asm block has finished writing both buffers; `len` is within them.
    let (b, a) = unsafe {
        (
            core::slice::from_raw_parts(before, len),
            core::slice::from_raw_parts(after, len),
        )
    };
    if let Some(i) = (0..len).find(|&i| a[i] != b[i]) {
        bail!(
            "streaming Z{} byte {} was {:#04x} before VCPU_RUN and is {:#04x} after (SVL {svl} bytes)",
            if i < svl as usize { 0 } else { 31 },
            i % svl as usize,
            b[i],
            a[i]
        );
    }
    Ok(())
}
