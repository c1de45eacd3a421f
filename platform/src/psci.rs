//! The PSCI / SMCCC conduit: how EL2 reaches the firmware below it (QEMU's built-in PSCI on
//! `virt,virtualization=on` is reached by SMC).
//!
//! The calls themselves are the `smccc` crate's; this module only picks SMC or HVC from the
//! discovered method. They exist only on aarch64 (`smccc` has no x86 conduit); [`Conduit`] and
//! the function ids build everywhere so discovery can be tested on the development machine.

/// PSCI return codes as a Rust error, as defined by the `smccc` crate.
pub use smccc::psci::Error;
/// PSCI function ids, as defined by the `smccc` crate (PSCI 1.1, SMC32 and SMC64 forms).
pub use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_DEFAULT_SUSPEND_32,
    PSCI_CPU_DEFAULT_SUSPEND_64, PSCI_CPU_FREEZE, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MEM_PROTECT,
    PSCI_MEM_PROTECT_CHECK_RANGE_32, PSCI_MEM_PROTECT_CHECK_RANGE_64, PSCI_MIGRATE_32,
    PSCI_MIGRATE_64, PSCI_MIGRATE_INFO_TYPE, PSCI_MIGRATE_INFO_UP_CPU_32,
    PSCI_MIGRATE_INFO_UP_CPU_64, PSCI_NODE_HW_STATE_32, PSCI_NODE_HW_STATE_64,
    PSCI_SET_SUSPEND_MODE, PSCI_STAT_COUNT_32, PSCI_STAT_COUNT_64, PSCI_STAT_RESIDENCY_32,
    PSCI_STAT_RESIDENCY_64, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_SYSTEM_RESET2_32,
    PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_32, PSCI_SYSTEM_SUSPEND_64, PSCI_VERSION,
};

/// The instruction that reaches the PSCI implementation, from the PSCI node's `method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `method = "smc"`: firmware at EL3 (or the emulator standing in for it).
    Smc,
    /// `method = "hvc"`: a hypervisor at EL2 implements PSCI.
    Hvc,
}

impl Conduit {
    /// Maps a PSCI node `method` value to a conduit; `None` for anything else.
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "smc" => Some(Self::Smc),
            "hvc" => Some(Self::Hvc),
            _ => None,
        }
    }
}

/// Forwards a raw SMCCC 64-bit call: `regs[0]` is the function id (x0), `regs[1..18]` are
/// x1..x17; returns x0..x17 as the callee left them.
///
/// SMCCC passes the function id in W0, so only the low 32 bits of `regs[0]` are passed on
/// (`smccc::smc64`/`hvc64` take a `u32`); the upper half of x0 is zero at the callee.
#[cfg(target_arch = "aarch64")]
pub fn call(conduit: Conduit, regs: [u64; 18]) -> [u64; 18] {
    let function = regs[0] as u32;
    let mut args = [0u64; 17];
    args.copy_from_slice(&regs[1..]);
    match conduit {
        Conduit::Smc => smccc::smc64(function, args),
        Conduit::Hvc => smccc::hvc64(function, args),
    }
}

/// PSCI CPU_ON (SMC64): starts the CPU `target_mpidr` at `entry` with `context_id` in x0.
/// Errors are PSCI's own (`AlreadyOn`, `OnPending`, `InvalidParameters`, `InvalidAddress`, ...).
#[cfg(target_arch = "aarch64")]
pub fn cpu_on(
    conduit: Conduit,
    target_mpidr: u64,
    entry: u64,
    context_id: u64,
) -> Result<(), Error> {
    match conduit {
        Conduit::Smc => smccc::psci::cpu_on::<smccc::Smc>(target_mpidr, entry, context_id),
        Conduit::Hvc => smccc::psci::cpu_on::<smccc::Hvc>(target_mpidr, entry, context_id),
    }
}

/// PSCI SYSTEM_OFF. Does not return: if the firmware refuses, this CPU waits for interrupts
/// forever (it has nothing left to do).
#[cfg(target_arch = "aarch64")]
pub fn system_off(conduit: Conduit) -> ! {
    let _ = match conduit {
        Conduit::Smc => smccc::psci::system_off::<smccc::Smc>(),
        Conduit::Hvc => smccc::psci::system_off::<smccc::Hvc>(),
    };
    loop {
        // SAFETY: `wfi` only suspends this CPU until an interrupt or event; it touches no
        // memory or registers the compiler relies on.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_map_to_conduits() {
        assert_eq!(Conduit::from_method("smc"), Some(Conduit::Smc));
        assert_eq!(Conduit::from_method("hvc"), Some(Conduit::Hvc));
        assert_eq!(Conduit::from_method("SMC"), None);
        assert_eq!(Conduit::from_method(""), None);
    }

    #[test]
    fn function_ids_come_from_smccc() {
        assert_eq!(PSCI_SYSTEM_OFF, 0x8400_0008);
        assert_eq!(PSCI_CPU_ON_64, 0xC400_0003);
    }
}
