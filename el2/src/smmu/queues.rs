//! The command queue (commands EL2 issues: configuration and TLB invalidation, each batch
//! ended by a CMD_SYNC that EL2 waits for) and the event queue (faults the SMMU records,
//! logged and counted). Formats: Arm IHI 0070, 4.1-4.7 (commands) and 7.3 (events).
//!
//! A queue is a power-of-two array in memory; PROD and CONS hold an index with one wrap bit
//! above it. Full: same index, different wrap bit. Empty: equal.

use super::regs::{
    CMDQ_CONS, CMDQ_PROD, EVENTQ_CONS, EVENTQ_PROD, GERROR, GERROR_CMDQ_ERR, GERRORN,
    QUEUE_OVERFLOW, Regs,
};
use core::ptr::{read_volatile, write_volatile};
use stage2::smmuv3::commands::Command;
use stage2::smmuv3::events::event_name;
use stage2::smmuv3::queue_index::{is_empty, is_full, next};

/// How long a CMD_SYNC (or a full queue) may take before EL2 gives up: far beyond what any
/// SMMU needs for a few commands.
const TIMEOUT_MS: u64 = 1000;

/// Why the command queue cannot go on: the system must stop.
#[derive(Clone, Copy, Debug)]
pub enum QueueError {
    /// CMD_SYNC (or space in a full queue) did not come within the timeout.
    Timeout { prod: u32, cons: u32 },
    /// GERROR.CMDQ_ERR: the SMMU refused a command (CMDQ_CONS.ERR says why).
    CommandError { cons: u32 },
}

impl core::fmt::Display for QueueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Timeout { prod, cons } => write!(
                f,
                "SMMU command queue did not complete within {TIMEOUT_MS} ms (PROD {prod:#x}, CONS {cons:#x})"
            ),
            Self::CommandError { cons } => write!(
                f,
                "SMMU command queue error {:#x} at CONS {cons:#x}",
                (cons >> 24) & 0x7f
            ),
        }
    }
}

fn now_ticks() -> (u64, u64) {
    let count: u64;
    let freq: u64;
    // SAFETY: reading the physical counter and its frequency has no side effects; EL2 may
    // always read them.
    unsafe {
        core::arch::asm!("isb", "mrs {c}, cntpct_el0", "mrs {f}, cntfrq_el0", c = out(reg) count, f = out(reg) freq, options(nomem, nostack));
    }
    (count, freq)
}

/// The command queue, owned by whoever holds the SMMU (the record lock, after boot).
pub struct CommandQueue {
    regs: Regs,
    base: usize,
    log2: u32,
    /// Our copy of PROD (index and wrap bit).
    prod: u32,
}

impl CommandQueue {
    /// # Safety
    ///
    /// `base` is `16 << log2` bytes of EL2-owned memory, mapped read-write, that the SMMU
    /// reads as its command queue (CMDQ_BASE names it).
    pub unsafe fn new(regs: Regs, base: usize, log2: u32) -> Self {
        Self {
            regs,
            base,
            log2,
            prod: 0,
        }
    }

    fn full(&self, cons: u32) -> bool {
        is_full(self.prod, cons, self.log2)
    }

    fn check_error(&self) -> Result<(), QueueError> {
        let pending = self.regs.read32(GERROR) ^ self.regs.read32(GERRORN);
        if pending & GERROR_CMDQ_ERR != 0 {
            return Err(QueueError::CommandError {
                cons: self.regs.read32(CMDQ_CONS),
            });
        }
        Ok(())
    }

    /// Waits (bounded) until `done(cons)`.
    fn wait(&self, done: impl Fn(u32) -> bool) -> Result<(), QueueError> {
        let (start, freq) = now_ticks();
        let limit = freq / 1000 * TIMEOUT_MS;
        loop {
            let cons = self.regs.read32(CMDQ_CONS);
            if done(cons) {
                return Ok(());
            }
            self.check_error()?;
            if now_ticks().0.wrapping_sub(start) > limit {
                return Err(QueueError::Timeout {
                    prod: self.prod,
                    cons,
                });
            }
            core::hint::spin_loop();
        }
    }

