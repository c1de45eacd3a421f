//! The guest calls of section 5 and the routing of guest HVCs (1.1, 5.4, 5.5).

use super::host_calls::VERSION_2_0;
use super::page_map::{GuestKind, Owner};
use super::{GuestAnswer, LastExit, Model, Unmodelled, mbz};
use crate::states::Content;
use hvc_abi::function_id::{SMCCC_SVE_HINT, UID};
use hvc_abi::limits::{MAX_IPA_BITS, MAX_PAGES_PER_CALL, PAGE_SIZE};
use hvc_abi::{Error, Exit, FunctionId};

/// FEATURES x2 for a guest: calls 0x00 and 0x20..=0x26 (section 2).
const GUEST_BITMAP: u64 = 0x7F_0000_0001;

/// What the firmware answers a workaround or TRNG call (5.8) is the firmware's to say:
/// the model cannot know it. It answers SMCCC's NOT_SUPPORTED, which every one of those
/// calls may give (a firmware without the call, or without SMCCC 1.1), never through an
/// exit; the cases compare the answer's form (`outcome::Ret::Firmware`), not its value.
const FIRMWARE_ANSWER: [u64; 4] = [-1i64 as u64, 0, 0, 0];

/// Which of the three memory calls of 5.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemCall {
    Share,
    Unshare,
    Relinquish,
}

impl Model {
    /// vCPU `vcpu` of the live VM `handle`, running, makes an HVC with x0..x7 = `regs`.
    /// `completion` is what the host will give a forwarded HVC (it becomes the guest's
    /// x0). `None` if there is no such running-capable vCPU (the caller checks
    /// [`Model::run_check`] first) or the model cannot follow.
    pub fn guest_hvc(
        &mut self,
        handle: u64,
        vcpu: u32,
        regs: [u64; 8],
        completion: u64,
    ) -> Option<GuestAnswer> {
        let slot = self.vm_slot(handle)?;
        // The guest runs: the VM is launched (4.8).
        self.vm_mut(slot).launched = true;
        let w0 = regs[0] as u32;
        let id = FunctionId(w0 & !SMCCC_SVE_HINT);
        // Owner 6, and every PSCI id: owner 4, functions 0x00..=0x1F, either convention
        // (1.1, 5.5).
        let psci = id.0 & 0xBFFF_FFE0 == 0x8400_0000;
        // 5.8: SMCCC architecture calls (owner 0) and TRNG (owner 4, 0x50..=0x5F).
        let arch = id.0 & 0xBF00_0000 == 0x8000_0000;
        let trng = id.0 & 0xBFFF_FFF0 == 0x8400_0050;
        let ours = id.is_vendor_hyp_service() || psci || arch || trng;
        if !ours {
            // 5.4: only W0 (as passed) and x1 reach the host; its completion becomes
            // x0 and x1..x3 are set to 0.
            self.note_exit(handle, vcpu, LastExit::GuestHvc);
            return Some(GuestAnswer {
                exit: Some(Exit::GuestHvc {
                    function_id: w0,
                    x1: regs[1],
                }),
                ret: Some([completion, 0, 0, 0]),
            });
        }
        let returned = |ret: [u64; 4]| {
            Some(GuestAnswer {
                exit: None,
                ret: Some(ret),
            })
        };
        match id {
            FunctionId::VENDOR_HYP_CALL_UID => returned(UID.map(u64::from)),
            FunctionId::PSCI_SYSTEM_OFF => Some(self.stop(slot, Exit::SystemOff)),
            FunctionId::PSCI_SYSTEM_RESET => Some(self.stop(slot, Exit::SystemReset)),
            FunctionId::FEATURES if !mbz(&regs, 1) => returned(error(Error::InvalidParameter)),
            FunctionId::FEATURES => returned([0, VERSION_2_0, GUEST_BITMAP, 0]),
            FunctionId::HYP_MEMINFO if !mbz(&regs, 1) => returned(error(Error::InvalidParameter)),
            FunctionId::HYP_MEMINFO => returned([0, PAGE_SIZE, 0, 0]),
            FunctionId::MEM_SHARE => self.mem_call(slot, &regs, MemCall::Share).ok(),
            FunctionId::MEM_UNSHARE => self.mem_call(slot, &regs, MemCall::Unshare).ok(),
            FunctionId::MEM_RELINQUISH => self.mem_call(slot, &regs, MemCall::Relinquish).ok(),
            FunctionId::MMIO_GUARD_MAP => returned(self.mmio_guard(slot, &regs, true)),
            FunctionId::MMIO_GUARD_UNMAP => returned(self.mmio_guard(slot, &regs, false)),
            FunctionId::IPA_STATE => returned(self.ipa_state_call(slot, &regs)),
            _ if psci => Some(self.psci(slot, vcpu, id.0, &regs)),
            // SMCCC_VERSION and ARCH_FEATURES of the two discovery calls are the payload's.
            FunctionId(0x8000_0000) => returned([0x1_0001, 0, 0, 0]),
            FunctionId(0x8000_0001) => match regs[1] as u32 {
                0x8000_0000 | 0x8000_0001 => returned([0; 4]),
                0x8000_8000 | 0x8000_7FFF | 0x8000_3FFF => returned(FIRMWARE_ANSWER),
                _ => returned(error(Error::NotSupported)),
            },
            FunctionId(0x8000_8000 | 0x8000_7FFF | 0x8000_3FFF) => returned(FIRMWARE_ANSWER),
            _ if trng => {
                let known = matches!(id.0, 0x8400_0050..=0x8400_0053 | 0xC400_0053);
                if known {
                    returned(FIRMWARE_ANSWER)
                } else {
                    returned(error(Error::NotSupported))
                }
            }
            // Host calls, other forms of our numbers, unassigned numbers (1.1, 5.4).
            _ => returned(error(Error::NotSupported)),
        }
    }

