//! The model as a [`Backend`], so that the runner drives it exactly as it drives the
//! payload. Its world looks like the QEMU board the payload runs on (1 GiB of RAM at
//! 0x4000_0000, the payload's two carve-out regions, the UART), but nothing depends on
//! the addresses matching.

use crate::backend::{
    Backend, BackendError, FORWARD_REPLY, GuestOp, GuestOpEnd, GuestOutcome, HostRead,
    LOAD_SENTINEL,
};
use crate::cases::Boot;
use crate::model::{HostAnswer, LastExit, Model, PfnRange, RunCheck, World};
use crate::plan::{CHANNEL_IPA, Special};
use crate::states::{PageState, marker};
use hvc_abi::{AccessSize, Exit, FunctionId, MmioAccess};

/// RAM of the model's board.
const RAM: PfnRange = PfnRange {
    start: 0x4_0000,
    end: 0x8_0000,
};
/// The payload's carve-outs: its image and its pools at the top of RAM.
const CARVE_OUTS: [PfnRange; 2] = [
    PfnRange {
        start: 0x4_0200,
        end: 0x4_0400,
    },
    PfnRange {
        start: 0x7_FC00,
        end: 0x8_0000,
    },
];
/// The PL011.
const UART: PfnRange = PfnRange {
    start: 0x9000,
    end: 0x9001,
};
/// A page above RAM that no device occupies.
const NO_RAM: u64 = 0xC_0000;
/// Where fresh pages start (as the test hosts' floor, 0x5800_0000).
const FIRST_FREE: u64 = 0x5_8000;
/// The first word of the guest's code page (an `mov x20, x0`; anything but a marker).
const CODE_WORD: u64 = 0xAA00_03F4;

/// The model, driven like the payload.
#[derive(Clone, Debug)]
pub struct ModelBackend {
    pub model: Model,
    next_free: u64,
    spinning: Option<(u64, u32)>,
}

impl ModelBackend {
    /// The model of the payload's default boot.
    pub fn new() -> Self {
        Self::for_boot(Boot::Plain)
    }

    /// The model of the payload booted as `boot` says.
    pub fn for_boot(boot: Boot) -> Self {
        let mut world = World {
            unconfined_dma: boot == Boot::UnconfinedDma,
            ..World::default()
        };
        world.ram[0] = RAM;
        world.hyp[..2].copy_from_slice(&CARVE_OUTS);
        world.mmio[0] = UART;
        Self {
            model: Model::new(world),
            next_free: FIRST_FREE,
            spinning: None,
        }
    }
}

impl Default for ModelBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// x0..x7 of a guest call with one argument.
fn guest_call(id: FunctionId, x1: u64) -> [u64; 8] {
    [id.to_x0(), x1, 0, 0, 0, 0, 0, 0]
}

/// The conformance guest's load operation (guest_code.rs), made of the model's calls:
/// IPA_STATE of the page; MMIO_GUARD_MAP if it has no page and is not registered (its
/// error, if any, is the report: no load); the load; MMIO_GUARD_UNMAP of what it
/// registered. Reports x0 = 0, x1 = the word, x2 = the state.
fn load(model: &mut Model, handle: u64, vcpu: u32, ipa: u64) -> Result<GuestOutcome, BackendError> {
    let cannot = BackendError("the model cannot follow the guest's load");
    let page = ipa & !0xFFF;
    let mut call = |id, x1| {
        model
            .guest_hvc(handle, vcpu, guest_call(id, x1), 0)
            .and_then(|answer| answer.ret)
            .ok_or(cannot)
    };
    let returned = |exit, regs| {
        Ok(GuestOutcome {
            exit,
            end: GuestOpEnd::Returned(regs),
        })
    };
    let [x0, state, ..] = call(FunctionId::IPA_STATE, page)?;
    if x0 != 0 {
        return returned(None, [x0, 0, 0, 0]);
    }
    let registers = state == 0;
    if registers {
        let [x0, ..] = call(FunctionId::MMIO_GUARD_MAP, page)?;
        if x0 != 0 {
            return returned(None, [x0, 0, 0, 0]);
        }
    }
    let (exit, word) = match model.guest_load(handle, ipa) {
        Some(value) => (None, value),
        // The conformance guest loads into x1; the host completes the read.
        None => (
            Some(Exit::Mmio {
                ipa,
                size: AccessSize::B8,
                register: 1,
                access: MmioAccess::Read,
            }),
            LOAD_SENTINEL,
        ),
    };
    if registers {
        let mut unmap = |id, x1| {
            model
                .guest_hvc(handle, vcpu, guest_call(id, x1), 0)
                .ok_or(cannot)
        };
        unmap(FunctionId::MMIO_GUARD_UNMAP, page)?;
    }
    returned(exit, [0, word, state, 0])
}

