//! MEM_SHARE and MEM_UNSHARE as the host sees them (docs/abi.md 5.3).

use crate::checks::{expect_read_aborts, expect_write_aborts};
use crate::remote_reader::RemoteReader;
use crate::runner::{Ctx, TestResult, bail};
use el1_rt::test_guest_driver::{self, TestGuest};
use hvc_abi::Exit;
use test_guest::{Command, MESSAGE, REPLY, REPLY_OFFSET, SHARED_GFN, Step, ipa};

/// The guest shares a page: the exit names it, the host reads the guest's message and
/// writes a reply the guest then checks. After MEM_UNSHARE the host's very next access
/// aborts, on this CPU and on another one that read the page just before (so its TLB held
/// the mapping): EL2 must invalidate the combined stage-1+2 TLB entries on every CPU
/// (`tlbi vmalle1is` with the host's VMID), not only the stage-2 ones.
pub fn guest_shares_page_and_host_reads_and_writes_it(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    let shared = guest.vm().host_address(SHARED_GFN)?;
    run_to_shared(&mut guest)?;
    expect_message(shared)?;
    test_guest_driver::write_reply(shared);
    let reply = test_guest_driver::read_shared_text(shared + REPLY_OFFSET)?;
    if reply.as_str() != REPLY {
        bail!("the reply reads back as {:?}", reply.as_str());
    }
    let mut reader = RemoteReader::start(ctx)?;
    let watched = unshare_watched(&mut guest, &mut reader, shared);
    let stopped = reader.stop();
    watched?;
    stopped?;
    guest.expect_step(0, 0, Step::Unshared, "the guest's Unshared report")?;
    // The guest checks its secret page is intact, then stops.
    guest.expect_done(0, 0)?;
    Ok(())
}

/// Both CPUs read the shared page, the guest unshares it, then both must be refused.
fn unshare_watched(guest: &mut TestGuest, reader: &mut RemoteReader, shared: usize) -> TestResult {
    let first_word = first_message_word();
    match reader.read(shared)? {
        Ok(word) if word == first_word => {}
        Ok(word) => bail!("the other CPU read {word:#x} from the shared page, not {first_word:#x}"),
        Err(abort) => bail!("the other CPU's read of the shared page aborted: {abort}"),
    }
    // Read it here too, once more: this CPU's TLB now maps it as well.
    expect_message(shared)?;
    unshare(guest)?;
    expect_read_aborts(shared, "host read right after MEM_UNSHARE")?;
    match reader.read(shared)? {
        Err(abort) if abort.is_injected_abort_at(shared) => {}
        Err(abort) => bail!("the other CPU's read after MEM_UNSHARE took the wrong fault: {abort}"),
        Ok(word) => bail!(
            "the other CPU still reads the unshared page ({word:#x}): a stale TLB entry (EL2 must broadcast tlbi vmalle1is with the host's VMID)"
        ),
    }
    expect_write_aborts(shared, "host write after MEM_UNSHARE")?;
    Ok(())
}

/// The first 8 bytes of the guest's message as a little-endian word.
fn first_message_word() -> u64 {
    let mut bytes = [0; 8];
    for (byte, &m) in bytes.iter_mut().zip(MESSAGE.as_bytes()) {
        *byte = m;
    }
    u64::from_le_bytes(bytes)
}

/// Runs the SecretAndShare guest until it has shared its page: exit MEM_SHARED for
/// exactly that page, then the guest's Shared report.
pub fn run_to_shared(guest: &mut TestGuest) -> TestResult {
    let shared_ipa = ipa(SHARED_GFN);
    guest.expect_exit(
        0,
        0,
        Exit::MemShared {
            ipa: shared_ipa,
            nr: 1,
        },
        "exit MEM_SHARED of the message page",
    )?;
    guest.expect_step(0, 0, Step::Shared, "the guest's Shared report")?;
    Ok(())
}

/// Runs the guest (which checks the host's reply) until its MEM_UNSHARED exit.
pub fn unshare(guest: &mut TestGuest) -> TestResult {
    guest.expect_message_unshared()?;
    Ok(())
}

/// The shared page (host address `shared`) starts with the guest's message.
pub fn expect_message(shared: usize) -> TestResult {
    let message = test_guest_driver::read_shared_text(shared).map_err(|abort| {
        crate::runner::Failure::new(format_args!(
            "host read of the shared page {shared:#x} aborted (ESR_EL1={:#x})",
            abort.esr
        ))
    })?;
    if message.as_str() != MESSAGE {
        bail!(
            "the shared page holds {:?}, not the guest's message",
            message.as_str()
        );
    }
    Ok(())
}
