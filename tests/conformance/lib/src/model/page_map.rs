//! The model's record of the pages that are not in their default state (or whose content
//! it knows): sorted, non-overlapping runs of pages with the same record, so that a pool
//! of a hundred pages is one entry. Fixed capacity, no allocation.

use crate::states::Content;

/// Most runs the map holds; the suite's cases need a few dozen at a time.
pub const CAPACITY: usize = 512;

/// Who a tracked page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Host,
    SharedHyp,
    /// Mapped in VM slot `vm` at `gfn` (the gfn of the run's first page; each following
    /// page is at the next gfn).
    Guest {
        vm: usize,
        gfn: u64,
        kind: GuestKind,
    },
    /// In VM slot `vm`'s page-table pool.
    Pool {
        vm: usize,
    },
    Reclaimable,
}

/// How a guest holds a page mapped in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestKind {
    Owned,
    Shared,
}

/// A tracked page's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub owner: Owner,
    /// What the model knows of the first word of each page (a run of `Marker` means each
    /// page holds its own marker).
    pub content: Content,
}

impl Record {
    /// The record of the page `offset` pages into a run that starts with `self`.
    fn at(self, offset: u64) -> Self {
        match self.owner {
            Owner::Guest { vm, gfn, kind } => Record {
                owner: Owner::Guest {
                    vm,
                    gfn: gfn + offset,
                    kind,
                },
                content: self.content,
            },
            _ => self,
        }
    }

    /// Whether a run of `len` pages with `self` followed by a run with `next` is one run.
    fn continues_into(self, len: u64, next: Self) -> bool {
        self.at(len) == next
    }
}

#[derive(Clone, Copy, Debug)]
struct Run {
    start: u64,
    end: u64,
    record: Record,
}

/// The map is full: the model cannot follow the case (a limit of the model, reported as
/// such, never as an ABI result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Pages with records, as sorted runs.
#[derive(Clone, Debug)]
pub struct PageMap {
    runs: [Run; CAPACITY],
    len: usize,
}

impl PageMap {
    pub const fn new() -> Self {
        Self {
            runs: [Run {
                start: 0,
                end: 0,
                record: Record {
                    owner: Owner::Host,
                    content: Content::Other,
                },
            }; CAPACITY],
            len: 0,
        }
    }

    fn runs(&self) -> &[Run] {
        &self.runs[..self.len]
    }

    /// The record of page `pfn`, if it is tracked.
    pub fn get(&self, pfn: u64) -> Option<Record> {
        let runs = self.runs();
        let index = runs.partition_point(|run| run.end <= pfn);
        let run = runs.get(index)?;
        (run.start <= pfn).then(|| run.record.at(pfn - run.start))
    }

