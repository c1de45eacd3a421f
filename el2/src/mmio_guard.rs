//! The MMIO guard of one VM (docs/abi.md 5.6): the IPA pages its guest registered as MMIO.
//! A guest access to an IPA with no page reaches the host as an MMIO exit, with the data
//! of a store, only for a registered page; anything else is a MEM_FAULT exit without data
//! (issue 9, attack 3: an unbacked store must not carry the guest's secret to the host).
//!
//! A fixed list per VM ([`MAX_MMIO_GUARD_PAGES`]), kept in the VM table under its lock:
//! no allocation, and the bound is part of the ABI (a full list gives BUSY).

use hvc_abi::limits::MAX_MMIO_GUARD_PAGES;

const SLOTS: usize = MAX_MMIO_GUARD_PAGES as usize;

/// Registered guest frames (IPA >> 12); `count` of them are in use, in any order.
#[derive(Clone, Copy)]
pub struct MmioGuard {
    gfns: [u64; SLOTS],
    count: usize,
}

/// The list is full.
pub struct Full;

impl MmioGuard {
    pub const EMPTY: Self = Self {
        gfns: [0; SLOTS],
        count: 0,
    };

    fn used(&self) -> &[u64] {
        self.gfns.get(..self.count).unwrap_or(&[])
    }

    /// Whether guest frame `gfn` is registered.
    pub fn contains(&self, gfn: u64) -> bool {
        self.used().contains(&gfn)
    }

    /// Whether any frame of `gfn..gfn + nr` is registered.
    pub fn any_in(&self, gfn: u64, nr: u64) -> bool {
        self.used().iter().any(|&g| g >= gfn && g - gfn < nr)
    }

    /// Registers `gfn`; registering it again changes nothing.
    pub fn insert(&mut self, gfn: u64) -> Result<(), Full> {
        if self.contains(gfn) {
            return Ok(());
        }
        let slot = self.gfns.get_mut(self.count).ok_or(Full)?;
        *slot = gfn;
        self.count += 1;
        Ok(())
    }

    /// Unregisters `gfn`; `false` if it was not registered.
    pub fn remove(&mut self, gfn: u64) -> bool {
        let Some(index) = self.used().iter().position(|&g| g == gfn) else {
            return false;
        };
        // Order does not matter: the last entry fills the hole.
        self.count -= 1;
        self.gfns.swap(index, self.count);
        true
    }
}
