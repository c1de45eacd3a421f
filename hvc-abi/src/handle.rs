//! VM handles.
//!
//! To the host a handle is an opaque nonzero 64-bit value. The payload builds it from a VM
//! slot and that slot's generation, so a handle of a destroyed VM never names a later VM
//! in the same slot: every call given it returns NOT_FOUND.

use crate::limits::MAX_VMS;

/// Bits [15:0]: the slot.
const SLOT_BITS: u32 = 16;
/// Bits [47:16]: the generation, never 0.
const GENERATION_BITS: u32 = 32;

/// A VM handle as it travels in a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmHandle(pub u64);

impl VmHandle {
    /// The handle of `slot` in its `generation`; `None` if `generation` is 0 or `slot`
    /// is not below [`MAX_VMS`].
    pub const fn new(slot: u16, generation: u32) -> Option<Self> {
        if generation == 0 || slot as u32 >= MAX_VMS {
            None
        } else {
            Some(Self(((generation as u64) << SLOT_BITS) | slot as u64))
        }
    }

    /// The register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The slot and generation, or `None` if the value cannot be a handle the payload
    /// issued (such a value gets NOT_FOUND like any other unknown handle).
    pub const fn parts(self) -> Option<(u16, u32)> {
        let slot = self.0 as u16;
        let generation = (self.0 >> SLOT_BITS) as u32;
        if self.0 >> (SLOT_BITS + GENERATION_BITS) != 0 || generation == 0 {
            return None;
        }
        if slot as u32 >= MAX_VMS {
            return None;
        }
        Some((slot, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_never_zero() {
        assert_eq!(VmHandle::new(0, 0), None);
        assert_ne!(VmHandle::new(0, 1).unwrap().raw(), 0);
    }

    #[test]
    fn parts_round_trip() {
        let h = VmHandle::new(15, u32::MAX).unwrap();
        assert_eq!(h.parts(), Some((15, u32::MAX)));
    }

    #[test]
    fn a_new_generation_gives_a_different_handle() {
        assert_ne!(VmHandle::new(3, 1), VmHandle::new(3, 2));
    }

    #[test]
    fn values_the_payload_never_issues_have_no_parts() {
        for raw in [0, 5, 1 << 48, u64::MAX, (1 << 16) | 16] {
            assert_eq!(VmHandle(raw).parts(), None, "{raw:#x}");
        }
    }
}