    /// Writes `cmd` at PROD (waiting for room) without telling the SMMU yet.
    /// Queues `cmds` in order. Kept out of line so that `run`'s code is the fixed order the
    /// maintenance check reads (the commands, the sync, the publish) however the compiler
    /// lays out this loop.
    #[inline(never)]
    fn push_all(&mut self, cmds: &[Command]) -> Result<(), QueueError> {
        for &cmd in cmds {
            self.push(cmd)?;
        }
        Ok(())
    }

    fn push(&mut self, cmd: Command) -> Result<(), QueueError> {
        if self.full(self.regs.read32(CMDQ_CONS)) {
            // Let the SMMU see what is queued, then wait for room.
            self.publish();
            self.wait(|cons| !self.full(cons))?;
        }
        let index = (self.prod & ((1 << self.log2) - 1)) as usize;
        let slot = (self.base + index * 16) as *mut u64;
        // SAFETY: `new`'s contract; the slot is inside the queue and the SMMU does not read
        // it until PROD passes it.
        unsafe {
            write_volatile(slot, cmd.0[0]);
            write_volatile(slot.add(1), cmd.0[1]);
        }
        self.prod = next(self.prod, self.log2);
        Ok(())
    }

    #[inline(never)] // checked by name in the built payload (payload_maintenance_sequences)
    fn publish(&self) {
        // The command words must be visible to the SMMU before PROD says they are there.
        // SAFETY: a barrier has no other effect.
        unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
        self.regs.write32(CMDQ_PROD, self.prod);
    }

    /// Issues `cmds` then a CMD_SYNC and waits until the SMMU has consumed the sync, i.e.
    /// has completed every command before it (IHI 0070 4.7.3).
    #[inline(never)] // checked by name in the built payload (payload_maintenance_sequences)
    pub fn run(&mut self, cmds: &[Command]) -> Result<(), QueueError> {
        self.push_all(cmds)?;
        self.push(Command::sync())?;
        let (target, log2) = (self.prod, self.log2);
        self.publish();
        // Consumed: CONS has caught up with PROD (index and wrap bit; the ERR field aside).
        self.wait(move |cons| is_empty(target, cons, log2))
    }
}

/// Events logged one by one; after that only every 1024th, so a host that makes its devices
/// fault on purpose cannot flood the console.
const LOGGED_EVENTS: u64 = 16;

/// The event queue, drained by whichever CPU next enters EL2 (EL2 takes no interrupts).
pub struct EventQueue {
    regs: Regs,
    base: usize,
    log2: u32,
    pub count: u64,
}

impl EventQueue {
    /// # Safety
    ///
    /// `base` is `32 << log2` bytes of EL2-owned memory that the SMMU writes as its event
    /// queue (EVENTQ_BASE names it), mapped read-write at EL2.
    pub unsafe fn new(regs: Regs, base: usize, log2: u32) -> Self {
        Self {
            regs,
            base,
            log2,
            count: 0,
        }
    }

    /// Logs and counts every event the SMMU has written; acknowledges an overflow.
    pub fn drain(&mut self) {
        let prod = self.regs.read32(EVENTQ_PROD);
        let mut cons = self.regs.read32(EVENTQ_CONS);
        let index_mask = (1 << self.log2) - 1;
        if is_empty(prod, cons, self.log2) && (prod ^ cons) & QUEUE_OVERFLOW == 0 {
            return;
        }
        while !is_empty(prod, cons, self.log2) {
            let slot = (self.base + (cons & index_mask) as usize * 32) as *const u64;
            // SAFETY: `new`'s contract; the SMMU wrote this record before moving PROD past it.
            let (q0, q2) = unsafe { (read_volatile(slot), read_volatile(slot.add(2))) };
            self.count += 1;
            if self.count <= LOGGED_EVENTS || self.count.is_multiple_of(1024) {
                log::warn!(
                    "smmu: event {} ({:#x}) stream {:#x} address {:#x} (event {} so far)",
                    event_name(q0 as u8),
                    q0 as u8,
                    q0 >> 32,
                    q2,
                    self.count
                );
            }
            cons = next(cons, self.log2);
        }
        if (prod ^ cons) & QUEUE_OVERFLOW != 0 {
            log::warn!("smmu: event queue overflowed; events were lost");
            cons ^= QUEUE_OVERFLOW;
        }
        self.regs.write32(EVENTQ_CONS, cons);
    }
}
