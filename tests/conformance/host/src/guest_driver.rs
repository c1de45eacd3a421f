//! Drives one operation of the conformance guest (guest_code.rs) through VCPU_RUN: answers
//! its channel reads, collects its channel writes, completes a load or a forwarded HVC,
//! and keeps every other exit as what the operation caused.

use crate::guest_code::{
    ARGS_OFFSET, LAST_ARG_OFFSET, LAST_RESULT_OFFSET, OP_OFFSET, RESULTS_OFFSET,
};
use conformance::backend::{FORWARD_REPLY, GuestOpEnd, GuestOutcome, LOAD_SENTINEL};
use conformance::plan::CHANNEL_IPA;
use hvc_abi::{AccessSize, Exit, FunctionId, MmioAccess};

/// Exits one operation may take (13 channel exits, one of its own, interrupts).
const MAX_EXITS: usize = 256;

/// What to do after an exit.
pub enum Next {
    /// Run the vCPU again with this completion.
    Run(u64),
    /// The operation is over.
    Done(GuestOutcome),
}

/// One operation in progress.
pub struct Driver {
    op: u64,
    args: [u64; 8],
    results: [u64; 4],
    exit: Option<Exit>,
}

impl Driver {
    pub fn new(op: u64, args: [u64; 8]) -> Self {
        Self {
            op,
            args,
            results: [0; 4],
            exit: None,
        }
    }

    fn done(&self, end: GuestOpEnd) -> Next {
        Next::Done(GuestOutcome {
            exit: self.exit,
            end,
        })
    }

    /// Whether `exit` is the guest reading its last argument: the VCPU_RUN that completes
    /// it starts the operation itself.
    pub fn is_last_argument_read(exit: &Exit) -> bool {
        matches!(exit, Exit::Mmio { ipa, access: MmioAccess::Read, .. }
            if *ipa == CHANNEL_IPA + LAST_ARG_OFFSET)
    }

    /// The completion for the guest's read at channel offset `offset`.
    fn channel_read(&self, offset: u64) -> Option<u64> {
        if offset == OP_OFFSET {
            return Some(self.op);
        }
        let index = offset.checked_sub(ARGS_OFFSET)? / 8;
        self.args.get(index as usize).copied()
    }

    /// Takes the result of one VCPU_RUN (x0..x3).
    pub fn feed(&mut self, ret: [u64; 4]) -> Next {
        if ret[0] != 0 {
            return self.done(GuestOpEnd::RunFailed(ret));
        }
        let Ok(exit) = Exit::decode([ret[1], ret[2], ret[3]]) else {
            return self.done(GuestOpEnd::RunFailed(ret));
        };
        let channel = |ipa: u64| ipa.checked_sub(CHANNEL_IPA).filter(|&o| o < 0x100);
        match exit {
            Exit::Irq => Next::Run(0),
            Exit::Mmio {
                ipa,
                size: AccessSize::B8,
                access: MmioAccess::Read,
                ..
            } if channel(ipa).is_some_and(|o| o <= LAST_ARG_OFFSET && o % 8 == 0) => {
                match channel(ipa).and_then(|o| self.channel_read(o)) {
                    Some(value) => Next::Run(value),
                    None => self.done(GuestOpEnd::Unexpected(exit)),
                }
            }
            Exit::Mmio {
                ipa,
                size: AccessSize::B8,
                access: MmioAccess::Write { data },
                ..
            } if channel(ipa).is_some_and(|o| {
                (RESULTS_OFFSET..=LAST_RESULT_OFFSET).contains(&o) && o % 8 == 0
            }) =>
            {
                let offset = ipa - CHANNEL_IPA;
                self.results[((offset - RESULTS_OFFSET) / 8) as usize] = data;
                if offset == LAST_RESULT_OFFSET {
                    self.done(GuestOpEnd::Returned(self.results))
                } else {
                    Next::Run(0)
                }
            }
            _ if self.exit.is_some() => self.done(GuestOpEnd::Unexpected(exit)),
            Exit::Mmio {
                access: MmioAccess::Read,
                ..
            } => {
                // The load operation's read of an IPA with no page.
                self.exit = Some(exit);
                Next::Run(LOAD_SENTINEL)
            }
            Exit::GuestHvc { .. } => {
                self.exit = Some(exit);
                Next::Run(FORWARD_REPLY)
            }
            Exit::MemShared { .. }
            | Exit::MemUnshared { .. }
            | Exit::MemRelinquished { .. }
            | Exit::VcpuStarted { .. } => {
                self.exit = Some(exit);
                Next::Run(0)
            }
            // No return: the VM stopped, or the vCPU powered off (its CPU_OFF, or it is
            // off and runs nothing).
            Exit::SystemOff | Exit::SystemReset | Exit::VcpuOff => {
                self.exit = Some(exit);
                self.done(GuestOpEnd::Stopped)
            }
            Exit::Mmio { .. } | Exit::MemFault { .. } => self.done(GuestOpEnd::Unexpected(exit)),
        }
    }
}

/// VCPU_RUN(handle, vcpu, completion) on this CPU: x0..x3.
pub fn vcpu_run(handle: u64, vcpu: u32, completion: u64) -> [u64; 4] {
    let mut regs = [0; 8];
    regs[0] = FunctionId::VCPU_RUN.to_x0();
    regs[1] = handle;
    regs[2] = vcpu.into();
    regs[3] = completion;
    el1_rt::hvc::call(regs).to_regs()
}

/// Runs the operation to its end on this CPU, starting with `completion`. `None` if it
/// takes more than MAX_EXITS exits.
pub fn run(driver: &mut Driver, handle: u64, vcpu: u32, completion: u64) -> Option<GuestOutcome> {
    let mut completion = completion;
    for _ in 0..MAX_EXITS {
        match driver.feed(vcpu_run(handle, vcpu, completion)) {
            Next::Run(next) => completion = next,
            Next::Done(outcome) => return Some(outcome),
        }
    }
    None
}

/// Runs the operation on this CPU until the guest reads its last argument; returns the
/// completion that answers that read (the next VCPU_RUN starts the operation proper), or
/// the outcome if the operation ended first.
pub fn run_until_started(
    driver: &mut Driver,
    handle: u64,
    vcpu: u32,
) -> Result<u64, Option<GuestOutcome>> {
    let mut completion = 0;
    for _ in 0..MAX_EXITS {
        let ret = vcpu_run(handle, vcpu, completion);
        let last_read = ret[0] == 0
            && Exit::decode([ret[1], ret[2], ret[3]])
                .is_ok_and(|exit| Driver::is_last_argument_read(&exit));
        match driver.feed(ret) {
            Next::Run(next) if last_read => return Ok(next),
            Next::Run(next) => completion = next,
            Next::Done(outcome) => return Err(Some(outcome)),
        }
    }
    Err(None)
}
