//! A second CPU that makes one VCPU_RUN on request, so that a vCPU is "running" (inside
//! VCPU_RUN on another CPU, section 8) while the boot CPU makes the call under test.
//!
//! The worker waits for a request, runs VCPU_RUN (again with completion 0 after an IRQ
//! exit: an interrupt is not the guest's doing), stores the result and waits again.

use crate::guest_driver::vcpu_run;
use core::arch::asm;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use el1_rt::boot::Platform;
use el1_rt::timeout::wait_until;
use el1_rt::{cpus, psci};

const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(IDLE);
static ONLINE: AtomicU8 = AtomicU8::new(0);
static REQUEST: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static RESULT: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// x1 bits [7:0] of an IRQ exit.
const IRQ_REASON: u64 = 1;
/// How long the worker may take to come up.
const START_TIMEOUT_MS: u64 = 10_000;

/// The worker CPU, once started.
pub struct Spinner {
    pub cpu: usize,
}

impl Spinner {
    /// Starts the first CPU of the DTB that is not this one.
    pub fn start(platform: &Platform) -> Result<Self, &'static str> {
        let conduit = platform.board.psci.ok_or("the DTB names no PSCI conduit")?;
        psci::set_conduit(conduit);
        let own = cpus::own_mpidr();
        let (cpu, mpidr) = platform
            .board
            .cpus
            .iter()
            .find(|&(_, mpidr)| mpidr != own)
            .ok_or("only one CPU: no vCPU can run while the host calls")?;
        if cpus::start(cpu, mpidr, &platform.mmu, worker) != 0 {
            return Err("PSCI CPU_ON of the worker CPU failed");
        }
        if !wait_until(START_TIMEOUT_MS, || ONLINE.load(Ordering::Acquire) != 0) {
            return Err("the worker CPU did not come up");
        }
        Ok(Self { cpu })
    }

    /// Asks the worker to make VCPU_RUN(handle, vcpu, completion).
    pub fn request(&self, handle: u64, vcpu: u32, completion: u64) {
        REQUEST[0].store(handle, Ordering::Relaxed);
        REQUEST[1].store(vcpu.into(), Ordering::Relaxed);
        REQUEST[2].store(completion, Ordering::Relaxed);
        STATE.store(REQUESTED, Ordering::Release);
        send_event();
    }

    /// Whether the requested VCPU_RUN has returned.
    pub fn is_done(&self) -> bool {
        STATE.load(Ordering::Acquire) == DONE
    }

    /// Waits up to `ms` for the VCPU_RUN to return; its x0..x3, and the worker is idle.
    pub fn wait(&self, ms: u64) -> Option<[u64; 4]> {
        if !wait_until(ms, || self.is_done()) {
            return None;
        }
        let result = RESULT.each_ref().map(|r| r.load(Ordering::Relaxed));
        STATE.store(IDLE, Ordering::Release);
        Some(result)
    }
}

/// The worker CPU's task (el1-rt turns the CPU off if it ever returns).
fn worker(_index: usize) {
    ONLINE.store(1, Ordering::Release);
    loop {
        while STATE.load(Ordering::Acquire) != REQUESTED {
            wait_for_event();
        }
        STATE.store(RUNNING, Ordering::Relaxed);
        let handle = REQUEST[0].load(Ordering::Relaxed);
        let vcpu = REQUEST[1].load(Ordering::Relaxed) as u32;
        let mut completion = REQUEST[2].load(Ordering::Relaxed);
        let ret = loop {
            let ret = vcpu_run(handle, vcpu, completion);
            if ret[0] == 0 && ret[1] == IRQ_REASON && ret[2] == 0 && ret[3] == 0 {
                completion = 0;
                continue;
            }
            break ret;
        };
        for (slot, value) in RESULT.iter().zip(ret) {
            slot.store(value, Ordering::Relaxed);
        }
        STATE.store(DONE, Ordering::Release);
    }
}

fn send_event() {
    // SAFETY: `dsb` orders the request before the event; `sev` only signals.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn wait_for_event() {
    // SAFETY: `wfe` only waits for an event (or returns spuriously).
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}
