//! VM_DESTROY and VM_RECLAIM (docs/abi.md 4.10, 4.11).

use crate::checks::{expect_error, expect_read_aborts};
use crate::remote_reader::RemoteReader;
use crate::runner::{Ctx, TestResult, bail};
use crate::tests::sharing::run_to_shared;
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::guest_vm::PageUse;
use el1_rt::test_guest_driver::TestGuest;
use hvc_abi::{Error, HostCall};
use test_guest::{Command, IMAGE_GFN, SHARED_GFN};

/// Pages of a live VM cannot be reclaimed (DENIED). After VM_DESTROY the handle is dead
/// (NOT_FOUND), the page the guest had shared is out of the host's reach, and VM_RECLAIM
/// of every donated and topped-up page gives them back zeroed; reclaiming one twice is
/// DENIED.
pub fn destroy_then_reclaim_returns_zeroed_pages(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    // The guest has written its secret and shares a page: every kind of page is in use.
    run_to_shared(&mut guest)?;
    let handle = guest.vm().handle();
    let image_pfn = pfn(guest.vm().host_address(IMAGE_GFN)?);
    let shared = guest.vm().host_address(SHARED_GFN)?;
    let Some(pool) = guest
        .vm()
        .ranges()
        .find(|range| range.used_as == PageUse::Pool)
    else {
        bail!("the VM has no pool pages");
    };
    for (pfn, what) in [
        (image_pfn, "VM_RECLAIM of a live guest's image page"),
        (pool.pfn, "VM_RECLAIM of a live VM's pool page"),
        (pfn(shared), "VM_RECLAIM of a live guest's shared page"),
    ] {
        expect_error(HostCall::VmReclaim { pfn, nr: 1 }, Error::Denied, what)?;
    }

    // Another CPU reads the shared page first, so that its TLB maps it (see
    // remote_reader.rs); after VM_DESTROY neither CPU may reach it.
    let mut reader = RemoteReader::start(ctx)?;
    let watched = destroy_watched(&guest, &mut reader, shared);
    let stopped = reader.stop();
    watched?;
    stopped?;
    let fresh = pfn(ctx.page()?);
    expect_error(
        HostCall::VmDestroy { handle },
        Error::NotFound,
        "VM_DESTROY of a dead handle",
    )?;
    expect_error(
        HostCall::VcpuRun {
            handle,
            vcpu: 0,
            completion: 0,
        },
        Error::NotFound,
        "VCPU_RUN of a dead handle",
    )?;
    expect_error(
        HostCall::VmTopup {
            handle,
            pfn: fresh,
            nr: 1,
        },
        Error::NotFound,
        "VM_TOPUP of a dead handle",
    )?;

    let given: usize = guest.vm().ranges().map(|range| range.nr as usize).sum();
    let reclaimed = guest.vm_mut().reclaim_all()?;
    if reclaimed.pages != given {
        bail!("reclaimed {} pages of {given}", reclaimed.pages);
    }
    if let Some(address) = reclaimed.first_nonzero {
        bail!("reclaimed page word at {address:#x} is not zero");
    }
    expect_error(
        HostCall::VmReclaim {
            pfn: image_pfn,
            nr: 1,
        },
        Error::Denied,
        "VM_RECLAIM of a page already reclaimed",
    )?;
    Ok(())
}

/// VM_DESTROY while another CPU holds the shared page in its TLB; then both CPUs' reads
/// of it must abort (the page is RECLAIMABLE now).
fn destroy_watched(guest: &TestGuest, reader: &mut RemoteReader, shared: usize) -> TestResult {
    if let Err(abort) = reader.read(shared)? {
        bail!("the other CPU's read of the shared page aborted: {abort}");
    }
    guest.vm().destroy()?;
    expect_read_aborts(shared, "host read of a destroyed VM's shared page")?;
    match reader.read(shared)? {
        Err(abort) if abort.is_injected_abort_at(shared) => Ok(()),
        Err(abort) => bail!("the other CPU's read after VM_DESTROY took the wrong fault: {abort}"),
        Ok(word) => bail!(
            "the other CPU still reads the destroyed VM's shared page ({word:#x}): a stale TLB entry"
        ),
    }
}

fn pfn(address: usize) -> u64 {
    (address / PAGE_SIZE) as u64
}
