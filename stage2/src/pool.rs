//! Page pools: where page-table pages come from.
//!
//! A [`PagePool`] hands out 4 KiB pages from memory that EL2 owns and reaches at the same
//! address it gives to the page-table walker (EL2 runs identity-mapped, VA == PA). Free pages
//! are kept on an intrusive list (the first 8 bytes of each free page hold the address of the
//! next one), so a pool can grow by pages that are not contiguous: a VM's pool is filled page by
//! page by the host's top-up calls.
//!
//! [`PoolTranslation`] adapts a pool to `aarch64-paging`'s [`Translation`] trait, for stage-2
//! tables ([`Stage2Attributes`](aarch64_paging::descriptor::Stage2Attributes)) and for EL2's own
//! stage-1 tables ([`El23Attributes`](aarch64_paging::descriptor::El23Attributes)) alike.
//!
//! # Check before you map
//!
//! [`Translation::allocate_table`] cannot report failure. Every caller that may make the
//! library allocate must first make sure the pool holds enough free pages:
//! [`Stage2Table`](crate::pgtable::Stage2Table) does this itself (it counts the tables a change
//! needs by walking the tree, and returns `NoMemory` before touching anything), and
//! [`pages_needed_to_map`] gives the worst case for sizing a pool up front. If the pool is
//! nevertheless empty inside `allocate_table`, EL2's accounting is wrong: the pool panics with a
//! message saying so rather than hand the walker a page it does not own.

use aarch64_paging::descriptor::PagingAttributes;
use aarch64_paging::descriptor::PhysicalAddress;
use aarch64_paging::paging::{PageTable, Translation};
use core::cell::RefCell;
use core::ptr::NonNull;

/// Size of a page and of a page table.
pub const PAGE_SIZE: usize = 4096;

/// Level of the last lookup (4 KiB pages).
const LEAF_LEVEL: usize = 3;

/// Returns the number of bytes one descriptor at `level` maps (1 GiB at level 1, 2 MiB at
/// level 2, 4 KiB at level 3; 512 GiB at level 0).
pub const fn granule_at_level(level: usize) -> usize {
    PAGE_SIZE << ((LEAF_LEVEL - level) * 9)
}

/// The pool has no free page.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct NoMemory;

impl core::fmt::Display for NoMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("page pool has too few free pages")
    }
}

/// A pool of 4 KiB pages in identity-mapped memory.
///
/// Nothing is stored outside the pages themselves apart from the list head and two counters,
/// so the pool is cheap to move (it is moved into a [`PoolTranslation`]).
#[derive(Debug)]
pub struct PagePool {
    /// Address of the first free page, or 0 if none.
    head: usize,
    free: usize,
    total: usize,
}

impl PagePool {
    /// Creates a pool of the pages in `[base, base + bytes)`. `bytes` is rounded down to whole
    /// pages; a `base` that is not page-aligned is rounded up first.
    ///
    /// # Safety
    ///
    /// The range must be memory that is mapped writable at the same virtual address as its
    /// physical address, that nothing else uses for as long as the pool (or any table built from
    /// it) lives, and that is not in any host or guest stage-2.
    pub unsafe fn new(base: usize, bytes: usize) -> Self {
        let mut pool = Self::empty();
        let start = base.next_multiple_of(PAGE_SIZE);
        let usable = bytes.saturating_sub(start - base);
        // SAFETY: our caller gives us the whole range, which covers every page added here.
        unsafe { pool.add_pages(start, usable / PAGE_SIZE) };
        pool
    }

    /// A pool with no pages (fill it with [`add_pages`](Self::add_pages)).
    pub const fn empty() -> Self {
        Self {
            head: 0,
            free: 0,
            total: 0,
        }
    }

    /// Adds `count` pages starting at `pa` (page-aligned) to the pool: the pool grows.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new), for `[pa, pa + count * 4 KiB)`; the pages must not be in the
    /// pool already.
    pub unsafe fn add_pages(&mut self, pa: usize, count: usize) {
        // Push in reverse so that pages come out in ascending address order, which keeps
        // tables of a fresh pool near each other and makes tests deterministic.
        for i in (0..count).rev() {
            // SAFETY: our caller gives this page to the pool.
            unsafe { self.push(pa + i * PAGE_SIZE) };
        }
        self.total += count;
    }

    /// Takes a free page out of the pool for good (the pool shrinks); its contents are left as
    /// they are (the first 8 bytes hold a list link). Used to hand a pool's pages back, for
    /// example at VM teardown.
    pub fn remove_page(&mut self) -> Option<usize> {
        let pa = self.pop()?;
        self.total -= 1;
        Some(pa)
    }

