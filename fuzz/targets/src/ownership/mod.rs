//! The `ownership_ops` target: the input is a sequence of calls from every component (host,
//! EL2, guests) on `stage2::Ownership`, on overlapping ranges; each call runs through
//! [`World::step`] (I1-I7 checked on the real tables around it) and on the [`Model`], and
//! the two must agree on the outcome and on every page state and guest mapping afterwards.
//!
//! Input layout: byte 0 holds flags (bit 0: map all host memory up front; bit 1: start
//! without the two VMs every run otherwise starts with); then one call after another (see
//! [`ops`]), at most [`MAX_CALLS`]. Missing bytes read as zero.

pub mod model;
pub mod ops;
pub mod world;

use crate::bytes::Bytes;
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use model::{Answer, Call, Model};
use stage2::{FaultAction, OwnershipError, PAGE_SIZE, PageState, VmId};
use std::collections::BTreeMap;
use std::vec::Vec;
use world::{Memory, World};

/// Most calls one input runs (more bytes are ignored).
pub const MAX_CALLS: usize = 64;

/// Runs the calls `data` describes; panics on the first disagreement or broken invariant.
pub fn ownership_ops(data: &[u8]) {
    let mut b = Bytes::new(data);
    let mut mem = Memory::new();
    let mut w = World::new(&mut mem);
    let banks: Vec<(usize, usize)> = w.own.ram_banks().collect();
    let mut model = Model::new(&banks);
    let decoder = ops::Decoder {
        real: w.real,
        banks: [banks[0], banks[1]],
    };
    // The host stage-2 is live, as on the machine: every change must respect
    // break-before-make.
    w.own.host_stage2().mark_active();
    w.check_all();
    compare(&w, &model);
    let flags = b.u8();
    if flags & 1 != 0 {
        exec(&mut w, &mut model, Call::HostMapAll);
    }
    if flags & 2 == 0 {
        // Two VMs, so that guest calls have something to act on.
        for first in [400, 450] {
            let pfn = w.real.0 / PAGE_SIZE + first;
            exec(&mut w, &mut model, Call::VmCreate { pfn, nr: 16 });
        }
    }
    for _ in 0..MAX_CALLS {
        if b.is_empty() {
            break;
        }
        let call = decoder.call(&mut b, &model);
        exec(&mut w, &mut model, call);
    }
}

fn vm(n: u16) -> VmId {
    VmId::new(n).expect("the decoder only produces ids VmId accepts")
}

/// Runs `call` on the real record (checked by `step`) and on the model; requires the same
/// outcome, then the same state.
fn exec(w: &mut World<'_>, model: &mut Model, call: Call) {
    let predicted = model.call(call);
    let free_before = pool_free(w, call.pool_vm());
    let actual = run(w, call);
    tally(&call, &actual);
    check_pool_use(&call, &actual, free_before, pool_free(w, call.pool_vm()));
    match (predicted, actual) {
        (Ok((want, next)), Ok(got)) => {
            assert_eq!(
                got, want,
                "{call:x?}: stage2 and the model answer differently"
            );
            *model = next;
        }
        (Ok(_), Err(OwnershipError::NoMemory)) if call.may_need_tables() => {}
        (Err(want), Err(got)) if want == got => {}
        (want, got) => panic!(
            "{call:x?}: the model says {:?}, stage2 says {got:?}",
            want.map(|(a, _)| a)
        ),
    }
    compare(w, model);
}

/// Free pages in the pool of VM `v`, if it exists.
fn pool_free(w: &World<'_>, v: Option<u16>) -> Option<usize> {
    w.own.guest_stage2(vm(v?)).map(|g| g.pool_free_pages())
}

/// docs/abi.md 7.3: one call never takes more than `MAX_POOL_PAGES_PER_CALL` pool pages, so
/// `NoMemory` only ever comes with fewer free pages than that.
fn check_pool_use(
    call: &Call,
    outcome: &Result<Answer, OwnershipError>,
    before: Option<usize>,
    after: Option<usize>,
) {
    let (Some(before), Some(after)) = (before, after) else {
        return;
    };
    let most = MAX_POOL_PAGES_PER_CALL as usize;
    match outcome {
        Err(OwnershipError::NoMemory) => assert!(
            before < most,
            "{call:x?}: NoMemory with {before} free pool pages (a call takes at most {most})"
        ),
        Ok(_) => assert!(
            before - after <= most,
            "{call:x?}: took {} pool pages (at most {most})",
            before - after
        ),
        Err(_) => {}
    }
}

/// With `FUZZ_TARGETS_TALLY` set, prints each call's name and outcome, to see that inputs
/// reach successful calls and not only refusals; with `FUZZ_TARGETS_TRACE` set, each call
/// in full, to read what a failing input does.
fn tally(call: &Call, outcome: &Result<Answer, OwnershipError>) {
    if std::env::var_os("FUZZ_TARGETS_TRACE").is_some() {
        std::eprintln!("TRACE {call:x?} -> {outcome:?}");
    }
    if std::env::var_os("FUZZ_TARGETS_TALLY").is_some() {
        let name = std::format!("{call:?}");
        let name = name.split([' ', '{']).next().unwrap_or("");
        std::eprintln!("TALLY {name} {:?}", outcome.as_ref().err());
    }
}

