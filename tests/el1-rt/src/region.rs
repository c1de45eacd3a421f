//! Physical address ranges and fixed-capacity lists of them (no allocator exists).

/// Most regions a [`RegionList`] holds.
pub const MAX_REGIONS: usize = 64;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Region {
    pub base: usize,
    pub size: usize,
}

impl Region {
    /// The first address after the region, or `None` if that does not fit in `usize`.
    pub fn end(&self) -> Option<usize> {
        self.base.checked_add(self.size)
    }

    /// Whether `other` lies entirely inside this region.
    pub fn contains(&self, other: &Region) -> bool {
        match (self.end(), other.end()) {
            (Some(end), Some(other_end)) => self.base <= other.base && other_end <= end,
            _ => false,
        }
    }

    /// Whether the two regions share at least one byte. A region whose end does not fit
    /// in `usize` reaches to the top of the address space.
    pub fn overlaps(&self, other: &Region) -> bool {
        if self.size == 0 || other.size == 0 {
            return false;
        }
        let end = self.end().unwrap_or(usize::MAX);
        let other_end = other.end().unwrap_or(usize::MAX);
        self.base < other_end && other.base < end
    }
}

/// Why a region could not be added to a [`RegionList`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ListFull;

/// A fixed-capacity list of regions.
#[derive(Clone, Copy, Debug)]
pub struct RegionList {
    items: [Region; MAX_REGIONS],
    len: usize,
}

impl RegionList {
    pub const fn new() -> Self {
        Self {
            items: [Region { base: 0, size: 0 }; MAX_REGIONS],
            len: 0,
        }
    }

    pub fn push(&mut self, region: Region) -> Result<(), ListFull> {
        let slot = self.items.get_mut(self.len).ok_or(ListFull)?;
        *slot = region;
        self.len += 1;
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.items[..self.len].iter()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Default for RegionList {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_needs_a_common_byte() {
        let a = Region {
            base: 0x1000,
            size: 0x1000,
        };
        let touching = Region {
            base: 0x2000,
            size: 0x1000,
        };
        let inside = Region {
            base: 0x1800,
            size: 8,
        };
        assert!(!a.overlaps(&touching));
        assert!(a.overlaps(&inside) && inside.overlaps(&a));
        assert!(!a.overlaps(&Region {
            base: 0x1800,
            size: 0
        }));
    }

    #[test]
    fn a_region_reaching_the_top_overlaps_what_lies_above_its_base() {
        let top = Region {
            base: usize::MAX - 10,
            size: 100,
        };
        assert!(top.overlaps(&Region {
            base: usize::MAX - 1,
            size: 1
        }));
    }

    #[test]
    fn list_refuses_more_than_its_capacity() {
        let mut list = RegionList::new();
        for i in 0..MAX_REGIONS {
            assert_eq!(list.push(Region { base: i, size: 1 }), Ok(()));
        }
        assert_eq!(list.push(Region { base: 0, size: 1 }), Err(ListFull));
        assert_eq!(list.len(), MAX_REGIONS);
    }
}
