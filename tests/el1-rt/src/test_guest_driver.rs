//! Running the protected test guest (tests/test-guest) from a host image: building its VM
//! with the memory layout of the `test_guest` protocol, and turning VCPU_RUN exits into
//! protocol events (guest prints are collected on the way).

use crate::cache;
use crate::exceptions::Abort;
use crate::free_pages::FreePages;
use crate::guest_vm::{GuestVm, VmError};
use crate::host_calls::CallError;
use core::fmt;
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use hvc_abi::{AccessSize, Exit, MmioAccess};
use test_guest::{
    Command, DATA_GFN, DATA_PAGES, ENTRY_IPA, IMAGE_GFN, IPA_BITS, PRINT_IPA, REPLY, REPLY_OFFSET,
    REPORT_IPA, Report, SHARED_GFN, Step, ipa,
};

/// Longest guest print line kept (longer lines are cut); small, so errors that carry a
/// line stay small.
const LINE_CAPACITY: usize = 80;
/// Exits one [`TestGuest::next_event`] absorbs (prints, IRQs) before it gives up: a guest
/// that prints forever must not hang the host.
const MAX_ABSORBED_EXITS: usize = 4096;

/// One line of guest print output.
#[derive(Clone, Copy)]
pub struct Line {
    bytes: [u8; LINE_CAPACITY],
    len: u8,
}

impl Line {
    const fn new() -> Self {
        Self {
            bytes: [0; LINE_CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            // Only printable ASCII is kept as is, so the host's console stays readable.
            *slot = if byte.is_ascii_graphic() || byte == b' ' {
                byte
            } else {
                b'?'
            };
            self.len += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// What a run of the guest produced, protocol-wise.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Event {
    /// The guest stored a report (MMIO write to REPORT_IPA).
    Report(Report),
    /// Any other exit: MEM_SHARED, MEM_UNSHARED, MEM_RELINQUISHED, an MMIO read or a
    /// write elsewhere, MEM_FAULT, SYSTEM_OFF, SYSTEM_RESET, GUEST_HVC.
    Exit(Exit),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Report(Report::Reached(step)) => write!(f, "report {step:?}"),
            Self::Report(Report::Failed { check, value }) => {
                write!(f, "report check {check:#x} failed with {value:#x}")
            }
            Self::Exit(exit) => write!(f, "exit {exit:?}"),
        }
    }
}

/// Why driving the guest failed.
#[derive(Clone, Copy, Debug)]
pub enum GuestError {
    Vm(VmError),
    /// The guest reported a failed check; `printed` is what it printed just before.
    GuestCheck {
        check: u16,
        value: u32,
        printed: Line,
    },
    /// The guest did something else than the protocol step the host waited for.
    Unexpected {
        expected: &'static str,
        got: Event,
    },
    /// More than MAX_ABSORBED_EXITS prints or IRQs without any other event.
    Chatty,
    /// The guest stored a value at REPORT_IPA that is not a report, or a wrong size.
    BadReport(u64),
}

impl From<VmError> for GuestError {
    fn from(error: VmError) -> Self {
        Self::Vm(error)
    }
}

impl From<CallError> for GuestError {
    fn from(error: CallError) -> Self {
        Self::Vm(VmError::Call(error))
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Vm(error) => write!(f, "{error}"),
            Self::GuestCheck {
                check,
                value,
                printed,
            } => write!(
                f,
                "guest check {check:#x} failed (saw {value:#x}): \"{}\"",
                printed.as_str()
            ),
            Self::Unexpected { expected, got } => write!(f, "expected {expected}, got {got}"),
            Self::Chatty => write!(
                f,
                "guest made {MAX_ABSORBED_EXITS} print or IRQ exits in a row"
            ),
            Self::BadReport(value) => write!(f, "guest stored {value:#x}, not a report"),
        }
    }
}

/// The test guest's VM.
pub struct TestGuest {
    vm: GuestVm,
    line: Line,
    last_line: Line,
}

impl TestGuest {
    /// Creates the VM (`nr_vcpus` vCPUs, IPA_BITS), tops up its pool, donates the image at
    /// IMAGE_GFN and the zeroed data pages at DATA_GFN.. (one call each), and creates
    /// vCPU 0 at ENTRY_IPA with x0 = `command`. vCPUs 1.. are not created.
    pub fn build(
        pages: &mut FreePages,
        image: &[u8],
        command: Command,
        nr_vcpus: u32,
    ) -> Result<Self, GuestError> {
        let mut vm = GuestVm::create(nr_vcpus, IPA_BITS)?;
        vm.topup(pages, MAX_POOL_PAGES_PER_CALL)?;
        vm.load_image(pages, image, IMAGE_GFN)?;
        for page in 0..u64::from(DATA_PAGES) {
            vm.donate_zeroed(pages, DATA_GFN + page, 1)?;
        }
        // Only the boot vCPU gets an entry point and x0 (docs/abi.md 4.8); the others
        // exist only if the host creates them powered off, and only the guest starts them.
        vm.vcpu_create(0, ENTRY_IPA, command.to_x0())?;
        Ok(Self {
            vm,
            line: Line::new(),
            last_line: Line::new(),
        })
    }

    /// The test guest in a VM the caller built itself (its own memory layout, for
    /// tests of what a host may not do to it); vCPU 0 must be created.
    pub fn from_vm(vm: GuestVm) -> Self {
        Self {
            vm,
            line: Line::new(),
            last_line: Line::new(),
        }
    }

    pub fn vm(&self) -> &GuestVm {
        &self.vm
    }

    pub fn vm_mut(&mut self) -> &mut GuestVm {
        &mut self.vm
    }

