//! SErrors and the guest: one the guest caused is the guest's, delivered to it as a
//! virtual SError (HCR_EL2.VSE), never to the host.
//!
//! Physical SErrors come to EL2 while a guest runs (HCR_EL2.AMO). One taken during the
//! run (exit kind 3) or in the exit path's unmask window (bit 2 of the exit kind, see
//! `guest_exit_common` in asm/vectors.S) is made pending for the guest as a virtual SError
//! and the guest resumes or exits as it would have; the virtual SError stays pending
//! across runs until the guest takes it (pKVM does the same with `kvm_inject_vabt`). An
//! A synchronous external abort of the guest's (HCR_EL2.TEA sends it to EL2 on a CPU with
//! RAS) is given back to it the same way, never turned into an exit for the host. An
//! SError pending before the guest runs is the host's: `__guest_enter` does not enter the
//! guest and the run ends with an IRQ exit, after which the host takes it at EL1.

use crate::el1_state::El1State;
use aarch64_cpu::registers::{HCR_EL2, ReadWriteable, Readable};
use platform::guest_traps::hcr;

/// Exit kinds of `__guest_enter`.
pub const EXIT_SERROR: u64 = 3;
/// Added to the exit kind when the exit window took an SError of the guest's.
pub const EXIT_WITH_SERROR: u64 = 4;

/// Makes a virtual SError pending for the guest whose state is loaded.
pub fn inject(guest: &mut El1State) {
    guest.virtual_serror = true;
    HCR_EL2.modify(HCR_EL2::VSE::SET);
}

/// After `el2_regs::enter_guest`: a virtual SError the guest has not taken yet is still
/// pending for it.
pub fn resume(guest: &El1State) {
    if guest.virtual_serror {
        HCR_EL2.modify(HCR_EL2::VSE::SET);
    }
}

/// Before `el2_regs::leave_guest`: whether the guest took its virtual SError (the CPU
/// clears HCR_EL2.VSE when it does).
pub fn save(guest: &mut El1State) {
    guest.virtual_serror = HCR_EL2.get() & hcr::VSE != 0;
}
