//! `/init` of the bench's Linux boots (`cargo xtask bench`): the first user-space
//! instruction reads the virtual counter, the program prints `bench-vct: <ticks>` on the
//! console and powers the machine off. At `-icount shift=0` a tick is 16 instructions, so
//! this is how long Linux took, in instructions, to reach user space.
//!
//! Not part of the bench-host crate: xtask compiles this file alone with rustc
//! (`--target aarch64-unknown-none`, linked by rust-lld into a static ELF) and packs it as
//! the only program of an initramfs (xtask/src/bench/linux_init.rs). It makes raw Linux
//! system calls, so it needs no libc and no Linux target of the toolchain.

#![no_std]
#![no_main]

use core::arch::asm;

/// arm64 Linux system call numbers.
const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;
const SYS_REBOOT: u64 = 142;
/// reboot(2): the two magic numbers and LINUX_REBOOT_CMD_POWER_OFF.
const REBOOT_MAGIC1: u64 = 0xfee1_dead;
const REBOOT_MAGIC2: u64 = 672_274_793;
const REBOOT_POWER_OFF: u64 = 0x4321_fedc;

const PREFIX: &[u8] = b"bench-vct: ";

#[unsafe(no_mangle)]
extern "C" fn _start() -> ! {
    let ticks: u64;
    // SAFETY: reading CNTVCT_EL0 at EL0 is allowed (Linux sets CNTKCTL_EL1.EL0VCTEN for
    // its vDSO) and has no side effect.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack)) };

    let mut line = [0u8; 40];
    line[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut len = PREFIX.len() + write_decimal(ticks, &mut line[PREFIX.len()..]);
    line[len] = b'\n';
    len += 1;
    // SAFETY: write(1, line, len): the kernel reads `len` bytes of `line`, which lives on
    // this stack frame. stdout is /dev/console, opened by the kernel for init.
    unsafe { syscall3(SYS_WRITE, 1, line.as_ptr() as u64, len as u64) };
    // SAFETY: reboot(POWER_OFF) ends the machine (init runs with CAP_SYS_BOOT); it only
    // returns on failure.
    unsafe { syscall3(SYS_REBOOT, REBOOT_MAGIC1, REBOOT_MAGIC2, REBOOT_POWER_OFF) };
    exit(1)
}

/// Writes `value` in decimal at the start of `out` (at least 20 bytes); returns the length.
fn write_decimal(mut value: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (value % 10) as u8;
        count += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for (slot, digit) in out.iter_mut().zip(digits[..count].iter().rev()) {
        *slot = *digit;
    }
    count
}

/// # Safety
/// The arguments must be valid for the system call `number`.
unsafe fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    let result;
    // SAFETY: the caller's promise; `svc #0` enters the kernel, which returns in x0 and
    // preserves every other register.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            inlateout("x0") a0 => result,
            in("x1") a1,
            in("x2") a2,
            options(nostack),
        );
    }
    result
}

fn exit(status: u64) -> ! {
    loop {
        // SAFETY: exit(status) does not return.
        unsafe { syscall3(SYS_EXIT, status, 0, 0) };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(2)
}
