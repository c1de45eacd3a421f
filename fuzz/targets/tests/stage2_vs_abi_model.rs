//! stage2's ownership record against the conformance suite's reference model of the ABI
//! (`tests/conformance/lib`, written from `docs/abi.md` alone), for the operations the two
//! share: random sequences of host and guest memory calls on overlapping pages and frames,
//! run on both; after each step the outcome and every page and guest-frame state must agree.
//!
//! The two speak at different levels, and the test maps one onto the other:
//! - a VM is `VM_CREATE` + a first `VM_TOPUP` in the ABI and one `vm_create` with its pool
//!   pages in stage2; handles of destroyed VMs are not used (telling a dead handle from a
//!   reused slot is the payload's job, above stage2);
//! - stage2 answers `Busy` where the ABI says `DENIED` for a guest frame that is already
//!   mapped (VM_DONATE row 8);
//! - pages stay inside RAM banks (outside RAM stage2 says `Range`, the ABI `DENIED` for
//!   NO_RAM pages) and guest frames inside a 40-bit IPA space;
//! - "a vCPU runs" is `mark_active` in stage2 and `set_running` in the model;
//! - each VM's pool is large enough that the model knows NO_MEMORY cannot happen (7.3); a
//!   sequence that would leave what the model can predict ends there.

use conformance::model::{HostAnswer, Model, PfnRange, World as AbiWorld};
use conformance::states::{IpaState, PageState as AbiState};
use fuzz_targets::ownership::world::{CARVE_OUT, Memory, QEMU_MMIO, World};
use hvc_abi::{Error, FunctionId};
use proptest::prelude::*;
use stage2::{Borrower, Owner, OwnershipError, PAGE_SIZE, PageState, VmId};
use std::collections::BTreeMap;

/// Pool pages each VM gets: room for the root and 8 pages for each of 11 mapping calls
/// (the model is sure of NO_MEMORY's absence that long); four pools fill the real bank
/// after the 128 pages the calls use.
const POOL_PAGES: usize = 96;
/// Live VMs at most (stage2's test world has four slots).
const MAX_LIVE: usize = 4;
/// Guest frames the calls use (and the comparison checks).
const GFN_WINDOW: u64 = 0x240;

#[derive(Clone, Copy, Debug)]
enum Op {
    Create,
    ShareHyp(Page),
    UnshareHyp(Page),
    Donate(usize, Page, u64, u64),
    MemShare(usize, Frame, u64),
    MemUnshare(usize, Frame, u64),
    MemRelinquish(usize, Frame, u64),
    Destroy(usize),
    Reclaim(Page, u64),
    ToggleRunning(usize),
}

/// A page near the carve-out's edges (fake RAM) or in the real bank, as an offset that the
/// test turns into a pfn whose range stays inside its bank.
#[derive(Clone, Copy, Debug)]
enum Page {
    BelowCarveOut(u64),
    AboveCarveOut(u64),
    Real(u64),
    /// The `n`-th (modulo) page of those windows that is neither HOST nor HYP, when the
    /// step runs: shared, lent, donated, pool or reclaimable pages, so that unsharing and
    /// reclaiming have something to act on.
    Taken(usize),
}

fn page() -> impl Strategy<Value = Page> {
    prop_oneof![
        (0u64..24).prop_map(Page::BelowCarveOut),
        (0u64..24).prop_map(Page::AboveCarveOut),
        (0u64..64).prop_map(Page::Real),
        any::<usize>().prop_map(Page::Taken),
    ]
}

/// Page counts. Above 512 is left out: the ABI decoder answers RANGE before stage2 (whose
/// own answer is INVALID_PARAMETER) is asked.
fn nr() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 1u64..5, 1 => Just(0), 1 => 5u64..40]
}

/// Page counts for calls on mapped frames: mostly one page, so that picked frames succeed.
fn frame_nr() -> impl Strategy<Value = u64> {
    prop_oneof![6 => Just(1u64), 2 => 2u64..4, 1 => Just(0), 1 => 5u64..40]
}

fn gfn() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..16, 1 => 0x1f8u64..0x208]
}

/// A guest frame for calls on mapped frames: given, or picked when the step runs among the
/// frames the VM has mapped (so that calls reach their success and DENIED rows, not only
/// NOT_FOUND).
#[derive(Clone, Copy, Debug)]
enum Frame {
    Raw(u64),
    Pick(usize),
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![1 => gfn().prop_map(Frame::Raw), 3 => any::<usize>().prop_map(Frame::Pick)]
}

