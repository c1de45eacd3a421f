//! A libtest-style runner: each test prints `test <name> ... ok` or
//! `test <name> ... FAILED: <why>` on one line; the last line is `N passed, M failed`.
//!
//! VMs a test registers with [`Ctx::track`] are destroyed after it, whatever its outcome,
//! so that a failed test cannot use up the payload's VM slots for the next ones.

use crate::msg::{Msg, TestResult, bail};
use el1_rt::boot::Platform;
use el1_rt::free_pages::FreePages;
use el1_rt::guest_vm::GuestVm;
use el1_rt::host_calls;
use hvc_abi::VmHandle;

/// Most VMs one test may register.
const MAX_VMS_PER_TEST: usize = 4;

/// What every test gets.
pub struct Ctx {
    pub platform: Platform,
    pub pages: FreePages,
    pub guest_image: &'static [u8],
    vms: [Option<VmHandle>; MAX_VMS_PER_TEST],
}

impl Ctx {
    pub fn new(platform: Platform, pages: FreePages, guest_image: &'static [u8]) -> Self {
        Self {
            platform,
            pages,
            guest_image,
            vms: [None; MAX_VMS_PER_TEST],
        }
    }

    /// The address of one fresh host page.
    pub fn page(&mut self) -> Result<usize, Msg> {
        self.pages_n(1)
    }

    /// The address of `nr` fresh contiguous host pages.
    pub fn pages_n(&mut self, nr: usize) -> Result<usize, Msg> {
        match self.pages.alloc(nr) {
            Some(address) => Ok(address),
            None => bail!("no {nr} free host pages left"),
        }
    }

    /// An empty VM (1 vCPU, the test guest's IPA size) with a topped-up pool, so that
    /// mapping calls are refused for their pages and not for want of memory.
    pub fn vm(&mut self) -> Result<GuestVm, Msg> {
        let mut vm = GuestVm::create(1, test_guest::IPA_BITS)?;
        self.track(vm.handle())?;
        vm.topup(&mut self.pages, hvc_abi::limits::MAX_POOL_PAGES_PER_CALL)?;
        Ok(vm)
    }

    /// Destroys `handle` after the test (if the test did not).
    pub fn track(&mut self, handle: VmHandle) -> TestResult {
        match self.vms.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => {
                *slot = Some(handle);
                Ok(())
            }
            None => bail!("a test may create at most {MAX_VMS_PER_TEST} VMs"),
        }
    }

    fn destroy_test_vms(&mut self) {
        for slot in self.vms.iter_mut() {
            if let Some(handle) = slot.take() {
                // NOT_FOUND if the test destroyed it itself.
                let _ = host_calls::vm_destroy(handle);
            }
        }
    }
}

pub struct Test {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> TestResult,
}

pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

/// Runs every test in order and prints its line, then the summary line.
pub fn run_all(ctx: &mut Ctx, tests: &[Test]) -> Summary {
    let mut summary = Summary {
        passed: 0,
        failed: 0,
    };
    for test in tests {
        let result = (test.run)(ctx);
        ctx.destroy_test_vms();
        match result {
            Ok(()) => {
                summary.passed += 1;
                el1_rt::console::bare_line(format_args!("test {} ... ok", test.name));
            }
            Err(failure) => {
                summary.failed += 1;
                el1_rt::console::bare_line(format_args!(
                    "test {} ... FAILED: {}",
                    test.name,
                    failure.as_str()
                ));
            }
        }
    }
    el1_rt::console::bare_line(format_args!(
        "{} passed, {} failed",
        summary.passed, summary.failed
    ));
    summary
}