    /// Allocates a zeroed page and returns its physical (== virtual) address.
    pub fn alloc_zeroed(&mut self) -> Option<usize> {
        let pa = self.pop()?;
        // SAFETY: the page belongs to the pool and was free; it is mapped writable at `pa`.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, PAGE_SIZE) };
        Some(pa)
    }

    /// Returns a page obtained from [`alloc_zeroed`](Self::alloc_zeroed) to the pool.
    ///
    /// # Safety
    ///
    /// `pa` must have come from `alloc_zeroed` on this pool, must not be in use any more (no
    /// table points to it, no TLB walk can still reach it) and must not be freed twice.
    pub unsafe fn free(&mut self, pa: usize) {
        debug_assert!(
            pa.is_multiple_of(PAGE_SIZE),
            "freeing an unaligned page {pa:#x}"
        );
        // SAFETY: our caller hands the page back to us.
        unsafe { self.push(pa) };
    }

    /// Allocates `n` (a power of two) zeroed pages that are physically contiguous and aligned
    /// to `n` pages, as concatenated stage-2 root tables must be, and returns the first one's
    /// address; `None` if no such run exists (nothing is taken then).
    ///
    /// Only runs whose pages follow each other on the free list are found: one pass, no
    /// memory. A pool filled from one range by [`add_pages`](Self::add_pages) lists its pages
    /// in ascending order, so every aligned run of such a range is found. The pages count as
    /// allocated: give each back with [`free`](Self::free).
    pub fn take_aligned_run(&mut self, n: usize) -> Option<usize> {
        if !n.is_power_of_two() || self.free < n {
            return None;
        }
        let align = n * PAGE_SIZE;
        // `before`: the page whose link points to the run's first page (0: the list head).
        let (mut before, mut prev, mut start, mut len) = (0, 0, 0, 0);
        let mut pa = self.head;
        while pa != 0 {
            // SAFETY: `pa` is a free page of the pool; its first word holds the next link.
            let next = unsafe { (pa as *const usize).read() };
            if len > 0 && pa == start + len * PAGE_SIZE {
                len += 1;
            } else if pa.is_multiple_of(align) {
                (before, start, len) = (prev, pa, 1);
            } else {
                len = 0;
            }
            if len == n {
                if before == 0 {
                    self.head = next;
                } else {
                    // SAFETY: `before` is a free page of the pool (it precedes the run on the
                    // list); its first word is its link, which now skips the run.
                    unsafe { (before as *mut usize).write(next) };
                }
                self.free -= n;
                // SAFETY: the run's pages belonged to the pool and were free; they are mapped
                // writable at their address.
                unsafe { core::ptr::write_bytes(start as *mut u8, 0, align) };
                return Some(start);
            }
            prev = pa;
            pa = next;
        }
        None
    }

    /// Number of pages that can still be allocated.
    pub fn free_pages(&self) -> usize {
        self.free
    }

    /// Number of pages the pool manages, free or allocated.
    pub fn total_pages(&self) -> usize {
        self.total
    }

    /// Calls `f` with the address of every free page.
    pub fn for_each_free_page(&self, mut f: impl FnMut(usize)) {
        let mut pa = self.head;
        while pa != 0 {
            f(pa);
            // SAFETY: `pa` is a free page of the pool; its first word holds the next link.
            pa = unsafe { (pa as *const usize).read() };
        }
    }

    /// Returns `Ok` if at least `n` pages are free: the "check before you map" test.
    pub fn ensure_free(&self, n: usize) -> Result<(), NoMemory> {
        if self.free >= n {
            Ok(())
        } else {
            Err(NoMemory)
        }
    }

    /// # Safety
    ///
    /// The page at `pa` is owned by the pool from now on and is mapped writable at `pa`.
    unsafe fn push(&mut self, pa: usize) {
        // SAFETY: the page is the pool's and mapped at `pa`; storing the link in it is how the
        // free list works.
        unsafe { (pa as *mut usize).write(self.head) };
        self.head = pa;
        self.free += 1;
    }

    fn pop(&mut self) -> Option<usize> {
        if self.head == 0 {
            return None;
        }
        let pa = self.head;
        // SAFETY: `pa` is a free page of the pool; its first word holds the next link.
        self.head = unsafe { (pa as *const usize).read() };
        self.free -= 1;
        Some(pa)
    }
}

/// An [`aarch64_paging::paging::Translation`] that takes table pages from a [`PagePool`] it
/// owns. Addresses are identity-mapped: a table's physical address is its virtual address.
///
/// The pool sits in a `RefCell` so that it can be inspected and topped up through the shared
/// reference `Mapping::translation()` gives; the library's own calls go through `&mut self` and
/// never need a run-time borrow.
#[derive(Debug)]
pub struct PoolTranslation {
    pool: RefCell<PagePool>,
}

