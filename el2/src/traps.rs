//! Where every synchronous trap from the host arrives (`asm/vectors.S`), sorted by
//! exception class. Nothing here trusts the host: an exception class EL2 does not expect
//! is answered with an undefined-instruction exception in the host, never a panic.

use crate::{fatal, host_abort, host_hvc, psci_relay};
use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, Readable, Writeable};

/// The caller-saved registers of the trapped context, as `asm/vectors.S` pushes them.
#[repr(C)]
pub struct TrapFrame {
    /// x0-x18.
    pub x: [u64; 19],
    pub x30: u64,
}

const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_IABT_LOW: u64 = 0x20;
const EC_DABT_LOW: u64 = 0x24;

#[unsafe(no_mangle)]
extern "C" fn handle_lower_sync(frame: &mut TrapFrame) {
    if fatal::halting() {
        fatal::park_this_cpu();
    }
    let esr = ESR_EL2.get();
    match esr >> 26 {
        EC_HVC64 => host_hvc::handle(frame),
        EC_SMC64 => {
            // A trapped SMC leaves ELR_EL2 on the SMC itself: step over it.
            ELR_EL2.set(ELR_EL2.get() + 4);
            psci_relay::handle_smc(frame);
        }
        EC_IABT_LOW | EC_DABT_LOW => host_abort::handle_stage2_abort(esr),
        _ => host_abort::inject_undefined(esr),
    }
}
