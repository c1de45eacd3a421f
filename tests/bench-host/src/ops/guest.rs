//! Operations that run the bench guest (guest_blob.rs): the VCPU_RUN round trip, guest
//! MEM_SHARE and MEM_UNSHARE of one page and of 512, and the host's access to a page the
//! guest owns.
//!
//! One VM, one vCPU per loop, each started once before it is measured so that every
//! measured run resumes the guest after its previous exit. Only vCPU 0 gets a host entry
//! point (ABI 2.0): a boot stub that starts the others with PSCI CPU_ON from a table the
//! host donates before launch (at `TABLE_GFN`), then runs its own loop:
//! - vCPU 0 exits GUEST_HVC on every run (a forwarded HVC: the cheapest exit that goes
//!   through the guest-HVC path the memory calls take too), vCPU 1 exits MMIO;
//! - vCPUs 2 and 3 share, then unshare, consecutive single pages; vCPUs 4 and 5 do the
//!   same with consecutive 512-page (2 MiB aligned) ranges.
//!
//! A memory-call run costs the round trip plus the call; xtask reports the call as the
//! run's EL2 instructions minus those of vCPU 0's round trip.

use crate::config::Counts;
use crate::guest_blob::{self, Entry, IMAGE_GFN, IPA_BITS, MMIO_IPA};
use crate::measured_loop::{Calls, measure};
use crate::ops::host_abort;
use crate::pages::{BLOCK_PAGES, Pages};
use el1_rt::guest_vm::GuestVm;
use el1_rt::host_calls::{self, CallError};
use el1_rt::{fail, free_pages::PAGE_SIZE};
use hvc_abi::{AccessSize, Error, Exit, ExitReason, HostCall, MmioAccess, VmHandle};

/// A function id of SMCCC owner 7: forwarded to the host as GUEST_HVC.
const FORWARDED_ID: u64 = 0xC700_0001;
/// Guest frames of the single pages (after the image) and of the 512-page ranges.
const SINGLE_GFN: u64 = IMAGE_GFN + 0x200;
const BLOCK_GFN: u64 = IMAGE_GFN + 0x800;
// The single pages (one more than the calls: the first run shares one too) end below
// the 512-page ranges.
const _: () = assert!(
    SINGLE_GFN + Counts::FULL.guest_pages < BLOCK_GFN
        && SINGLE_GFN + Counts::QUICK.guest_pages < BLOCK_GFN
);
/// The boot table: (entry IPA, x0) for vCPUs 0..5, 16 bytes each.
const TABLE_GFN: u64 = IMAGE_GFN + 1;
/// Pool pages topped up first (tables of the ranges below, split reserves).
const POOL_PAGES: u32 = 64;

/// The vCPUs and what each runs.
const HVC_VCPU: u32 = 0;
const MMIO_VCPU: u32 = 1;
const SHARE_1_VCPU: u32 = 2;
const UNSHARE_1_VCPU: u32 = 3;
const SHARE_512_VCPU: u32 = 4;
const UNSHARE_512_VCPU: u32 = 5;
const VCPUS: u32 = 6;

/// A donated range of guest memory, remembered to reclaim it after the VM is gone.
#[derive(Clone, Copy)]
struct Range {
    pfn: u64,
    nr: u64,
}

