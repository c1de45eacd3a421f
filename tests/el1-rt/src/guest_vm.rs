//! A protected VM seen from the host: created with VM_CREATE, given pool pages
//! (VM_TOPUP) and guest memory (VM_DONATE), run (VCPU_RUN), destroyed and its pages taken
//! back (VM_DESTROY, VM_RECLAIM). The builder remembers every page it gave away, so that a
//! test can find the host page behind a guest frame and reclaim everything at the end.
//!
//! Guest memory is written by the host through its caches but read by a guest that runs
//! with its MMU off (non-cacheable), so every page is cleaned and invalidated to the point
//! of coherency before it is donated (docs/abi.md 4.5: the payload does no cache
//! maintenance for the host).

use crate::cache;
use crate::exceptions::Abort;
use crate::free_pages::{FreePages, PAGE_SIZE};
use crate::host_calls::{self, CallError};
use crate::image_header::{self, HeaderError};
use crate::probe;
use core::fmt;
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use hvc_abi::{Error, Exit, VmHandle};

/// Most page ranges one VM's ledger remembers.
pub const MAX_RANGES: usize = 32;
/// How many times a call that returned NO_MEMORY is retried after a top-up.
const NO_MEMORY_RETRIES: usize = 8;

/// What a range of pages was given to the VM as.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PageUse {
    /// VM_TOPUP: the VM's page-table pool.
    Pool,
    /// VM_DONATE: guest memory mapped from guest frame `gfn`.
    Guest { gfn: u64 },
}

/// Pages `pfn..pfn + nr` given to the VM.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct PageRange {
    pub pfn: u64,
    pub nr: u32,
    pub used_as: PageUse,
}

impl PageRange {
    /// The host physical (= identity-mapped virtual) address of the first page.
    pub fn address(&self) -> usize {
        (self.pfn as usize) * PAGE_SIZE
    }

    /// Length in bytes.
    pub fn size(&self) -> usize {
        self.nr as usize * PAGE_SIZE
    }
}

/// Why building, running or tearing down the VM failed.
#[derive(Clone, Copy, Debug)]
pub enum VmError {
    /// A host call failed.
    Call(CallError),
    /// No free host RAM for `nr` more pages.
    OutOfPages { nr: usize },
    /// The ledger cannot remember more ranges.
    LedgerFull,
    /// The guest image has no usable arm64 Image header.
    Image(HeaderError),
    /// A guest frame the host never donated (or that already came back).
    NotDonated { gfn: u64 },
    /// A reclaimed page could not be read: the host still has no access to it.
    ReclaimedPageAborts { address: usize, abort: Abort },
    /// More than `NO_MEMORY_RETRIES` top-ups did not satisfy a call.
    StillNoMemory,
}

impl From<CallError> for VmError {
    fn from(error: CallError) -> Self {
        Self::Call(error)
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Call(error) => write!(f, "{error}"),
            Self::OutOfPages { nr } => write!(f, "no free host RAM for {nr} more pages"),
            Self::LedgerFull => write!(f, "more than {MAX_RANGES} page ranges given to one VM"),
            Self::Image(error) => write!(f, "guest image: {error}"),
            Self::NotDonated { gfn } => write!(f, "gfn {gfn:#x} is not donated guest memory"),
            Self::ReclaimedPageAborts { address, abort } => write!(
                f,
                "reclaimed page {address:#x} still aborts (ESR_EL1={:#x})",
                abort.esr
            ),
            Self::StillNoMemory => write!(
                f,
                "still NO_MEMORY after {NO_MEMORY_RETRIES} top-ups of {MAX_POOL_PAGES_PER_CALL} pages"
            ),
        }
    }
}

/// What [`GuestVm::reclaim_all`] found.
#[derive(Clone, Copy, Debug)]
pub struct Reclaimed {
    /// Pages taken back.
    pub pages: usize,
    /// The address of the first nonzero word found in them, if any.
    pub first_nonzero: Option<usize>,
}

/// A VM and the pages the host gave it.
pub struct GuestVm {
    handle: VmHandle,
    ranges: [Option<PageRange>; MAX_RANGES],
}

impl GuestVm {
    /// VM_CREATE with `nr_vcpus` vCPUs and an IPA space of `ipa_bits` bits.
    pub fn create(nr_vcpus: u32, ipa_bits: u32) -> Result<Self, VmError> {
        Ok(Self {
            handle: host_calls::vm_create(nr_vcpus, ipa_bits)?,
            ranges: [None; MAX_RANGES],
        })
    }

