//! Host call decoding: round trips, MBZ registers, ids, ranges and check order.

mod common;

use common::{HANDLE, Rng, first_mbz, host_samples};
use hvc_abi::limits::{MAX_IPA_BITS, PFN_LIMIT};
use hvc_abi::{Error, FunctionId, HostCall};

fn decode(regs: [u64; 8]) -> Result<HostCall, Error> {
    HostCall::decode(&regs)
}

fn with(mut regs: [u64; 8], index: usize, value: u64) -> [u64; 8] {
    regs[index] = value;
    regs
}

#[test]
fn every_host_call_round_trips() {
    for call in host_samples() {
        assert_eq!(decode(call.encode()), Ok(call), "{call:?}");
    }
}

#[test]
fn encode_puts_the_id_in_x0_and_zero_in_unused_registers() {
    for call in host_samples() {
        let regs = call.encode();
        assert_eq!(regs[0], u64::from(call.function_id().0));
        if let Some(first) = first_mbz(call.function_id()) {
            assert!(regs[first..].iter().all(|&r| r == 0), "{call:?}");
        }
    }
}

#[test]
fn every_mbz_register_of_every_host_call_is_checked() {
    for call in host_samples() {
        let Some(first) = first_mbz(call.function_id()) else {
            continue;
        };
        for reg in first..8 {
            for value in [1, 1 << 63, u64::MAX] {
                assert_eq!(
                    decode(with(call.encode(), reg, value)),
                    Err(Error::InvalidParameter),
                    "{call:?} x{reg}={value:#x}"
                );
            }
        }
    }
}

#[test]
fn uid_call_ignores_its_argument_registers() {
    let regs = [0x8600_FF01, 1, 2, 3, 4, 5, 6, u64::MAX];
    assert_eq!(decode(regs), Ok(HostCall::CallUid));
}

#[test]
fn x0_upper_half_and_sve_hint_do_not_change_the_call() {
    for call in host_samples() {
        let regs = call.encode();
        let noisy = with(regs, 0, regs[0] | 0xFFFF_FFFF_0000_0000 | (1 << 16));
        assert_eq!(decode(noisy), Ok(call), "{call:?}");
    }
}

#[test]
fn smc32_and_yielding_forms_of_our_ids_are_not_supported() {
    for call in host_samples() {
        let id = call.function_id();
        let Some(n) = id.number() else { continue };
        for base in [0x8600_0000u64, 0x4600_0000, 0x0600_0000] {
            let regs = with(call.encode(), 0, base + u64::from(n));
            assert_eq!(decode(regs), Err(Error::NotSupported), "{base:#x}+{n:#x}");
        }
    }
}

