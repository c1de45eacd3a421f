//! `guest_data_does_not_survive_a_host_reset`: the abi-host booted with bootargs
//! `reset-test`, over two boots of one QEMU run (xtask lets this case reboot; QEMU keeps
//! RAM across a PSCI SYSTEM_RESET and reloads only the images it was given).
//!
//! Boot 1: a protected guest writes its secret into a private page; a second guest spins
//! on CPU 1, inside VCPU_RUN again and again; CPU 0 leaves a note in its first free page
//! (a page every boot of this image allocates first, so boot 2 finds it) naming the
//! secret page and the spinning guest's image page, and calls SYSTEM_RESET.
//! Boot 2: the note is there, so this is the second boot: both pages, now the host's
//! again, must read as zero. Reading them is what a host that reset the machine to
//! collect guest memory would do.

use crate::runner::Ctx;
use crate::tests::sharing::run_to_shared;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use el1_rt::timeout::wait_until;
use el1_rt::{cache, cpus, fail, host_calls, psci, say};
use hvc_abi::VmHandle;
use smccc::psci::PSCI_SYSTEM_RESET;
use test_guest::{Command, IMAGE_GFN, SECRET_GFN, secret_word};

pub const MODE_WORD: &str = "reset-test";
const NAME: &str = "guest_data_does_not_survive_a_host_reset";
/// "rst-note" in ASCII: the note's first word.
const MAGIC: u64 = 0x7273_742d_6e6f_7465;
const PAGE: usize = 4096;
const CPU_TIMEOUT_MS: u64 = 10_000;

static SPIN_HANDLE: AtomicU64 = AtomicU64::new(0);
static SPIN_RUNS: AtomicUsize = AtomicUsize::new(0);

fn read(address: usize) -> u64 {
    // SAFETY: `address` is an aligned word of host-owned, identity-mapped RAM (the note
    // page or a page the host owns in this boot).
    unsafe { (address as *const u64).read_volatile() }
}

fn write(address: usize, value: u64) {
    // SAFETY: as in `read`; the note page is this image's own free page.
    unsafe { (address as *mut u64).write_volatile(value) }
}

pub fn run(ctx: &mut Ctx) -> ! {
    let note = match ctx.page() {
        Ok(page) => page,
        Err(e) => fail!("no page for the note: {}", e.as_str()),
    };
    if read(note) == MAGIC {
        second_boot(note)
    }
    first_boot(ctx, note)
}

fn first_boot(ctx: &mut Ctx, note: usize) -> ! {
    let mut guest = match ctx.guest(Command::SecretAndShare, 1) {
        Ok(g) => g,
        Err(e) => fail!("building the secret guest: {}", e.as_str()),
    };
    if let Err(e) = run_to_shared(&mut guest) {
        fail!("running the secret guest: {}", e.as_str());
    }
    let Ok(secret) = guest.vm().host_address(SECRET_GFN) else {
        fail!("the secret guest has no secret page");
    };
    let spinner = match ctx.guest(Command::Spin, 1) {
        Ok(g) => g,
        Err(e) => fail!("building the spinning guest: {}", e.as_str()),
    };
    let Ok(image) = spinner.vm().host_address(IMAGE_GFN) else {
        fail!("the spinning guest has no image page");
    };
    SPIN_HANDLE.store(spinner.vm().handle().raw(), Ordering::Release);
    let own = cpus::own_mpidr();
    let Some((index, mpidr)) = ctx.platform.board.cpus.iter().find(|&(_, m)| m != own) else {
        fail!("needs a second CPU (-smp 2 or more)");
    };
    let status = cpus::start(index, mpidr, &ctx.platform.mmu, spin_forever);
    if status != 0 {
        fail!("PSCI CPU_ON of cpu {index} returned {status}");
    }
    if !wait_until(CPU_TIMEOUT_MS, || SPIN_RUNS.load(Ordering::Acquire) >= 2) {
        fail!("the spinning guest never ran on cpu {index}");
    }
    write(note, MAGIC);
    write(note + 8, secret as u64);
    write(note + 16, image as u64);
    cache::clean_to_poc(note, 24);
    say!(
        "reset-test: SYSTEM_RESET with a guest secret at {secret:#x} and a guest running on cpu {index} (image at {image:#x})"
    );
    let status = psci::call_function(PSCI_SYSTEM_RESET, 0, 0, 0);
    fail!("SYSTEM_RESET returned {status}")
}

/// CPU 1: runs the spinning guest until the machine resets.
fn spin_forever(_cpu: usize) {
    let handle = VmHandle(SPIN_HANDLE.load(Ordering::Acquire));
    loop {
        // Each run ends at the guest's next tick report; its result does not matter.
        let _ = host_calls::vcpu_run(handle, 0, 0);
        SPIN_RUNS.fetch_add(1, Ordering::AcqRel);
    }
}

fn second_boot(note: usize) -> ! {
    let secret = read(note + 8) as usize;
    let image = read(note + 16) as usize;
    write(note, 0);
    cache::clean_to_poc(note, 8);
    say!("reset-test: second boot; checking {secret:#x} and {image:#x}");
    let failure = check_zero(secret, "the guest's secret page")
        .or_else(|| check_zero(image, "the running guest's image page"));
    match failure {
        None => {
            el1_rt::console::bare_line(format_args!("test {NAME} ... ok"));
            el1_rt::console::bare_line(format_args!("1 passed, 0 failed"));
            el1_rt::exit::semihosting_exit(0)
        }
        Some(why) => {
            el1_rt::console::bare_line(format_args!("test {NAME} ... FAILED: {why}"));
            el1_rt::console::bare_line(format_args!("0 passed, 1 failed"));
            el1_rt::exit::semihosting_exit(1)
        }
    }
}

/// `None` if the page at `address` is all zero, else what was found.
fn check_zero(address: usize, what: &'static str) -> Option<Failure> {
    let words = PAGE / 8;
    let nonzero = (0..words).filter(|&i| read(address + 8 * i) != 0).count();
    if nonzero == 0 {
        return None;
    }
    let secrets = (0..words)
        .filter(|&i| read(address + 8 * i) == secret_word(i))
        .count();
    Some(Failure {
        what,
        address,
        nonzero,
        secrets,
    })
}

struct Failure {
    what: &'static str,
    address: usize,
    nonzero: usize,
    secrets: usize,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(
            f,
            "{} at {:#x} survived the reset: {} nonzero words, {} of them the guest's secret words",
            self.what, self.address, self.nonzero, self.secrets
        )
    }
}
