//! The ownership record: who owns each page of RAM, who else may use it, and the transitions
//! that change it together with the stage-2 tables of the host and the guests.
//!
//! # Invariants
//!
//! Every call keeps these true; the tests check them after every step by walking the real
//! tables ([`Ownership::check_invariants`] checks I1-I4 in one pass).
//!
//! - **I1** A page is mapped in the host stage-2 only if the host owns it or a guest shared it
//!   with the host. With a [`HostDma`] attached, the same holds for DMA, exactly: a RAM page
//!   is mapped for the host's devices if and only if the host may access it (devices cannot
//!   fault and retry, so the DMA view is never lazy). Conversely, such a page is either mapped or is mapped by
//!   [`Ownership::host_handle_fault`] on the host's next access (the host stage-2 is filled
//!   lazily, pKVM-style: removing a page from the host removes the whole block around it, and
//!   the host's other pages in that block come back, with the largest block ownership allows,
//!   when it touches them).
//! - **I2** A page is mapped in a guest's stage-2 only if that guest owns it (exclusively,
//!   or shared with the host); a page a guest owns is mapped in its stage-2 exactly once. A
//!   guest never borrows a host page (docs/abi.md 4.6).
//! - **I3** Every page has exactly one owner; a borrower exists only while the owner's state is
//!   shared-owned (guaranteed by the entry encoding, see the `record` module).
//! - **I4** EL2's own pages (image, stacks, pools, page tables, VM state, pages held for
//!   reclaim) are in no host or guest stage-2: they are owned by hyp, which neither maps.
//! - **I5** A page that leaves a guest (relinquish, teardown then reclaim) is zeroed and
//!   cleaned to the point of coherency ([`PageSanitizer`]) before the host may map it again.
//! - **I6** When a call that removes a mapping returns, no CPU can still use the old
//!   translation: it called [`TlbMaintenance::invalidate_ipa`] for every removed leaf, then
//!   [`TlbMaintenance::invalidate_stage1_for_vmid`] once, with the VMID of the changed table.
//!   For DMA: it called [`HostDma::revoke`] for every page that left the host (whose
//!   contract is that the IOMMU's invalidation has completed when it returns), before the
//!   page was handed to anyone else.
//! - **I7** All or nothing: a call that fails, for any reason including lack of page-table
//!   memory, changes nothing. Each transition checks every page and reserves (counts) the
//!   table pages it needs before it changes anything.
//!
//! # The record
//!
//! One `u16` per 4 KiB page of each RAM bank, in a flat array indexed by `pfn - bank base`,
//! in memory EL2 carves out and hands in ([`metadata_bytes`]): 512 KiB per GiB of RAM
//! (pKVM's `hyp_page` takes 8 bytes per page). The host's state is not kept in its stage-2
//! descriptors, so the host stage-2 keeps its blocks.
//!
//! # Order inside a transition
//!
//! Check everything (arguments, then every page's state, then table memory), then: remove
//! mappings that must go (with the TLB sequence), zero pages that leave a guest, update the
//! record, add new mappings. A page is never reachable by two components that should not
//! share it, not even for the duration of a call.
//!
//! Errors are checked in this order: `InvalidParameter` (page count), `Range` (addresses),
//! `NotFound` (VM), then page states (`Denied`, `Busy`, `NotFound`), then `NoMemory`.
//!
//! # Concurrency and lifetime
//!
//! The structure is not synchronised: EL2 keeps it behind one lock, taken by every hypercall
//! and host stage-2 fault that uses it. It is never dropped while the host stage-2 is marked
//! active (aarch64-paging panics on dropping a live table).
//!
//! # Files
//!
//! `record` (the entry encoding), `host_hyp` (host <-> EL2), `vm` (create, top up, tear down,
//! reclaim), `host_guest` (host <-> guest), `host_fault` (lazy host stage-2), `check`
//! (invariant checker).