fn op() -> impl Strategy<Value = Op> {
    let vm = 0usize..MAX_LIVE;
    prop_oneof![
        2 => Just(Op::Create),
        2 => page().prop_map(Op::ShareHyp),
        2 => page().prop_map(Op::UnshareHyp),
        6 => (vm.clone(), page(), gfn(), nr()).prop_map(|(v, p, g, n)| Op::Donate(v, p, g, n)),
        4 => (vm.clone(), frame(), frame_nr()).prop_map(|(v, g, n)| Op::MemShare(v, g, n)),
        4 => (vm.clone(), frame(), frame_nr()).prop_map(|(v, g, n)| Op::MemUnshare(v, g, n)),
        4 => (vm.clone(), frame(), frame_nr()).prop_map(|(v, g, n)| Op::MemRelinquish(v, g, n)),
        1 => vm.clone().prop_map(Op::Destroy),
        2 => (page(), nr()).prop_map(|(p, n)| Op::Reclaim(p, n)),
        2 => vm.prop_map(Op::ToggleRunning),
    ]
}

/// A VM on both sides.
#[derive(Clone, Copy, Debug)]
struct Vm {
    handle: u64,
    id: VmId,
}

struct Pair<'m> {
    w: World<'m>,
    model: Model,
    vms: Vec<Vm>,
    /// The real bank's first pfn and page count.
    real: (u64, u64),
    /// Next real page for a pool.
    next_pool: u64,
}

fn pfn_of(pa: usize) -> u64 {
    (pa / PAGE_SIZE) as u64
}

/// stage2's state in the ABI's words (docs/abi.md 7.1).
fn abi_state(s: PageState) -> AbiState {
    match s {
        PageState::Owned(Owner::Host) => AbiState::Host,
        PageState::Owned(Owner::Hyp) => AbiState::Hyp,
        PageState::Owned(Owner::Guest(_)) => AbiState::GuestOwned,
        PageState::SharedWithHost(_) => AbiState::GuestShared,
        PageState::HostSharedWith(Borrower::Hyp) => AbiState::SharedHyp,
        PageState::HypPool(_) => AbiState::VmPool,
        PageState::PendingReclaim(_) => AbiState::Reclaimable,
        // EL2's while it zeroes the page outside the lock, inside one call; never seen
        // between calls (this test's sanitizer does not defer).
        PageState::Sanitizing | PageState::ZeroingForGuest(_) => AbiState::Hyp,
    }
}

/// stage2's error in the ABI's words.
fn abi_error(e: OwnershipError) -> Error {
    match e {
        OwnershipError::InvalidParameter => Error::InvalidParameter,
        OwnershipError::Denied => Error::Denied,
        OwnershipError::Busy => Error::Busy,
        OwnershipError::NoMemory => Error::NoMemory,
        OwnershipError::NotFound => Error::NotFound,
        OwnershipError::Range => Error::Range,
    }
}

fn x0_of(r: Result<(), OwnershipError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => abi_error(e).as_x0(),
    }
}

fn regs(id: FunctionId, args: &[u64]) -> [u64; 8] {
    let mut r = [0; 8];
    r[0] = id.to_x0();
    r[1..=args.len()].copy_from_slice(args);
    r
}

/// Why a sequence stops early: the model cannot say what the ABI answers.
struct Unmodelled;

impl<'m> Pair<'m> {
    fn new(mem: &'m mut Memory) -> Self {
        let w = World::new(mem);
        let banks: Vec<(usize, usize)> = w.own.ram_banks().collect();
        let range = |(s, e): (usize, usize)| PfnRange {
            start: pfn_of(s),
            end: pfn_of(e),
        };
        let mut world = AbiWorld::default();
        for (slot, &bank) in world.ram.iter_mut().zip(&banks) {
            *slot = range(bank);
        }
        world.hyp[0] = range(CARVE_OUT);
        for (slot, &m) in world.mmio.iter_mut().zip(&QEMU_MMIO) {
            *slot = range(m);
        }
        let real = (pfn_of(w.real.0), pfn_of(w.real.1 - w.real.0));
        Pair {
            w,
            model: Model::new(world),
            vms: Vec::new(),
            real,
            next_pool: 128,
        }
    }

    fn pfn(&self, p: Page, nr: u64) -> u64 {
        let n = nr.clamp(1, 64);
        match p {
            Page::BelowCarveOut(o) => pfn_of(CARVE_OUT.0) - 24 + o.min(24 - 1),
            Page::AboveCarveOut(o) => pfn_of(CARVE_OUT.1) - 8 + o,
            // Real pages 0..128 are for calls, the rest for pools; a range may run into
            // the pool pages but never out of the bank.
            Page::Real(o) => self.real.0 + o.min(128 - n),
            Page::Taken(sel) => {
                let window = (pfn_of(CARVE_OUT.0) - 24..pfn_of(CARVE_OUT.0))
                    .chain(pfn_of(CARVE_OUT.1)..pfn_of(CARVE_OUT.1) + 32)
                    .chain(self.real.0..self.real.0 + 128);
                let taken: Vec<u64> = window
                    .filter(|&p| {
                        !matches!(self.model.page_state(p), AbiState::Host | AbiState::Hyp)
                    })
                    .collect();
                match taken.get(sel % taken.len().max(1)) {
                    // Keep the range inside the bank: at most 64 pages past the window.
                    Some(&p) => p,
                    None => self.real.0 + (sel % 64) as u64,
                }
            }
        }
    }

