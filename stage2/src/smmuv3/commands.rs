//! SMMUv3 commands EL2 issues (Arm IHI 0070 4.1-4.7), as the two 64-bit words the
//! command queue holds, and which invalidation a revocation needs.

/// One 16-byte command.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Command(pub [u64; 2]);

const CMD_CFGI_ALL: u64 = 0x04;
const CMD_TLBI_NH_ASID: u64 = 0x11;
const CMD_TLBI_NH_VA: u64 = 0x12;
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

/// The TLB invalidation for removing `[start, end)` from ASID `asid`: `CMD_TLBI_NH_VA` per
/// page up to [`PER_PAGE_TLBI_MAX`] pages, else one `CMD_TLBI_NH_ASID`. The caller follows
/// them with `CMD_SYNC` and waits for it. Returns the commands and how many are used.
pub fn revoke_invalidation(
    asid: u16,
    start: usize,
    end: usize,
) -> ([Command; PER_PAGE_TLBI_MAX], usize) {
    const PAGE: usize = 4096;
    let mut cmds = [Command::sync(); PER_PAGE_TLBI_MAX];
    let pages = end.saturating_sub(start) / PAGE;
    if pages <= PER_PAGE_TLBI_MAX {
        for (i, cmd) in cmds.iter_mut().take(pages).enumerate() {
            *cmd = Command::tlbi_nh_va(asid, (start + i * PAGE) as u64);
        }
        (cmds, pages)
    } else {
        cmds[0] = Command::tlbi_nh_asid(asid);
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
        let (cmds, n) = revoke_invalidation(1, 0x4000_0000, 0x4000_3000);
        assert_eq!(n, 3);
        for (i, c) in cmds[..n].iter().enumerate() {
            assert_eq!(*c, Command::tlbi_nh_va(1, 0x4000_0000 + i as u64 * 0x1000));
        }
        let (cmds, n) = revoke_invalidation(1, 0x4000_0000, 0x4000_0000 + 9 * 0x1000);
        assert_eq!((n, cmds[0]), (1, Command::tlbi_nh_asid(1)));
        let (_, n) = revoke_invalidation(1, 0x4000_0000, 0x4000_0000);
        assert_eq!(n, 0);
    }
}