mod check;
#[cfg(test)]
mod deferred_tests;
#[cfg(test)]
mod dma_tests;
mod host_fault;
mod host_guest;
mod host_hyp;
#[cfg(test)]
mod proptests;
mod record;
mod reset;
#[cfg(test)]
mod teardown_tests;
#[cfg(test)]
mod tests;
mod vm;

pub use check::Violation;
pub use host_fault::host_fault_is_fixable_by_mapping;
pub use record::{Borrower, Owner, OwnerState, PageState, VmId};
pub use vm::{TEARDOWN_LOOKUPS_PER_STEP, TEARDOWN_PAGES_PER_STEP, TeardownProgress};

use crate::host_dma::HostDma;
use crate::pgtable::{Stage2Config, Stage2Error, Stage2Table};
use crate::pool::{PAGE_SIZE, PagePool};
use crate::tlb::TlbMaintenance;
use core::fmt;

/// Most pages one call may move.
pub const MAX_PAGES_PER_CALL: usize = 512;
/// Most RAM banks the record covers.
pub const MAX_RAM_BANKS: usize = 8;
/// Most fixed EL2 ranges (image, stacks, pools, record) given at start-up.
pub const MAX_HYP_RANGES: usize = 16;

/// Why a transition was refused. Nothing was changed. The variants map one to one onto the
/// hypercall ABI's errors of the same names.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum OwnershipError {
    /// A malformed argument: page count 0 or above [`MAX_PAGES_PER_CALL`], bad start-up ranges.
    InvalidParameter,
    /// A page is not in the state the transition needs (wrong owner or sharing state).
    Denied,
    /// The target is in use: the guest address is already mapped, or the VM is running.
    Busy,
    /// Not enough memory: a VM's page-table pool is too small, no free VM slot, record too
    /// small.
    NoMemory,
    /// No such VM, or a guest address that is not mapped.
    NotFound,
    /// The pages wrap around, leave RAM (or a single RAM bank), or leave the IPA space.
    Range,
}

impl fmt::Display for OwnershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OwnershipError::InvalidParameter => "invalid parameter",
            OwnershipError::Denied => "page state does not allow this",
            OwnershipError::Busy => "busy",
            OwnershipError::NoMemory => "not enough memory",
            OwnershipError::NotFound => "not found",
            OwnershipError::Range => "address range outside RAM or IPA space",
        })
    }
}

/// A stage-2 error inside the commit phase, after every check passed. It cannot happen (the
/// checks cover every way a change can fail); it is reported rather than ignored.
fn commit_error(e: Stage2Error) -> OwnershipError {
    match e {
        Stage2Error::NoMemory { .. } => OwnershipError::NoMemory,
        Stage2Error::InvalidRange { .. } | Stage2Error::OutOfRange { .. } => OwnershipError::Range,
        Stage2Error::BreakBeforeMake { .. } | Stage2Error::Map(_) => OwnershipError::Busy,
    }
}

/// What to do after a host stage-2 fault.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FaultAction {
    /// The host may access the address; it is mapped now: return to the faulting instruction.
    MapAndRetry,
    /// The host may not access the address: inject an abort into the host.
    InjectAbort,
    /// The host may access the address but the host stage-2 pool is empty: EL2 sized the pool
    /// wrongly. Nothing was mapped.
    PoolExhausted,
    /// The address is a page a VM's teardown has already moved while the teardown is still
    /// under way (another CPU is in VM_DESTROY): nothing was mapped; return to the faulting
    /// instruction, which faults again until the teardown has finished and the answer is
    /// `InjectAbort`. So no host access sees a teardown half done either.
    RetryLater,
}

/// Zeroes a page and cleans it to the point of coherency, so that neither the cache nor memory
/// keeps what a guest left there. Implemented by EL2 (`dc civac` over the page, `dsb`).
pub trait PageSanitizer {
    /// Zero and clean the 4 KiB page at `pa` (identity-mapped at EL2).
    fn zero_and_clean(&mut self, pa: usize);

