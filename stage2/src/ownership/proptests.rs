//! Random sequences of transitions, host faults and vCPU loads on overlapping ranges, each
//! step checked by [`World::step`] (I1-I7), plus the fault handler's answers.

extern crate std;

use super::tests::{CARVE_OUT, FAKE_BASE, MAX_VMS, Memory, World, pfn, vm};
use super::*;
use proptest::prelude::*;

/// Fake RAM of this world: 64 MiB, with EL2's carve-out at 2..6 MiB.
const FAKE_BYTES: usize = 64 << 20;

#[derive(Clone, Debug)]
enum Op {
    HostShareHyp(usize, usize),
    HostUnshareHyp(Addr, usize),
    HostDonateHyp(usize, usize),
    HypDonateHost(Addr, usize),
    VmCreate(usize, usize),
    VmTopup(u16, usize, usize),
    HostDonateGuest(u16, usize, usize, usize),
    /// A donation after launch, in its two halves (EL2 zeroes between them).
    HostDonateGuestBegin(u16, usize, usize, usize),
    HostDonateGuestFinish(u16, Addr, usize),
    GuestShareHost(u16, Addr, usize),
    GuestUnshareHost(u16, Addr, usize),
    GuestRelinquish(u16, Addr, usize),
    VmTeardown(u16),
    /// The chunked teardown EL2 makes, with calls interleaved between its steps.
    VmTeardownBegin(u16),
    /// A step with at most this many record entries changed and lookups made.
    VmTeardownStep(u16, usize, usize),
    HostReclaim(Addr, usize),
    HostFault(usize),
    /// A host fault on real RAM, where pools (and pending-reclaim pool pages) are.
    HostFaultReal(usize, usize),
    ToggleActive(u16),
}

/// A frame number given directly, or picked when the step runs from the frames in the state
/// the operation needs (so that sequences reach successful calls, not only refusals).
#[derive(Clone, Copy, Debug)]
enum Addr {
    Raw(usize),
    Pick(usize),
}

fn picked(raw: impl Strategy<Value = usize>) -> impl Strategy<Value = Addr> {
    prop_oneof![3 => any::<u32>().prop_map(|s| Addr::Pick(s as usize)), 1 => raw.prop_map(Addr::Raw)]
}

/// The `sel`-th (modulo) RAM page in a state `want` accepts, as a frame number.
fn pick_page(w: &World<'_>, sel: usize, want: impl Fn(usize, PageState) -> bool) -> Option<usize> {
    let pages: std::vec::Vec<usize> = w
        .own
        .ram_banks()
        .flat_map(|(s, e)| (s..e).step_by(PAGE_SIZE))
        .filter(|&pa| w.own.page_state(pa).is_some_and(|st| want(pa, st)))
        .collect();
    (!pages.is_empty()).then(|| pfn(pages[sel % pages.len()]))
}

fn host_frame(w: &World<'_>, a: Addr, want: impl Fn(usize, PageState) -> bool) -> usize {
    match a {
        Addr::Raw(p) => p,
        Addr::Pick(sel) => pick_page(w, sel, want).unwrap_or(pfn(FAKE_BASE) + sel % 64),
    }
}

/// A guest frame: given, or the `sel`-th (modulo) frame the VM has mapped to a page in a
/// state `want` accepts.
fn guest_frame(w: &World<'_>, v: u16, a: Addr, want: impl Fn(PageState) -> bool) -> usize {
    let sel = match a {
        Addr::Raw(g) => return g,
        Addr::Pick(sel) => sel,
    };
    let mut frames = std::vec::Vec::new();
    if let Some(g) = w.own.guest_stage2(vm(v)) {
        g.for_each_leaf(0, g.ipa_size(), |l| {
            for off in (0..l.size()).step_by(PAGE_SIZE) {
                if w.own.page_state(l.block_pa + off).is_some_and(&want) {
                    frames.push(pfn(l.block_ipa + off));
                }
            }
        });
    }
    if frames.is_empty() {
        sel % 0x400
    } else {
        frames[sel % frames.len()]
    }
}

/// Host pages, clustered around a few places so that ranges overlap and blocks get split:
/// the carve-out's edges, a 2 MiB boundary, the end of the fake RAM. Offsets are in pages,
/// mostly small so that calls hit the same pages again.
fn host_pfn() -> impl Strategy<Value = usize> {
    (
        prop::sample::select(std::vec![
            pfn(FAKE_BASE),
            pfn(CARVE_OUT.0) - 8,
            pfn(CARVE_OUT.1) - 4,
            pfn(FAKE_BASE + (8 << 20)) - 16,
            pfn(FAKE_BASE + (16 << 20)),
            pfn(FAKE_BASE + FAKE_BYTES) - 16,
        ]),
        prop_oneof![6 => 0usize..40, 1 => 0usize..600],
    )
        .prop_map(|(base, off)| base + off)
}