impl Backend for ModelBackend {
    fn hvc(&mut self, regs: [u64; 8]) -> Result<[u64; 4], BackendError> {
        match self.model.host_hvc(regs) {
            HostAnswer::Regs(ret) => Ok(ret),
            HostAnswer::RunsGuest => Err(BackendError(
                "VCPU_RUN would run guest code, which the model leaves to guest operations",
            )),
            HostAnswer::OutsideAbi => Err(BackendError("not a call of this ABI")),
            HostAnswer::Unmodelled(why) => Err(BackendError(why)),
        }
    }

    fn host_read(&mut self, pfn: u64) -> HostRead {
        if pfn == NO_RAM {
            // Mirrors the payload backend: the host's own stage 1 does not map it.
            return HostRead::Unprobed;
        }
        if self.model.page_state(pfn) == PageState::Mmio {
            return HostRead::Device;
        }
        match self.model.host_read(pfn) {
            Some(value) => HostRead::Value(value),
            None => HostRead::Abort,
        }
    }

    fn write_marker(&mut self, pfn: u64) {
        self.model.host_write(pfn, marker(pfn));
    }

    fn write_guest_code(&mut self, pfn: u64) {
        self.model.host_write(pfn, CODE_WORD);
    }

    fn guest_op(
        &mut self,
        handle: u64,
        vcpu: u32,
        op: GuestOp,
    ) -> Result<GuestOutcome, BackendError> {
        let model = &mut self.model;
        match model.run_check(handle, vcpu) {
            Err(error) => {
                return Ok(GuestOutcome {
                    exit: None,
                    end: GuestOpEnd::RunFailed([error.as_x0(), 0, 0, 0]),
                });
            }
            Ok(RunCheck::Stopped(exit)) => {
                model.note_exit(handle, vcpu, LastExit::Other);
                return Ok(GuestOutcome {
                    exit: Some(exit),
                    end: GuestOpEnd::Stopped,
                });
            }
            Ok(RunCheck::Runs) => {}
        }
        // A vCPU's first instructions register the channel's page (guest_code.rs).
        if model.vcpu_fresh(handle, vcpu) {
            let regs = guest_call(FunctionId::MMIO_GUARD_MAP, CHANNEL_IPA & !0xFFF);
            match model.guest_hvc(handle, vcpu, regs, 0) {
                Some(answer) if answer.ret == Some([0; 4]) => {}
                _ => return Err(BackendError("the guest could not register its channel")),
            }
        }
        let outcome = match op {
            GuestOp::Hvc(regs) => {
                let answer = model
                    .guest_hvc(handle, vcpu, regs, FORWARD_REPLY)
                    .ok_or(BackendError("the model cannot follow this guest call"))?;
                GuestOutcome {
                    exit: answer.exit,
                    end: match answer.ret {
                        Some(ret) => GuestOpEnd::Returned(ret),
                        None => GuestOpEnd::Stopped,
                    },
                }
            }
            GuestOp::Load(ipa) => load(model, handle, vcpu, ipa)?,
        };
        // The guest's last exits are its report, MMIO writes, or the stop.
        model.note_exit(handle, vcpu, LastExit::Other);
        Ok(outcome)
    }

    fn start_spinning(
        &mut self,
        handle: u64,
        vcpu: u32,
        _ctrl_pfn: u64,
    ) -> Result<(), BackendError> {
        if self.spinning.is_some() {
            return Err(BackendError("a vCPU is spinning already"));
        }
        if self.model.run_check(handle, vcpu) != Ok(RunCheck::Runs) {
            return Err(BackendError("the vCPU cannot run"));
        }
        self.model.set_running(handle, vcpu, true);
        self.spinning = Some((handle, vcpu));
        Ok(())
    }

    fn stop_spinning(&mut self) -> Result<GuestOutcome, BackendError> {
        let (handle, vcpu) = self
            .spinning
            .take()
            .ok_or(BackendError("no vCPU is spinning"))?;
        self.model.set_running(handle, vcpu, false);
        self.model.note_exit(handle, vcpu, LastExit::Other);
        Ok(GuestOutcome {
            exit: None,
            end: GuestOpEnd::Returned([0; 4]),
        })
    }

    fn alloc_pages(&mut self, nr: u32) -> Option<u64> {
        let start = self.next_free;
        let end = start.checked_add(u64::from(nr))?;
        let usable = |pfn| self.model.page_state(pfn) == PageState::Host;
        if end > RAM.end || !(start..end).all(usable) {
            return None;
        }
        self.next_free = end;
        Some(start)
    }

    fn retire_pages(&mut self, pfn: u64, nr: u32) {
        self.model.forget_host_pages(pfn, nr.into());
    }

    fn special_pfn(&self, page: Special) -> u64 {
        match page {
            Special::Hyp => CARVE_OUTS[0].start,
            Special::Mmio => UART.start,
            Special::NoRam => NO_RAM,
        }
    }
}
