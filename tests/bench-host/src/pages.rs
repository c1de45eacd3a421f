//! Host pages for the bench to give away, from el1-rt's free-page allocator, optionally
//! aligned (a 512-page range on a 2 MiB boundary, as a guest's RAM usually is).

use el1_rt::boot::Platform;
use el1_rt::fail;
use el1_rt::free_pages::{FreePages, PAGE_SIZE, TEST_HOST_PAGES_FLOOR};

/// 512 pages: one 2 MiB block.
pub const BLOCK_PAGES: u64 = 512;

pub struct Pages {
    free: FreePages,
}

impl Pages {
    pub fn new(platform: &Platform) -> Self {
        match platform.free_pages(TEST_HOST_PAGES_FLOOR) {
            Ok(free) => Self { free },
            Err(_) => fail!("the DTB reserves more regions than el1-rt can list"),
        }
    }

    /// The allocator itself, for el1-rt's VM builders.
    pub fn free_pages(&mut self) -> &mut FreePages {
        &mut self.free
    }

    /// The first pfn of `nr` contiguous free pages, the first one aligned to `align` pages
    /// (a power of two). The pages are never given back to the allocator.
    pub fn alloc(&mut self, nr: u64, align: u64) -> u64 {
        let span = nr + align - 1;
        let Some(address) = usize::try_from(span).ok().and_then(|n| self.free.alloc(n)) else {
            fail!("no {nr} free contiguous pages left for the bench");
        };
        let pfn = (address / PAGE_SIZE) as u64;
        pfn.next_multiple_of(align)
    }
}