    /// True if [`zero_and_clean`](Self::zero_and_clean) only notes the page and the caller
    /// zeroes it after releasing the memory lock, so that the lock is never held for the
    /// zeroing (up to 2 MiB per call). The transition then leaves the page
    /// [`PageState::Sanitizing`], which nobody maps and no call accepts, instead of handing
    /// it to the host; [`Ownership::sanitized_to_host`] hands it over once it is zeroed.
    fn defers(&self) -> bool {
        false
    }
}

/// Bytes of record for `ram_bytes` of RAM: 2 per 4 KiB page (512 KiB per GiB).
pub const fn metadata_bytes(ram_bytes: usize) -> usize {
    ram_bytes.div_ceil(PAGE_SIZE) * 2
}

/// Record entries (`u16`) needed for the RAM banks `ram`.
pub fn metadata_entries(ram: &[(usize, usize)]) -> usize {
    ram.iter()
        .map(|&(s, e)| e.saturating_sub(s) / PAGE_SIZE)
        .sum()
}

#[derive(Clone, Copy, Debug, Default)]
struct Bank {
    start: usize,
    end: usize,
    /// Index of the bank's first page in the record.
    first_entry: usize,
}

/// The ownership record of all RAM, the host stage-2 and the guests' stage-2 tables.
///
/// `MAX_VMS` guests (VMIDs 1..=`MAX_VMS`, at most 255 with 8-bit VMIDs) can exist at once.
pub struct Ownership<'m, const MAX_VMS: usize> {
    config: Stage2Config,
    banks: [Bank; MAX_RAM_BANKS],
    n_banks: usize,
    /// The host's MMIO ranges, in storage the caller sized: their number grows with the
    /// CPU count (one GIC redistributor SGI_base frame per CPU).
    mmio: &'m [(usize, usize)],
    hyp: [(usize, usize); MAX_HYP_RANGES],
    n_hyp: usize,
    meta: &'m mut [u16],
    host: Stage2Table,
    guests: [Option<Stage2Table>; MAX_VMS],
    /// Pages each guest slot has in `ZeroingForGuest`: a VM with donations in flight cannot
    /// be torn down (EL2 is still writing those pages).
    zeroing: [usize; MAX_VMS],
    /// The teardown under way of each dying VM (`vm_teardown_begin` .. its last step).
    dying: [Option<vm::Teardown>; MAX_VMS],
    /// How many of `dying` are `Some`: while none is, calls skip every dying check.
    n_dying: usize,
    /// Output addresses of the pages of a guest call, gathered before the guest mapping goes.
    scratch: [usize; MAX_PAGES_PER_CALL],
    /// Record indices of the pages in `scratch`, so that a transition updates each entry
    /// without searching the banks again.
    scratch_index: [usize; MAX_PAGES_PER_CALL],
    /// The host's DMA view (the SMMU), once attached.
    dma: Option<&'m mut (dyn HostDma + Send)>,
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

fn page_aligned_range(r: (usize, usize)) -> bool {
    r.0 < r.1 && r.0.is_multiple_of(PAGE_SIZE) && r.1.is_multiple_of(PAGE_SIZE)
}

