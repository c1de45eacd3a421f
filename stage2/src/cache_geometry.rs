//! Cache and zeroing geometry read from the ID registers, as plain functions so that the
//! arithmetic EL2's maintenance loops depend on is tested on the development machine.

/// The smallest data-cache line in bytes: CTR_EL0.DminLine (bits [19:16]) is log2 of the
/// line in 4-byte words (Arm ARM D23.2, CTR_EL0). Maintenance by address steps by this: a
/// larger step would skip lines.
pub const fn dcache_min_line(ctr_el0: u64) -> usize {
    4 << ((ctr_el0 >> 16) & 0xf)
}

/// The block `dc zva` zeroes, in bytes, if EL2 may use it for a page: DCZID_EL0.BS (bits
/// [3:0]) is log2 of the block in 4-byte words, DZP (bit 4) set prohibits the instruction
/// (Arm ARM D23.2, DCZID_EL0). `None` (prohibited, or a block larger than a page, which
/// would zero past it) means: zero with ordinary stores.
pub const fn dc_zva_block(dczid_el0: u64, page: usize) -> Option<usize> {
    let block = 4usize << (dczid_el0 & 0xf);
    if dczid_el0 & (1 << 4) != 0 || block > page {
        None
    } else {
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_cache_line_comes_from_dminline_in_words() {
        // QEMU's `max`: CTR_EL0 = 0x8444c004 (DminLine 4: 64 bytes).
        assert_eq!(dcache_min_line(0x8444_c004), 64);
        assert_eq!(dcache_min_line(0x3 << 16), 32);
        assert_eq!(
            dcache_min_line(0xf << 16 | 0xf),
            4 << 15,
            "IminLine is not DminLine"
        );
        assert_eq!(dcache_min_line(0), 4);
    }

    #[test]
    fn dc_zva_zeroes_blocks_of_bs_words_unless_prohibited_or_larger_than_a_page() {
        assert_eq!(dc_zva_block(4, 4096), Some(64), "BS = 4: 16 words");
        assert_eq!(dc_zva_block(0, 4096), Some(4));
        assert_eq!(dc_zva_block(10, 4096), Some(4096));
        assert_eq!(
            dc_zva_block(11, 4096),
            None,
            "8 KiB block would zero past the page"
        );
        assert_eq!(dc_zva_block(1 << 4 | 4, 4096), None, "DZP set");
        assert_eq!(
            dc_zva_block(0x24, 4096),
            Some(64),
            "bits above DZP are RES0"
        );
    }
}
