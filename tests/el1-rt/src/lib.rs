//! Runtime of the bare-metal EL1 test images (`demo-host`, `abi-host`): what an image
//! needs to run as the host under the EL2 payload and to talk to it.
//!
//! An image links with its own linker script (load address, symbols listed in
//! `asm/entry.S`), declares its main function with [`entry!`], calls [`boot::start`] and
//! then uses the modules below. Console lines carry the prefix given to `start`.
//!
//! The pure modules (DTB reading, free-page search, image header) build and are tested on
//! the development machine; the others use aarch64 registers and instructions.
#![cfg_attr(not(test), no_std)]

pub mod board;
pub mod dtb_copy;
pub mod free_pages;
pub mod image_header;
pub mod region;

#[cfg(target_arch = "aarch64")]
pub mod boot;
#[cfg(target_arch = "aarch64")]
pub mod cache;
#[cfg(target_arch = "aarch64")]
pub mod console;
#[cfg(target_arch = "aarch64")]
pub mod cpus;
#[cfg(target_arch = "aarch64")]
pub mod exceptions;
#[cfg(target_arch = "aarch64")]
pub mod exit;
#[cfg(target_arch = "aarch64")]
pub mod guest_vm;
#[cfg(target_arch = "aarch64")]
pub mod host_calls;
#[cfg(target_arch = "aarch64")]
pub mod hvc;
#[cfg(target_arch = "aarch64")]
pub mod mmu;
#[cfg(target_arch = "aarch64")]
pub mod probe;
#[cfg(target_arch = "aarch64")]
pub mod psci;
#[cfg(target_arch = "aarch64")]
pub mod test_guest_driver;
#[cfg(target_arch = "aarch64")]
pub mod testing;
#[cfg(target_arch = "aarch64")]
pub mod timeout;

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(include_str!("asm/entry.S"));
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(include_str!("asm/vectors.S"));

/// One line per panic, so that the whole reason follows `<prefix>FAIL: `.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(location) => exit::fail_with(format_args!("panic at {location}: {}", info.message())),
        None => exit::fail_with(format_args!("panic: {}", info.message())),
    }
}
