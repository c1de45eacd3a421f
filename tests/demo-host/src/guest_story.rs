//! Step 8: the protected-guest story. A guest (tests/test-guest, embedded from
//! `TEST_GUEST_BIN`) writes a secret into a private page and a message into a page it
//! shares; the host reads the message, fails to read the secret, replies; the guest
//! unshares the page and the host loses access to it; the VM is torn down and every page
//! the host gave it comes back zeroed.

use core::fmt;
use el1_rt::boot::Platform;
use el1_rt::exceptions::Abort;
use el1_rt::guest_vm::VmError;
use el1_rt::host_calls::{self, CallError};
use el1_rt::test_guest_driver::{self, GuestError, TestGuest};
use el1_rt::{fail, probe, say};
use hvc_abi::Exit;
use hvc_abi::function_id::{HOST_FEATURES_BITMAP, Version};
use test_guest::{Command, MESSAGE, SECRET_GFN, SHARED_GFN, Step, ipa};

/// The raw test guest (objcopy -O binary of tests/test-guest), built by xtask first.
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

/// Why the story failed.
enum StoryError {
    Guest(GuestError),
    /// The shared page did not hold the guest's message.
    WrongMessage,
    /// A host access that must abort did not, or aborted wrongly.
    NoAbort {
        what: &'static str,
        address: usize,
        outcome: Result<u64, Abort>,
    },
    /// A reclaimed page was not zero.
    NotZeroed(usize),
}

impl From<GuestError> for StoryError {
    fn from(error: GuestError) -> Self {
        Self::Guest(error)
    }
}

impl From<VmError> for StoryError {
    fn from(error: VmError) -> Self {
        Self::Guest(GuestError::Vm(error))
    }
}

impl From<CallError> for StoryError {
    fn from(error: CallError) -> Self {
        Self::Guest(error.into())
    }
}

impl fmt::Display for StoryError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Guest(error) => write!(f, "{error}"),
            Self::WrongMessage => write!(f, "the shared page does not hold \"{MESSAGE}\""),
            Self::NoAbort {
                what,
                address,
                outcome: Ok(value),
            } => write!(
                f,
                "{what} at {address:#x} read {value:#x} instead of aborting"
            ),
            Self::NoAbort {
                what,
                address,
                outcome: Err(abort),
            } => write!(
                f,
                "{what} at {address:#x} took the wrong fault: ESR_EL1={:#x}, FAR_EL1={:#x}",
                abort.esr, abort.far
            ),
            Self::NotZeroed(address) => {
                write!(f, "reclaimed page word at {address:#x} is not zero")
            }
        }
    }
}

pub fn tell(platform: &Platform) {
    match host_calls::features() {
        Err(error) => fail!("{error}"),
        Ok((version, bitmap)) => {
            if version != Version::CURRENT || bitmap != HOST_FEATURES_BITMAP {
                fail!(
                    "FEATURES returned version {}.{} and bitmap {bitmap:#x}, expected 1.0 and {HOST_FEATURES_BITMAP:#x}",
                    version.major,
                    version.minor
                );
            }
        }
    }
    if let Err(error) = run(platform) {
        fail!("guest story: {error}");
    }
}

fn run(platform: &Platform) -> Result<(), StoryError> {
    // Pages from the end of this image up: with `--mem 256M` RAM ends at 0x5000_0000, below
    // the 1 GiB test hosts' floor (TEST_HOST_PAGES_FLOOR).
    let floor = platform.image.end().unwrap_or(usize::MAX);
    let Ok(mut pages) = platform.free_pages(floor) else {
        fail!("too many reserved regions in the DTB to find free pages");
    };
    let mut guest = TestGuest::build(&mut pages, TEST_GUEST, Command::SecretAndShare, 1)?;
    let shared_ipa = ipa(SHARED_GFN);
    let shared = guest.vm().host_address(SHARED_GFN)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;

    guest.expect_exit(
        0,
        0,
        Exit::MemShared {
            ipa: shared_ipa,
            nr: 1,
        },
        "MEM_SHARED of the message page",
    )?;
    guest.expect_step(0, 0, Step::Shared, "the guest's Shared report")?;
    let message = read_message(shared)?;
    say!(
        "guest shared page {shared_ipa:#x}: \"{}\"",
        message.as_str()
    );

    let abort = expect_abort("reading the guest's private page", secret)?;
    say!(
        "reading the guest's private page aborted (ESR {:#x})",
        abort.esr
    );

    test_guest_driver::write_reply(shared);
    // Read it once more right before the unshare, so that a stale TLB entry would exist.
    read_message(shared)?;
    guest.expect_exit(
        0,
        0,
        Exit::MemUnshared {
            ipa: shared_ipa,
            nr: 1,
        },
        "MEM_UNSHARED of the message page",
    )?;
    expect_abort("reading the unshared page", shared)?;
    say!("guest unshared the page; host access now aborts");
    guest.expect_step(0, 0, Step::Unshared, "the guest's Unshared report")?;
    guest.expect_done(0, 0)?;

    guest.vm().destroy()?;
    let reclaimed = guest.vm_mut().reclaim_all()?;
    if let Some(address) = reclaimed.first_nonzero {
        return Err(StoryError::NotZeroed(address));
    }
    say!(
        "VM destroyed; {} pages reclaimed, all zero",
        reclaimed.pages
    );
    Ok(())
}

fn read_message(shared: usize) -> Result<test_guest_driver::Line, StoryError> {
    let message =
        test_guest_driver::read_shared_text(shared).map_err(|abort| StoryError::NoAbort {
            what: "reading the shared page",
            address: shared,
            outcome: Err(abort),
        })?;
    if message.as_str() != MESSAGE {
        return Err(StoryError::WrongMessage);
    }
    Ok(message)
}

/// A read of `address` must abort with the synchronous external abort EL2 injects.
fn expect_abort(what: &'static str, address: usize) -> Result<Abort, StoryError> {
    match probe::read_u64(address) {
        Err(abort) if abort.is_injected_abort_at(address) => Ok(abort),
        outcome => Err(StoryError::NoAbort {
            what,
            address,
            outcome,
        }),
    }
}
