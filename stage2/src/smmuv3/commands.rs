//! SMMUv3 commands EL2 issues (Arm IHI 0070 4.1-4.7), as the two 64-bit words the
//! command queue holds, and which invalidation a revocation needs.

/// One 16-byte command.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Command(pub [u64; 2]);

const CMD_CFGI_ALL: u64 = 0x04;
const CMD_TLBI_NH_ASID: u64 = 0x11;
const CMD_TLBI_NH_VA: u64 = 0x12;
const CMD_TLBI_S12_VMALL: u64 = 0x28;
const CMD_TLBI_S2_IPA: u64 = 0x2a;
const CMD_TLBI_NSNH_ALL: u64 = 0x30;
const CMD_SYNC: u64 = 0x46;

impl Command {
    /// Drop every cached STE (Range = 31: all stream IDs).
    pub fn cfgi_all() -> Self {
        Self([CMD_CFGI_ALL, 31])
    }

    /// Every non-secure, non-hypervisor TLB entry.
    pub fn tlbi_nsnh_all() -> Self {
        Self([CMD_TLBI_NSNH_ALL, 0])
    }

    /// Every TLB entry of `asid` (VMID 0).
    pub fn tlbi_nh_asid(asid: u16) -> Self {
        Self([CMD_TLBI_NH_ASID | (u64::from(asid) << 48), 0])
    }

    /// The last-level entry for the page at `va` of `asid` (Leaf = 1, no range, no TTL hint).
    pub fn tlbi_nh_va(asid: u16, va: u64) -> Self {
        Self([CMD_TLBI_NH_VA | (u64::from(asid) << 48), (va & !0xfff) | 1])
    }

    /// Every stage-1 and stage-2 TLB entry (and walk-cache entry) of `vmid` (VMID [47:32]).
    pub fn tlbi_s12_vmall(vmid: u16) -> Self {
        Self([CMD_TLBI_S12_VMALL | (u64::from(vmid) << 32), 0])
    }

    /// The last-level stage-2 entry for the page at `ipa` of `vmid` (VMID [47:32]; NUM,
    /// SCALE = 0: no range; Leaf = 1 in Q1 bit 0; TTL, TG = 0: no hint; IPA [51:12]).
    pub fn tlbi_s2_ipa(vmid: u16, ipa: u64) -> Self {
        Self([
            CMD_TLBI_S2_IPA | (u64::from(vmid) << 32),
            (ipa & 0x000f_ffff_ffff_f000) | 1,
        ])
    }

    /// Completes every earlier command; signals nothing (CS = SIG_NONE): it is complete when
    /// the SMMU has consumed it.
    pub fn sync() -> Self {
        Self([CMD_SYNC, 0])
    }
}

/// Revocations of up to this many pages invalidate page by page; larger ones drop the whole
/// ASID (one command instead of hundreds; the host's devices refetch what they still use).
/// Must stay below 512: an unmap of a whole 2 MiB frees its level-3 table, and the per-page
/// commands (Leaf = 1) would leave that table in the SMMU's walk cache (IHI 0070 4.4.1;
/// `dma_table` test `an_unmap_that_frees_a_table_is_invalidated_with_the_walk_caches`).
pub const PER_PAGE_TLBI_MAX: usize = 8;

/// Which translation context the host's DMA table is, hence which TLBI commands remove its
/// entries.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum DmaContext {
    /// Stage 1 (STE Config = 0b101) through the CD with this ASID: `CMD_TLBI_NH_VA` /
    /// `CMD_TLBI_NH_ASID` (IHI 0070 4.4.2, 4.4.3).
    Stage1Asid(u16),
    /// Stage 2 only (STE Config = 0b110) with this VMID: `CMD_TLBI_S2_IPA` /
    /// `CMD_TLBI_S12_VMALL` (IHI 0070 4.4.5, 4.4.6). With stage 1 bypassed every cached entry
    /// is a stage-2 entry, so invalidation by IPA covers it.
    Stage2Vmid(u16),
}

