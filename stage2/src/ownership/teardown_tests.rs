//! The chunked teardown: each step of `vm_teardown_step` is bounded whatever the VM's size,
//! and calls made between steps (EL2 releases the memory lock between them) see the dying
//! VM as a whole: not yet destroyed for everything they could observe, or waiting (`Busy`,
//! `RetryLater`) until the last step.

extern crate std;

use super::tests::{Memory, World, pfn};
use super::{
    FaultAction, Owner, OwnershipError, PageState, TEARDOWN_LOOKUPS_PER_STEP,
    TEARDOWN_PAGES_PER_STEP, TeardownProgress, VmId,
};
use crate::pool::PAGE_SIZE;
use std::vec::Vec;

const GIB: usize = 1 << 30;
/// Host pages donated to the big VM: four calls' worth, one of them a 2 MiB block.
const DONATIONS: [(usize, usize); 4] = [
    // (pa, gfn): 512 pages each.
    (0x4a00_0000, 0x200),    // 2 MiB aligned on both sides: one block leaf
    (0x4a20_1000, 0x1_0001), // page leaves, in another 1 GiB of IPA
    (0x4a40_1000, 0x2_0401),
    (0x4a60_1000, 0x8_0001),
];

/// A VM of 2048 donated pages (one 2 MiB block among them), 64 pool pages, and 8 pages it
/// shares with the host, which the host has mapped.
fn big_vm(w: &mut World) -> (VmId, Vec<usize>) {
    let a = w.create_vm(0, 64);
    let mut pages = Vec::new();
    for (pa, gfn) in DONATIONS {
        w.step(|w| w.own.host_donate_guest(a, pfn(pa), gfn, 512, &mut w.tlb))
            .unwrap();
        pages.extend((0..512).map(|i| pa + i * PAGE_SIZE));
    }
    // Shared pages in the first and in the last donation.
    for gfn in [0x200 + 5, 0x8_0001 + 500] {
        w.step(|w| w.own.guest_share_host(a, gfn, 4)).unwrap();
    }
    for pa in [0x4a00_5000, 0x4a60_1000 + 500 * PAGE_SIZE] {
        assert_eq!(w.own.host_handle_fault(pa), FaultAction::MapAndRetry);
    }
    (a, pages)
}

fn record_entries(w: &World) -> Vec<Option<PageState>> {
    w.own
        .ram_banks()
        .flat_map(|(s, e)| (s..e).step_by(PAGE_SIZE))
        .map(|pa| w.own.page_state(pa))
        .collect()
}

/// Runs one teardown step through `World::step` (I1-I7 checked) and returns what it did,
/// with the number of record entries it actually changed.
fn step(w: &mut World, vm: VmId) -> (TeardownProgress, usize) {
    let before = record_entries(w);
    let progress = w.step(|w| w.own.vm_teardown_step(vm, &mut w.tlb)).unwrap();
    let changed = record_entries(w)
        .iter()
        .zip(&before)
        .filter(|(a, b)| a != b)
        .count();
    (progress, changed)
}