/// Runs `call` on the real record.
fn run(w: &mut World<'_>, call: Call) -> Result<Answer, OwnershipError> {
    let done = |r: Result<(), OwnershipError>| r.map(|()| Answer::Done);
    match call {
        Call::HostShareHyp { pfn, nr } => done(w.step(|w| w.own.host_share_hyp(pfn, nr))),
        Call::HostUnshareHyp { pfn, nr } => done(w.step(|w| w.own.host_unshare_hyp(pfn, nr))),
        Call::HostDonateHyp { pfn, nr } => {
            done(w.step(|w| w.own.host_donate_hyp(pfn, nr, &mut w.tlb)))
        }
        Call::HypDonateHost { pfn, nr } => done(w.step(|w| w.own.hyp_donate_host(pfn, nr))),
        Call::VmCreate { pfn, nr } => w
            .step(|w| w.own.vm_create(pfn, nr, &mut w.tlb))
            .map(|id| Answer::Vm(id.get())),
        Call::VmTopup { vm: v, pfn, nr } => {
            done(w.step(|w| w.own.vm_topup(vm(v), pfn, nr, &mut w.tlb)))
        }
        Call::HostDonateGuest {
            vm: v,
            pfn,
            gfn,
            nr,
        } => done(w.step(|w| w.own.host_donate_guest(vm(v), pfn, gfn, nr, &mut w.tlb))),
        Call::HostDonateGuestZeroed {
            vm: v,
            pfn,
            gfn,
            nr,
        } => done(w.step(|w| {
            w.own
                .host_donate_guest_zeroed(vm(v), pfn, gfn, nr, &mut w.tlb, &mut w.san)
        })),
        Call::GuestShareHost { vm: v, gfn, nr } => {
            done(w.step(|w| w.own.guest_share_host(vm(v), gfn, nr)))
        }
        Call::GuestUnshareHost { vm: v, gfn, nr } => {
            done(w.step(|w| w.own.guest_unshare_host(vm(v), gfn, nr, &mut w.tlb)))
        }
        Call::GuestRelinquish { vm: v, gfn, nr } => done(w.step(|w| {
            w.own
                .guest_relinquish(vm(v), gfn, nr, &mut w.tlb, &mut w.san)
        })),
        Call::VmTeardown { vm: v } => done(w.step(|w| w.own.vm_teardown(vm(v), &mut w.tlb))),
        Call::HostReclaim { pfn, nr } => done(w.step(|w| w.own.host_reclaim(pfn, nr, &mut w.san))),
        Call::HostFault { ipa } => {
            let action = w.step(|w| Ok(w.own.host_handle_fault(ipa)))?;
            let mapped = w.own.host_stage2().translate(ipa).is_some();
            match action {
                FaultAction::MapAndRetry => {
                    assert!(
                        mapped,
                        "host fault at {ipa:#x}: retry, but nothing is mapped"
                    );
                    Ok(Answer::HostMayAccess(true))
                }
                FaultAction::InjectAbort => {
                    assert!(!mapped, "host fault at {ipa:#x}: abort, but it is mapped");
                    Ok(Answer::HostMayAccess(false))
                }
                FaultAction::PoolExhausted => {
                    panic!("host fault at {ipa:#x}: the host pool (sized for all RAM) ran dry")
                }
                FaultAction::RetryLater => {
                    panic!("host fault at {ipa:#x}: retry later, but no teardown is under way")
                }
            }
        }
        Call::ToggleActive { vm: v } => {
            if let Some(g) = w.own.guest_stage2(vm(v)) {
                if g.active() {
                    g.mark_inactive();
                } else {
                    g.mark_active();
                }
            }
            Ok(Answer::Done)
        }
        Call::HostMapAll => done(w.step(|w| w.own.host_map_all())),
    }
}

/// The real record, VMs and guest mappings equal the model's.
fn compare(w: &World<'_>, model: &Model) {
    for (pa, &want) in w.ram_pages().zip(&model.record) {
        let got = w.own.page_state(pa);
        assert_eq!(
            got,
            Some(want),
            "page {pa:#x}: stage2 and the model disagree"
        );
    }
    let live: Vec<u16> = w.own.vms().map(VmId::get).collect();
    let want: Vec<u16> = (1..)
        .zip(&model.guests)
        .filter(|(_, g)| g.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(live, want, "live VMs differ");
    // The guest tables as their descriptors say (not through `Stage2Table`'s walk, which
    // `check_invariants` uses).
    let dumps = w.dumps();
    for (id, guest) in (1..).zip(&model.guests) {
        let Some(guest) = guest else { continue };
        let Some(table) = dumps.iter().find(|d| d.vmid == id) else {
            continue;
        };
        let mapped = table.pages();
        let mut pages: Vec<usize> = mapped.iter().map(|&(_, pa)| pa).collect();
        pages.sort_unstable();
        if let Some(twice) = pages.windows(2).find(|p| p[0] == p[1]) {
            panic!("I2: VM {id} maps {:#x} twice", twice[0]);
        }
        let map: BTreeMap<usize, usize> = mapped
            .into_iter()
            .map(|(ipa, pa)| (ipa / PAGE_SIZE, pa))
            .collect();
        assert_eq!(
            map, guest.map,
            "VM {id}: guest stage-2 and the model's map differ"
        );
        assert_eq!(table.active(), guest.active, "VM {id}: active flag");
        let pool = model
            .record
            .iter()
            .filter(|&&s| s == PageState::HypPool(vm(id)))
            .count();
        assert_eq!(
            table.pool_total(),
            pool,
            "VM {id}: pool pages and HypPool pages differ in number"
        );
    }
}