impl<'m, const MAX_VMS: usize> Ownership<'m, MAX_VMS> {
    /// Sets up the record: all RAM owned by the host except the parts of `hyp` inside RAM,
    /// which EL2 owns for good; creates the (empty) host stage-2 from `host_pool`. Call
    /// [`host_map_all`](Self::host_map_all) to map the host's memory up front, or let
    /// [`host_handle_fault`](Self::host_handle_fault) map it on demand.
    ///
    /// `ram`: the RAM banks; `mmio`: device ranges the host may map; `hyp`: EL2's own ranges
    /// (image, stacks, pools, this record). All page-aligned, non-empty, inside the IPA space;
    /// banks and MMIO ranges do not overlap each other, EL2's ranges do not touch MMIO.
    ///
    /// # Errors
    ///
    /// `InvalidParameter` for malformed, overlapping or too many ranges; `Range` for ranges
    /// beyond the IPA space; `NoMemory` if `meta` has fewer than [`metadata_entries`] entries
    /// or `host_pool` has no page for the root table.
    ///
    /// # Safety
    ///
    /// Every RAM page must be mapped read-write at EL2 at its physical address (EL2 writes
    /// pages donated to it), `host_pool` must satisfy [`PagePool::new`]'s contract, and the
    /// ranges must describe the machine (RAM is RAM).
    pub unsafe fn new(
        config: &Stage2Config,
        host_pool: PagePool,
        ram: &[(usize, usize)],
        mmio: &'m [(usize, usize)],
        hyp: &[(usize, usize)],
        meta: &'m mut [u16],
    ) -> Result<Self, OwnershipError> {
        const { assert!(MAX_VMS >= 1 && MAX_VMS <= 255, "VMIDs are 8 bits") };
        use OwnershipError::*;
        if ram.is_empty() || ram.len() > MAX_RAM_BANKS || hyp.len() > MAX_HYP_RANGES {
            return Err(InvalidParameter);
        }
        for &r in ram.iter().chain(mmio).chain(hyp) {
            if !page_aligned_range(r) {
                return Err(InvalidParameter);
            }
            if r.1 > config.ipa_size() {
                return Err(Range);
            }
        }
        let devices_and_ram = || ram.iter().chain(mmio).enumerate();
        for (i, &a) in devices_and_ram() {
            if devices_and_ram().any(|(j, &b)| i != j && overlaps(a, b)) {
                return Err(InvalidParameter);
            }
        }
        if hyp.iter().any(|&h| mmio.iter().any(|&m| overlaps(h, m))) {
            return Err(InvalidParameter);
        }
        let entries = metadata_entries(ram);
        if meta.len() < entries || host_pool.free_pages() == 0 {
            return Err(NoMemory);
        }
        let host = Stage2Table::try_new(host_pool, config, 0).map_err(|_| NoMemory)?;
        let mut own = Ownership {
            config: *config,
            banks: [Bank::default(); MAX_RAM_BANKS],
            n_banks: ram.len(),
            mmio,
            hyp: [(0, 0); MAX_HYP_RANGES],
            n_hyp: hyp.len(),
            meta,
            host,
            guests: core::array::from_fn(|_| None),
            zeroing: [0; MAX_VMS],
            dying: [None; MAX_VMS],
            n_dying: 0,
            scratch: [0; MAX_PAGES_PER_CALL],
            scratch_index: [0; MAX_PAGES_PER_CALL],
            dma: None,
        };
        let mut first_entry = 0;
        for (bank, &(start, end)) in own.banks.iter_mut().zip(ram) {
            *bank = Bank {
                start,
                end,
                first_entry,
            };
            first_entry += (end - start) / PAGE_SIZE;
        }
        own.hyp[..hyp.len()].copy_from_slice(hyp);
        own.meta[..entries].fill(PageState::Owned(Owner::Host).encode());
        for &(hs, he) in hyp {
            for b in 0..own.n_banks {
                let bank = own.banks[b];
                let (s, e) = (hs.max(bank.start), he.min(bank.end));
                if s < e {
                    own.set_range(s, e, PageState::Owned(Owner::Hyp));
                }
            }
        }
        Ok(own)
    }

    /// The stage-2 configuration.
    pub fn config(&self) -> &Stage2Config {
        &self.config
    }

    /// The host stage-2 (VMID 0): load [`Stage2Table::vttbr`] and call
    /// [`Stage2Table::mark_active`] on each CPU that runs the host.
    pub fn host_stage2(&self) -> &Stage2Table {
        &self.host
    }

    /// Guest `vm`'s stage-2 (VMID `vm`), if the VM exists. Mark it active while a vCPU of the
    /// VM is loaded on some CPU: teardown is refused (Busy) while it is.
    pub fn guest_stage2(&self, vm: VmId) -> Option<&Stage2Table> {
        self.guests.get(usize::from(vm.get()) - 1)?.as_ref()
    }