#[test]
fn a_teardown_step_never_moves_more_than_512_pages_nor_makes_more_than_512_lookups() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.own.host_stage2().mark_active();
    let (a, pages) = big_vm(&mut w);
    let pool_total = w.own.guest_stage2(a).unwrap().pool_total_pages();
    let tables = w.own.guest_stage2(a).unwrap().table_pages();
    w.step(|w| w.own.vm_teardown_begin(a)).unwrap();
    let mut steps = 0;
    let mut moved = 0;
    loop {
        let (progress, changed) = step(&mut w, a);
        steps += 1;
        assert!(
            changed <= TEARDOWN_PAGES_PER_STEP && progress.pages <= TEARDOWN_PAGES_PER_STEP,
            "step {steps} changed {changed} record entries (reported {}), more than {TEARDOWN_PAGES_PER_STEP}",
            progress.pages
        );
        assert!(
            progress.lookups <= TEARDOWN_LOOKUPS_PER_STEP,
            "step {steps} made {} lookups, more than {TEARDOWN_LOOKUPS_PER_STEP}",
            progress.lookups
        );
        assert_eq!(
            changed, progress.pages,
            "step {steps}: every page visited moves"
        );
        moved += changed;
        if progress.finished {
            break;
        }
        assert!(steps < 100, "the teardown does not end");
    }
    assert_eq!(moved, pages.len() + pool_total, "{tables} tables");
    assert!(steps >= 5, "2112 pages in only {steps} steps");
    for &pa in &pages {
        assert_eq!(w.own.page_state(pa), Some(PageState::PendingReclaim(a)));
    }
    assert!(w.own.guest_stage2(a).is_none() && !w.own.vm_dying(a));
    // Everything comes back to the host, 512 pages per call, as after a one-go teardown.
    for (pa, _) in DONATIONS {
        w.step(|w| w.own.host_reclaim(pfn(pa), 512, &mut w.san))
            .unwrap();
    }
    let p = w.real_pfn(0);
    w.step(|w| w.own.host_reclaim(p, 64, &mut w.san)).unwrap();
}

#[test]
fn calls_between_teardown_steps_see_the_vm_whole_or_wait_for_the_last_step() {
    use OwnershipError::*;
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.own.host_stage2().mark_active();
    let (a, _) = big_vm(&mut w);
    let b = w.create_vm(100, 16);
    w.step(|w| {
        w.own
            .host_donate_guest(b, pfn(0x4b00_0000), 0x10, 8, &mut w.tlb)
    })
    .unwrap();
    let first_shared = 0x4a00_5000; // in the first step's pages
    let last_shared = 0x4a60_1000 + 500 * PAGE_SIZE; // in a later step's
    let pool_page = w.real_pfn(10);
    w.step(|w| w.own.vm_teardown_begin(a)).unwrap();
    let (first, _) = step(&mut w, a);
    assert!(!first.finished);
    assert_eq!(
        w.own.page_state(first_shared),
        Some(PageState::PendingReclaim(a))
    );
    assert_eq!(
        w.own.page_state(last_shared),
        Some(PageState::SharedWithHost(a))
    );

    // The host's calls on the dying VM's pages, moved or not: wait (Busy), or the answer
    // every state of the VM's pages gives (Denied), never a page handed back early.
    for pfn_ in [pfn(first_shared), pfn(last_shared), pool_page] {
        assert_eq!(
            w.step(|w| w.own.host_reclaim(pfn_, 1, &mut w.san)),
            Err(Busy)
        );
        assert_eq!(w.step(|w| w.own.host_share_hyp(pfn_, 1)), Err(Denied));
        assert_eq!(
            w.step(|w| w.own.host_donate_guest(b, pfn_, 0x100, 1, &mut w.tlb)),
            Err(Denied)
        );
    }
    // A range with one page no teardown will make reclaimable is refused at once.
    assert_eq!(
        w.step(|w| w.own.host_reclaim(pfn(0x4a1f_f000), 2, &mut w.san)),
        Err(Denied)
    );
    // The host's own accesses: a moved page waits for the end; one not moved yet is still
    // shared (the host may still use it until the call returns).
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(first_shared))),
        Ok(FaultAction::RetryLater)
    );
    assert_eq!(w.host_level(first_shared), None);
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(last_shared))),
        Ok(FaultAction::MapAndRetry)
    );
    // The dying VM accepts no call.
    assert_eq!(
        w.step(|w| w.own.vm_topup(a, w.real_pfn(200), 1, &mut w.tlb)),
        Err(NotFound)
    );
    assert_eq!(
        w.step(|w| w
            .own
            .host_donate_guest(a, pfn(0x4c00_0000), 0x9_0000, 1, &mut w.tlb)),
        Err(NotFound)
    );
    assert_eq!(
        w.step(|w| w.own.guest_share_host(a, 0x200, 1)),
        Err(NotFound)
    );
    assert_eq!(w.step(|w| w.own.vm_teardown_begin(a)), Err(NotFound));
    // Another VM is not affected.
    w.step(|w| w.own.guest_share_host(b, 0x10, 2)).unwrap();
    w.step(|w| w.own.guest_relinquish(b, 0x12, 2, &mut w.tlb, &mut w.san))
        .unwrap();
    w.step(|w| {
        w.own
            .host_donate_guest(b, pfn(0x4c00_0000), 0x100, 4, &mut w.tlb)
    })
    .unwrap();

    loop {
        let (p, _) = step(&mut w, a);
        if p.finished {
            break;
        }
    }
    assert_eq!(w.own.vm_teardown_step(a, &mut w.tlb), Err(NotFound));
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(first_shared))),
        Ok(FaultAction::InjectAbort)
    );
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(last_shared))),
        Ok(FaultAction::InjectAbort)
    );
    for pfn_ in [pfn(first_shared), pfn(last_shared), pool_page] {
        w.step(|w| w.own.host_reclaim(pfn_, 1, &mut w.san)).unwrap();
        assert_eq!(
            w.own.page_state(pfn_ * PAGE_SIZE),
            Some(PageState::Owned(Owner::Host))
        );
    }
}

