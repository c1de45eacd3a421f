//! Logical CPU numbers and their MPIDRs, in storage the caller sizes from the DTB.
//!
//! Logical CPU 0 is the boot CPU; the others follow the DTB's order (a boot CPU the DTB
//! does not list still gets number 0). MPIDR affinities are sparse on real machines
//! (Aff1 = cluster, Aff2 = socket: 0x0, 0x1, 0x100, 0x10000, ...), so the reverse lookup
//! is a binary search over a copy sorted by MPIDR, never an index by Aff0 or a dense
//! array: O(log n) whatever the numbering, with no size that depends on affinity values.

/// The MPIDR affinity fields (Aff3, Aff2, Aff1, Aff0) that name a CPU (Arm ARM D23.2,
/// MPIDR_EL1); the other bits (U, MT, RES1 bit 31) are not part of its name.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// Storage bytes each CPU takes in a [`CpuMap`]: its MPIDR by number, and one sorted entry.
pub const BYTES_PER_CPU: usize = core::mem::size_of::<u64>() + core::mem::size_of::<SortedEntry>();

/// One entry of the by-MPIDR copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SortedEntry {
    mpidr: u64,
    index: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMapError {
    /// The storage holds fewer CPUs than the DTB lists (the caller sized it with
    /// [`cpu_count`], so this means the two disagree).
    StorageTooSmall { cpus: usize },
    /// Two CPU nodes have the same MPIDR affinity: PSCI could not tell them apart.
    DuplicateMpidr(u64),
}

impl core::fmt::Display for CpuMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::StorageTooSmall { cpus } => {
                write!(f, "per-CPU storage holds only {cpus} CPUs")
            }
            Self::DuplicateMpidr(m) => write!(f, "two CPU nodes have MPIDR {m:#x}"),
        }
    }
}

/// How many logical CPUs the boot CPU and the DTB's CPU list make: the list, plus the boot
/// CPU if the list does not name it. `dtb_mpidrs` calls its argument with each MPIDR
/// (`fdt_discovery::Cpus::for_each` does, with no allocator).
pub fn cpu_count(boot_mpidr: u64, dtb_mpidrs: impl FnOnce(&mut dyn FnMut(u64))) -> usize {
    let boot = boot_mpidr & MPIDR_AFFINITY_MASK;
    let (mut count, mut has_boot) = (0, false);
    dtb_mpidrs(&mut |m| {
        count += 1;
        has_boot |= m & MPIDR_AFFINITY_MASK == boot;
    });
    count + usize::from(!has_boot)
}

/// The map, over storage the caller owns.
pub struct CpuMap<'s> {
    by_index: &'s [u64],
    by_mpidr: &'s [SortedEntry],
}

impl<'s> CpuMap<'s> {
    /// Numbers the CPUs (boot CPU 0, then DTB order) into `by_index` and `by_mpidr`, which
    /// must each hold [`cpu_count`] entries (extra entries are left unused).
    pub fn build(
        boot_mpidr: u64,
        dtb_mpidrs: impl FnOnce(&mut dyn FnMut(u64)),
        by_index: &'s mut [u64],
        by_mpidr: &'s mut [SortedEntry],
    ) -> Result<Self, CpuMapError> {
        let capacity = by_index.len().min(by_mpidr.len());
        let boot = boot_mpidr & MPIDR_AFFINITY_MASK;
        if capacity == 0 {
            return Err(CpuMapError::StorageTooSmall { cpus: 0 });
        }
        by_index[0] = boot;
        let (mut count, mut full) = (1, false);
        dtb_mpidrs(&mut |m| {
            let m = m & MPIDR_AFFINITY_MASK;
            if m == boot {
                return;
            }
            if count == capacity {
                full = true;
                return;
            }
            by_index[count] = m;
            count += 1;
        });
        if full {
            return Err(CpuMapError::StorageTooSmall { cpus: capacity });
        }
        for (i, entry) in by_mpidr[..count].iter_mut().enumerate() {
            *entry = SortedEntry {
                mpidr: by_index[i],
                index: i as u64,
            };
        }
        let by_mpidr = &mut by_mpidr[..count];
        by_mpidr.sort_unstable_by_key(|e| e.mpidr);
        if let Some(pair) = by_mpidr.windows(2).find(|p| p[0].mpidr == p[1].mpidr) {
            return Err(CpuMapError::DuplicateMpidr(pair[0].mpidr));
        }
        Ok(Self {
            by_index: &by_index[..count],
            by_mpidr,
        })
    }

    pub fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Never true: the boot CPU is always there.
    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// Logical number of the CPU with this MPIDR (non-affinity bits ignored).
    pub fn logical_id(&self, mpidr: u64) -> Option<usize> {
        let m = mpidr & MPIDR_AFFINITY_MASK;
        self.by_mpidr
            .binary_search_by_key(&m, |e| e.mpidr)
            .ok()
            .map(|at| self.by_mpidr[at].index as usize)
    }

    /// MPIDR affinity of logical CPU `cpu`, if there is one.
    pub fn mpidr_of(&self, cpu: usize) -> Option<u64> {
        self.by_index.get(cpu).copied()
    }
}
