//! A libtest-style runner: each test prints `test <name> ... ok` or
//! `test <name> ... FAILED: <why>` on one line; the last line is `N passed, M failed`.
//!
//! Tests return `Result<(), Failure>`; a `Failure` is a one-line message kept in a fixed
//! buffer (no allocator). VMs a test creates through [`Ctx::guest`] or [`Ctx::vm`] are
//! destroyed after it, whatever its outcome, so a failed test cannot use up the payload's
//! VM slots.

use core::fmt::{self, Write};
use el1_rt::boot::Platform;
use el1_rt::free_pages::FreePages;
use el1_rt::guest_vm::GuestVm;
use el1_rt::host_calls;
use el1_rt::test_guest_driver::{GuestError, TestGuest};
use hvc_abi::VmHandle;
use test_guest::Command;

/// Longest failure message kept (longer ones are cut).
const MESSAGE_CAPACITY: usize = 240;
/// Most VMs one test may create.
const MAX_VMS_PER_TEST: usize = 4;

/// Why a test failed, as one line.
pub struct Failure {
    text: [u8; MESSAGE_CAPACITY],
    len: usize,
}

impl Failure {
    pub fn new(args: fmt::Arguments) -> Self {
        let mut failure = Self {
            text: [0; MESSAGE_CAPACITY],
            len: 0,
        };
        // Writing into the buffer cannot fail; it only truncates.
        let _ = failure.write_fmt(args);
        failure
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
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::runner::Failure::new(format_args!($($arg)*)))
    };
}
pub(crate) use bail;

pub type TestResult = Result<(), Failure>;

/// What every test gets: the platform, free host pages and the embedded guest image.
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

    /// The test guest running `command` on `nr_vcpus` vCPUs, destroyed after the test.
    pub fn guest(&mut self, command: Command, nr_vcpus: u32) -> Result<TestGuest, Failure> {
        let guest = TestGuest::build(&mut self.pages, self.guest_image, command, nr_vcpus)
            .map_err(|error: GuestError| {
                Failure::new(format_args!("building the guest: {error}"))
            })?;
        self.track(guest.vm().handle())?;
        Ok(guest)
    }

    /// An empty VM (1 vCPU, 32-bit IPA), destroyed after the test.
    pub fn vm(&mut self) -> Result<GuestVm, Failure> {
        let vm = GuestVm::create(1, test_guest::IPA_BITS)?;
        self.track(vm.handle())?;
        Ok(vm)
    }

    /// The address of one fresh host page.
    pub fn page(&mut self) -> Result<usize, Failure> {
        match self.pages.alloc(1) {
            Some(address) => Ok(address),
            None => bail!("no free host page left"),
        }
    }

    fn track(&mut self, handle: VmHandle) -> TestResult {
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
    pub run: fn(&mut Ctx) -> TestResult,
}

/// Counts of a run.
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