#[test]
fn unknown_numbers_in_our_range_are_not_supported() {
    let known: Vec<u64> = (0..=0x0B).collect();
    for n in 0..0x1_0000u64 {
        if known.contains(&n) {
            continue;
        }
        assert_eq!(
            decode([0xC600_0000 + n, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::NotSupported),
            "n={n:#x}"
        );
    }
}

#[test]
fn guest_calls_are_not_supported_for_the_host() {
    for id in [0xC600_0020u64, 0xC600_0021, 0xC600_0022, 0xC600_0023] {
        assert_eq!(decode([id, 0, 0, 0, 0, 0, 0, 0]), Err(Error::NotSupported));
    }
}

#[test]
fn reserved_function_id_bits_make_an_unknown_id() {
    for bit in 17..24 {
        let id = 0xC600_0001u64 | (1 << bit);
        assert_eq!(decode([id, 1, 0, 0, 0, 0, 0, 0]), Err(Error::NotSupported));
    }
}

#[test]
fn other_owners_are_not_host_calls() {
    for id in [
        0x8400_0000u64,
        0x8400_0008,
        0xC400_0003,
        0x8000_0000,
        0xC500_0001,
        0xC700_0001,
    ] {
        assert_eq!(decode([id, 0, 0, 0, 0, 0, 0, 0]), Err(Error::NotSupported));
    }
}

/// (function id, register of `nr`, other arguments) for every call with a page count.
fn counted_calls() -> Vec<[u64; 8]> {
    vec![
        [
            FunctionId::VM_TOPUP.to_x0(),
            HANDLE.0,
            0x1000,
            1,
            0,
            0,
            0,
            0,
        ],
        [
            FunctionId::VM_DONATE.to_x0(),
            HANDLE.0,
            0x1000,
            0x100,
            1,
            0,
            0,
            0,
        ],
        [FunctionId::VM_RECLAIM.to_x0(), 0x1000, 1, 0, 0, 0, 0, 0],
    ]
}

fn nr_register(regs: &[u64; 8]) -> usize {
    match FunctionId::from_x0(regs[0]) {
        FunctionId::VM_TOPUP => 3,
        FunctionId::VM_DONATE => 4,
        _ => 2,
    }
}

#[test]
fn nr_zero_is_invalid_parameter() {
    for regs in counted_calls() {
        assert_eq!(
            decode(with(regs, nr_register(&regs), 0)),
            Err(Error::InvalidParameter)
        );
    }
}

#[test]
fn nr_above_512_is_range_and_512_is_accepted() {
    for regs in counted_calls() {
        let r = nr_register(&regs);
        assert!(decode(with(regs, r, 512)).is_ok(), "{regs:x?}");
        for nr in [513, 1 << 32, u64::MAX] {
            assert_eq!(
                decode(with(regs, r, nr)),
                Err(Error::Range),
                "{regs:x?} nr={nr}"
            );
        }
    }
}

#[test]
fn nr_zero_wins_over_a_wrapping_pfn() {
    // INVALID_PARAMETER is checked before RANGE.
    let regs = [FunctionId::VM_RECLAIM.to_x0(), u64::MAX, 0, 0, 0, 0, 0, 0];
    assert_eq!(decode(regs), Err(Error::InvalidParameter));
}

#[test]
fn mbz_wins_over_range() {
    let regs = [
        FunctionId::VM_RECLAIM.to_x0(),
        u64::MAX,
        1000,
        1,
        0,
        0,
        0,
        0,
    ];
    assert_eq!(decode(regs), Err(Error::InvalidParameter));
}

#[test]
fn pfn_ranges_must_stay_below_the_48_bit_pa_space() {
    let reclaim = |pfn, nr| decode([FunctionId::VM_RECLAIM.to_x0(), pfn, nr, 0, 0, 0, 0, 0]);
    assert!(reclaim(PFN_LIMIT - 512, 512).is_ok());
    assert_eq!(reclaim(PFN_LIMIT - 511, 512), Err(Error::Range));
    assert_eq!(reclaim(u64::MAX, 1), Err(Error::Range));
    assert_eq!(reclaim(u64::MAX - 100, 512), Err(Error::Range));

    let share = |pfn| decode([FunctionId::HOST_SHARE_HYP.to_x0(), pfn, 0, 0, 0, 0, 0, 0]);
    assert!(share(PFN_LIMIT - 1).is_ok());
    assert_eq!(share(PFN_LIMIT), Err(Error::Range));
    let unshare = |pfn| decode([FunctionId::HOST_UNSHARE_HYP.to_x0(), pfn, 0, 0, 0, 0, 0, 0]);
    assert_eq!(unshare(u64::MAX), Err(Error::Range));

    let topup = |pfn| decode([FunctionId::VM_TOPUP.to_x0(), HANDLE.0, pfn, 2, 0, 0, 0, 0]);
    assert!(topup(PFN_LIMIT - 2).is_ok());
    assert_eq!(topup(PFN_LIMIT - 1), Err(Error::Range));
}

#[test]
fn gfn_ranges_must_stay_below_the_40_bit_ipa_space() {
    let gfn_limit = 1u64 << (MAX_IPA_BITS - 12);
    let call = |gfn, nr| {
        decode([
            FunctionId::VM_DONATE.to_x0(),
            HANDLE.0,
            0x1000,
            gfn,
            nr,
            0,
            0,
            0,
        ])
    };
    assert!(call(gfn_limit - 512, 512).is_ok());
    assert_eq!(call(gfn_limit - 511, 512), Err(Error::Range));
    assert_eq!(call(u64::MAX, 1), Err(Error::Range));
}

#[test]
fn retired_host_share_guest_ids_are_not_supported() {
    // 1.0's HOST_SHARE_GUEST and HOST_UNSHARE_GUEST, with arguments that were valid then.
    for regs in [
        [0xC600_0006, HANDLE.0, 0x1000, 0x100, 1, 0, 0, 0],
        [0xC600_0007, HANDLE.0, 0x100, 1, 0, 0, 0, 0],
    ] {
        assert_eq!(decode(regs), Err(Error::NotSupported));
    }
}

#[test]
fn donate_checks_pfn_range_before_gfn_range_but_both_are_range() {
    let regs = [
        FunctionId::VM_DONATE.to_x0(),
        HANDLE.0,
        u64::MAX,
        u64::MAX,
        1,
        0,
        0,
        0,
    ];
    assert_eq!(decode(regs), Err(Error::Range));
}

#[test]
fn vm_create_accepts_1_to_8_vcpus_and_32_to_40_ipa_bits() {
    let create = |n, bits| decode([FunctionId::VM_CREATE.to_x0(), n, bits, 0, 0, 0, 0, 0]);
    for n in 1..=8 {
        for bits in 32..=40 {
            assert_eq!(
                create(n, bits),
                Ok(HostCall::VmCreate {
                    nr_vcpus: n as u32,
                    ipa_bits: bits as u32
                })
            );
        }
    }
    assert_eq!(create(0, 36), Err(Error::InvalidParameter));
    for bits in [0, 31, 41, 48, u64::MAX] {
        assert_eq!(create(1, bits), Err(Error::InvalidParameter), "bits={bits}");
    }
    for n in [9, 1 << 32, u64::MAX] {
        assert_eq!(create(n, 36), Err(Error::Range), "n={n}");
    }
    // INVALID_PARAMETER (ipa_bits) before RANGE (nr_vcpus).
    assert_eq!(create(9, 50), Err(Error::InvalidParameter));
}

#[test]
fn vcpu_index_must_be_below_8() {
    let run = |vcpu| decode([FunctionId::VCPU_RUN.to_x0(), HANDLE.0, vcpu, 0, 0, 0, 0, 0]);
    assert!(run(7).is_ok());
    for vcpu in [8, 1 << 32, u64::MAX] {
        assert_eq!(run(vcpu), Err(Error::Range));
    }
    let create = |vcpu| {
        decode([
            FunctionId::VCPU_CREATE.to_x0(),
            HANDLE.0,
            vcpu,
            0x1000,
            0,
            0,
            0,
            0,
        ])
    };
    assert!(create(0).is_ok());
    // Only vCPU 0 takes an entry point: a nonzero one for another vCPU is malformed.
    assert_eq!(create(1), Err(Error::InvalidParameter));
    assert_eq!(create(8), Err(Error::InvalidParameter));
}

#[test]
fn only_vcpu_0_takes_an_entry_point_and_x0() {
    let create = |vcpu, entry, x0| {
        decode([
            FunctionId::VCPU_CREATE.to_x0(),
            HANDLE.0,
            vcpu,
            entry,
            x0,
            0,
            0,
            0,
        ])
    };
    assert!(create(0, 0x1000, 5).is_ok());
    assert!(create(1, 0, 0).is_ok());
    assert!(create(7, 0, 0).is_ok());
    assert_eq!(create(1, 0x1000, 0), Err(Error::InvalidParameter));
    assert_eq!(create(1, 0, 5), Err(Error::InvalidParameter));
    assert_eq!(create(8, 0, 0), Err(Error::Range));
}

#[test]
fn vcpu_entry_must_be_4_byte_aligned_and_below_2_pow_40() {
    let create = |entry| {
        decode([
            FunctionId::VCPU_CREATE.to_x0(),
            HANDLE.0,
            0,
            entry,
            0,
            0,
            0,
            0,
        ])
    };
    assert!(create(0).is_ok());
    assert!(create((1 << 40) - 4).is_ok());
    for entry in [1, 2, 3, 0x8000_0002] {
        assert_eq!(create(entry), Err(Error::InvalidParameter));
    }
    assert_eq!(create(1 << 40), Err(Error::Range));
    assert_eq!(create(u64::MAX - 3), Err(Error::Range));
    // Misalignment (INVALID_PARAMETER) wins over a bad vCPU index (RANGE).
    let both = [FunctionId::VCPU_CREATE.to_x0(), HANDLE.0, 9, 2, 0, 0, 0, 0];
    assert_eq!(decode(both), Err(Error::InvalidParameter));
}

#[test]
fn vcpu_run_passes_any_completion_value() {
    for completion in [0, 1, u64::MAX] {
        let regs = [
            FunctionId::VCPU_RUN.to_x0(),
            HANDLE.0,
            0,
            completion,
            0,
            0,
            0,
            0,
        ];
        assert_eq!(
            decode(regs),
            Ok(HostCall::VcpuRun {
                handle: HANDLE,
                vcpu: 0,
                completion
            })
        );
    }
}

#[test]
fn handles_are_not_checked_by_decode() {
    // Any value passes decode; an unknown handle is NOT_FOUND in the payload.
    for h in [0, 1, u64::MAX] {
        let regs = [FunctionId::VM_DESTROY.to_x0(), h, 0, 0, 0, 0, 0, 0];
        assert!(decode(regs).is_ok());
    }
}

#[test]
fn decode_never_panics_and_only_returns_stateless_errors() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let ids: Vec<u64> = (0..=0x0Bu64)
        .map(|n| 0xC600_0000 + n)
        .chain([0x8600_FF01, 0x8600_0003, 0xC600_0020])
        .collect();
    for _ in 0..200_000 {
        let mut regs = [0; 8];
        regs[0] = ids[(rng.next() % ids.len() as u64) as usize];
        // Keep the MBZ tail mostly zero so the argument checks are reached.
        let used = 1 + (rng.next() % 7) as usize;
        for r in regs.iter_mut().take(used + 1).skip(1) {
            *r = rng.arg();
        }
        match decode(regs) {
            Ok(call) => assert_eq!(decode(call.encode()), Ok(call)),
            Err(e) => assert!(
                matches!(
                    e,
                    Error::NotSupported | Error::InvalidParameter | Error::Range
                ),
                "{e:?}"
            ),
        }
    }
}

