//! Garbage, truncated and mutated blobs must give errors, never panics (EL2 parses blobs it
//! did not write). `fdt` 0.1.5 panics on many of these; `fdt_check` stands in front of it.

mod common;

use common::fixture;
use platform::FdtFormatError;
use platform::fdt_discovery::dma_masters::{
    DmaPolicy, unconfined_dma_masters, unconfined_dma_requested,
};
use platform::fdt_discovery::{DiscoveryError, discover};
use platform::host_dtb::{HostDtbEdits, write_host_dtb};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const EDITS: HostDtbEdits<'static> = HostDtbEdits {
    carveouts: &[(0x7e00_0000, 0x200_0000)],
    bootargs: Some("console=ttyAMA0"),
    initrd: Some((0x5c00_0000, 0x5c40_0000)),
    withhold_dma: Some(DmaPolicy {
        el2_iommus: &["arm,smmu-v3"],
    }),
};

/// Runs both parsers; only a panic fails the test (a panic aborts the test binary's thread).
fn exercise(blob: &[u8]) -> Result<(), DiscoveryError> {
    let mut out = vec![0u8; 64 * 1024];
    let _ = write_host_dtb(blob, &EDITS, &mut out);
    let _ = unconfined_dma_masters(blob, &DmaPolicy::default());
    let _ = unconfined_dma_requested(blob);
    discover(blob).map(|_| ())
}

#[test]
fn random_bytes_are_rejected() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..2000 {
        let len = rng.below(512);
        let mut blob: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(exercise(&blob).is_err());
        // Same garbage behind a valid magic and a plausible totalsize.
        if blob.len() >= 8 {
            blob[..4].copy_from_slice(&0xd00d_feed_u32.to_be_bytes());
            let total = blob.len() as u32;
            blob[4..8].copy_from_slice(&total.to_be_bytes());
            assert!(exercise(&blob).is_err());
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let dtb = fixture("virt-modules.dtb");
    for len in 0..dtb.len() {
        assert!(exercise(&dtb[..len]).is_err(), "truncated to {len}");
        // Also claim the truncated length in the header so the block checks and the
        // structure walk see the cut.
        if len >= 8 {
            let mut cut = dtb[..len].to_vec();
            cut[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            assert!(
                exercise(&cut).is_err(),
                "truncated to {len} with patched totalsize"
            );
        }
    }
}

#[test]
fn mutated_blobs_never_panic() {
    let dtb = fixture("virt-modules.dtb");
    let struct_start = u32::from_be_bytes(dtb[8..12].try_into().unwrap()) as usize;
    let mut rng = Rng(0xfeed_d00d_0bad_cafe);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut blob = dtb.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly hit the structure block, where the tokens are.
            let at = if rng.below(4) == 0 {
                rng.below(blob.len())
            } else {
                struct_start + rng.below(blob.len() - struct_start)
            };
            blob[at] = match rng.below(3) {
                0 => rng.next() as u8,
                1 => blob[at] ^ (1 << rng.below(8)),
                _ => [0, 1, 2, 3, 4, 9, 0xff][rng.below(7)],
            };
        }
        if exercise(&blob).is_ok() {
            accepted += 1;
        }
    }
    // Many single-byte changes land in property values and leave a valid tree.
    assert!(accepted > 0);
}

#[test]
fn nop_tags_are_refused_not_misparsed() {
    // Overwrite the first property of /chosen (stdout-path) with FDT_NOP tokens, as libfdt's
    // fdt_nop_property does: a valid FDT that fdt 0.1.5 cannot iterate correctly.
    let mut dtb = fixture("virt-gicv3.dtb");
    let off_struct = u32::from_be_bytes(dtb[8..12].try_into().unwrap()) as usize;
    let pattern = b"chosen\0\0";
    let at = dtb[off_struct..]
        .windows(pattern.len())
        .position(|w| w == pattern)
        .unwrap()
        + off_struct
        + pattern.len();
    assert_eq!(
        u32::from_be_bytes(dtb[at..at + 4].try_into().unwrap()),
        3,
        "FDT_PROP"
    );
    let len = u32::from_be_bytes(dtb[at + 4..at + 8].try_into().unwrap()) as usize;
    let words = 3 + len.div_ceil(4);
    for w in 0..words {
        dtb[at + 4 * w..at + 4 * w + 4].copy_from_slice(&4u32.to_be_bytes());
    }
    let e = discover(&dtb).unwrap_err();
    assert!(
        matches!(e, DiscoveryError::Format(FdtFormatError::NopTag { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("FDT_NOP"));
}
