//! The protected test guest: a raw binary the hosts donate at IPA 0x4000_0000 and start
//! with VCPU_CREATE (x0 = a `test_guest::Command`). It speaks only the guest calls of
//! docs/abi.md section 5 and reports to its host through MMIO exits (the protocol and the
//! guest memory layout are in lib.rs).
//!
//! It runs with its MMU off: every data access is Device memory, so the code makes only
//! aligned, single accesses (strict-align build, volatile accesses) and uses no atomics.
//!
//! Build it for `aarch64-unknown-none-softfloat`: then it contains no FP/SIMD instruction
//! (`llvm-objdump -d` shows no `v`/`q`/`d`/`s` register), so a payload that does not
//! switch FP/SIMD state between host and guest (docs/abi.md 1.0 does not say it must)
//! cannot lose host registers to it. It also builds and runs for `aarch64-unknown-none`,
//! where rustc moves 8-byte constants through `d` registers and saves d8-d15 around
//! inline asm.

#![no_std]
#![no_main]

mod commands;
mod exception;
mod hvc;
mod memory;
mod mmio;
mod psci;
mod sysregs;

use commands::Failure;
use core::panic::PanicInfo;
use test_guest::{Command, Report, Step, UNKNOWN_COMMAND_CHECK};

core::arch::global_asm!(include_str!("entry.S"));

/// Rust entry (entry.S): EL1h, MMU off, `.bss` zeroed, stack and vectors set.
#[unsafe(no_mangle)]
extern "C" fn guest_main(command: u64) -> ! {
    mmio::register_channels();
    let result = match Command::from_x0(command) {
        Some(Command::Discovery) => commands::discovery(),
        Some(Command::SecretAndShare) => commands::secret_and_share(),
        Some(Command::Relinquish) => commands::relinquish(),
        Some(Command::Spin) => commands::spin(),
        Some(Command::CallErrors) => commands::call_errors(),
        Some(Command::CpuOn) => psci::cpu_on(),
        Some(Command::StoreUnbacked) => commands::store_unbacked(),
        Some(Command::SmcccQueries) => psci::smccc_queries(),
        Some(Command::LinuxStory) => {
            mmio::print_line(test_guest::GREETING);
            commands::secret_and_share()
        }
        Some(Command::MteHidden) => commands::mte_hidden(),
        Some(Command::IdRegisters) => sysregs::id_registers(),
        Some(Command::AuxControl) => sysregs::aux_control(),
        Some(Command::TrappedRegisters) => sysregs::trapped_registers(),
        Some(Command::HostThreadPointer) => sysregs::host_thread_pointer(),
        None => Err(Failure {
            check: UNKNOWN_COMMAND_CHECK,
            value: command as u32,
            what: "unknown command",
        }),
    };
    match result {
        Ok(()) => mmio::report(Report::Reached(Step::Done)),
        Err(failure) => commands::report_failure(&failure),
    }
    hvc::system_off()
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    commands::report_failure(&Failure {
        check: 0xDEAD,
        value: 0,
        what: "panic in the guest",
    });
    hvc::system_off()
}
