//! The parts of an SMMUv3 driver that are pure data (Arm IHI 0070): where EL2 puts the SMMU's
//! structures and what its stream table entry and context descriptor say (`tables`), the
//! commands it issues and which invalidation a revocation needs (`commands`), queue pointer
//! arithmetic (`queue_index`) and event names (`events`). They are tested here; the EL2
//! binary (`el2/src/smmu`) drives the registers with them.

pub mod commands;
pub mod events;
pub mod queue_index;
pub mod tables;