    /// 5.5: the guest's PSCI calls (other than SYSTEM_OFF and SYSTEM_RESET), PSCI return
    /// codes in x0.
    fn psci(&mut self, slot: usize, vcpu: u32, id: u32, regs: &[u64; 8]) -> GuestAnswer {
        const NOT_SUPPORTED: u64 = -1i64 as u64;
        const INVALID_PARAMETERS: u64 = -2i64 as u64;
        const ALREADY_ON: u64 = -4i64 as u64;
        const INVALID_ADDRESS: u64 = -9i64 as u64;
        const SERVED: [u32; 10] = [
            0x8400_0000,
            0xC400_0001,
            0x8400_0002,
            0xC400_0003,
            0x8400_0004,
            0xC400_0004,
            0x8400_0006,
            0x8400_0008,
            0x8400_0009,
            0x8400_000A,
        ];
        let returned = |x0: u64| GuestAnswer {
            exit: None,
            ret: Some([x0, 0, 0, 0]),
        };
        let vm = self.vm(slot);
        // The vCPU an MPIDR names: Aff0 = index, every other bit zero.
        let target = |mpidr: u64| {
            (mpidr < u64::from(vm.nr_vcpus) && vm.vcpus[mpidr as usize].created)
                .then_some(mpidr as usize)
        };
        match id {
            0x8400_0000 => returned(0x0001_0000),
            0xC400_0001 => returned(0),
            0x8400_0002 => {
                let vm = self.vm_mut(slot);
                vm.vcpus[vcpu as usize].on = false;
                GuestAnswer {
                    exit: Some(Exit::VcpuOff),
                    ret: None,
                }
            }
            0xC400_0003 => {
                let (entry, ipa_bits) = (regs[2], vm.ipa_bits);
                let Some(index) = target(regs[1]) else {
                    return returned(INVALID_PARAMETERS);
                };
                if !entry.is_multiple_of(4) || entry >> ipa_bits != 0 {
                    return returned(INVALID_ADDRESS);
                }
                if vm.vcpus[index].on {
                    return returned(ALREADY_ON);
                }
                let state = &mut self.vm_mut(slot).vcpus[index];
                state.on = true;
                state.last_exit = LastExit::None;
                GuestAnswer {
                    exit: Some(Exit::VcpuStarted { vcpu: index as u32 }),
                    ret: Some([0; 4]),
                }
            }
            0x8400_0004 | 0xC400_0004 => {
                let (mut affinity, mut level) = (regs[1], regs[2]);
                if id == 0x8400_0004 {
                    affinity &= 0xFFFF_FFFF;
                    level &= 0xFFFF_FFFF;
                }
                match target(affinity) {
                    Some(index) if level == 0 => returned(u64::from(!vm.vcpus[index].on)),
                    _ => returned(INVALID_PARAMETERS),
                }
            }
            0x8400_0006 => returned(2),
            0x8400_000A if SERVED.contains(&(regs[1] as u32)) => returned(0),
            _ => returned(NOT_SUPPORTED),
        }
    }

    /// 5.7, checks in the table's order.
    fn ipa_state_call(&self, slot: usize, regs: &[u64; 8]) -> [u64; 4] {
        let ipa = regs[1];
        if !mbz(regs, 2) || !ipa.is_multiple_of(PAGE_SIZE) {
            return error(Error::InvalidParameter); // 1, 2
        }
        if ipa >> MAX_IPA_BITS != 0 || ipa >> self.vm(slot).ipa_bits != 0 {
            return error(Error::Range); // 3, 4
        }
        let gfn = ipa >> 12;
        let state = match self.mapping(slot, gfn) {
            Some((_, GuestKind::Owned)) => 1,
            Some((_, GuestKind::Shared)) => 2,
            None if self.vm(slot).mmio.contains(&Some(gfn)) => 3,
            None => 0,
        };
        [0, state, 0, 0]
    }