    /// The VMs that exist.
    pub fn vms(&self) -> impl Iterator<Item = VmId> + '_ {
        self.guests
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_some())
            .filter_map(|(i, _)| VmId::new(i as u16 + 1))
    }

    /// The RAM banks as `(start, end)`.
    pub fn ram_banks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.banks[..self.n_banks].iter().map(|b| (b.start, b.end))
    }

    /// The host's MMIO ranges.
    pub fn mmio_ranges(&self) -> &[(usize, usize)] {
        self.mmio
    }

    /// EL2's fixed ranges given at start-up.
    pub fn hyp_ranges(&self) -> &[(usize, usize)] {
        &self.hyp[..self.n_hyp]
    }

    /// The record entry index of the page containing `pa`.
    fn entry_index(&self, pa: usize) -> Option<usize> {
        Self::entry_index_in(&self.banks[..self.n_banks], pa)
    }

    /// [`Self::entry_index`] over `banks` (the live ones), for loops that hold other
    /// fields of the record mutably.
    fn entry_index_in(banks: &[Bank], pa: usize) -> Option<usize> {
        banks
            .iter()
            .find(|b| b.start <= pa && pa < b.end)
            .map(|b| b.first_entry + (pa - b.start) / PAGE_SIZE)
    }

    fn state_at(&self, index: usize) -> PageState {
        // An entry no state encodes is never written; should one appear, treat the page as
        // EL2's, which nobody may map.
        PageState::decode(self.meta[index]).unwrap_or(PageState::Owned(Owner::Hyp))
    }

    /// Where in memory the record keeps the entry of the page containing `pa`; `None`
    /// outside RAM. Only test builds report it (an attacker's oracle, shortened).
    pub fn entry_address(&self, pa: usize) -> Option<usize> {
        self.entry_index(pa)
            .map(|i| self.meta.as_ptr() as usize + i * core::mem::size_of::<u16>())
    }

    /// What the record says about the page containing `pa`; `None` outside RAM.
    pub fn page_state(&self, pa: usize) -> Option<PageState> {
        self.entry_index(pa).map(|i| self.state_at(i))
    }

    /// Whether the host may access `pa` (RAM it owns or borrows, or one of its MMIO ranges).
    pub fn host_may_access(&self, pa: usize) -> bool {
        match self.page_state(pa) {
            Some(s) => s.host_may_access(),
            None => self.mmio_ranges().iter().any(|&(s, e)| s <= pa && pa < e),
        }
    }

    /// Whether the host has shared the page at `pa` with EL2 (host_share_hyp). This, and not
    /// ownership by EL2, is what EL2 must check before it reads or writes memory the host
    /// names in a call: otherwise the host could make EL2 touch EL2's own pages.
    pub fn is_shared_with_hyp(&self, pa: usize) -> bool {
        self.page_state(pa) == Some(PageState::HostSharedWith(Borrower::Hyp))
    }

    /// Sets every page of `[start, end)` (inside one bank) to `state`.
    fn set_range(&mut self, start: usize, end: usize, state: PageState) {
        if let Some(first) = self.entry_index(start) {
            let n = (end - start) / PAGE_SIZE;
            self.meta[first..first + n].fill(state.encode());
        }
    }

    /// A page leaves a guest (or EL2's reclaim list) for the host: zeroed and cleaned first
    /// (I5), now, or by the caller outside the lock if `san` defers it.
    fn zeroed_to_host(&mut self, pa: usize, san: &mut impl PageSanitizer) {
        san.zero_and_clean(pa);
        let state = if san.defers() {
            PageState::Sanitizing
        } else {
            PageState::Owned(Owner::Host)
        };
        self.set_page(pa, state);
        if !san.defers() {
            // Zeroed and the host's again: its devices may reach it again (it left their
            // view when it left the host).
            self.dma_grant(pa, pa + PAGE_SIZE);
        }
    }

    /// Hands the host the pages a deferring [`PageSanitizer`] noted, once the caller has
    /// zeroed and cleaned them: each goes from [`PageState::Sanitizing`] to host-owned (mapped
    /// on the host's next access).
    ///
    /// # Errors
    ///
    /// `Denied` if a page is not `Sanitizing` (nothing is changed then).
    // Not inlined: the payload check `payload_maintenance_sequences` finds this call after
    // the zeroing in the deferred sanitiser.
    #[inline(never)]
    pub fn sanitized_to_host(&mut self, pages: &[usize]) -> Result<(), OwnershipError> {
        if pages
            .iter()
            .any(|&pa| self.page_state(pa) != Some(PageState::Sanitizing))
        {
            return Err(OwnershipError::Denied);
        }
        for &pa in pages {
            self.set_page(pa, PageState::Owned(Owner::Host));
        }
        // The host's devices may reach them again: one grant per run of contiguous pages
        // (a reclaimed range is one run; a relinquished one may be scattered).
        let mut i = 0;
        while i < pages.len() {
            let start = pages[i];
            let mut end = start + PAGE_SIZE;
            i += 1;
            while i < pages.len() && pages[i] == end {
                end += PAGE_SIZE;
                i += 1;
            }
            self.dma_grant(start, end);
        }
        Ok(())
    }

    fn set_page(&mut self, pa: usize, state: PageState) {
        if let Some(i) = self.entry_index(pa) {
            self.meta[i] = state.encode();
        }
    }

    /// Whether every page of `[start, end)` (inside one bank) satisfies `pred`.
    fn all_pages(&self, start: usize, end: usize, pred: impl Fn(PageState) -> bool) -> bool {
        let Some(first) = self.entry_index(start) else {
            return false;
        };
        let n = (end - start) / PAGE_SIZE;
        self.meta[first..first + n]
            .iter()
            .all(|&e| pred(PageState::decode(e).unwrap_or(PageState::Owned(Owner::Hyp))))
    }

    fn require_pages(
        &self,
        start: usize,
        end: usize,
        pred: impl Fn(PageState) -> bool,
    ) -> Result<(), OwnershipError> {
        if self.all_pages(start, end, pred) {
            Ok(())
        } else {
            Err(OwnershipError::Denied)
        }
    }

    fn check_count(nr: usize) -> Result<(), OwnershipError> {
        if nr == 0 || nr > MAX_PAGES_PER_CALL {
            Err(OwnershipError::InvalidParameter)
        } else {
            Ok(())
        }
    }

    /// `[pfn, pfn + nr)` as a byte range inside one RAM bank.
    fn ram_range(&self, pfn: usize, nr: usize) -> Result<(usize, usize), OwnershipError> {
        Self::check_count(nr)?;
        let start = pfn.checked_mul(PAGE_SIZE).ok_or(OwnershipError::Range)?;
        let end = pfn
            .checked_add(nr)
            .and_then(|e| e.checked_mul(PAGE_SIZE))
            .ok_or(OwnershipError::Range)?;
        if self.banks[..self.n_banks]
            .iter()
            .any(|b| b.start <= start && end <= b.end)
        {
            Ok((start, end))
        } else {
            Err(OwnershipError::Range)
        }
    }

    /// `[gfn, gfn + nr)` as a byte range inside the IPA space.
    fn ipa_range(&self, gfn: usize, nr: usize) -> Result<(usize, usize), OwnershipError> {
        Self::check_count(nr)?;
        let start = gfn.checked_mul(PAGE_SIZE).ok_or(OwnershipError::Range)?;
        let end = gfn
            .checked_add(nr)
            .and_then(|e| e.checked_mul(PAGE_SIZE))
            .ok_or(OwnershipError::Range)?;
        if end <= self.config.ipa_size() {
            Ok((start, end))
        } else {
            Err(OwnershipError::Range)
        }
    }

    /// The slot of live VM `vm`: `NotFound` if it does not exist or is dying.
    fn slot(&self, vm: VmId) -> Result<usize, OwnershipError> {
        let i = usize::from(vm.get()) - 1;
        match self.guests.get(i) {
            Some(Some(_)) if self.dying[i].is_none() => Ok(i),
            _ => Err(OwnershipError::NotFound),
        }
    }

    fn guest(&mut self, slot: usize) -> Result<&mut Stage2Table, OwnershipError> {
        self.guests[slot].as_mut().ok_or(OwnershipError::NotFound)
    }

    fn in_hyp_ranges(&self, start: usize, end: usize) -> bool {
        self.hyp_ranges().iter().any(|&h| overlaps(h, (start, end)))
    }

    /// Hands the host's DMA view to the record: every RAM page the host may access now is
    /// granted, and from now on every transition keeps the view in step (I1, I6).
    pub fn attach_host_dma(&mut self, dma: &'m mut (dyn HostDma + Send)) {
        for b in 0..self.n_banks {
            let bank = self.banks[b];
            let pages = (bank.end - bank.start) / PAGE_SIZE;
            let mut run: Option<usize> = None;
            for i in 0..=pages {
                let pa = bank.start + i * PAGE_SIZE;
                let ok = i < pages && self.state_at(bank.first_entry + i).host_may_access();
                match (ok, run) {
                    (true, None) => run = Some(pa),
                    (false, Some(s)) => {
                        dma.grant(s, pa);
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        self.dma = Some(dma);
    }

    /// The host's DMA view, if attached.
    pub fn host_dma(&self) -> Option<&(dyn HostDma + Send)> {
        self.dma.as_deref()
    }

    /// `[start, end)` split at RAM bank boundaries (DMA tables change one bank at a time).
    fn bank_parts(&self, start: usize, end: usize, mut f: impl FnMut(usize, usize)) {
        for bank in &self.banks[..self.n_banks] {
            let (s, e) = (start.max(bank.start), end.min(bank.end));
            if s < e {
                f(s, e);
            }
        }
    }

    /// The host's devices lose `[start, end)`; the IOMMU's invalidation is complete when this
    /// returns (the [`HostDma`] contract).
    fn dma_revoke(&mut self, start: usize, end: usize) {
        if let Some(dma) = self.dma.take() {
            self.bank_parts(start, end, |s, e| dma.revoke(s, e));
            self.dma = Some(dma);
        }
    }

    /// The host's devices may reach `[start, end)` again.
    fn dma_grant(&mut self, start: usize, end: usize) {
        if let Some(dma) = self.dma.take() {
            self.bank_parts(start, end, |s, e| dma.grant(s, e));
            self.dma = Some(dma);
        }
    }

    /// Grants (`grant`) or revokes the pages of `self.scratch[..nr]`, in runs of contiguous
    /// pages.
    fn dma_scratch(&mut self, nr: usize, grant: bool) {
        if self.dma.is_none() {
            return;
        }
        let mut i = 0;
        while i < nr {
            let start = self.scratch[i];
            let mut j = i + 1;
            while j < nr && self.scratch[j] == start + (j - i) * PAGE_SIZE {
                j += 1;
            }
            let end = start + (j - i) * PAGE_SIZE;
            if grant {
                self.dma_grant(start, end);
            } else {
                self.dma_revoke(start, end);
            }
            i = j;
        }
    }

    /// Removes `[start, end)` from the host stage-2 with whole blocks (the host's other pages
    /// in them come back on its next fault), then the TLB sequence for VMID 0; then from the
    /// host's DMA view (exactly those pages).
    fn host_unmap(
        &mut self,
        start: usize,
        end: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        self.host
            .unmap_covering(start, end, tlb)
            .map(|_| ())
            .map_err(commit_error)?;
        self.dma_revoke(start, end);
        Ok(())
    }
}
