//! The payload underneath this image as the conformance runner's backend: host calls are
//! `HVC #0`, host reads are loads that EL2 may abort, guest operations are driven through
//! VCPU_RUN, and the running vCPU lives on the worker CPU.

use crate::device_probe;
use crate::guest_code::{self, OP_HVC, OP_LOAD, OP_SPIN};
use crate::guest_driver::{self, Driver};
use crate::spinner::Spinner;
use conformance::backend::{Backend, BackendError, GuestOp, GuestOutcome, HostRead};
use conformance::plan::{CTRL_GFN, Special, ipa};
use conformance::states::marker;
use el1_rt::exceptions::Abort;
use el1_rt::free_pages::{FreePages, PAGE_SIZE};
use el1_rt::timeout::wait_until;
use el1_rt::{cache, hvc, probe};

/// PL011 flag register: reading it has no side effect.
const UARTFR: usize = 0x18;
/// How long the spinning guest may take to show it runs, and to stop.
const SPIN_TIMEOUT_MS: u64 = 5_000;
/// Control page words (guest_code.rs, OP_SPIN).
const CTRL_STOP: usize = 0;
const CTRL_SPINNING: usize = 8;

/// The pages whose state the platform fixes, from the DTB.
#[derive(Clone, Copy, Debug)]
pub struct SpecialPages {
    pub hyp: u64,
    pub mmio: u64,
    pub no_ram: u64,
}

/// A spin operation in progress.
struct Spin {
    driver: Driver,
    handle: u64,
    vcpu: u32,
}

pub struct PayloadBackend {
    pages: FreePages,
    special: SpecialPages,
    spinner: Spinner,
    spin: Option<Spin>,
    /// The page-frame number of the control page of the spinning vCPU.
    ctrl: usize,
}

impl PayloadBackend {
    pub fn new(pages: FreePages, special: SpecialPages, spinner: Spinner) -> Self {
        Self {
            pages,
            special,
            spinner,
            spin: None,
            ctrl: 0,
        }
    }
}

fn address(pfn: u64) -> usize {
    pfn as usize * PAGE_SIZE
}

fn refused(abort: Abort, address: usize) -> HostRead {
    if abort.is_injected_abort_at(address) {
        HostRead::Abort
    } else {
        HostRead::OtherFault(abort.esr)
    }
}

/// A word of the control page, read past this CPU's cache (the guest writes it with its
/// MMU off, so the write goes straight to memory).
fn read_ctrl(page: usize, offset: usize) -> u64 {
    cache::clean_invalidate_to_poc(page + offset, 8);
    probe::read_u64(page + offset).unwrap_or(u64::MAX)
}

/// Writes a word of the control page and cleans it to memory for the guest.
fn write_ctrl(page: usize, offset: usize, value: u64) {
    let _ = probe::write_u64(page + offset, value);
    cache::clean_invalidate_to_poc(page + offset, 8);
}

impl Backend for PayloadBackend {
    fn hvc(&mut self, regs: [u64; 8]) -> Result<[u64; 4], BackendError> {
        Ok(hvc::call(regs).to_regs())
    }

    fn host_read(&mut self, pfn: u64) -> HostRead {
        if pfn == self.special.no_ram {
            // Outside RAM and every device: el1-rt's identity map does not cover it, so a
            // load would fault at stage 1 before EL2 could refuse it.
            return HostRead::Unprobed;
        }
        if pfn == self.special.mmio {
            let register = address(pfn) + UARTFR;
            return match device_probe::read_u32(register) {
                Ok(_) => HostRead::Device,
                Err(abort) => refused(abort, register),
            };
        }
        match probe::read_u64(address(pfn)) {
            Ok(value) => HostRead::Value(value),
            Err(abort) => refused(abort, address(pfn)),
        }
    }

    fn write_marker(&mut self, pfn: u64) {
        let page = address(pfn);
        // A fresh page: host RAM nothing else uses; a refused write is seen later as a
        // page that does not hold its marker.
        let _ = probe::write_u64(page, marker(pfn));
        cache::clean_invalidate_to_poc(page, 8);
    }

