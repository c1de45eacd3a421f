//! A libtest-style runner for test host images: each test prints `test <name> ... ok` or
//! `test <name> ... FAILED: <why>` on one line; the last line is `N passed, M failed`
//! (the line `cargo xtask test` reads).
//!
//! Tests return [`TestResult`]; a [`Failure`] is a one-line message kept in a fixed buffer
//! (the images have no allocator). VMs a test creates through [`TestCtx`] are destroyed
//! after it whatever its outcome, so a failed test cannot use up the payload's VM slots.

// A test's failure carries its message (a few hundred bytes) by value: the images have no
// allocator to box it, and tests are not a hot path.
#![allow(clippy::result_large_err)]

use crate::boot::Platform;
use crate::free_pages::FreePages;
use crate::guest_vm::GuestVm;
use crate::host_calls;
use crate::test_guest_driver::{GuestError, TestGuest};
use core::fmt::{self, Write};
use hvc_abi::VmHandle;
use test_guest::Command;

/// Longest failure message kept (longer ones are cut).
const MESSAGE_CAPACITY: usize = 240;
/// Most VMs one test may create.
const MAX_VMS_PER_TEST: usize = 4;

/// Why a test failed (or what a check saw that the document does not allow), as one line;
/// or, made by [`Failure::not_applicable`], why it cannot run on this machine.
pub struct Failure {
    text: [u8; MESSAGE_CAPACITY],
    len: usize,
    not_applicable: bool,
}

impl Failure {
    pub fn new(args: fmt::Arguments) -> Self {
        let mut failure = Self {
            text: [0; MESSAGE_CAPACITY],
            len: 0,
            not_applicable: false,
        };
        // Writing into the buffer cannot fail; it only truncates.
        let _ = failure.write_fmt(args);
        failure
    }

    /// The test checks something this CPU does not have (e.g. SVE on a Cortex-A53): it is
    /// reported as `ignored` with the reason, and counted apart, never as passed.
    pub fn not_applicable(args: fmt::Arguments) -> Self {
        Self {
            not_applicable: true,
            ..Self::new(args)
        }
    }

    pub fn as_str(&self) -> &str {
        // Truncation may cut a multi-byte character: keep the valid prefix.
        match core::str::from_utf8(&self.text[..self.len]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.text[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Write for Failure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            // One line: a newline inside a message would break the runner's format.
            let byte = if byte == b'\n' { b' ' } else { byte };
            if let Some(slot) = self.text.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Any displayable error becomes a failure with its text, so tests can use `?`.
impl<E: fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(format_args!("{error}"))
    }
}

/// Fails the current test with a `format!`-style message.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::testing::Failure::new(format_args!($($arg)*)))
    };
}

/// Fails the current test with the message unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($arg:tt)*) => {
        if !$condition {
            $crate::bail!($($arg)*);
        }
    };
}

pub type TestResult = Result<(), Failure>;

/// What every test gets: the platform, free host pages and the embedded guest image.
pub struct TestCtx {
    pub platform: Platform,
    pub pages: FreePages,
    pub guest_image: &'static [u8],
    vms: [Option<VmHandle>; MAX_VMS_PER_TEST],
}

impl TestCtx {
    pub fn new(platform: Platform, pages: FreePages, guest_image: &'static [u8]) -> Self {
        Self {
            platform,
            pages,
            guest_image,
            vms: [None; MAX_VMS_PER_TEST],
        }
    }

    /// The test guest running `command` on `nr_vcpus` vCPUs, destroyed after the test.
    pub fn guest(&mut self, command: Command, nr_vcpus: u32) -> Result<TestGuest, Failure> {
        let guest = TestGuest::build(&mut self.pages, self.guest_image, command, nr_vcpus)
            .map_err(|error: GuestError| {
                Failure::new(format_args!("building the guest: {error}"))
            })?;
        self.track(guest.vm().handle())?;
        Ok(guest)
    }

    /// An empty VM (1 vCPU, the test guest's IPA size), destroyed after the test.
    pub fn vm(&mut self) -> Result<GuestVm, Failure> {
        let vm = GuestVm::create(1, test_guest::IPA_BITS)?;
        self.track(vm.handle())?;
        Ok(vm)
    }

    /// As [`vm`](Self::vm), with its pool topped up (`MAX_POOL_PAGES_PER_CALL` pages), so
    /// that mapping calls are refused for their pages and not for want of memory.
    pub fn vm_with_pool(&mut self) -> Result<GuestVm, Failure> {
        let mut vm = self.vm()?;
        vm.topup(&mut self.pages, hvc_abi::limits::MAX_POOL_PAGES_PER_CALL)?;
        Ok(vm)
    }

    /// The address of one fresh host page.
    pub fn page(&mut self) -> Result<usize, Failure> {
        self.pages_n(1)
    }

    /// The address of `nr` fresh contiguous host pages.
    pub fn pages_n(&mut self, nr: usize) -> Result<usize, Failure> {
        match self.pages.alloc(nr) {
            Some(address) => Ok(address),
            None => bail!("no {nr} free host pages left"),
        }
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

    /// Destroys the VMs of the test that just ran (those it destroyed itself answer
    /// NOT_FOUND, which is fine). Their pages are not reclaimed: there are plenty.
    fn destroy_test_vms(&mut self) {
        for slot in self.vms.iter_mut() {
            if let Some(handle) = slot.take() {
                let _ = host_calls::vm_destroy(handle);
            }
        }
    }
}

/// A named test.
pub struct Test {
    pub name: &'static str,
    pub run: fn(&mut TestCtx) -> TestResult,
}

/// Counts of a run.
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    /// Tests that do not apply to this CPU ([`Failure::not_applicable`]).
    pub ignored: usize,
}

/// Runs every test in order and prints its line, then the summary line.
pub fn run_all(ctx: &mut TestCtx, tests: &[Test]) -> Summary {
    let mut summary = Summary {
        passed: 0,
        failed: 0,
        ignored: 0,
    };
    for test in tests {
        let result = (test.run)(ctx);
        ctx.destroy_test_vms();
        match result {
            Ok(()) => {
                summary.passed += 1;
                crate::console::bare_line(format_args!("test {} ... ok", test.name));
            }
            Err(failure) if failure.not_applicable => {
                summary.ignored += 1;
                crate::console::bare_line(format_args!(
                    "test {} ... ignored: {}",
                    test.name,
                    failure.as_str()
                ));
            }
            Err(failure) => {
                summary.failed += 1;
                crate::console::bare_line(format_args!(
                    "test {} ... FAILED: {}",
                    test.name,
                    failure.as_str()
                ));
            }
        }
    }
    if summary.ignored == 0 {
        crate::console::bare_line(format_args!(
            "{} passed, {} failed",
            summary.passed, summary.failed
        ));
    } else {
        crate::console::bare_line(format_args!(
            "{} passed, {} failed, {} ignored (not applicable to this CPU)",
            summary.passed, summary.failed, summary.ignored
        ));
    }
    summary
}