#[test]
fn a_vm_with_a_donation_still_zeroing_cannot_begin_its_teardown() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 8);
    w.step(|w| {
        w.own
            .host_donate_guest_begin(a, pfn(0x4a00_0000), 0x10, 2, &mut w.tlb)
    })
    .unwrap();
    assert_eq!(
        w.step(|w| w.own.vm_teardown_begin(a)),
        Err(OwnershipError::Busy)
    );
    assert!(!w.own.vm_dying(a));
    w.step(|w| {
        w.own
            .host_donate_guest_finish(a, pfn(0x4a00_0000), 0x10, 2, &mut w.tlb)
    })
    .unwrap();
    w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    assert_eq!(
        w.own.page_state(0x4a00_1000),
        Some(PageState::PendingReclaim(a))
    );
}

#[test]
fn a_chunked_teardown_with_concatenated_roots_moves_the_directory_both_roots_and_every_page() {
    let mut mem = Memory::for_pa_range(GIB, 2);
    let mut w = World::for_pa_range(&mut mem, 2);
    w.own.host_stage2().mark_active();
    // Three pages from an odd page: a directory and two 8 KiB-aligned root tables.
    let first = w.real_pfn(1);
    let a = w.step(|w| w.own.vm_create(first, 3, &mut w.tlb)).unwrap();
    let pool = w.real_pfn(16);
    w.step(|w| w.own.vm_topup(a, pool, 8, &mut w.tlb)).unwrap();
    // One page in each 512 GiB half of the 40-bit IPA space (one per root table).
    let high_gfn = (1usize << 39) / PAGE_SIZE + 0x10;
    for (pa, gfn) in [(0x4800_0000, 0x10), (0x4800_1000, high_gfn)] {
        w.step(|w| w.own.host_donate_guest(a, pfn(pa), gfn, 1, &mut w.tlb))
            .unwrap();
    }
    w.step(|w| w.own.guest_share_host(a, high_gfn, 1)).unwrap();
    w.step(|w| w.own.vm_teardown_begin(a)).unwrap();
    let mut steps = 0;
    while !w
        .step(|w| w.own.teardown_step_within(a, &mut w.tlb, 8, 8))
        .map(|p| {
            assert!(p.pages <= 8 && p.lookups <= 8, "{p:?}");
            p.finished
        })
        .unwrap()
    {
        steps += 1;
    }
    // 1024 level-1 entries at 8 lookups a step.
    assert!(steps >= 128, "{steps} steps");
    let pages = (first..first + 3)
        .chain(pool..pool + 8)
        .map(|p| p * PAGE_SIZE)
        .chain([0x4800_0000, 0x4800_1000]);
    for pa in pages {
        assert_eq!(
            w.own.page_state(pa),
            Some(PageState::PendingReclaim(a)),
            "{pa:#x}"
        );
    }
}