/// Guest frames, clustered the same way (0x200 is 2 MiB-aligned).
fn gfn() -> impl Strategy<Value = usize> {
    (
        prop_oneof![4 => Just(0usize), 4 => Just(0x200), 1 => Just(0x3f0), 1 => Just(0x4_0000)],
        prop_oneof![8 => 0usize..8, 1 => 0usize..520],
    )
        .prop_map(|(b, o)| b + o)
}

/// Page counts: mostly small, sometimes a whole 2 MiB, sometimes invalid.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![10 => 1usize..5, 2 => 5usize..64, 1 => Just(512), 1 => Just(0), 1 => Just(513)]
}

/// Mostly the two VMs every case starts with.
/// Page counts for calls on frames picked from the guest's state: mostly one page.
fn guest_count() -> impl Strategy<Value = usize> {
    prop_oneof![10 => Just(1usize), 4 => 2usize..5, 1 => Just(512), 1 => Just(0)]
}

fn vm_id() -> impl Strategy<Value = u16> {
    prop_oneof![4 => 1u16..=2, 1 => 1u16..=(MAX_VMS as u16)]
}

/// Real-RAM page indexes for pools (16 MiB = 4096 pages).
fn real_index() -> impl Strategy<Value = usize> {
    0usize..4090
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (host_pfn(), count()).prop_map(|(p, n)| Op::HostShareHyp(p, n)),
        1 => (picked(host_pfn()), count()).prop_map(|(p, n)| Op::HostUnshareHyp(p, n)),
        1 => (host_pfn(), count()).prop_map(|(p, n)| Op::HostDonateHyp(p, n)),
        1 => (picked(host_pfn()), count()).prop_map(|(p, n)| Op::HypDonateHost(p, n)),
        1 => (real_index(), 1usize..4).prop_map(|(i, n)| Op::VmCreate(i, n)),
        1 => (vm_id(), real_index(), 1usize..6).prop_map(|(v, i, n)| Op::VmTopup(v, i, n)),
        3 => (vm_id(), host_pfn(), gfn(), count()).prop_map(|(v, p, g, n)| Op::HostDonateGuest(v, p, g, n)),
        2 => (vm_id(), host_pfn(), gfn(), count()).prop_map(|(v, p, g, n)| Op::HostDonateGuestBegin(v, p, g, n)),
        2 => (vm_id(), picked(gfn()), guest_count()).prop_map(|(v, g, n)| Op::HostDonateGuestFinish(v, g, n)),
        2 => (vm_id(), picked(gfn()), guest_count()).prop_map(|(v, g, n)| Op::GuestShareHost(v, g, n)),
        1 => (vm_id(), picked(gfn()), guest_count()).prop_map(|(v, g, n)| Op::GuestUnshareHost(v, g, n)),
        2 => (vm_id(), picked(gfn()), guest_count()).prop_map(|(v, g, n)| Op::GuestRelinquish(v, g, n)),
        1 => vm_id().prop_filter("teardown now and then", |v| *v != 1).prop_map(Op::VmTeardown),
        1 => vm_id().prop_filter("teardown now and then", |v| *v != 1).prop_map(Op::VmTeardownBegin),
        3 => (vm_id(), 1usize..16, 1usize..16).prop_map(|(v, p, l)| Op::VmTeardownStep(v, p, l)),
        1 => (picked(host_pfn()), count()).prop_map(|(p, n)| Op::HostReclaim(p, n)),
        3 => (host_pfn(), 0usize..PAGE_SIZE).prop_map(|(p, o)| Op::HostFault(p * PAGE_SIZE + o)),
        1 => (real_index(), 0usize..PAGE_SIZE).prop_map(|(i, o)| Op::HostFaultReal(i, o)),
        1 => vm_id().prop_map(Op::ToggleActive),
    ]
}

/// With `STAGE2_PROPTEST_TALLY` set, prints each step's outcome, to see that the generated
/// sequences reach successful calls and not only refusals (`step` has checked both).
fn record<T>(op: &Op, r: Result<T, OwnershipError>) {
    if std::env::var_os("STAGE2_PROPTEST_TALLY").is_some() {
        let name = std::format!("{op:?}");
        let name = name.split('(').next().unwrap_or("");
        std::eprintln!("TALLY {name} {:?}", r.as_ref().err());
    }
}