    fn host(&mut self, call: [u64; 8]) -> Result<u64, Unmodelled> {
        match self.model.host_hvc(call) {
            HostAnswer::Regs(r) => Ok(r[0]),
            HostAnswer::Unmodelled(_) => Err(Unmodelled),
            other => panic!("{call:x?}: the model answers {other:?}"),
        }
    }

    fn guest(&mut self, vm: Vm, call: [u64; 8]) -> Result<u64, Unmodelled> {
        let answer = self
            .model
            .guest_hvc(vm.handle, 0, call, 0)
            .ok_or(Unmodelled)?;
        Ok(answer.ret.map_or(0, |r| r[0]))
    }

    /// The frame `f` names in `vm`: given, or the `sel`-th (modulo) mapped one.
    fn gfn(&self, vm: Vm, f: Frame) -> u64 {
        match f {
            Frame::Raw(g) => g,
            Frame::Pick(sel) => {
                let mapped: Vec<u64> = (0..GFN_WINDOW)
                    .filter(|&g| {
                        self.model
                            .ipa_state(vm.handle, g)
                            .is_some_and(|s| s != IpaState::Unmapped)
                    })
                    .collect();
                if mapped.is_empty() {
                    (sel % 16) as u64
                } else {
                    mapped[sel % mapped.len()]
                }
            }
        }
    }

    fn vm(&self, i: usize) -> Option<Vm> {
        self.vms.get(i % self.vms.len().max(1)).copied()
    }

    /// Runs `op` on both sides; compares the outcomes.
    fn run(&mut self, op: Op) -> Result<(), Unmodelled> {
        use FunctionId as F;
        let (want, got, what) = match op {
            Op::Create => {
                if self.vms.len() >= MAX_LIVE || self.next_pool + POOL_PAGES as u64 > self.real.1 {
                    return Ok(());
                }
                let pfn = self.real.0 + self.next_pool;
                self.next_pool += POOL_PAGES as u64;
                let r = self.model.host_hvc(regs(F::VM_CREATE, &[1, 40]));
                let HostAnswer::Regs([0, handle, ..]) = r else {
                    panic!("VM_CREATE: the model answers {r:?}");
                };
                let topup = self.host(regs(F::VM_TOPUP, &[handle, pfn, POOL_PAGES as u64]))?;
                assert_eq!(topup, 0, "VM_TOPUP of fresh real pages");
                let vcpu = self.host(regs(F::VCPU_CREATE, &[handle, 0, 0, 0]))?;
                assert_eq!(vcpu, 0, "VCPU_CREATE");
                let id = self
                    .w
                    .step(|w| w.own.vm_create(pfn as usize, POOL_PAGES, &mut w.tlb))
                    .expect("stage2 creates a VM on fresh real pages");
                self.vms.push(Vm { handle, id });
                return Ok(());
            }
            Op::ShareHyp(p) => {
                let pfn = self.pfn(p, 1);
                let want = self.host(regs(F::HOST_SHARE_HYP, &[pfn]))?;
                let got = self.w.step(|w| w.own.host_share_hyp(pfn as usize, 1));
                (want, x0_of(got), "HOST_SHARE_HYP")
            }
            Op::UnshareHyp(p) => {
                let pfn = self.pfn(p, 1);
                let want = self.host(regs(F::HOST_UNSHARE_HYP, &[pfn]))?;
                let got = self.w.step(|w| w.own.host_unshare_hyp(pfn as usize, 1));
                (want, x0_of(got), "HOST_UNSHARE_HYP")
            }
            Op::Donate(v, p, gfn, nr) => {
                let Some(vm) = self.vm(v) else { return Ok(()) };
                let pfn = self.pfn(p, nr);
                let id = F::VM_DONATE;
                let want = self.host(regs(id, &[vm.handle, pfn, gfn, nr]))?;
                let (p, g, n) = (pfn as usize, gfn as usize, nr as usize);
                let got = self
                    .w
                    .step(|w| w.own.host_donate_guest(vm.id, p, g, n, &mut w.tlb));
                // A mapped frame: Busy in stage2, DENIED in the ABI.
                let got = got.map_err(|e| match e {
                    OwnershipError::Busy => OwnershipError::Denied,
                    e => e,
                });
                (want, x0_of(got), id.name().unwrap_or("?"))
            }
            Op::MemShare(v, f, nr) | Op::MemUnshare(v, f, nr) | Op::MemRelinquish(v, f, nr) => {
                let Some(vm) = self.vm(v) else { return Ok(()) };
                let gfn = self.gfn(vm, f);
                let id = match op {
                    Op::MemShare(..) => F::MEM_SHARE,
                    Op::MemUnshare(..) => F::MEM_UNSHARE,
                    _ => F::MEM_RELINQUISH,
                };
                let want = self.guest(vm, regs(id, &[gfn << 12, nr]))?;
                let (g, n) = (gfn as usize, nr as usize);
                let got = self.w.step(|w| match id {
                    F::MEM_SHARE => w.own.guest_share_host(vm.id, g, n),
                    F::MEM_UNSHARE => w.own.guest_unshare_host(vm.id, g, n, &mut w.tlb),
                    _ => w.own.guest_relinquish(vm.id, g, n, &mut w.tlb, &mut w.san),
                });
                (want, x0_of(got), id.name().unwrap_or("?"))
            }
            Op::Destroy(v) => {
                let Some(vm) = self.vm(v) else { return Ok(()) };
                let want = self.host(regs(F::VM_DESTROY, &[vm.handle]))?;
                let got = self.w.step(|w| w.own.vm_teardown(vm.id, &mut w.tlb));
                if got.is_ok() {
                    self.vms.retain(|x| x.handle != vm.handle);
                }
                (want, x0_of(got), "VM_DESTROY")
            }
            Op::Reclaim(p, nr) => {
                let pfn = self.pfn(p, nr);
                let want = self.host(regs(F::VM_RECLAIM, &[pfn, nr]))?;
                let (p, n) = (pfn as usize, nr as usize);
                let got = self.w.step(|w| w.own.host_reclaim(p, n, &mut w.san));
                (want, x0_of(got), "VM_RECLAIM")
            }
            Op::ToggleRunning(v) => {
                let Some(vm) = self.vm(v) else { return Ok(()) };
                let Some(table) = self.w.own.guest_stage2(vm.id) else {
                    panic!("{vm:?} is live in the test but not in stage2");
                };
                let running = !table.active();
                if running {
                    table.mark_active();
                } else {
                    table.mark_inactive();
                }
                assert!(self.model.set_running(vm.handle, 0, running));
                return Ok(());
            }
        };
        if std::env::var_os("FUZZ_TARGETS_TALLY").is_some() {
            eprintln!("TALLY {what} {:?}", Error::from_i64(got as i64));
        }
        assert_eq!(
            got,
            want,
            "{op:x?} ({what}): stage2 answers {:?}, the model {:?}",
            Error::from_i64(got as i64),
            Error::from_i64(want as i64)
        );
        Ok(())
    }