/// A host call made on another CPU while a VM's teardown is under way (world-relative: a
/// frame of the fake RAM by offset from the donations, or of the real RAM by index).
#[derive(Clone, Copy, Debug)]
enum Call {
    /// Between two steps, a step of the teardown itself (pages, lookups).
    Step(usize, usize),
    ShareHyp(usize),
    UnshareHyp(usize),
    DonateToB(usize, usize, usize),
    Reclaim(usize, usize),
    ReclaimPool(usize, usize),
    /// VM_TOPUP of VM `a` (dying) or `b` with a real page.
    Topup(bool, usize),
    Fault(usize),
}

/// Fake frames the calls aim at: around the dying VM's pages (0x4a00_0000, 64 of them
/// donated at offset 0, 16 more at offset 96), which some calls also name.
fn call() -> impl proptest::strategy::Strategy<Value = Call> {
    use proptest::prelude::*;
    let frame = 0usize..128;
    prop_oneof![
        4 => (1usize..12, 1usize..12).prop_map(|(p, l)| Call::Step(p, l)),
        1 => frame.clone().prop_map(Call::ShareHyp),
        1 => frame.clone().prop_map(Call::UnshareHyp),
        1 => (frame.clone(), 0usize..64, 1usize..4).prop_map(|(f, g, n)| Call::DonateToB(f, g, n)),
        2 => (frame.clone(), 1usize..40).prop_map(|(f, n)| Call::Reclaim(f, n)),
        1 => (0usize..40, 1usize..8).prop_map(|(i, n)| Call::ReclaimPool(i, n)),
        1 => (any::<bool>(), 200usize..300).prop_map(|(a, i)| Call::Topup(a, i)),
        2 => (frame, 0usize..PAGE_SIZE).prop_map(|(f, o)| Call::Fault(f * PAGE_SIZE + o)),
    ]
}

const CALL_BASE: usize = 0x4a00_0000;

/// Builds the same start in any world: VM `a` (to be destroyed) with 80 donated pages, 6
/// of them shared with the host and mapped there, and a pool of 24 real pages; VM `b`.
fn start(w: &mut World) -> (VmId, VmId) {
    let a = w.create_vm(0, 16);
    let p = w.real_pfn(16);
    w.step(|w| w.own.vm_topup(a, p, 8, &mut w.tlb)).unwrap();
    for (off, gfn, n) in [(0, 0x100, 64), (96, 0x8_0000, 16)] {
        w.step(|w| {
            w.own
                .host_donate_guest(a, pfn(CALL_BASE) + off, gfn, n, &mut w.tlb)
        })
        .unwrap();
    }
    for (gfn, n) in [(0x100 + 2, 3), (0x8_0000 + 10, 3)] {
        w.step(|w| w.own.guest_share_host(a, gfn, n)).unwrap();
    }
    for off in [2, 3, 4, 106, 107, 108] {
        assert_eq!(
            w.own.host_handle_fault(CALL_BASE + off * PAGE_SIZE),
            FaultAction::MapAndRetry
        );
    }
    let b = w.create_vm(40, 8);
    (a, b)
}

/// What a call answered: a transition's result, or a host fault's action.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Answer {
    Call(Result<(), OwnershipError>),
    Fault(FaultAction),
}