/// One bounded teardown step: it changes at most `pages` record entries (8 at least) and
/// makes at most `lookups` lookups, whatever the VM's size; calls between steps were checked
/// by `run`'s other arms (invariants I1-I7, with the dying VM's cursor rule).
fn teardown_step(w: &mut World<'_>, op: &Op, v: VmId, pages: usize, lookups: usize) {
    let before = w.own.meta.to_vec();
    let r = w.step(|w| w.own.teardown_step_within(v, &mut w.tlb, pages, lookups));
    if let Ok(progress) = &r {
        let changed = w
            .own
            .meta
            .iter()
            .zip(&before)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            changed <= pages.max(8) && progress.pages == changed,
            "a step bounded to {pages} pages changed {changed} (reported {progress:?})"
        );
        assert!(progress.lookups <= lookups.max(1), "{progress:?}");
        if progress.finished {
            assert!(!w.own.vm_dying(v) && w.own.guest_stage2(v).is_none());
        }
    }
    record(op, r);
}

/// Ends every teardown still under way (as EL2's VM_DESTROY always does) and checks that
/// each left exactly pages pending reclaim behind: none of the VM's own is left.
fn finish_teardowns(w: &mut World<'_>) {
    for v in 1..=MAX_VMS as u16 {
        let v = vm(v);
        if !w.own.vm_dying(v) {
            continue;
        }
        while !w
            .step(|w| w.own.teardown_step_within(v, &mut w.tlb, 8, 8))
            .unwrap()
            .finished
        {}
        let left = w.own.ram_banks().flat_map(|(s, e)| (s..e).step_by(PAGE_SIZE)).find(|&pa| {
            matches!(
                w.own.page_state(pa),
                Some(PageState::Owned(Owner::Guest(g)) | PageState::SharedWithHost(g) | PageState::HypPool(g)) if g == v
            )
        });
        assert_eq!(left, None, "a page of torn-down {v:?} is still its own");
    }
}

/// Whether `s` names a VM whose teardown is under way (its own, pool or moved pages).
fn names_dying(w: &World<'_>, s: PageState) -> bool {
    match s {
        PageState::Owned(Owner::Guest(g))
        | PageState::SharedWithHost(g)
        | PageState::HypPool(g)
        | PageState::PendingReclaim(g) => w.own.vm_dying(g),
        _ => false,
    }
}