    /// The last complete line the guest printed (or the current partial one).
    pub fn printed(&self) -> Line {
        if self.line.len > 0 {
            self.line
        } else {
            self.last_line
        }
    }

    /// Runs vCPU `vcpu` (first with `completion`) until the next event; prints are
    /// collected and IRQ exits resumed on the way.
    pub fn next_event(&mut self, vcpu: u32, completion: u64) -> Result<Event, GuestError> {
        let mut completion = completion;
        for _ in 0..MAX_ABSORBED_EXITS {
            let exit = self.vm.run(vcpu, completion)?;
            completion = 0;
            match exit {
                Exit::Irq => continue,
                Exit::Mmio {
                    ipa: PRINT_IPA,
                    size: AccessSize::B1,
                    access: MmioAccess::Write { data },
                    ..
                } => self.print(data as u8),
                Exit::Mmio {
                    ipa: REPORT_IPA,
                    size,
                    access: MmioAccess::Write { data },
                    ..
                } => {
                    return match Report::decode(data) {
                        Some(report) if size == AccessSize::B8 => Ok(Event::Report(report)),
                        _ => Err(GuestError::BadReport(data)),
                    };
                }
                other => return Ok(Event::Exit(other)),
            }
        }
        Err(GuestError::Chatty)
    }

    /// Runs until the guest reports `step`. A failed check is returned as
    /// [`GuestError::GuestCheck`]; any other event as [`GuestError::Unexpected`].
    pub fn expect_step(
        &mut self,
        vcpu: u32,
        completion: u64,
        step: Step,
        expected: &'static str,
    ) -> Result<(), GuestError> {
        match self.next_event(vcpu, completion)? {
            Event::Report(Report::Reached(reached)) if reached == step => Ok(()),
            other => Err(self.unexpected(expected, other)),
        }
    }

    /// Runs until the next exit and checks it is `exit`.
    pub fn expect_exit(
        &mut self,
        vcpu: u32,
        completion: u64,
        exit: Exit,
        expected: &'static str,
    ) -> Result<(), GuestError> {
        match self.next_event(vcpu, completion)? {
            Event::Exit(got) if got == exit => Ok(()),
            other => Err(self.unexpected(expected, other)),
        }
    }

    /// Runs until the guest unshares its message page (exit MEM_UNSHARED of
    /// [`SHARED_GFN`], which `SecretAndShare` makes once it has the host's reply).
    pub fn expect_message_unshared(&mut self) -> Result<(), GuestError> {
        let exit = Exit::MemUnshared {
            ipa: ipa(SHARED_GFN),
            nr: 1,
        };
        self.expect_exit(0, 0, exit, "exit MEM_UNSHARED of the message page")
    }

    /// The end of `SecretAndShare`'s sharing: writes the host's reply into the shared
    /// page, runs until the guest unshares it and reports `Unshared`.
    pub fn reply_and_expect_unshared(&mut self) -> Result<(), GuestError> {
        write_reply(self.vm().host_address(SHARED_GFN)?);
        self.expect_message_unshared()?;
        self.expect_step(0, 0, Step::Unshared, "the guest's Unshared report")
    }

    /// Runs to the end of a command: the `Done` report, then SYSTEM_OFF.
    pub fn expect_done(&mut self, vcpu: u32, completion: u64) -> Result<(), GuestError> {
        self.expect_step(vcpu, completion, Step::Done, "the guest's Done report")?;
        self.expect_exit(vcpu, 0, Exit::SystemOff, "SYSTEM_OFF after Done")
    }

    /// The error for an event the host did not expect: a failed guest check becomes
    /// [`GuestError::GuestCheck`] with what the guest printed.
    pub fn unexpected(&self, expected: &'static str, got: Event) -> GuestError {
        match got {
            Event::Report(Report::Failed { check, value }) => GuestError::GuestCheck {
                check,
                value,
                printed: self.printed(),
            },
            got => GuestError::Unexpected { expected, got },
        }
    }

    fn print(&mut self, byte: u8) {
        if byte == b'\n' {
            self.last_line = self.line;
            self.line = Line::new();
        } else {
            self.line.push(byte);
        }
    }
}

/// Reads the NUL-terminated text at the start of the guest's shared page (host address
/// `page`), at most one [`Line`]. The first word is read with a probe, so a page the host
/// cannot access gives `Err` instead of stopping the image.
pub fn read_shared_text(page: usize) -> Result<Line, Abort> {
    crate::probe::read_u64(page)?;
    let mut line = Line::new();
    for offset in 0..LINE_CAPACITY {
        // SAFETY: the probe above read this page without an abort: it is host-accessible,
        // identity-mapped Normal memory (a guest page shared with the host); no Rust
        // object lives there, and the volatile read happens exactly once.
        let byte = unsafe { ((page + offset) as *const u8).read_volatile() };
        if byte == 0 {
            break;
        }
        line.push(byte);
    }
    Ok(line)
}

/// Writes the host's [`REPLY`] (NUL-terminated) at [`REPLY_OFFSET`] of the guest's shared
/// page (host address `page`) and cleans it to the point of coherency: the guest reads it
/// with its MMU off. The page must be shared with the host right now.
pub fn write_reply(page: usize) {
    let reply = page + REPLY_OFFSET;
    for (offset, &byte) in REPLY.as_bytes().iter().chain(&[0]).enumerate() {
        // SAFETY: the caller names a page the guest currently shares with the host
        // (GUEST_SHARED: host access allowed), identity-mapped; the reply lies inside it
        // (REPLY_OFFSET + REPLY.len() < 4096, checked by test_guest's tests) and no Rust
        // object lives there.
        unsafe { ((reply + offset) as *mut u8).write_volatile(byte) };
    }
    cache::clean_to_poc(reply, REPLY.len() + 1);
}
