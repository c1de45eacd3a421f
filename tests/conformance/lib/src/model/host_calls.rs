//! The host calls of section 4, one function each, checks in the order of the call's
//! error table (row numbers in the comments), then the effect of section 7's tables.

use super::page_map::{GuestKind, Owner, Record};
use super::{
    Answer, HostAnswer, LastExit, Model, NO_VCPU, Unmodelled, Vm, err, gfn_range_ok, mbz, ok,
    pfn_range_ok,
};
use crate::states::{Content, PageState};
use hvc_abi::function_id::{SMCCC_SVE_HINT, UID};
use hvc_abi::limits::{
    MAX_IPA_BITS, MAX_MMIO_GUARD_PAGES, MAX_PAGES_PER_CALL, MAX_POOL_PAGES_PER_CALL, MAX_VCPUS,
    MIN_IPA_BITS,
};
use hvc_abi::{Error, Exit, FunctionId};

/// FEATURES x1: version 2.0 (section 2).
pub(super) const VERSION_2_0: u64 = 0x0002_0000;
/// FEATURES x2 for the host: calls 0x00..=0x05 and 0x08..=0x0B (section 2).
const HOST_BITMAP: u64 = 0xF3F;
/// 2^36: one past the highest pfn (48-bit PA).
const PFN_LIMIT: u64 = 1 << 36;
/// 2^40: one past the highest IPA of any VM.
const IPA_LIMIT: u64 = 1 << 40;

impl Model {
    /// A host HVC with x0..x7 = `regs` (sections 1.1, 2 and 4).
    pub fn host_hvc(&mut self, regs: [u64; 8]) -> HostAnswer {
        // W0 is the id; x0 bits [63:32] and the SVE hint (bit 16) are ignored.
        let id = FunctionId(regs[0] as u32 & !SMCCC_SVE_HINT);
        if id == FunctionId::VENDOR_HYP_CALL_UID {
            return HostAnswer::Regs(UID.map(u64::from));
        }
        if !id.is_vendor_hyp_service() {
            return HostAnswer::OutsideAbi;
        }
        let answer = match id {
            FunctionId::FEATURES => features(&regs),
            FunctionId::HOST_SHARE_HYP => self.host_share_hyp(&regs),
            FunctionId::HOST_UNSHARE_HYP => self.host_unshare_hyp(&regs),
            FunctionId::VM_CREATE => self.vm_create(&regs),
            FunctionId::VM_TOPUP => self.vm_topup(&regs),
            FunctionId::VM_DONATE => self.vm_donate(&regs),
            FunctionId::VCPU_CREATE => self.vcpu_create(&regs),
            FunctionId::VCPU_RUN => return self.vcpu_run(&regs),
            FunctionId::VM_DESTROY => self.vm_destroy(&regs),
            FunctionId::VM_RECLAIM => self.vm_reclaim(&regs),
            // Every other owner-6 id, guest calls included (1.1).
            _ => err(Error::NotSupported),
        };
        match answer {
            Ok(regs) => HostAnswer::Regs(regs),
            Err(Unmodelled(why)) => HostAnswer::Unmodelled(why),
        }
    }

    /// Records `owner` for page `pfn`, keeping what the model knows of its content.
    pub(super) fn set_owner(&mut self, pfn: u64, owner: Owner) -> Result<(), Unmodelled> {
        let content = self.content(pfn);
        self.set_page(pfn, owner, content)
    }

    pub(super) fn set_page(
        &mut self,
        pfn: u64,
        owner: Owner,
        content: Content,
    ) -> Result<(), Unmodelled> {
        Ok(self.pages.set(pfn, 1, Record { owner, content })?)
    }

    /// 4.1.
    fn host_share_hyp(&mut self, regs: &[u64; 8]) -> Answer {
        let pfn = regs[1];
        if !mbz(regs, 2) {
            return err(Error::InvalidParameter); // 1
        }
        if pfn >= PFN_LIMIT {
            return err(Error::Range); // 2
        }
        if self.page_state(pfn) != PageState::Host {
            return err(Error::Denied); // 3
        }
        self.set_owner(pfn, Owner::SharedHyp)?;
        ok(0, 0, 0)
    }

    /// 4.2.
    fn host_unshare_hyp(&mut self, regs: &[u64; 8]) -> Answer {
        let pfn = regs[1];
        if !mbz(regs, 2) {
            return err(Error::InvalidParameter); // 1
        }
        if pfn >= PFN_LIMIT {
            return err(Error::Range); // 2
        }
        if self.page_state(pfn) != PageState::SharedHyp {
            return err(Error::Denied); // 3
        }
        self.set_owner(pfn, Owner::Host)?;
        ok(0, 0, 0)
    }