/// Makes `call` in `w`; `None` for a call EL2 makes wait until the teardown has finished
/// (VM_RECLAIM's `Busy`, a call naming the dying VM, a host fault's `RetryLater`).
fn make(w: &mut World, call: Call, a: VmId, b: VmId, dying: bool) -> Option<Answer> {
    let f = |off: usize| pfn(CALL_BASE) + off;
    let answer = match call {
        Call::Step(..) => unreachable!("steps are not calls"),
        Call::ShareHyp(o) => Answer::Call(w.step(|w| w.own.host_share_hyp(f(o), 1))),
        Call::UnshareHyp(o) => Answer::Call(w.step(|w| w.own.host_unshare_hyp(f(o), 1))),
        Call::DonateToB(o, g, n) => {
            Answer::Call(w.step(|w| w.own.host_donate_guest(b, f(o), 0x40 + g, n, &mut w.tlb)))
        }
        Call::Reclaim(o, n) => Answer::Call(w.step(|w| w.own.host_reclaim(f(o), n, &mut w.san))),
        Call::ReclaimPool(i, n) => {
            let p = w.real_pfn(i);
            Answer::Call(w.step(|w| w.own.host_reclaim(p, n, &mut w.san)))
        }
        Call::Topup(to_a, i) => {
            if to_a && dying {
                return None; // `lock_vm` waits for the teardown
            }
            let vm = if to_a { a } else { b };
            let p = w.real_pfn(i);
            Answer::Call(w.step(|w| w.own.vm_topup(vm, p, 1, &mut w.tlb)))
        }
        Call::Fault(at) => Answer::Fault(
            w.step(|w| Ok(w.own.host_handle_fault(CALL_BASE + at)))
                .unwrap(),
        ),
    };
    match answer {
        Answer::Call(Err(OwnershipError::Busy)) | Answer::Fault(FaultAction::RetryLater) => None,
        other => Some(other),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..proptest::prelude::ProptestConfig::default() })]

    /// Calls made between the steps of a chunked teardown, with EL2's waits (a call that
    /// would see the VM half destroyed waits for the last step), answer and end exactly as
    /// if the destroy had been one change made at its last step: the same calls, in the
    /// same order, around a one-go teardown give the same answers and the same record.
    #[test]
    fn calls_between_teardown_steps_answer_as_if_the_destroy_were_one_change(
        calls in proptest::collection::vec(call(), 1..40),
    ) {
        let mut chunked_mem = Memory::new(GIB);
        let mut chunked = World::new(&mut chunked_mem);
        chunked.own.host_stage2().mark_active();
        let (a, b) = start(&mut chunked);
        chunked.step(|w| w.own.vm_teardown_begin(a)).unwrap();
        let mut before = Vec::new();
        let mut after = Vec::new();
        for &c in &calls {
            if let Call::Step(p, l) = c {
                if chunked.own.vm_dying(a) {
                    chunked.step(|w| w.own.teardown_step_within(a, &mut w.tlb, p, l)).unwrap();
                }
                continue;
            }
            let dying = chunked.own.vm_dying(a);
            match make(&mut chunked, c, a, b, dying) {
                Some(answer) if dying => before.push((c, answer)),
                Some(answer) => after.push((c, Some(answer))),
                None => after.push((c, None)),
            }
        }
        while chunked.own.vm_dying(a) {
            chunked.step(|w| w.own.vm_teardown_step(a, &mut w.tlb)).unwrap();
        }
        // The waiting calls, now that the teardown is over.
        for (c, answer) in after.iter_mut() {
            if answer.is_none() {
                *answer = make(&mut chunked, *c, a, b, false);
            }
        }

        let mut one_go_mem = Memory::new(GIB);
        let mut one_go = World::new(&mut one_go_mem);
        one_go.own.host_stage2().mark_active();
        start(&mut one_go);
        for &(c, answer) in &before {
            proptest::prop_assert_eq!(make(&mut one_go, c, a, b, false), Some(answer), "{:?} before the destroy", c);
        }
        one_go.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
        for &(c, answer) in &after {
            proptest::prop_assert_eq!(make(&mut one_go, c, a, b, false), answer, "{:?} after the destroy", c);
        }
        proptest::prop_assert!(chunked.own.meta == one_go.own.meta, "the records differ");
    }
}
