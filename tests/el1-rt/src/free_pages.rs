//! Host pages an image can give to the payload (VM_TOPUP, VM_DONATE): RAM at or above a
//! floor that the DTB does not mark as taken, handed out in address order and never
//! taken back (the tests need a few hundred pages at most).

use crate::region::{Region, RegionList};

/// The page granule of the ABI and of the host's stage 2.
pub const PAGE_SIZE: usize = 4096;

/// Where the test hosts that run with 1 GiB start looking for pages to give away: above
/// their load address (0x4840_0000, xtask's HOST_KERNEL_ADDR) and clear of their image
/// (the free-page search skips the image, the DTB and the carve-out anyway). The
/// conformance suite's model (tests/conformance/lib) starts its fresh pages here too. The
/// demo host, which `cargo xtask run --mem 256M` runs, starts at its image's end instead.
pub const TEST_HOST_PAGES_FLOOR: usize = 0x5800_0000;

/// A bump allocator over free RAM.
#[derive(Clone, Copy, Debug)]
pub struct FreePages {
    ram: RegionList,
    in_use: RegionList,
    next: usize,
}

impl FreePages {
    /// Pages of `ram` at or above `floor` that overlap nothing in `in_use` (the caller
    /// lists the running image, the DTB and what the DTB reserves).
    pub fn new(ram: &RegionList, in_use: &RegionList, floor: usize) -> Self {
        Self {
            ram: *ram,
            in_use: *in_use,
            next: align_up(floor).unwrap_or(usize::MAX),
        }
    }

    /// The address of `nr` (at least 1) contiguous free pages, or `None` if no RAM bank
    /// has that many left.
    pub fn alloc(&mut self, nr: usize) -> Option<usize> {
        let size = nr.checked_mul(PAGE_SIZE).filter(|&size| size > 0)?;
        loop {
            // The lowest bank that still has memory at or above `next`.
            let bank = self
                .ram
                .iter()
                .filter(|bank| bank.end().unwrap_or(usize::MAX) > self.next)
                .min_by_key(|bank| bank.base)?;
            let bank_end = bank.end().unwrap_or(usize::MAX);
            let start = self.next.max(align_up(bank.base)?);
            let candidate = Region { base: start, size };
            // Every `continue` below moves `next` strictly upwards, so the loop ends.
            match candidate.end() {
                Some(end) if end <= bank_end => {}
                _ => {
                    self.next = bank_end;
                    continue;
                }
            }
            if let Some(clash) = self.in_use.iter().find(|r| r.overlaps(&candidate)) {
                self.next = clash.end().and_then(align_up)?;
                continue;
            }
            self.next = start + size;
            return Some(start);
        }
    }
}

fn align_up(address: usize) -> Option<usize> {
    Some(address.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(regions: &[(usize, usize)]) -> RegionList {
        let mut list = RegionList::new();
        for &(base, size) in regions {
            list.push(Region { base, size }).unwrap();
        }
        list
    }

    #[test]
    fn pages_come_in_order_from_the_floor() {
        let mut pages = FreePages::new(&list(&[(0x4000_0000, 1 << 30)]), &list(&[]), 0x5800_0000);
        assert_eq!(pages.alloc(1), Some(0x5800_0000));
        assert_eq!(pages.alloc(3), Some(0x5800_1000));
        assert_eq!(pages.alloc(1), Some(0x5800_4000));
    }

    #[test]
    fn an_unaligned_floor_is_rounded_up() {
        let mut pages = FreePages::new(&list(&[(0x4000_0000, 1 << 30)]), &list(&[]), 0x5000_0001);
        assert_eq!(pages.alloc(1), Some(0x5000_1000));
    }

    #[test]
    fn memory_in_use_is_skipped() {
        let in_use = list(&[(0x5800_1800, 0x10), (0x5800_3000, 0x1001)]);
        let mut pages = FreePages::new(&list(&[(0x4000_0000, 1 << 30)]), &in_use, 0x5800_0000);
        assert_eq!(pages.alloc(1), Some(0x5800_0000));
        // 0x5800_1000 holds the first reservation; 0x5800_2000 is free but too short.
        assert_eq!(pages.alloc(2), Some(0x5800_5000));
    }

    #[test]
    fn allocation_moves_on_to_the_next_bank_and_ends_with_ram() {
        let ram = list(&[(0x8000_0000, 0x2000), (0x4000_0000, 0x3000)]);
        let mut pages = FreePages::new(&ram, &list(&[]), 0x4000_1000);
        assert_eq!(pages.alloc(2), Some(0x4000_1000));
        assert_eq!(pages.alloc(1), Some(0x8000_0000));
        assert_eq!(pages.alloc(2), None);
    }

    #[test]
    fn zero_pages_and_huge_counts_are_refused() {
        let mut pages = FreePages::new(&list(&[(0x4000_0000, 0x1000)]), &list(&[]), 0);
        assert_eq!(pages.alloc(0), None);
        assert_eq!(pages.alloc(usize::MAX), None);
        assert_eq!(pages.alloc(1), Some(0x4000_0000));
        assert_eq!(pages.alloc(1), None);
    }
}
