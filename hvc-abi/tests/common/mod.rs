//! Valid sample calls shared by the integration tests.
#![allow(dead_code)]

use hvc_abi::{GuestCall, HostCall, VmHandle};

pub const HANDLE: VmHandle = VmHandle(0x0000_0001_0003);

/// One valid instance of every host call, each argument nonzero where allowed so that a
/// test can tell which register carries what.
pub fn host_samples() -> Vec<HostCall> {
    vec![
        HostCall::CallUid,
        HostCall::Features,
        HostCall::HostShareHyp { pfn: 0x4_0123 },
        HostCall::HostUnshareHyp { pfn: 0x4_0124 },
        HostCall::VmCreate {
            nr_vcpus: 4,
            ipa_bits: 36,
        },
        HostCall::VmTopup {
            handle: HANDLE,
            pfn: 0x4_1000,
            nr: 16,
        },
        HostCall::VmDonate {
            handle: HANDLE,
            pfn: 0x4_2000,
            gfn: 0x8_0000,
            nr: 512,
        },
        HostCall::VcpuCreate {
            handle: HANDLE,
            vcpu: 0,
            entry_ipa: 0x8000_0000,
            x0: 0xdead_beef_0000_0001,
        },
        HostCall::VcpuCreate {
            handle: HANDLE,
            vcpu: 7,
            entry_ipa: 0,
            x0: 0,
        },
        HostCall::VcpuRun {
            handle: HANDLE,
            vcpu: 1,
            completion: u64::MAX,
        },
        HostCall::VmDestroy { handle: HANDLE },
        HostCall::VmReclaim {
            pfn: 0x4_2000,
            nr: 1,
        },
    ]
}

/// One valid instance of every guest call.
pub fn guest_samples() -> Vec<GuestCall> {
    vec![
        GuestCall::CallUid,
        GuestCall::Features,
        GuestCall::HypMeminfo,
        GuestCall::MemShare {
            ipa: 0x8000_1000,
            nr: 1,
        },
        GuestCall::MemUnshare {
            ipa: 0x8000_1000,
            nr: 512,
        },
        GuestCall::MemRelinquish {
            ipa: 0xFF_FFFF_F000,
            nr: 1,
        },
        GuestCall::SystemOff,
        GuestCall::SystemReset,
        GuestCall::MmioGuardMap { ipa: 0x900_0000 },
        GuestCall::MmioGuardUnmap {
            ipa: 0xFF_FFFF_F000,
        },
        GuestCall::IpaState { ipa: 0x4000_0000 },
    ]
}

/// First MBZ register of a call (8 = none; calls whose arguments are ignored included).
pub fn first_mbz(id: hvc_abi::FunctionId) -> Option<usize> {
    use hvc_abi::FunctionId as F;
    Some(match id {
        F::FEATURES | F::HYP_MEMINFO => 1,
        F::HOST_SHARE_HYP
        | F::HOST_UNSHARE_HYP
        | F::VM_DESTROY
        | F::MMIO_GUARD_MAP
        | F::MMIO_GUARD_UNMAP
        | F::IPA_STATE => 2,
        F::VM_CREATE | F::VM_RECLAIM | F::MEM_SHARE | F::MEM_UNSHARE | F::MEM_RELINQUISH => 3,
        F::VM_TOPUP | F::VCPU_RUN => 4,
        F::VM_DONATE | F::VCPU_CREATE => 5,
        _ => return None,
    })
}

/// A small deterministic generator (xorshift64*), so "random" tests need no crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Mostly small or edge values, sometimes anything.
    pub fn arg(&mut self) -> u64 {
        match self.next() % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => self.next() % 1024,
            3 => 1 << (self.next() % 64),
            4 => (1 << (self.next() % 64)) - 1,
            _ => self.next(),
        }
    }
}
