//! The PSCI calls the payload's relay refuses: the SMC32 forms of the calls that carry an
//! entry point EL2 would pass to the firmware (CPU_SUSPEND, SYSTEM_SUSPEND), whose firmware
//! would keep only the low 32 bits of EL2's entry address.

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::psci;
use smccc::psci::{
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MEM_PROTECT,
    PSCI_SYSTEM_RESET2_32, PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_32,
};

const NOT_SUPPORTED: i32 = -1;
/// A power state QEMU's PSCI refuses at once (INVALID_PARAMETERS, it checks bits [31:17]),
/// so that a relay that forwarded the call answers quickly instead of suspending the CPU.
const INVALID_POWER_STATE: u64 = 0x4000_0000;

pub fn host_cpu_suspend_smc32_is_not_supported(_ctx: &mut Ctx) -> TestResult {
    let entry = host_cpu_suspend_smc32_is_not_supported as *const () as u64;
    let got = psci::call_function(PSCI_CPU_SUSPEND_32, INVALID_POWER_STATE, entry, 0);
    if got != NOT_SUPPORTED {
        bail!("CPU_SUSPEND (SMC32) returned {got}, expected NOT_SUPPORTED (-1)");
    }
    let got = psci::call_function(PSCI_SYSTEM_SUSPEND_32, entry, 0, 0);
    if got != NOT_SUPPORTED {
        bail!("SYSTEM_SUSPEND (SMC32) returned {got}, expected NOT_SUPPORTED (-1)");
    }
    for (name, id) in [
        ("CPU_SUSPEND_32", PSCI_CPU_SUSPEND_32),
        ("SYSTEM_SUSPEND_32", PSCI_SYSTEM_SUSPEND_32),
    ] {
        let got = psci::call_function(PSCI_FEATURES, id.into(), 0, 0);
        if got != NOT_SUPPORTED {
            bail!("PSCI_FEATURES({name}) returned {got}, expected NOT_SUPPORTED (-1)");
        }
    }
    // The SMC64 form stays available: the relay asks the firmware.
    let got = psci::call_function(PSCI_FEATURES, PSCI_CPU_SUSPEND_64.into(), 0, 0);
    if got < 0 {
        bail!("PSCI_FEATURES(CPU_SUSPEND_64) returned {got}, expected the firmware's flags");
    }
    Ok(())
}

/// The host can neither switch the firmware's MEM_PROTECT (EL2 turns it on where it exists,
/// so that the firmware wipes RAM on resets EL2 does not see) nor make EL2 wipe the guests
/// with a SYSTEM_RESET2 the firmware does not implement (QEMU's): both answer
/// NOT_SUPPORTED and the machine goes on.
pub fn host_cannot_switch_mem_protect_and_unsupported_reset2_changes_nothing(
    _ctx: &mut Ctx,
) -> TestResult {
    for (name, id, arg) in [
        ("MEM_PROTECT(0)", PSCI_MEM_PROTECT, 0),
        ("SYSTEM_RESET2_64(warm)", PSCI_SYSTEM_RESET2_64, 0),
        ("SYSTEM_RESET2_32(warm)", PSCI_SYSTEM_RESET2_32, 0),
    ] {
        let got = psci::call_function(id, arg, 0, 0);
        if got != NOT_SUPPORTED {
            bail!("{name} returned {got}, expected NOT_SUPPORTED (-1)");
        }
    }
    // Still alive, and EL2 still answers.
    let version = psci::version();
    if version < 0 {
        bail!("PSCI_VERSION returned {version} after the refused calls");
    }
    Ok(())
}