    /// 4.3.
    fn vm_create(&mut self, regs: &[u64; 8]) -> Answer {
        let (nr_vcpus, ipa_bits) = (regs[1], regs[2]);
        if !mbz(regs, 3) {
            return err(Error::InvalidParameter); // 1
        }
        if nr_vcpus == 0 {
            return err(Error::InvalidParameter); // 2
        }
        if !(u64::from(MIN_IPA_BITS)..=u64::from(MAX_IPA_BITS)).contains(&ipa_bits) {
            return err(Error::InvalidParameter); // 3
        }
        if nr_vcpus > u64::from(MAX_VCPUS) {
            return err(Error::Range); // 4
        }
        let Some(slot) = self.vms.iter().position(Option::is_none) else {
            return err(Error::Busy); // 5
        };
        if self.world.unconfined_dma {
            return err(Error::Denied); // 6
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.vms[slot] = Some(Vm {
            handle,
            nr_vcpus: nr_vcpus as u32,
            ipa_bits: ipa_bits as u32,
            vcpus: [NO_VCPU; MAX_VCPUS as usize],
            pool_pages: 0,
            mapping_calls: 0,
            stopped: None,
            launched: false,
            mmio: [None; MAX_MMIO_GUARD_PAGES as usize],
        });
        ok(handle, 0, 0)
    }

    /// 4.4.
    fn vm_topup(&mut self, regs: &[u64; 8]) -> Answer {
        let (handle, pfn, nr) = (regs[1], regs[2], regs[3]);
        if !mbz(regs, 4) {
            return err(Error::InvalidParameter); // 1
        }
        if nr == 0 {
            return err(Error::InvalidParameter); // 2
        }
        if nr > u64::from(MAX_PAGES_PER_CALL) {
            return err(Error::Range); // 3
        }
        if !pfn_range_ok(pfn, nr) {
            return err(Error::Range); // 4
        }
        let Some(slot) = self.vm_slot(handle) else {
            return err(Error::NotFound); // 5
        };
        if (pfn..pfn + nr).any(|p| self.page_state(p) != PageState::Host) {
            return err(Error::Denied); // 6
        }
        for page in pfn..pfn + nr {
            self.set_owner(page, Owner::Pool { vm: slot })?;
        }
        self.vm_mut(slot).pool_pages += nr;
        ok(0, 0, 0)
    }

    /// 4.5 VM_DONATE.
    fn vm_donate(&mut self, regs: &[u64; 8]) -> Answer {
        let (handle, pfn, gfn, nr) = (regs[1], regs[2], regs[3], regs[4]);
        if !mbz(regs, 5) {
            return err(Error::InvalidParameter); // 1
        }
        if nr == 0 {
            return err(Error::InvalidParameter); // 2
        }
        if nr > u64::from(MAX_PAGES_PER_CALL) {
            return err(Error::Range); // 3
        }
        if !pfn_range_ok(pfn, nr) {
            return err(Error::Range); // 4
        }
        if !gfn_range_ok(gfn, nr, MAX_IPA_BITS) {
            return err(Error::Range); // 5
        }
        let Some(slot) = self.vm_slot(handle) else {
            return err(Error::NotFound); // 6
        };
        let vm = *self.vm(slot);
        if !gfn_range_ok(gfn, nr, vm.ipa_bits) {
            return err(Error::Range); // 7
        }
        let page_refused = (pfn..pfn + nr).any(|p| self.page_state(p) != PageState::Host);
        let ipa_taken =
            (gfn..gfn + nr).any(|g| self.mapping(slot, g).is_some() || vm.mmio.contains(&Some(g)));
        if page_refused || ipa_taken {
            return err(Error::Denied); // 8
        }
        if vm.pool_pages == 0 {
            return err(Error::NoMemory); // 9: no root table, no table at all
        }
        let certain = 1 + u64::from(MAX_POOL_PAGES_PER_CALL) * (vm.mapping_calls + 1);
        if vm.pool_pages < certain {
            return Err(Unmodelled(
                "the pool may or may not cover this mapping (section 7.3)",
            ));
        }
        for i in 0..nr {
            let owner = Owner::Guest {
                vm: slot,
                gfn: gfn + i,
                kind: GuestKind::Owned,
            };
            // A launched VM only gets fresh memory (4.5); before launch contents are kept.
            if vm.launched {
                self.set_page(pfn + i, owner, Content::Zero)?;
            } else {
                self.set_owner(pfn + i, owner)?;
            }
        }
        self.vm_mut(slot).mapping_calls += 1;
        ok(0, 0, 0)
    }

    /// 4.8.
    fn vcpu_create(&mut self, regs: &[u64; 8]) -> Answer {
        let (handle, vcpu, entry_ipa, x0) = (regs[1], regs[2], regs[3], regs[4]);
        if !mbz(regs, 5) {
            return err(Error::InvalidParameter); // 1
        }
        if !entry_ipa.is_multiple_of(4) {
            return err(Error::InvalidParameter); // 2
        }
        if vcpu != 0 && (entry_ipa != 0 || x0 != 0) {
            return err(Error::InvalidParameter); // 3
        }
        if vcpu >= u64::from(MAX_VCPUS) {
            return err(Error::Range); // 4
        }
        if entry_ipa >= IPA_LIMIT {
            return err(Error::Range); // 5
        }
        let Some(slot) = self.vm_slot(handle) else {
            return err(Error::NotFound); // 6
        };
        let vm = self.vm_mut(slot);
        if entry_ipa >> vm.ipa_bits != 0 {
            return err(Error::Range); // 7
        }
        if vcpu >= u64::from(vm.nr_vcpus) {
            return err(Error::NotFound); // 8
        }
        let launched = vm.launched;
        let state = &mut vm.vcpus[vcpu as usize];
        if state.created {
            return err(Error::Busy); // 9
        }
        if launched {
            return err(Error::Denied); // 10
        }
        state.created = true;
        // vCPU 0 is powered on; the others wait for the guest's CPU_ON (5.5).
        state.on = vcpu == 0;
        ok(0, 0, 0)
    }

    /// 4.9, rows 1-6: the VM slot and vCPU index of a VCPU_RUN that passes every check.
    pub(super) fn vcpu_run_checks(&self, regs: &[u64; 8]) -> Result<(usize, usize), Error> {
        let (handle, vcpu, completion) = (regs[1], regs[2], regs[3]);
        if !mbz(regs, 4) {
            return Err(Error::InvalidParameter); // 1
        }
        if vcpu >= u64::from(MAX_VCPUS) {
            return Err(Error::Range); // 2
        }
        let slot = self.vm_slot(handle).ok_or(Error::NotFound)?; // 3
        let vm = self.vm(slot);
        let state = vm.vcpus[vcpu as usize];
        if vcpu >= u64::from(vm.nr_vcpus) || !state.created {
            return Err(Error::NotFound); // 4
        }
        if state.running {
            return Err(Error::Busy); // 5
        }
        let completes = matches!(state.last_exit, LastExit::MmioRead | LastExit::GuestHvc);
        if completion != 0 && !completes {
            return Err(Error::InvalidParameter); // 6
        }
        Ok((slot, vcpu as usize))
    }

    /// 4.9: a stopped VM answers with its stop exit at once; anything else runs the guest.
    fn vcpu_run(&mut self, regs: &[u64; 8]) -> HostAnswer {
        match self.vcpu_run_checks(regs) {
            Err(error) => HostAnswer::Regs(error_regs(error)),
            Ok((slot, vcpu)) => {
                let stop = match self.vm(slot).stopped {
                    Some(exit) => Some(exit),
                    // A powered-off vCPU runs nothing (4.9).
                    None if !self.vm(slot).vcpus[vcpu].on => Some(Exit::VcpuOff),
                    None => None,
                };
                match stop {
                    Some(exit) => {
                        // A completion row 6 allowed is discarded; the exit completes
                        // nothing.
                        self.vm_mut(slot).vcpus[vcpu].last_exit = LastExit::Other;
                        let [x1, x2, x3] = exit.encode();
                        HostAnswer::Regs([0, x1, x2, x3])
                    }
                    None => HostAnswer::RunsGuest,
                }
            }
        }
    }

    /// 4.10.
    fn vm_destroy(&mut self, regs: &[u64; 8]) -> Answer {
        let handle = regs[1];
        if !mbz(regs, 2) {
            return err(Error::InvalidParameter); // 1
        }
        let Some(slot) = self.vm_slot(handle) else {
            return err(Error::NotFound); // 2
        };
        if self.vm(slot).vcpus.iter().any(|v| v.running) {
            return err(Error::Busy); // 3
        }
        self.pages.rewrite(|record| {
            let owner = match record.owner {
                Owner::Guest { vm, .. } if vm == slot => Owner::Reclaimable,
                Owner::Pool { vm } if vm == slot => Owner::Reclaimable,
                _ => return None,
            };
            Some(Record { owner, ..record })
        });
        self.vms[slot] = None;
        ok(0, 0, 0)
    }

    /// 4.11.
    fn vm_reclaim(&mut self, regs: &[u64; 8]) -> Answer {
        let (pfn, nr) = (regs[1], regs[2]);
        if !mbz(regs, 3) {
            return err(Error::InvalidParameter); // 1
        }
        if nr == 0 {
            return err(Error::InvalidParameter); // 2
        }
        if nr > u64::from(MAX_PAGES_PER_CALL) {
            return err(Error::Range); // 3
        }
        if !pfn_range_ok(pfn, nr) {
            return err(Error::Range); // 4
        }
        if (pfn..pfn + nr).any(|p| self.page_state(p) != PageState::Reclaimable) {
            return err(Error::Denied); // 5
        }
        self.pages.set(
            pfn,
            nr,
            Record {
                owner: Owner::Host,
                content: Content::Zero,
            },
        )?;
        ok(0, 0, 0)
    }
}

/// Section 2: FEATURES, host bitmap.
fn features(regs: &[u64; 8]) -> Answer {
    if !mbz(regs, 1) {
        return err(Error::InvalidParameter);
    }
    ok(VERSION_2_0, HOST_BITMAP, 0)
}

fn error_regs(error: Error) -> [u64; 4] {
    [error.as_x0(), 0, 0, 0]
}