pub fn run(counts: &Counts, pages: &mut Pages) {
    let mut vm = match GuestVm::create(VCPUS, IPA_BITS) {
        Ok(vm) => vm,
        Err(e) => fail!("VM_CREATE for the bench guest: {e}"),
    };
    let built = vm
        .topup(pages.free_pages(), POOL_PAGES)
        .and_then(|_| vm.load_image(pages.free_pages(), guest_blob::image(), IMAGE_GFN));
    if let Err(e) = built {
        fail!("loading the bench guest: {e}");
    }
    let singles = donate(&mut vm, pages, SINGLE_GFN, counts.guest_pages + 1, 1);
    let blocks = donate(
        &mut vm,
        pages,
        BLOCK_GFN,
        (counts.guest_blocks + 1) * BLOCK_PAGES,
        BLOCK_PAGES,
    );
    let handle = vm.handle();
    let singles_x0 = guest_blob::sequence_x0(SINGLE_GFN * PAGE_SIZE as u64, 1);
    let blocks_x0 = guest_blob::sequence_x0(BLOCK_GFN * PAGE_SIZE as u64, 512);
    let vcpus = [
        (HVC_VCPU, Entry::HvcExit, FORWARDED_ID),
        (MMIO_VCPU, Entry::MmioExit, MMIO_IPA),
        (SHARE_1_VCPU, Entry::ShareSeq, singles_x0),
        (UNSHARE_1_VCPU, Entry::UnshareSeq, singles_x0),
        (SHARE_512_VCPU, Entry::ShareSeq, blocks_x0),
        (UNSHARE_512_VCPU, Entry::UnshareSeq, blocks_x0),
    ];
    let mut table = [0u8; 16 * VCPUS as usize];
    for ((_, entry, x0), slot) in vcpus.iter().zip(table.chunks_exact_mut(16)) {
        slot[..8].copy_from_slice(&guest_blob::entry_ipa(*entry).to_le_bytes());
        slot[8..].copy_from_slice(&x0.to_le_bytes());
    }
    if let Err(e) = vm.load_page(pages.free_pages(), &table, TABLE_GFN) {
        fail!("donating the bench guest's boot table: {e}");
    }
    let boot = guest_blob::entry_ipa(Entry::Boot);
    if let Err(e) = vm.vcpu_create(HVC_VCPU, boot, TABLE_GFN << 12) {
        fail!("VCPU_CREATE {HVC_VCPU}: {e}");
    }
    for vcpu in 1..VCPUS {
        if let Err(e) = vm.vcpu_create(vcpu, 0, 0) {
            fail!("VCPU_CREATE {vcpu}: {e}");
        }
    }
    for vcpu in 1..VCPUS {
        match vm.run(HVC_VCPU, 0) {
            Ok(Exit::VcpuStarted { vcpu: started }) if started == vcpu => {}
            Ok(exit) => fail!("the bench guest's boot stub exited with {exit:?}"),
            Err(e) => fail!("running the bench guest's boot stub: {e}"),
        }
    }
    for (vcpu, _, _) in vcpus {
        // First run: the guest starts and makes its first exit (the sequences share or
        // unshare their first range), so every measured run resumes the guest.
        first_run(&vm, vcpu, exit_x1(vcpu));
    }

    run_loop("vcpu_run_hvc_exit", handle, HVC_VCPU, counts.runs);
    run_loop("vcpu_run_mmio_exit", handle, MMIO_VCPU, counts.runs);
    run_loop("mem_share_1", handle, SHARE_1_VCPU, counts.guest_pages);
    run_loop("mem_unshare_1", handle, UNSHARE_1_VCPU, counts.guest_pages);
    run_loop("mem_share_512", handle, SHARE_512_VCPU, counts.guest_blocks);
    run_loop(
        "mem_unshare_512",
        handle,
        UNSHARE_512_VCPU,
        counts.guest_blocks,
    );

    // Every single page is private again: the first one is what the host now reads.
    host_abort::run(counts, pages, singles.pfn);

    if let Err(e) = vm.destroy() {
        fail!("VM_DESTROY of the bench guest: {e}");
    }
    for range in [singles, blocks] {
        reclaim(range);
    }
    if let Err(e) = vm.reclaim_all() {
        fail!("reclaiming the bench guest's image and pool: {e}");
    }
}

/// What x1 of every VCPU_RUN of `vcpu` is: its exit reason (and for MMIO the access).
fn exit_x1(vcpu: u32) -> u64 {
    match vcpu {
        HVC_VCPU => ExitReason::GuestHvc as u64,
        MMIO_VCPU => {
            let exit = Exit::Mmio {
                ipa: MMIO_IPA,
                size: AccessSize::B8,
                register: 31,
                access: MmioAccess::Write { data: 0 },
            };
            exit.encode()[0]
        }
        SHARE_1_VCPU | SHARE_512_VCPU => ExitReason::MemShared as u64,
        _ => ExitReason::MemUnshared as u64,
    }
}

fn first_run(vm: &GuestVm, vcpu: u32, x1: u64) {
    match vm.run(vcpu, 0) {
        Ok(exit) if exit.encode()[0] == x1 => {}
        Ok(exit) => fail!("vCPU {vcpu}'s first run exited with {exit:?}"),
        Err(e) => fail!("vCPU {vcpu}'s first run: {e}"),
    }
}

fn run_loop(op: &str, handle: VmHandle, vcpu: u32, runs: u64) {
    let call = HostCall::VcpuRun {
        handle,
        vcpu,
        completion: 0,
    };
    measure(op, &Calls::repeat(call.encode(), runs, [0, exit_x1(vcpu)]));
}

/// Donates `nr` fresh pages (aligned to `align` pages) at `gfn`, at most 512 per call,
/// topping the pool up when the payload asks for memory.
fn donate(vm: &mut GuestVm, pages: &mut Pages, gfn: u64, nr: u64, align: u64) -> Range {
    let pfn = pages.alloc(nr, align);
    let handle = vm.handle();
    let mut done = 0;
    while done < nr {
        let chunk = (nr - done).min(BLOCK_PAGES);
        let call = || host_calls::vm_donate(handle, pfn + done, gfn + done, chunk as u32);
        let mut result = call();
        if result.as_ref().is_err_and(is_no_memory) {
            if let Err(e) = vm.topup(pages.free_pages(), POOL_PAGES) {
                fail!("VM_TOPUP of the bench guest: {e}");
            }
            result = call();
        }
        if let Err(e) = result {
            fail!("VM_DONATE of the bench guest's data: {e}");
        }
        done += chunk;
    }
    Range { pfn, nr }
}

fn is_no_memory(error: &CallError) -> bool {
    error.abi_error() == Some(Error::NoMemory)
}

fn reclaim(range: Range) {
    let mut done = 0;
    while done < range.nr {
        let chunk = (range.nr - done).min(BLOCK_PAGES);
        if let Err(e) = host_calls::vm_reclaim(range.pfn + done, chunk as u32) {
            fail!("VM_RECLAIM of the bench guest's data: {e}");
        }
        done += chunk;
    }
}
