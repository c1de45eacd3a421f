//! Fixed-capacity storage for discovery results: EL2 parses the DTB before it has a heap, and a
//! full list must be reported, never silently truncated.

use core::fmt;
use core::ops::Deref;

/// Granule used to page-align MMIO regions.
pub const PAGE_SIZE: u64 = 4096;

/// A physical address range `[base, base + size)`. Constructed ranges never wrap past 2^64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemRange {
    pub base: u64,
    pub size: u64,
}

impl MemRange {
    /// `None` if `base + size` overflows 64 bits.
    pub const fn new(base: u64, size: u64) -> Option<Self> {
        match base.checked_add(size) {
            Some(_) => Some(Self { base, size }),
            None => None,
        }
    }

    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// True if the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &MemRange) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// The smallest page-aligned range containing `self`; `None` if that would pass 2^64.
    pub fn page_aligned(&self) -> Option<Self> {
        let base = self.base & !(PAGE_SIZE - 1);
        let end = self.end().checked_next_multiple_of(PAGE_SIZE)?;
        Some(Self {
            base,
            size: end - base,
        })
    }
}

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.base, self.end())
    }
}

/// The list is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListFull;

/// An array with a length: at most `N` elements, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedList<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for FixedList<T, N> {
    fn default() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> FixedList<T, N> {
    /// Maximum number of elements.
    pub const CAPACITY: usize = N;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }

    /// Appends `item`; `Err(ListFull)` if `N` elements are already stored.
    pub fn push(&mut self, item: T) -> Result<(), ListFull> {
        let slot = self.items.get_mut(self.len).ok_or(ListFull)?;
        *slot = item;
        self.len += 1;
        Ok(())
    }

    fn insert_at(&mut self, index: usize, item: T) -> Result<(), ListFull> {
        if self.len == N {
            return Err(ListFull);
        }
        self.items.copy_within(index..self.len, index + 1);
        self.items[index] = item;
        self.len += 1;
        Ok(())
    }

    fn remove_range(&mut self, start: usize, end: usize) {
        self.items.copy_within(end..self.len, start);
        self.len -= end - start;
    }
}

impl<T: Copy + Default + Ord, const N: usize> FixedList<T, N> {
    /// Sorts the stored elements.
    pub fn sort(&mut self) {
        self.items[..self.len].sort_unstable();
    }
}

impl<const N: usize> FixedList<MemRange, N> {
    /// Inserts `range` into a list kept sorted and coalesced: ranges that overlap or touch
    /// `range` are merged with it. `Err(ListFull)` only if a new disjoint entry is needed and
    /// the list is full.
    pub fn insert_merged(&mut self, range: MemRange) -> Result<(), ListFull> {
        let items = self.as_slice();
        // Entries are sorted and pairwise separated by a gap, so those touching `range` form
        // one run [first, last).
        let first = items.partition_point(|r| r.end() < range.base);
        let last = first + items[first..].partition_point(|r| r.base <= range.end());
        if first == last {
            return self.insert_at(first, range);
        }
        let base = items[first].base.min(range.base);
        let end = items[last - 1].end().max(range.end());
        self.items[first] = MemRange {
            base,
            size: end - base,
        };
        self.remove_range(first + 1, last);
        Ok(())
    }

    /// Removes every byte of `hole` from the list (kept sorted; an entry that straddles the
    /// hole is split in two). `Err(ListFull)` only if a split needs a slot the list lacks;
    /// the list is then unchanged.
    pub fn remove(&mut self, hole: MemRange) -> Result<(), ListFull> {
        let mut out = Self::new();
        for r in self.as_slice() {
            if !r.overlaps(&hole) {
                out.push(*r)?;
                continue;
            }
            if r.base < hole.base {
                out.push(MemRange {
                    base: r.base,
                    size: hole.base - r.base,
                })?;
            }
            if hole.end() < r.end() {
                out.push(MemRange {
                    base: hole.end(),
                    size: r.end() - hole.end(),
                })?;
            }
        }
        *self = out;
        Ok(())
    }
}

impl<T: Copy + Default, const N: usize> Deref for FixedList<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Copy + Default + fmt::Debug, const N: usize> fmt::Debug for FixedList<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: u64, size: u64) -> MemRange {
        MemRange::new(base, size).unwrap()
    }

    #[test]
    fn push_reports_full_list() {
        let mut list = FixedList::<u64, 2>::new();
        list.push(1).unwrap();
        list.push(2).unwrap();
        assert_eq!(list.push(3), Err(ListFull));
        assert_eq!(list.as_slice(), &[1, 2]);
    }

    #[test]
    fn insert_merged_keeps_sorted_disjoint_ranges() {
        let mut list = FixedList::<MemRange, 4>::new();
        list.insert_merged(r(0x3000, 0x1000)).unwrap();
        list.insert_merged(r(0x1000, 0x1000)).unwrap();
        list.insert_merged(r(0x8000, 0x1000)).unwrap();
        assert_eq!(
            list.as_slice(),
            &[r(0x1000, 0x1000), r(0x3000, 0x1000), r(0x8000, 0x1000)]
        );
        // Touching both neighbours merges all three.
        list.insert_merged(r(0x2000, 0x1000)).unwrap();
        assert_eq!(list.as_slice(), &[r(0x1000, 0x3000), r(0x8000, 0x1000)]);
        // Contained range changes nothing; overlapping one extends.
        list.insert_merged(r(0x1800, 0x10)).unwrap();
        list.insert_merged(r(0x8800, 0x1000)).unwrap();
        assert_eq!(list.as_slice(), &[r(0x1000, 0x3000), r(0x8000, 0x1800)]);
        // A range spanning everything collapses the list to one entry.
        list.insert_merged(r(0, 0x10000)).unwrap();
        assert_eq!(list.as_slice(), &[r(0, 0x10000)]);
    }

    #[test]
    fn insert_merged_reports_full_only_for_new_entries() {
        let mut list = FixedList::<MemRange, 1>::new();
        list.insert_merged(r(0x1000, 0x1000)).unwrap();
        list.insert_merged(r(0x2000, 0x1000)).unwrap();
        assert_eq!(list.insert_merged(r(0x9000, 0x1000)), Err(ListFull));
        assert_eq!(list.as_slice(), &[r(0x1000, 0x2000)]);
    }

    #[test]
    fn page_alignment_rounds_outward() {
        assert_eq!(
            r(0x9020000, 0x18).page_aligned(),
            Some(r(0x9020000, 0x1000))
        );
        assert_eq!(r(0x1fff, 2).page_aligned(), Some(r(0x1000, 0x2000)));
        assert_eq!(r(u64::MAX - 10, 5).page_aligned(), None);
        assert_eq!(MemRange::new(u64::MAX, 1), None);
    }
}