fn run(w: &mut World<'_>, op: &Op) {
    match *op {
        Op::HostShareHyp(p, n) => record(op, w.step(|w| w.own.host_share_hyp(p, n))),
        Op::HostUnshareHyp(a, n) => {
            let p = host_frame(w, a, |_, s| s == PageState::HostSharedWith(Borrower::Hyp));
            record(op, w.step(|w| w.own.host_unshare_hyp(p, n)));
        }
        Op::HostDonateHyp(p, n) => record(op, w.step(|w| w.own.host_donate_hyp(p, n, &mut w.tlb))),
        Op::HypDonateHost(a, n) => {
            let carve_out = CARVE_OUT.0..CARVE_OUT.1;
            let p = host_frame(w, a, |pa, s| {
                s == PageState::Owned(Owner::Hyp) && !carve_out.contains(&pa)
            });
            record(op, w.step(|w| w.own.hyp_donate_host(p, n)));
        }
        Op::VmCreate(i, n) => {
            let p = w.real_pfn(i);
            record(op, w.step(|w| w.own.vm_create(p, n, &mut w.tlb)));
        }
        Op::VmTopup(v, i, n) => {
            let p = w.real_pfn(i);
            record(op, w.step(|w| w.own.vm_topup(vm(v), p, n, &mut w.tlb)));
        }
        Op::HostDonateGuest(v, p, g, n) => {
            record(
                op,
                w.step(|w| w.own.host_donate_guest(vm(v), p, g, n, &mut w.tlb)),
            );
        }
        Op::HostDonateGuestBegin(v, p, g, n) => {
            record(
                op,
                w.step(|w| w.own.host_donate_guest_begin(vm(v), p, g, n, &mut w.tlb)),
            );
        }
        Op::HostDonateGuestFinish(v, a, n) => {
            let g = guest_frame(w, v, a, |s| s == PageState::ZeroingForGuest(vm(v)));
            let p = w
                .own
                .guest_stage2(vm(v))
                .and_then(|t| t.translate(g * PAGE_SIZE))
                .map_or(g, |l| pfn(l.pa));
            record(
                op,
                w.step(|w| w.own.host_donate_guest_finish(vm(v), p, g, n, &mut w.tlb)),
            );
        }
        Op::GuestShareHost(v, a, n) => {
            let g = guest_frame(w, v, a, |s| s == PageState::Owned(Owner::Guest(vm(v))));
            record(op, w.step(|w| w.own.guest_share_host(vm(v), g, n)));
        }
        Op::GuestUnshareHost(v, a, n) => {
            let g = guest_frame(w, v, a, |s| s == PageState::SharedWithHost(vm(v)));
            record(
                op,
                w.step(|w| w.own.guest_unshare_host(vm(v), g, n, &mut w.tlb)),
            );
        }
        Op::GuestRelinquish(v, a, n) => {
            let g = guest_frame(w, v, a, |s| s == PageState::Owned(Owner::Guest(vm(v))));
            record(
                op,
                w.step(|w| w.own.guest_relinquish(vm(v), g, n, &mut w.tlb, &mut w.san)),
            );
        }
        Op::VmTeardown(v) => record(op, w.step(|w| w.own.vm_teardown(vm(v), &mut w.tlb))),
        Op::VmTeardownBegin(v) => record(op, w.step(|w| w.own.vm_teardown_begin(vm(v)))),
        Op::VmTeardownStep(v, pages, lookups) => {
            // Mostly the VM being torn down, if any.
            let v = (1..=MAX_VMS as u16)
                .map(vm)
                .find(|&d| w.own.vm_dying(d) && v != MAX_VMS as u16)
                .unwrap_or(vm(v));
            teardown_step(w, op, v, pages, lookups);
        }
        Op::HostReclaim(a, n) => {
            let p = host_frame(w, a, |_, s| {
                matches!(s, PageState::PendingReclaim(_)) || names_dying(w, s)
            });
            let r = w.step(|w| w.own.host_reclaim(p, n, &mut w.san));
            // Busy only for a range that names a dying VM, which waits for its teardown.
            if r == Err(OwnershipError::Busy) {
                assert!(
                    (p..p + n).any(|f| w
                        .own
                        .page_state(f * PAGE_SIZE)
                        .is_some_and(|s| names_dying(w, s))),
                    "reclaim of {p:#x}+{n} busy with no dying VM's page"
                );
            }
            record(op, r);
        }
        Op::HostFaultReal(i, o) => run(w, &Op::HostFault(w.real.0 + i * PAGE_SIZE + o)),
        Op::HostFault(ipa) => {
            let allowed = w.own.host_may_access(ipa);
            let moved_by_teardown = matches!(
                w.own.page_state(ipa),
                Some(PageState::PendingReclaim(d)) if w.own.vm_dying(d)
            );
            let action = w.step(|w| Ok(w.own.host_handle_fault(ipa))).unwrap();
            if moved_by_teardown {
                assert_eq!(action, FaultAction::RetryLater, "host fault at {ipa:#x}");
                assert_eq!(w.host_level(ipa), None);
            } else if allowed {
                assert_eq!(action, FaultAction::MapAndRetry, "host fault at {ipa:#x}");
                assert!(
                    w.host_level(ipa).is_some(),
                    "{ipa:#x} not mapped after the fault"
                );
            } else {
                assert_eq!(action, FaultAction::InjectAbort, "host fault at {ipa:#x}");
                assert_eq!(w.host_level(ipa), None);
            }
        }
        Op::ToggleActive(v) => {
            // A dying VM's vCPUs never run again (EL2 refuses VCPU_RUN for it).
            if let Some(g) = w.own.guest_stage2(vm(v)).filter(|_| !w.own.vm_dying(vm(v))) {
                if g.active() {
                    g.mark_inactive();
                } else {
                    g.mark_active();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..48), map_all in any::<bool>()) {
        let mut mem = Memory::new(FAKE_BYTES);
        let mut w = World::new(&mut mem);
        // The host stage-2 is live, as on the machine: every change must respect
        // break-before-make.
        w.own.host_stage2().mark_active();
        if map_all {
            w.step(|w| w.own.host_map_all()).unwrap();
        }
        // Start with two VMs so that guest operations have something to act on.
        for first in [4000, 4040] {
            let p = w.real_pfn(first);
            w.step(|w| w.own.vm_create(p, 16, &mut w.tlb)).unwrap();
        }
        for op in &ops {
            run(&mut w, op);
        }
        finish_teardowns(&mut w);
    }
}