impl PoolTranslation {
    /// Wraps `pool`.
    pub fn new(pool: PagePool) -> Self {
        Self {
            pool: RefCell::new(pool),
        }
    }

    /// Free pages in the pool (0 in the impossible case that the pool is borrowed right now).
    pub fn free_pages(&self) -> usize {
        self.pool.try_borrow().map_or(0, |p| p.free_pages())
    }

    /// Pages the pool manages.
    pub fn total_pages(&self) -> usize {
        self.pool.try_borrow().map_or(0, |p| p.total_pages())
    }

    /// Runs `f` with the pool borrowed mutably. Returns `None` only if the pool is already
    /// borrowed, which cannot happen in single-threaded use (nothing holds a borrow across a
    /// call), so callers may treat it as [`NoMemory`].
    pub fn with_pool<R>(&self, f: impl FnOnce(&mut PagePool) -> R) -> Option<R> {
        self.pool.try_borrow_mut().ok().map(|mut p| f(&mut p))
    }

    /// Calls `f` with the address of every free page of the pool.
    pub fn for_each_free_page(&self, f: impl FnMut(usize)) {
        if let Ok(p) = self.pool.try_borrow() {
            p.for_each_free_page(f);
        }
    }

    /// Gives the pool back.
    pub fn into_pool(self) -> PagePool {
        self.pool.into_inner()
    }
}

impl<A: PagingAttributes> Translation<A> for PoolTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<A>>, PhysicalAddress) {
        // Running dry here means a caller skipped the "check before you map" rule: EL2's
        // accounting is broken and no safe table page can be produced.
        let Some(pa) = self.pool.get_mut().alloc_zeroed() else {
            panic!("page-table pool exhausted: EL2 did not reserve table pages before mapping");
        };
        let ptr = NonNull::new(pa as *mut PageTable<A>)
            .expect("page pool returned address 0, which it never stores");
        (ptr, PhysicalAddress(pa))
    }

    unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<A>>) {
        // SAFETY: the library only frees tables it got from `allocate_table` on this
        // translation, after unlinking them (its own contract).
        unsafe { self.pool.get_mut().free(page_table.as_ptr() as usize) };
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<A>> {
        NonNull::new(pa.0 as *mut PageTable<A>).expect("table descriptor points to address 0")
    }
}

/// Worst-case number of table pages (excluding the root, which always exists) that mapping
/// `[start, end)` can ever need in a table whose root is at `root_level`: one table per
/// distinct table-sized chunk at each level below the root, i.e. the whole range mapped with
/// 4 KiB pages. Summing this over several ranges gives an upper bound for all of them.
///
/// Size a pool as `1 + sum(pages_needed_to_map(r))` over every range a table may ever map and
/// it can never run dry, however the mapping is later split and re-made.
pub fn pages_needed_to_map(start: usize, end: usize, root_level: usize) -> usize {
    if end <= start || root_level >= LEAF_LEVEL {
        return 0;
    }
    let mut total = 0;
    for level in (root_level + 1)..=LEAF_LEVEL {
        // A table at `level` covers what one entry at `level - 1` maps.
        let span = granule_at_level(level - 1);
        let first = start / span;
        let last = (end - 1) / span;
        total += last - first + 1;
    }
    total
}

#[cfg(test)]
pub(crate) mod test_memory {
    //! Page-aligned heap memory standing in for EL2's identity-mapped pool memory.
    extern crate std;
    use super::PAGE_SIZE;
    use std::alloc::{Layout, alloc_zeroed, dealloc};

    /// An aligned, zeroed heap buffer (or fixed anonymous mapping), freed on drop.
    pub struct Arena {
        ptr: *mut u8,
        layout: Layout,
        mapped: bool,
    }

    impl Arena {
        pub fn new(bytes: usize, align: usize) -> Self {
            let layout = Layout::from_size_align(bytes, align.max(PAGE_SIZE)).unwrap();
            // SAFETY: the layout has a non-zero size (callers never ask for 0 bytes).
            let ptr = unsafe { alloc_zeroed(layout) };
            assert!(!ptr.is_null());
            Self {
                ptr,
                layout,
                mapped: false,
            }
        }

        /// `bytes` of zeroed memory at 256 GiB: below 2^40, so that it can be RAM of a
        /// world whose IPA space is 40 bits (heap addresses lie near 2^47). One such arena
        /// at a time per process.
        pub fn below_40_bits(bytes: usize) -> Self {
            Self::fixed_at(0x40_0000_0000, bytes)
        }

