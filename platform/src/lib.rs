//! Board support for the EL2 payload on arm64: what the device tree says about the machine,
//! the device tree the host gets, the console and the PSCI conduit.
//!
//! - [`fdt_discovery`]: reads the loader's DTB into a [`fdt_discovery::BootInfo`] (no alloc).
//! - `host_dtb`: writes the host's DTB with EL2's edits (uses `alloc`; feature `host-dtb`,
//!   on by default).
//! - [`console`]: PL011 console and `log` backend (first thing the payload sets up).
//! - [`psci`]: SMC/HVC conduit to PSCI firmware.
//! - [`gicr_rd`]: what the host may do with a GICv3 redistributor's RD_base frame (EL2
//!   emulates it), and how a trapped access is decoded.
//! - [`midr`], [`branch_hardening`], [`speculative_at`]: which core a CPU is, and the
//!   Spectre-v2/BHB mitigation and speculative-AT erratum sequences it needs.
//! - [`id_regs`], [`guest_traps`]: the CPU's feature fields, the sanitised ID registers a
//!   guest reads, and the trap controls a guest runs under.
//!
//! The device-tree parts are plain logic and are tested on the development machine against
//! DTBs dumped from QEMU (`tests/data/`).

#![cfg_attr(not(test), no_std)]

// Only the host DTB writer allocates; without it (the EL1 test hosts, which have no
// allocator) the crate does not link `alloc` at all.
#[cfg(feature = "host-dtb")]
extern crate alloc;

pub mod branch_hardening;
pub mod console;
pub mod cpu_map;
pub mod fdt_check;
pub mod fdt_discovery;
#[cfg(feature = "host-dtb")]
pub mod fdt_long_names;
mod fdt_tree;
pub mod fixed_list;
pub mod gicr_rd;
pub mod guest_traps;
pub mod host_controls;
#[cfg(feature = "host-dtb")]
pub mod host_dtb;
pub mod id_regs;
pub mod midr;
pub mod psci;
pub mod speculative_at;

pub use fdt_check::FdtFormatError;
pub use fdt_discovery::{BootInfo, DiscoveryError, discover};
pub use fixed_list::{FixedList, MemRange};
#[cfg(feature = "host-dtb")]
pub use host_dtb::{HostDtbEdits, HostDtbError, write_host_dtb};