/// The TLB invalidation for removing `[start, end)` from `context`: one by-address command
/// (Leaf = 1) per page up to [`PER_PAGE_TLBI_MAX`] pages, else one command for the whole
/// ASID or VMID (which also drops walk caches). The caller follows them with `CMD_SYNC` and
/// waits for it. Returns the commands and how many are used.
pub fn revoke_invalidation(
    context: DmaContext,
    start: usize,
    end: usize,
) -> ([Command; PER_PAGE_TLBI_MAX], usize) {
    const PAGE: usize = 4096;
    let mut cmds = [Command::sync(); PER_PAGE_TLBI_MAX];
    let pages = end.saturating_sub(start) / PAGE;
    if pages <= PER_PAGE_TLBI_MAX {
        for (i, cmd) in cmds.iter_mut().take(pages).enumerate() {
            let at = (start + i * PAGE) as u64;
            *cmd = match context {
                DmaContext::Stage1Asid(asid) => Command::tlbi_nh_va(asid, at),
                DmaContext::Stage2Vmid(vmid) => Command::tlbi_s2_ipa(vmid, at),
            };
        }
        (cmds, pages)
    } else {
        cmds[0] = match context {
            DmaContext::Stage1Asid(asid) => Command::tlbi_nh_asid(asid),
            DmaContext::Stage2Vmid(vmid) => Command::tlbi_s12_vmall(vmid),
        };
        (cmds, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_their_opcode_and_fields_where_the_spec_puts_them() {
        assert_eq!(Command::sync().0, [0x46, 0], "CMD_SYNC, CS = SIG_NONE");
        assert_eq!(
            Command::cfgi_all().0,
            [0x04, 31],
            "CMD_CFGI_ALL, Range = 31"
        );
        assert_eq!(Command::tlbi_nsnh_all().0, [0x30, 0]);
        assert_eq!(Command::tlbi_nh_asid(1).0, [0x11 | 1 << 48, 0]);
        let va = Command::tlbi_nh_va(1, 0x5801_1234);
        assert_eq!(va.0[0], 0x12 | 1 << 48, "opcode, ASID [63:48], VMID 0");
        assert_eq!(va.0[1], 0x5801_1000 | 1, "address [63:12], Leaf");
    }

    #[test]
    fn small_revocations_invalidate_each_page_and_large_ones_the_asid() {
        let s1 = DmaContext::Stage1Asid(1);
        let (cmds, n) = revoke_invalidation(s1, 0x4000_0000, 0x4000_3000);
        assert_eq!(n, 3);
        for (i, c) in cmds[..n].iter().enumerate() {
            assert_eq!(*c, Command::tlbi_nh_va(1, 0x4000_0000 + i as u64 * 0x1000));
        }
        let (cmds, n) = revoke_invalidation(s1, 0x4000_0000, 0x4000_0000 + 9 * 0x1000);
        assert_eq!((n, cmds[0]), (1, Command::tlbi_nh_asid(1)));
        let (_, n) = revoke_invalidation(s1, 0x4000_0000, 0x4000_0000);
        assert_eq!(n, 0);
    }

    #[test]
    fn stage_2_commands_carry_their_opcode_vmid_and_ipa_where_the_spec_puts_them() {
        // IHI 0070 4.4.5 CMD_TLBI_S2_IPA: opcode [7:0] = 0x2a, NUM [16:12], SCALE [24:20],
        // VMID [47:32]; Leaf [64], TTL [73:72], TG [75:74], IPA [115:76] = address [51:12].
        let c = Command::tlbi_s2_ipa(0xbeef, 0x000f_1234_5678_9abc);
        assert_eq!(c.0[0] & 0xff, 0x2a);
        assert_eq!((c.0[0] >> 12) & 0x1f, 0, "NUM: one page");
        assert_eq!((c.0[0] >> 20) & 0x1f, 0, "SCALE");
        assert_eq!((c.0[0] >> 32) & 0xffff, 0xbeef, "VMID");
        assert_eq!(c.0[0] >> 48, 0, "ASID field unused (RES0)");
        assert_eq!(c.0[1] & 1, 1, "Leaf");
        assert_eq!((c.0[1] >> 8) & 0xf, 0, "TTL and TG: no hint");
        assert_eq!(c.0[1] & !0xfff, 0x000f_1234_5678_9000, "IPA[51:12]");
        assert_eq!(c.0[1] & 0xffe, 0, "bits [11:1] RES0 or hint-free");
        // 4.4.6 CMD_TLBI_S12_VMALL: opcode 0x28, VMID [47:32], nothing else.
        assert_eq!(Command::tlbi_s12_vmall(7).0, [0x28 | 7 << 32, 0]);
    }

    #[test]
    fn stage_2_revocations_invalidate_by_ipa_for_the_vmid_or_the_whole_vmid() {
        let s2 = DmaContext::Stage2Vmid(3);
        let (cmds, n) = revoke_invalidation(s2, 0x8000_0000, 0x8000_2000);
        assert_eq!(
            cmds[..n],
            [
                Command::tlbi_s2_ipa(3, 0x8000_0000),
                Command::tlbi_s2_ipa(3, 0x8000_1000)
            ]
        );
        let (cmds, n) = revoke_invalidation(s2, 0x8000_0000, 0x8000_0000 + 9 * 0x1000);
        assert_eq!((n, cmds[0]), (1, Command::tlbi_s12_vmall(3)));
    }
}