/// An error prints as its name from docs/abi.md and its value, as EL2's log lines use it.
#[test]
fn errors_print_their_name_and_value() {
    assert_eq!(hvc_abi::Error::Range.to_string(), "RANGE (-8)");
    assert_eq!(
        hvc_abi::Error::NotSupported.to_string(),
        "NOT_SUPPORTED (-1)"
    );
}

/// pfns are below 2^36 (48-bit physical addresses, docs/abi.md): the last page is
/// accepted, the next one is RANGE.
#[test]
fn pfns_stop_at_the_48_bit_physical_address_space() {
    use hvc_abi::limits::{PFN_LIMIT, check_pfn_range};
    assert_eq!(PFN_LIMIT, 1 << 36);
    assert_eq!(check_pfn_range((1 << 36) - 1, 1), Ok(()));
    assert_eq!(check_pfn_range(1 << 36, 1), Err(hvc_abi::Error::Range));
}

/// Only all four UID words together name this payload.
#[test]
fn a_uid_with_any_word_wrong_is_not_ours() {
    use hvc_abi::function_id::{UID, is_our_uid};
    let ours = UID.map(u64::from);
    assert!(is_our_uid(ours));
    for i in 0..4 {
        let mut other = ours;
        other[i] ^= 1;
        assert!(!is_our_uid(other), "word {i} wrong");
    }
}
