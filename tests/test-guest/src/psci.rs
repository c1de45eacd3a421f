//! Command::CpuOn: the guest's own PSCI, answered by the payload (docs/abi.md 5.5). vCPU 0
//! starts vCPU 1 at `secondary_entry` (entry.S) with a context id the host never sees.
//! Command::SmcccQueries: the SMCCC architecture and TRNG queries (5.8), which the host
//! must never get to answer.

use crate::commands::{Checked, Failure, ensure, report_failure};
use crate::hvc::{self, call};
use crate::mmio::report;
use hvc_abi::psci::{AFFINITY_OFF, AFFINITY_ON, GUEST_PSCI_VERSION};
use hvc_abi::{GuestPsci, PsciError};
use test_guest::{Report, SECONDARY_CONTEXT, Step};

unsafe extern "C" {
    /// vCPU 1's entry (entry.S); only its address is used.
    fn secondary_entry();
}

fn psci(call_: GuestPsci) -> u64 {
    call(call_.encode())[0]
}

fn affinity_info(vcpu: u64) -> u64 {
    psci(GuestPsci::AffinityInfo {
        target_affinity: vcpu,
        lowest_level: 0,
    })
}

fn start(target_cpu: u64, entry: u64) -> u64 {
    psci(GuestPsci::CpuOn {
        target_cpu,
        entry,
        context_id: SECONDARY_CONTEXT,
    })
}

/// Command::CpuOn on vCPU 0.
pub fn cpu_on() -> Checked {
    let entry = secondary_entry as *const () as u64;
    let version = psci(GuestPsci::Version);
    ensure(
        version == u64::from(GUEST_PSCI_VERSION),
        1,
        version,
        "PSCI_VERSION is not 1.0",
    )?;
    let off = affinity_info(1);
    ensure(
        off == AFFINITY_OFF,
        2,
        off,
        "vCPU 1 is not off before CPU_ON",
    )?;
    let bad = start(1, entry + 2);
    ensure(
        bad == PsciError::InvalidAddress.as_x0(),
        3,
        bad,
        "CPU_ON at an unaligned entry is not INVALID_ADDRESS",
    )?;
    let absent = start(5, entry);
    ensure(
        absent == PsciError::InvalidParameters.as_x0(),
        4,
        absent,
        "CPU_ON of a vCPU the VM does not have is not INVALID_PARAMETERS",
    )?;
    let me = start(0, entry);
    ensure(
        me == PsciError::AlreadyOn.as_x0(),
        5,
        me,
        "CPU_ON of the calling vCPU is not ALREADY_ON",
    )?;
    let features = psci(GuestPsci::Features {
        function_id: 0x8400_0003,
    });
    ensure(
        features == PsciError::NotSupported.as_x0(),
        6,
        features,
        "PSCI_FEATURES says CPU_ON's SMC32 form is served",
    )?;
    // The host sees VCPU_STARTED here, before the next instruction.
    let started = start(1, entry);
    ensure(started == 0, 7, started, "CPU_ON of vCPU 1 failed")?;
    let again = start(1, entry);
    ensure(
        again == PsciError::AlreadyOn.as_x0(),
        8,
        again,
        "a second CPU_ON of vCPU 1 is not ALREADY_ON",
    )?;
    let on = affinity_info(1);
    ensure(on == AFFINITY_ON, 9, on, "vCPU 1 is not on after CPU_ON")?;
    report(Report::Reached(Step::SecondaryOn));
    // The host ran vCPU 1 to its CPU_OFF before running this vCPU again.
    let off = affinity_info(1);
    ensure(
        off == AFFINITY_OFF,
        10,
        off,
        "vCPU 1 is not off after its CPU_OFF",
    )
}

/// vCPU 1's Rust entry (entry.S `secondary_entry`): checks it got the guest's context id
/// and its own MPIDR, reports, and powers itself off.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(context_id: u64) -> ! {
    let result = ensure(
        context_id == SECONDARY_CONTEXT,
        0x20,
        context_id,
        "vCPU 1 did not get the guest's context id in x0",
    )
    .and_then(|()| {
        let mpidr = mpidr_el1();
        ensure(
            mpidr == 0x8000_0001,
            0x21,
            mpidr,
            "vCPU 1's MPIDR_EL1 is not 0x80000001",
        )
    });
    match result {
        Ok(()) => report(Report::Reached(Step::SecondaryRan)),
        Err(failure) => report_failure(&failure),
    }
    call(GuestPsci::CpuOff.encode());
    // CPU_OFF does not return; only a broken payload gets here.
    report_failure(&Failure {
        check: 0x22,
        value: 0,
        what: "PSCI CPU_OFF returned",
    });
    hvc::system_off()
}

fn mpidr_el1() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack, preserves_flags))
    };
    mpidr
}

/// SMCCC ids the queries use (SMCCC v1.4, Arm DEN 0028; TRNG, Arm DEN 0098).
const SMCCC_VERSION: u64 = 0x8000_0000;
const SMCCC_ARCH_FEATURES: u64 = 0x8000_0001;
const ARCH_WORKAROUNDS: [u64; 3] = [0x8000_8000, 0x8000_7FFF, 0x8000_3FFF];
const TRNG_VERSION: u64 = 0x8400_0050;
const TRNG_RND64: u64 = 0xC400_0053;

fn smccc(id: u64, x1: u64) -> [u64; 4] {
    let mut regs = [0; 8];
    regs[0] = id;
    regs[1] = x1;
    call(regs)
}

/// Command::SmcccQueries. A payload that forwards any of these to the host shows as a
/// GUEST_HVC exit (the host test fails on it); the answers themselves depend on the
/// firmware, except SMCCC_VERSION and ARCH_FEATURES of ARCH_FEATURES, which are the
/// payload's own.
pub fn smccc_queries() -> Checked {
    let version = smccc(SMCCC_VERSION, 0)[0];
    ensure(
        version == 0x1_0001,
        1,
        version,
        "SMCCC_VERSION is not the payload's 1.1",
    )?;
    let features = smccc(SMCCC_ARCH_FEATURES, SMCCC_ARCH_FEATURES)[0];
    ensure(
        features == 0,
        2,
        features,
        "SMCCC_ARCH_FEATURES does not say it is implemented",
    )?;
    for workaround in ARCH_WORKAROUNDS {
        smccc(SMCCC_ARCH_FEATURES, workaround);
    }
    smccc(TRNG_VERSION, 0);
    smccc(TRNG_RND64, 64);
    Ok(())
}