    pub fn handle(&self) -> VmHandle {
        self.handle
    }

    /// Every range given to the VM (pool and guest memory) that has not come back.
    pub fn ranges(&self) -> impl Iterator<Item = PageRange> + '_ {
        self.ranges.iter().flatten().copied()
    }

    /// VM_TOPUP of `nr` fresh pages; returns their range.
    pub fn topup(&mut self, pages: &mut FreePages, nr: u32) -> Result<PageRange, VmError> {
        let address = alloc(pages, nr)?;
        let pfn = (address / PAGE_SIZE) as u64;
        host_calls::vm_topup(self.handle, pfn, nr)?;
        self.remember(PageRange {
            pfn,
            nr,
            used_as: PageUse::Pool,
        })
    }

    /// Copies a raw guest image with an arm64 Image header into fresh pages, zero-fills
    /// them up to the header's `image_size` (the guest's .bss and stack) and donates them
    /// at `gfn`.
    pub fn load_image(
        &mut self,
        pages: &mut FreePages,
        image: &[u8],
        gfn: u64,
    ) -> Result<PageRange, VmError> {
        let size = image_header::memory_size(image).map_err(VmError::Image)?;
        let nr = size.div_ceil(PAGE_SIZE);
        let nr = u32::try_from(nr).map_err(|_| VmError::OutOfPages { nr })?;
        let address = alloc(pages, nr)?;
        let len = nr as usize * PAGE_SIZE;
        // SAFETY: `alloc` handed out these pages: host RAM that neither this image nor
        // anything the DTB reserves uses, identity-mapped Normal memory, not yet given
        // to the payload. No Rust reference to it exists.
        unsafe {
            core::ptr::write_bytes(address as *mut u8, 0, len);
            core::ptr::copy_nonoverlapping(image.as_ptr(), address as *mut u8, image.len());
        }
        cache::clean_invalidate_to_poc(address, len);
        self.donate(pages, address, gfn, nr)
    }

    /// Copies `bytes` (at most one page: code the host wants a guest to run, or data)
    /// into a fresh zeroed page, cleans it to the point of coherency and donates it at
    /// `gfn`.
    pub fn load_page(
        &mut self,
        pages: &mut FreePages,
        bytes: &[u8],
        gfn: u64,
    ) -> Result<PageRange, VmError> {
        let address = alloc(pages, 1)?;
        let len = bytes.len().min(PAGE_SIZE);
        // SAFETY: as in `load_image`: a fresh page of host RAM nothing else uses.
        unsafe {
            core::ptr::write_bytes(address as *mut u8, 0, PAGE_SIZE);
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, len);
        }
        cache::clean_invalidate_to_poc(address, PAGE_SIZE);
        self.donate(pages, address, gfn, 1)
    }

    /// Donates `nr` fresh zeroed pages at `gfn`.
    pub fn donate_zeroed(
        &mut self,
        pages: &mut FreePages,
        gfn: u64,
        nr: u32,
    ) -> Result<PageRange, VmError> {
        let address = alloc(pages, nr)?;
        let len = nr as usize * PAGE_SIZE;
        // SAFETY: as in `load_image`.
        unsafe { core::ptr::write_bytes(address as *mut u8, 0, len) };
        cache::clean_invalidate_to_poc(address, len);
        self.donate(pages, address, gfn, nr)
    }

    fn donate(
        &mut self,
        pages: &mut FreePages,
        address: usize,
        gfn: u64,
        nr: u32,
    ) -> Result<PageRange, VmError> {
        let pfn = (address / PAGE_SIZE) as u64;
        let handle = self.handle;
        self.retry_on_no_memory(pages, || host_calls::vm_donate(handle, pfn, gfn, nr))?;
        self.remember(PageRange {
            pfn,
            nr,
            used_as: PageUse::Guest { gfn },
        })
    }

    /// VCPU_CREATE: vCPU `vcpu` starts at `entry_ipa` with x0 = `x0` (its state is EL2's
    /// memory, docs/abi.md 4.8: no pool pages needed).
    pub fn vcpu_create(&self, vcpu: u32, entry_ipa: u64, x0: u64) -> Result<(), VmError> {
        host_calls::vcpu_create(self.handle, vcpu, entry_ipa, x0).map_err(VmError::Call)
    }

    /// Makes `call`; while it returns NO_MEMORY, tops up MAX_POOL_PAGES_PER_CALL pages and
    /// tries again (docs/abi.md 7.3: that many always get a retry past NO_MEMORY).
    fn retry_on_no_memory(
        &mut self,
        pages: &mut FreePages,
        mut call: impl FnMut() -> Result<(), CallError>,
    ) -> Result<(), VmError> {
        for _ in 0..=NO_MEMORY_RETRIES {
            match call() {
                Err(error) if error.abi_error() == Some(Error::NoMemory) => {
                    self.topup(pages, MAX_POOL_PAGES_PER_CALL)?;
                }
                other => return other.map_err(VmError::Call),
            }
        }
        Err(VmError::StillNoMemory)
    }

    /// VCPU_RUN of vCPU `vcpu`.
    pub fn run(&self, vcpu: u32, completion: u64) -> Result<Exit, CallError> {
        host_calls::vcpu_run(self.handle, vcpu, completion)
    }

    /// The host address of the page behind donated guest frame `gfn`.
    pub fn host_address(&self, gfn: u64) -> Result<usize, VmError> {
        self.ranges()
            .find_map(|range| match range.used_as {
                PageUse::Guest { gfn: first }
                    if (first..first + u64::from(range.nr)).contains(&gfn) =>
                {
                    Some(range.address() + ((gfn - first) as usize) * PAGE_SIZE)
                }
                _ => None,
            })
            .ok_or(VmError::NotDonated { gfn })
    }

    /// Records that the page behind `gfn` came back to the host (MEM_RELINQUISH): it is
    /// no longer the VM's and must not be reclaimed. Returns its host address.
    pub fn page_returned(&mut self, gfn: u64) -> Result<usize, VmError> {
        let address = self.host_address(gfn)?;
        let slot = self
            .ranges
            .iter_mut()
            .find(|slot| {
                slot.is_some_and(|range| match range.used_as {
                    PageUse::Guest { gfn: first } => {
                        (first..first + u64::from(range.nr)).contains(&gfn)
                    }
                    PageUse::Pool => false,
                })
            })
            .ok_or(VmError::NotDonated { gfn })?;
        let Some(range) = slot.take() else {
            return Err(VmError::NotDonated { gfn });
        };
        let PageUse::Guest { gfn: first } = range.used_as else {
            return Err(VmError::NotDonated { gfn });
        };
        // Keep the pages below and above the returned one.
        let below = (gfn - first) as u32;
        let above = range.nr - below - 1;
        if below > 0 {
            self.remember(PageRange {
                pfn: range.pfn,
                nr: below,
                used_as: PageUse::Guest { gfn: first },
            })?;
        }
        if above > 0 {
            self.remember(PageRange {
                pfn: range.pfn + u64::from(below) + 1,
                nr: above,
                used_as: PageUse::Guest { gfn: gfn + 1 },
            })?;
        }
        Ok(address)
    }

    /// VM_DESTROY.
    pub fn destroy(&self) -> Result<(), CallError> {
        host_calls::vm_destroy(self.handle)
    }

    /// VM_RECLAIM of every range the VM was given (after [`destroy`](Self::destroy)), and
    /// a check that each page reads back zero. The ledger is emptied range by range.
    pub fn reclaim_all(&mut self) -> Result<Reclaimed, VmError> {
        let mut reclaimed = Reclaimed {
            pages: 0,
            first_nonzero: None,
        };
        for slot in self.ranges.iter_mut() {
            let Some(range) = *slot else { continue };
            host_calls::vm_reclaim(range.pfn, range.nr)?;
            *slot = None;
            reclaimed.pages += range.nr as usize;
            let nonzero = probe::first_nonzero(range.address(), range.size()).map_err(|abort| {
                VmError::ReclaimedPageAborts {
                    address: abort.far as usize,
                    abort,
                }
            })?;
            if reclaimed.first_nonzero.is_none() {
                reclaimed.first_nonzero = nonzero.map(|offset| range.address() + offset);
            }
        }
        Ok(reclaimed)
    }

    fn remember(&mut self, range: PageRange) -> Result<PageRange, VmError> {
        let slot = self
            .ranges
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(VmError::LedgerFull)?;
        *slot = Some(range);
        Ok(range)
    }
}

fn alloc(pages: &mut FreePages, nr: u32) -> Result<usize, VmError> {
    let nr = nr as usize;
    pages.alloc(nr).ok_or(VmError::OutOfPages { nr })
}
