//! What the host stage-2 holds: the lazy fix-up of host stage-2 faults, and the up-front
//! mapping at start-up.

use super::{FaultAction, Owner, Ownership, OwnershipError, PageState, commit_error};
use crate::pgtable::{MemKind, Stage2Error};
use crate::pool::{PAGE_SIZE, granule_at_level};

/// Whether a host stage-2 abort with fault status code `fsc` (ESR_EL2.ISS[5:0], DFSC or
/// IFSC) can be fixed by mapping: only a translation fault, 0b0001LL for levels 0-3 or
/// 0b101011 for level -1 (FEAT_LPA2) (Arm ARM, ISS encoding for an exception from a Data or
/// Instruction Abort). Every other status (address size, access flag, permission, such as an
/// instruction fetch from MMIO the host stage-2 maps execute-never; alignment; TLB conflict;
/// an atomic or exclusive access the memory type does not support, 0b110101; external
/// aborts) would fault again on the mapping EL2 would make: retrying would keep the CPU in
/// EL2 forever, so it must become an abort in the host.
pub fn host_fault_is_fixable_by_mapping(fsc: u64) -> bool {
    let fsc = fsc & 0x3f;
    fsc & 0x3c == 0x04 || fsc == 0x2b
}

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// The largest block around `ipa` the host may have mapped: `(start, end, kind)`, or
    /// `None` if the host may not access `ipa`.
    pub fn host_fault_block(&self, ipa: usize) -> Option<(usize, usize, MemKind)> {
        let page = ipa & !(PAGE_SIZE - 1);
        let block = |level: usize| {
            let size = granule_at_level(level);
            let s = page & !(size - 1);
            (s, s + size)
        };
        if let Some(bank) = self.banks[..self.n_banks]
            .iter()
            .find(|b| b.start <= page && page < b.end)
        {
            if !self.page_state(page)?.host_may_access() {
                return None;
            }
            let fits = |(s, e): (usize, usize)| {
                bank.start <= s && e <= bank.end && self.all_pages(s, e, PageState::host_may_access)
            };
            // A 1 GiB block can only be allowed if its 2 MiB block is: test the cheap one first.
            let (s, e) = if !fits(block(2)) {
                block(3)
            } else if fits(block(1)) {
                block(1)
            } else {
                block(2)
            };
            return Some((s, e, MemKind::Normal));
        }
        let &(ms, me) = self
            .mmio_ranges()
            .iter()
            .find(|&&(s, e)| s <= page && page < e)?;
        [1, 2, 3]
            .into_iter()
            .map(block)
            .find(|&(s, e)| ms <= s && e <= me)
            .map(|(s, e)| (s, e, MemKind::Device))
    }

    /// Handles a host stage-2 fault at `ipa`: if the host may access it, maps the largest block
    /// around it that ownership allows (RAM) or that lies in its MMIO range (devices), and
    /// says to retry; otherwise says to inject an abort; for a page a teardown under way
    /// has already moved, says to retry later (`FaultAction::RetryLater`).
    pub fn host_handle_fault(&mut self, ipa: usize) -> FaultAction {
        if self.n_dying != 0
            && let Some(PageState::PendingReclaim(vm)) = self.page_state(ipa)
            && self.vm_dying(vm)
        {
            return FaultAction::RetryLater;
        }
        let Some((s, e, kind)) = self.host_fault_block(ipa) else {
            return FaultAction::InjectAbort;
        };
        match self.host.map_identity(s, e, kind) {
            Ok(()) => FaultAction::MapAndRetry,
            Err(Stage2Error::NoMemory { .. }) => FaultAction::PoolExhausted,
            // Cannot happen: the block holds only pages the host may map, with the same
            // attributes as whatever is mapped there already.
            Err(_) => FaultAction::InjectAbort,
        }
    }

    /// Maps everything the host may access now, RAM and MMIO, with the largest blocks: for
    /// start-up, instead of taking a fault per block. Stops at the first error (what was
    /// mapped stays mapped, and is all host memory).
    ///
    /// # Errors
    ///
    /// `NoMemory` if the host pool runs short.
    pub fn host_map_all(&mut self) -> Result<(), OwnershipError> {
        // At boot nearly every entry is the host's: compare the raw entry with the host's
        // encoding first and decode only the others (this loop runs once per 4 KiB of RAM,
        // so it is the payload's boot time).
        let host = PageState::Owned(Owner::Host).encode();
        for b in 0..self.n_banks {
            let bank = self.banks[b];
            let mut run: Option<usize> = None;
            let pages = (bank.end - bank.start) / PAGE_SIZE;
            for i in 0..=pages {
                let pa = bank.start + i * PAGE_SIZE;
                let ok = i < pages && {
                    let entry = self.meta[bank.first_entry + i];
                    entry == host || self.state_at(bank.first_entry + i).host_may_access()
                };
                match (ok, run) {
                    (true, None) => run = Some(pa),
                    (false, Some(s)) => {
                        self.host
                            .map_identity(s, pa, MemKind::Normal)
                            .map_err(commit_error)?;
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        for &(s, e) in self.mmio {
            self.host
                .map_identity(s, e, MemKind::Device)
                .map_err(commit_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::host_fault_is_fixable_by_mapping as fixable;

    #[test]
    fn only_translation_faults_are_fixed_by_mapping() {
        for level in 0..4 {
            assert!(fixable(0x04 | level), "translation fault, level {level}");
            assert!(!fixable(level), "address size fault, level {level}");
            assert!(!fixable(0x08 | level), "access flag fault, level {level}");
            assert!(!fixable(0x0c | level), "permission fault, level {level}");
        }
        assert!(fixable(0x2b), "translation fault, level -1");
        for (fsc, what) in [
            (0x10, "synchronous external abort"),
            (0x21, "alignment fault"),
            (0x30, "TLB conflict abort"),
            (0x31, "unsupported atomic hardware update"),
            (0x35, "unsupported exclusive or atomic access"),
            (0x29, "address size fault, level -1"),
        ] {
            assert!(!fixable(fsc), "{what} ({fsc:#x})");
        }
        // Only ISS[5:0] counts: WnR and friends above it do not change the answer.
        assert!(fixable(0x40 | 0x07));
        assert!(!fixable(0x40 | 0x0f));
    }
}