    /// 5.6, checks in the table's order.
    fn mmio_guard(&mut self, slot: usize, regs: &[u64; 8], map: bool) -> [u64; 4] {
        let ipa = regs[1];
        if !mbz(regs, 2) {
            return error(Error::InvalidParameter); // 1
        }
        if !ipa.is_multiple_of(PAGE_SIZE) {
            return error(Error::InvalidParameter); // 2
        }
        if ipa >> MAX_IPA_BITS != 0 {
            return error(Error::Range); // 3
        }
        if ipa >> self.vm(slot).ipa_bits != 0 {
            return error(Error::Range); // 4
        }
        let gfn = ipa >> 12;
        let registered = self.vm(slot).mmio.iter().position(|&g| g == Some(gfn));
        if !map {
            return match registered {
                None => error(Error::NotFound), // 5
                Some(index) => {
                    self.vm_mut(slot).mmio[index] = None;
                    [0; 4]
                }
            };
        }
        if self.mapping(slot, gfn).is_some() {
            return error(Error::Denied); // 6
        }
        if registered.is_some() {
            return [0; 4];
        }
        match self.vm(slot).mmio.iter().position(Option::is_none) {
            None => error(Error::Busy), // 7
            Some(index) => {
                self.vm_mut(slot).mmio[index] = Some(gfn);
                [0; 4]
            }
        }
    }

    /// 5.5: the VM stops; every later VCPU_RUN returns `exit` (4.9).
    fn stop(&mut self, slot: usize, exit: Exit) -> GuestAnswer {
        let vm = self.vm_mut(slot);
        vm.stopped = Some(exit);
        GuestAnswer {
            exit: Some(exit),
            ret: None,
        }
    }

    /// 5.3, checks in the table's order, then table 7.2.
    fn mem_call(
        &mut self,
        slot: usize,
        regs: &[u64; 8],
        call: MemCall,
    ) -> Result<GuestAnswer, Unmodelled> {
        let failed = |e: Error| {
            Ok(GuestAnswer {
                exit: None,
                ret: Some(error(e)),
            })
        };
        let (ipa, nr) = (regs[1], regs[2]);
        if !mbz(regs, 3) {
            return failed(Error::InvalidParameter); // 1
        }
        if !ipa.is_multiple_of(PAGE_SIZE) {
            return failed(Error::InvalidParameter); // 2
        }
        if nr == 0 {
            return failed(Error::InvalidParameter); // 3
        }
        if nr > u64::from(MAX_PAGES_PER_CALL) {
            return failed(Error::Range); // 4
        }
        // nr <= 512 here, so the multiplication cannot overflow.
        let end = ipa.checked_add(nr * PAGE_SIZE);
        if !matches!(end, Some(end) if end <= 1 << MAX_IPA_BITS) {
            return failed(Error::Range); // 5
        }
        let ipa_bits = self.vm(slot).ipa_bits;
        if !matches!(end, Some(end) if end <= 1 << ipa_bits) {
            return failed(Error::Range); // 6
        }
        let gfns = (ipa >> 12)..(ipa >> 12) + nr;
        if gfns.clone().any(|g| self.mapping(slot, g).is_none()) {
            return failed(Error::NotFound); // 7
        }
        let accepts = |kind: GuestKind| match call {
            MemCall::Share => kind == GuestKind::Owned,
            MemCall::Unshare => kind == GuestKind::Shared,
            MemCall::Relinquish => kind == GuestKind::Owned,
        };
        if gfns
            .clone()
            .any(|g| !self.mapping(slot, g).is_some_and(|(_, kind)| accepts(kind)))
        {
            return failed(Error::Denied); // 8
        }
        for gfn in gfns {
            let Some((pfn, _)) = self.mapping(slot, gfn) else {
                continue;
            };
            let guest = |kind| Owner::Guest {
                vm: slot,
                gfn,
                kind,
            };
            match call {
                MemCall::Share => self.set_owner(pfn, guest(GuestKind::Shared))?,
                MemCall::Unshare => self.set_owner(pfn, guest(GuestKind::Owned))?,
                // Private memory comes back zeroed.
                MemCall::Relinquish => self.set_page(pfn, Owner::Host, Content::Zero)?,
            }
        }
        let nr = nr as u32;
        let exit = match call {
            MemCall::Share => Exit::MemShared { ipa, nr },
            MemCall::Unshare => Exit::MemUnshared { ipa, nr },
            MemCall::Relinquish => Exit::MemRelinquished { ipa, nr },
        };
        Ok(GuestAnswer {
            exit: Some(exit),
            ret: Some([0; 4]),
        })
    }
}

fn error(e: Error) -> [u64; 4] {
    [e.as_x0(), 0, 0, 0]
}