    /// Every tracked run: (first pfn, page count, record of the first page).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, Record)> + '_ {
        self.runs()
            .iter()
            .map(|run| (run.start, run.end - run.start, run.record))
    }

    /// Records `record` for pages `start..start + nr` (`record` is the first page's).
    pub fn set(&mut self, start: u64, nr: u64, record: Record) -> Result<(), Full> {
        let end = start.saturating_add(nr);
        self.remove(start, nr)?;
        let index = self.runs().partition_point(|run| run.end <= start);
        self.insert(index, Run { start, end, record })?;
        self.merge_around(index);
        Ok(())
    }

    /// Forgets pages `start..start + nr`.
    pub fn remove(&mut self, start: u64, nr: u64) -> Result<(), Full> {
        let end = start.saturating_add(nr);
        let mut index = self.runs().partition_point(|run| run.end <= start);
        while index < self.len && self.runs[index].start < end {
            let run = self.runs[index];
            let before = (run.start < start).then_some(Run {
                start: run.start,
                end: start,
                record: run.record,
            });
            let after = (run.end > end).then(|| Run {
                start: end,
                end: run.end,
                record: run.record.at(end - run.start),
            });
            self.delete(index);
            if let Some(after) = after {
                self.insert(index, after)?;
            }
            if let Some(before) = before {
                self.insert(index, before)?;
                index += 1;
            }
            if after.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Changes the record of every run `change` maps to `Some`, in place.
    pub fn rewrite(&mut self, mut change: impl FnMut(Record) -> Option<Record>) {
        for run in self.runs[..self.len].iter_mut() {
            if let Some(record) = change(run.record) {
                run.record = record;
            }
        }
    }

    fn insert(&mut self, index: usize, run: Run) -> Result<(), Full> {
        if self.len == CAPACITY {
            return Err(Full);
        }
        self.runs.copy_within(index..self.len, index + 1);
        self.runs[index] = run;
        self.len += 1;
        Ok(())
    }

    fn delete(&mut self, index: usize) {
        self.runs.copy_within(index + 1..self.len, index);
        self.len -= 1;
    }

    /// Joins the run at `index` with its neighbours where one continues into the other.
    fn merge_around(&mut self, index: usize) {
        let mut index = index;
        if index > 0 {
            let (left, right) = (self.runs[index - 1], self.runs[index]);
            if left.end == right.start
                && left
                    .record
                    .continues_into(left.end - left.start, right.record)
            {
                self.runs[index - 1].end = right.end;
                self.delete(index);
                index -= 1;
            }
        }
        if index + 1 < self.len {
            let (left, right) = (self.runs[index], self.runs[index + 1]);
            if left.end == right.start
                && left
                    .record
                    .continues_into(left.end - left.start, right.record)
            {
                self.runs[index].end = right.end;
                self.delete(index + 1);
            }
        }
    }
}

impl Default for PageMap {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Record = Record {
        owner: Owner::Host,
        content: Content::Marker,
    };
    const POOL: Record = Record {
        owner: Owner::Pool { vm: 0 },
        content: Content::Other,
    };

    fn guest(gfn: u64) -> Record {
        Record {
            owner: Owner::Guest {
                vm: 1,
                gfn,
                kind: GuestKind::Owned,
            },
            content: Content::Marker,
        }
    }

    #[test]
    fn a_range_is_one_run_and_reads_back_per_page() {
        let mut map = PageMap::new();
        map.set(100, 50, guest(0x4_0000)).unwrap();
        assert_eq!(map.iter().count(), 1);
        assert_eq!(map.get(99), None);
        assert_eq!(map.get(100), Some(guest(0x4_0000)));
        assert_eq!(map.get(149), Some(guest(0x4_0031)));
        assert_eq!(map.get(150), None);
    }

    #[test]
    fn setting_inside_a_run_splits_it_and_keeps_the_gfns() {
        let mut map = PageMap::new();
        map.set(100, 10, guest(0x10)).unwrap();
        map.set(104, 2, POOL).unwrap();
        assert_eq!(map.iter().count(), 3);
        assert_eq!(map.get(103), Some(guest(0x13)));
        assert_eq!(map.get(104), Some(POOL));
        assert_eq!(map.get(106), Some(guest(0x16)));
    }

    #[test]
    fn adjacent_continuing_runs_merge() {
        let mut map = PageMap::new();
        map.set(10, 1, guest(5)).unwrap();
        map.set(11, 1, guest(6)).unwrap();
        assert_eq!(map.iter().count(), 1);
        map.set(12, 1, guest(9)).unwrap();
        assert_eq!(map.iter().count(), 2);
        map.set(20, 1, HOST).unwrap();
        map.set(21, 1, HOST).unwrap();
        assert_eq!(map.iter().count(), 3);
    }

    #[test]
    fn removal_spanning_runs_keeps_the_outside_parts() {
        let mut map = PageMap::new();
        map.set(0, 10, HOST).unwrap();
        map.set(10, 10, POOL).unwrap();
        map.remove(5, 10).unwrap();
        assert_eq!(map.get(4), Some(HOST));
        assert_eq!(map.get(5), None);
        assert_eq!(map.get(14), None);
        assert_eq!(map.get(15), Some(POOL));
    }

    #[test]
    fn a_full_map_refuses_instead_of_panicking() {
        let mut map = PageMap::new();
        for i in 0..CAPACITY as u64 {
            map.set(i * 2, 1, HOST).unwrap();
        }
        assert_eq!(map.set(10_000, 1, HOST), Err(Full));
        // Splitting a run needs one more entry, too.
        let mut map = PageMap::new();
        for i in 0..CAPACITY as u64 {
            map.set(i * 10, 5, HOST).unwrap();
        }
        assert_eq!(map.remove(1, 1), Err(Full));
    }
}
