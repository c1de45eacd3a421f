//! The parts of an SMMUv3 driver that are pure data (Arm IHI 0070): where EL2 puts the SMMU's
//! structures and what its stream table entry and context descriptor say (`tables`), the
//! commands it issues and which invalidation a revocation needs (`commands`), queue pointer
//! arithmetic (`queue_index`), event names (`events`) and which stage the host's streams use
//! (`mode`). They are tested here; the EL2
//! binary (`el2/src/smmu`) drives the registers with them.

pub mod commands;
pub mod events;
pub mod mode;
#[cfg(test)]
mod qemu_decode;
pub mod queue_index;
#[cfg(test)]
pub(crate) mod s2_walk;
pub mod tables;