        /// `bytes` of zeroed memory at `addr` (page-aligned, free in this process: each test
        /// that needs one picks its own address, tests run in parallel).
        pub fn fixed_at(addr: usize, bytes: usize) -> Self {
            // SAFETY: an anonymous private mapping at an address nothing else uses
            // (MAP_FIXED_NOREPLACE refuses to replace an existing mapping).
            let ptr = unsafe {
                libc::mmap(
                    addr as *mut libc::c_void,
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            assert_eq!(ptr as usize, addr, "cannot map test RAM at {addr:#x}");
            Self {
                ptr: ptr.cast(),
                layout: Layout::from_size_align(bytes, PAGE_SIZE).unwrap(),
                mapped: true,
            }
        }

        pub fn base(&self) -> usize {
            self.ptr as usize
        }

        pub fn len(&self) -> usize {
            self.layout.size()
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            if self.mapped {
                // SAFETY: mapped in `below_40_bits` with this size; nothing uses it now.
                unsafe { libc::munmap(self.ptr.cast(), self.layout.size()) };
            } else {
                // SAFETY: allocated in `new` with this layout.
                unsafe { dealloc(self.ptr, self.layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_memory::Arena;
    use super::*;

    #[test]
    fn fresh_pool_hands_out_every_page_once_zeroed() {
        let arena = Arena::new(8 * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: the arena is ours, page-aligned and outlives the pool.
        let mut pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        assert_eq!(pool.total_pages(), 8);
        assert_eq!(pool.free_pages(), 8);
        let mut seen = [0usize; 8];
        for slot in &mut seen {
            let pa = pool.alloc_zeroed().unwrap();
            assert_eq!(pa % PAGE_SIZE, 0);
            assert!(pa >= arena.base() && pa < arena.base() + arena.len());
            // SAFETY: the page was just allocated from the arena.
            let bytes = unsafe { core::slice::from_raw_parts(pa as *const u8, PAGE_SIZE) };
            assert!(bytes.iter().all(|&b| b == 0));
            *slot = pa;
        }
        assert_eq!(pool.alloc_zeroed(), None);
        assert_eq!(pool.free_pages(), 0);
        seen.sort_unstable();
        for w in seen.windows(2) {
            assert_eq!(w[1] - w[0], PAGE_SIZE);
        }
    }

    #[test]
    fn freed_page_comes_back_zeroed() {
        let arena = Arena::new(2 * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: as above.
        let mut pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        let pa = pool.alloc_zeroed().unwrap();
        // SAFETY: the page is allocated to us.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0xaa, PAGE_SIZE) };
        // SAFETY: allocated from this pool, not used any more.
        unsafe { pool.free(pa) };
        assert_eq!(pool.free_pages(), 2);
        let mut again = [pool.alloc_zeroed().unwrap(), pool.alloc_zeroed().unwrap()];
        again.sort_unstable();
        assert!(again.contains(&pa));
        // SAFETY: allocated to us.
        let bytes = unsafe { core::slice::from_raw_parts(pa as *const u8, PAGE_SIZE) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn unaligned_base_is_rounded_up() {
        let arena = Arena::new(4 * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: the arena covers the range.
        let pool = unsafe { PagePool::new(arena.base() + 8, arena.len() - 8) };
        assert_eq!(pool.total_pages(), 3);
    }

    #[test]
    fn pages_can_be_added_and_removed() {
        let arena = Arena::new(4 * PAGE_SIZE, PAGE_SIZE);
        let mut pool = PagePool::empty();
        assert_eq!(pool.ensure_free(1), Err(NoMemory));
        // SAFETY: the arena is ours.
        unsafe { pool.add_pages(arena.base() + PAGE_SIZE, 2) };
        assert_eq!((pool.total_pages(), pool.free_pages()), (2, 2));
        assert_eq!(pool.ensure_free(2), Ok(()));
        assert_eq!(pool.remove_page(), Some(arena.base() + PAGE_SIZE));
        assert_eq!((pool.total_pages(), pool.free_pages()), (1, 1));
    }

    #[test]
    fn worst_case_counts_one_table_per_chunk_and_level() {
        // 1 GiB at 1 GiB alignment, root level 1: one L2 table and 512 L3 tables.
        assert_eq!(pages_needed_to_map(0x4000_0000, 0x8000_0000, 1), 1 + 512);
        // Root level 0 adds one L1 table.
        assert_eq!(
            pages_needed_to_map(0x4000_0000, 0x8000_0000, 0),
            1 + 1 + 512
        );
        // One page needs one table per level below the root.
        assert_eq!(pages_needed_to_map(0x1000, 0x2000, 0), 3);
        // A range straddling a 2 MiB boundary needs two L3 tables.
        assert_eq!(pages_needed_to_map(0x1f_f000, 0x20_1000, 1), 1 + 2);
        assert_eq!(pages_needed_to_map(0x1000, 0x1000, 1), 0);
    }
}
