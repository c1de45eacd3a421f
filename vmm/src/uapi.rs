//! Typed bindings for `linux-driver/include/uapi/linux/el2_pvm.h` (same names, same
//! layouts; the size assertions below fail the build if one drifts). The whole header is
//! bound, whether this VMM uses each name or not.
#![allow(dead_code)]

/// `EL2_PVM_DEVICE`.
pub const DEVICE: &str = "/dev/el2-pvm";
pub const API_VERSION: i32 = 1;
pub const PAGE_SIZE: usize = 4096;
pub const MAX_GUEST_MEMFD_SIZE: u64 = 1 << 30;
pub const GUEST_MEMFD_FLAG_MMAP: u64 = 1;
pub const RUN_MMAP_SIZE: usize = 4096;

const IO: u64 = 0xE2;

/// Linux's `_IOC` on arm64 (asm-generic/ioctl.h): dir in [31:30], size in [29:16].
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (IO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(0, nr, 0)
}
const fn iow<T>(nr: u64) -> u64 {
    ioc(1, nr, core::mem::size_of::<T>())
}
const fn ior<T>(nr: u64) -> u64 {
    ioc(2, nr, core::mem::size_of::<T>())
}

pub const GET_API_VERSION: u64 = io(0x00);
pub const CREATE_VM: u64 = iow::<CreateVm>(0x01);
pub const GET_STATS: u64 = ior::<Stats>(0x02);
pub const CREATE_GUEST_MEMFD: u64 = iow::<CreateGuestMemfd>(0x10);
pub const SET_MEMORY: u64 = iow::<MemoryRegion>(0x11);
pub const CREATE_VCPU: u64 = iow::<CreateVcpu>(0x12);
pub const RUN: u64 = io(0x20);

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateVm {
    pub nr_vcpus: u32,
    pub ipa_bits: u32,
    pub flags: u64,
    pub reserved: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub vms: u64,
    pub pages_held: u64,
    pub pages_reclaimed: u64,
    pub pages_reclaimed_nonzero: u64,
    pub pages_lost: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateGuestMemfd {
    pub size: u64,
    pub flags: u64,
    pub reserved: [u64; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryRegion {
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub guest_memfd_offset: u64,
    pub guest_memfd: u32,
    pub flags: u32,
    pub init_addr: u64,
    pub init_size: u64,
    pub reserved: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateVcpu {
    pub index: u32,
    pub flags: u32,
    pub entry_ipa: u64,
    pub x0: u64,
    pub reserved: [u64; 2],
}

/// `enum el2_pvm_exit_reason`.
pub mod exit {
    pub const NONE: u32 = 0;
    pub const MMIO: u32 = 1;
    pub const HYPERCALL: u32 = 2;
    pub const MEM_SHARED: u32 = 3;
    pub const MEM_UNSHARED: u32 = 4;
    pub const MEM_RELINQUISHED: u32 = 5;
    pub const MEM_FAULT: u32 = 6;
    pub const SYSTEM_OFF: u32 = 7;
    pub const SYSTEM_RESET: u32 = 8;
    pub const VCPU_STARTED: u32 = 9;
    pub const VCPU_OFF: u32 = 10;
    pub const INTR: u32 = 11;
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Mmio {
    pub phys_addr: u64,
    pub data: u64,
    pub len: u32,
    pub is_write: u8,
    pub padding: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Hypercall {
    pub function_id: u64,
    pub arg1: u64,
    pub ret: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Memory {
    pub gpa: u64,
    pub nr_pages: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VcpuStarted {
    pub vcpu: u32,
    pub padding: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union Exit {
    pub mmio: Mmio,
    pub hypercall: Hypercall,
    pub memory: Memory,
    pub vcpu_started: VcpuStarted,
    pub padding: [u64; 30],
}

/// `struct el2_pvm_run`, the page mmap()ed from a vCPU fd.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Run {
    pub exit_reason: u32,
    pub immediate_exit: u8,
    pub padding1: [u8; 3],
    pub reserved: u64,
    pub exit: Exit,
}

const _: () = {
    assert!(core::mem::size_of::<CreateVm>() == 32);
    assert!(core::mem::size_of::<Stats>() == 40);
    assert!(core::mem::size_of::<CreateGuestMemfd>() == 64);
    assert!(core::mem::size_of::<MemoryRegion>() == 64);
    assert!(core::mem::size_of::<CreateVcpu>() == 40);
    assert!(core::mem::size_of::<Run>() == 256);
    assert!(core::mem::offset_of!(Run, exit) == 16);
    assert!(core::mem::offset_of!(Mmio, is_write) == 20);
};