    /// Every page of both banks and every frame of the window of every live VM are in
    /// the same state on both sides.
    fn compare(&self) {
        for pa in self.w.ram_pages() {
            let pfn = pfn_of(pa);
            let got = self.w.own.page_state(pa).map(abi_state);
            assert_eq!(
                got,
                Some(self.model.page_state(pfn)),
                "page {pfn:#x}: stage2 and the ABI model disagree"
            );
        }
        let dumps = self.w.dumps();
        for vm in &self.vms {
            let table = dumps
                .iter()
                .find(|d| d.vmid == vm.id.get())
                .expect("a live VM has a stage-2");
            let mapped: BTreeMap<u64, usize> = table
                .pages()
                .into_iter()
                .map(|(ipa, pa)| (pfn_of(ipa), pa))
                .collect();
            for gfn in 0..GFN_WINDOW {
                let got = match mapped.get(&gfn) {
                    None => IpaState::Unmapped,
                    Some(&pa) => match self.w.own.page_state(pa) {
                        Some(PageState::Owned(Owner::Guest(_))) => IpaState::GuestOwned,
                        Some(PageState::SharedWithHost(_)) => IpaState::GuestShared,
                        other => panic!("{vm:?} maps gfn {gfn:#x} to a page in state {other:?}"),
                    },
                };
                assert_eq!(
                    Some(got),
                    self.model.ipa_state(vm.handle, gfn),
                    "{vm:?} gfn {gfn:#x}: stage2 and the ABI model disagree"
                );
            }
        }
    }
}

impl Drop for Pair<'_> {
    fn drop(&mut self) {
        // The world deactivates the host table; guest tables marked running here too.
        for vm in &self.vms {
            if let Some(t) = self.w.own.guest_stage2(vm.id) {
                while t.active() {
                    t.mark_inactive();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 1000, ..ProptestConfig::default() })]

    #[test]
    fn stage2_agrees_with_the_abi_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut mem = Memory::new();
        let mut pair = Pair::new(&mut mem);
        pair.w.own.host_stage2().mark_active();
        for _ in 0..2 {
            pair.run(Op::Create).ok();
        }
        pair.compare();
        for op in ops {
            if pair.run(op).is_err() {
                break;
            }
            pair.compare();
        }
    }
}