    fn write_guest_code(&mut self, pfn: u64) {
        let page = address(pfn);
        let code = guest_code::code();
        // SAFETY: a fresh page from `alloc_pages`: host RAM that neither this image nor
        // anything the DTB reserves uses, identity-mapped Normal memory, not yet given
        // away. The code is far smaller than a page.
        unsafe {
            core::ptr::write_bytes(page as *mut u8, 0, PAGE_SIZE);
            core::ptr::copy_nonoverlapping(code.as_ptr(), page as *mut u8, code.len());
        }
        // The guest fetches it with its MMU (and caches) off.
        cache::clean_invalidate_to_poc(page, PAGE_SIZE);
    }

    fn guest_op(
        &mut self,
        handle: u64,
        vcpu: u32,
        op: GuestOp,
    ) -> Result<GuestOutcome, BackendError> {
        let mut driver = match op {
            GuestOp::Hvc(regs) => Driver::new(OP_HVC, regs),
            GuestOp::Load(ipa) => Driver::new(OP_LOAD, [0, ipa, 0, 0, 0, 0, 0, 0]),
        };
        guest_driver::run(&mut driver, handle, vcpu, 0)
            .ok_or(BackendError("the guest operation took too many exits"))
    }

    fn start_spinning(
        &mut self,
        handle: u64,
        vcpu: u32,
        ctrl_pfn: u64,
    ) -> Result<(), BackendError> {
        if self.spin.is_some() {
            return Err(BackendError("a vCPU is spinning already"));
        }
        let ctrl = address(ctrl_pfn);
        write_ctrl(ctrl, CTRL_STOP, 0);
        write_ctrl(ctrl, CTRL_SPINNING, 0);
        let mut args = [0; 8];
        args[1] = ipa(CTRL_GFN);
        let mut driver = Driver::new(OP_SPIN, args);
        let completion = guest_driver::run_until_started(&mut driver, handle, vcpu)
            .map_err(|_| BackendError("the guest did not start its spin operation"))?;
        self.spinner.request(handle, vcpu, completion);
        self.ctrl = ctrl;
        self.spin = Some(Spin {
            driver,
            handle,
            vcpu,
        });
        let spinning = wait_until(SPIN_TIMEOUT_MS, || {
            read_ctrl(ctrl, CTRL_SPINNING) == 1 || self.spinner.is_done()
        });
        if !spinning || self.spinner.is_done() {
            return Err(BackendError(
                "the guest did not start spinning on the worker CPU",
            ));
        }
        Ok(())
    }

    fn stop_spinning(&mut self) -> Result<GuestOutcome, BackendError> {
        let Some(mut spin) = self.spin.take() else {
            return Err(BackendError("no vCPU is spinning"));
        };
        write_ctrl(self.ctrl, CTRL_STOP, 1);
        let ret = self
            .spinner
            .wait(SPIN_TIMEOUT_MS)
            .ok_or(BackendError("the spinning vCPU did not stop"))?;
        match spin.driver.feed(ret) {
            guest_driver::Next::Done(outcome) => Ok(outcome),
            guest_driver::Next::Run(completion) => {
                guest_driver::run(&mut spin.driver, spin.handle, spin.vcpu, completion)
                    .ok_or(BackendError("the guest's spin report took too many exits"))
            }
        }
    }

    fn alloc_pages(&mut self, nr: u32) -> Option<u64> {
        let address = self.pages.alloc(nr as usize)?;
        Some((address / PAGE_SIZE) as u64)
    }

    fn retire_pages(&mut self, _pfn: u64, _nr: u32) {
        // Pages are handed out once and never again: a page a faulty payload kept is
        // never mistaken for a fresh one.
    }

    fn special_pfn(&self, page: Special) -> u64 {
        match page {
            Special::Hyp => self.special.hyp,
            Special::Mmio => self.special.mmio,
            Special::NoRam => self.special.no_ram,
        }
    }
}
