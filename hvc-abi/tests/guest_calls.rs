//! Guest call decoding and the payload/host routing of guest HVCs.

mod common;

use common::{Rng, first_mbz, guest_samples};
use hvc_abi::limits::MAX_IPA_BITS;
use hvc_abi::{Error, Exit, FunctionId, GuestCall, GuestPsci, GuestRoute, route_guest_hvc};

fn decode(regs: [u64; 8]) -> Result<GuestCall, Error> {
    GuestCall::decode(&regs)
}

const MEMORY_CALLS: [FunctionId; 3] = [
    FunctionId::MEM_SHARE,
    FunctionId::MEM_UNSHARE,
    FunctionId::MEM_RELINQUISH,
];

#[test]
fn every_guest_call_round_trips() {
    for call in guest_samples() {
        assert_eq!(decode(call.encode()), Ok(call), "{call:?}");
        assert_eq!(
            route_guest_hvc(&call.encode()),
            GuestRoute::Payload(Ok(call))
        );
    }
}

#[test]
fn every_mbz_register_of_every_guest_call_is_checked() {
    for call in guest_samples() {
        let Some(first) = first_mbz(call.function_id()) else {
            continue;
        };
        for reg in first..8 {
            let mut regs = call.encode();
            regs[reg] = 1;
            assert_eq!(
                decode(regs),
                Err(Error::InvalidParameter),
                "{call:?} x{reg}"
            );
        }
    }
}

#[test]
fn psci_and_uid_ignore_their_arguments() {
    for call in [
        GuestCall::CallUid,
        GuestCall::SystemOff,
        GuestCall::SystemReset,
    ] {
        let mut regs = [u64::MAX; 8];
        regs[0] = call.function_id().to_x0();
        assert_eq!(decode(regs), Ok(call));
    }
}

#[test]
fn meminfo_and_features_take_no_arguments() {
    assert_eq!(
        decode([FunctionId::HYP_MEMINFO.to_x0(), 0, 0, 0, 0, 0, 0, 0]),
        Ok(GuestCall::HypMeminfo)
    );
    assert_eq!(
        decode([FunctionId::FEATURES.to_x0(), 1, 0, 0, 0, 0, 0, 0]),
        Err(Error::InvalidParameter)
    );
}

#[test]
fn misaligned_ipa_is_invalid_parameter() {
    for id in MEMORY_CALLS {
        for ipa in [1, 0x800, 0xFFF, 0x8000_0004] {
            assert_eq!(
                decode([id.to_x0(), ipa, 1, 0, 0, 0, 0, 0]),
                Err(Error::InvalidParameter)
            );
        }
    }
}

#[test]
fn nr_zero_is_invalid_and_above_512_is_range() {
    for id in MEMORY_CALLS {
        let call = |nr| decode([id.to_x0(), 0x1000, nr, 0, 0, 0, 0, 0]);
        assert_eq!(call(0), Err(Error::InvalidParameter));
        assert!(call(512).is_ok());
        assert_eq!(call(513), Err(Error::Range));
        assert_eq!(call(u64::MAX), Err(Error::Range));
    }
}

#[test]
fn ipa_ranges_must_stay_below_2_pow_40_without_wrapping() {
    let top = 1u64 << MAX_IPA_BITS;
    for id in MEMORY_CALLS {
        let call = |ipa, nr| decode([id.to_x0(), ipa, nr, 0, 0, 0, 0, 0]);
        assert!(call(top - 512 * 4096, 512).is_ok());
        assert_eq!(call(top - 511 * 4096, 512), Err(Error::Range));
        assert_eq!(call(top, 1), Err(Error::Range));
        assert_eq!(call(!0xFFF, 1), Err(Error::Range));
    }
}

#[test]
fn misalignment_wins_over_nr_and_range() {
    let regs = [FunctionId::MEM_SHARE.to_x0(), u64::MAX, 0, 0, 0, 0, 0, 0];
    assert_eq!(decode(regs), Err(Error::InvalidParameter));
}

#[test]
fn host_calls_are_not_supported_for_guests_and_are_not_forwarded() {
    for n in 1..=0x0Bu64 {
        let regs = [0xC600_0000 + n, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(regs), Err(Error::NotSupported));
        assert_eq!(
            route_guest_hvc(&regs),
            GuestRoute::Payload(Err(Error::NotSupported))
        );
    }
}

#[test]
fn every_owner_6_id_stays_with_the_payload() {
    for id in [
        0xC600_0027u64,
        0x8600_0021,
        0x4600_0021,
        0x0600_0021,
        0x8600_FF00,
        0xC6FF_FFFF,
    ] {
        assert_eq!(
            route_guest_hvc(&[id, 0x1000, 1, 0, 0, 0, 0, 0]),
            GuestRoute::Payload(Err(Error::NotSupported)),
            "{id:#x}"
        );
    }
}

#[test]
fn other_ids_are_forwarded_with_w0_as_passed_and_x1() {
    for (x0, w0) in [
        (0x8400_0020u64, 0x8400_0020u32), // owner 4, neither PSCI nor TRNG
        (0xC300_0000, 0xC300_0000),       // OEM
        (0xC200_0000, 0xC200_0000),       // SiP
        (0xFFFF_FFFF_8501_0000, 0x8501_0000),
        (0, 0),
    ] {
        let regs = [x0, 0xABCD, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            route_guest_hvc(&regs),
            GuestRoute::Forward(Exit::GuestHvc {
                function_id: w0,
                x1: 0xABCD
            })
        );
    }
}

#[test]
fn psci_system_off_and_reset_stay_with_the_payload() {
    assert_eq!(
        route_guest_hvc(&[0x8400_0008, 0, 0, 0, 0, 0, 0, 0]),
        GuestRoute::Payload(Ok(GuestCall::SystemOff))
    );
    assert_eq!(
        route_guest_hvc(&[0x8400_0009, 0, 0, 0, 0, 0, 0, 0]),
        GuestRoute::Payload(Ok(GuestCall::SystemReset))
    );
    // The SMC64 id 0xC4000008 is not PSCI SYSTEM_OFF: a PSCI id the payload does not
    // serve, NOT_SUPPORTED, never forwarded.
    assert_eq!(
        route_guest_hvc(&[0xC400_0008, 0, 0, 0, 0, 0, 0, 0]),
        GuestRoute::Payload(Err(Error::NotSupported))
    );
}

#[test]
fn smccc_architecture_and_trng_calls_stay_with_the_payload() {
    for id in [
        0x8000_0000u64,
        0x8000_0001,
        0x8000_8000,
        0x8400_0050,
        0xC400_0053,
    ] {
        assert!(
            matches!(
                route_guest_hvc(&[id, 0, 0, 0, 0, 0, 0, 0]),
                GuestRoute::Payload(Ok(GuestCall::Smccc(_)))
            ),
            "{id:#x}"
        );
    }
    // SOC_ID and unknown architecture ids: NOT_SUPPORTED, not forwarded.
    for id in [0x8000_0002u64, 0xC000_1234] {
        assert_eq!(
            route_guest_hvc(&[id, 0, 0, 0, 0, 0, 0, 0]),
            GuestRoute::Payload(Err(Error::NotSupported))
        );
    }
}

#[test]
fn every_psci_id_stays_with_the_payload() {
    for function in 0..0x20u64 {
        for base in [0x8400_0000u64, 0xC400_0000] {
            let regs = [base + function, 1, 0x4000_0000, 3, 0, 0, 0, 0];
            assert!(
                matches!(route_guest_hvc(&regs), GuestRoute::Payload(_)),
                "{:#x}",
                base + function
            );
        }
    }
    assert_eq!(
        route_guest_hvc(&[0xC400_0003, 1, 0x4000_0000, 3, 0, 0, 0, 0]),
        GuestRoute::Payload(Ok(GuestCall::Psci(GuestPsci::CpuOn {
            target_cpu: 1,
            entry: 0x4000_0000,
            context_id: 3
        })))
    );
    // CPU_ON's SMC32 form keeps only 32 bits of the entry point: not served.
    assert_eq!(
        route_guest_hvc(&[0x8400_0003, 1, 0x4000_0000, 3, 0, 0, 0, 0]),
        GuestRoute::Payload(Err(Error::NotSupported))
    );
}

#[test]
fn guest_decode_never_panics_and_only_returns_stateless_errors() {
    let mut rng = Rng(0xfeed_f00d_1234_5678);
    for _ in 0..200_000 {
        let mut regs = [0; 8];
        regs[0] = [
            0xC600_0000u64,
            0xC600_0020,
            0xC600_0021,
            0xC600_0022,
            0xC600_0023,
        ][(rng.next() % 5) as usize];
        for r in regs.iter_mut().take(3).skip(1) {
            *r = rng.arg();
        }
        if rng.next().is_multiple_of(4) {
            regs[3 + (rng.next() % 5) as usize] = rng.arg();
        }
        match decode(regs) {
            Ok(call) => assert_eq!(decode(call.encode()), Ok(call)),
            Err(e) => assert!(matches!(e, Error::InvalidParameter | Error::Range), "{e:?}"),
        }
    }
}

/// IPA_STATE's x1 (docs/abi.md 5.7): each state's value, and nothing else, decodes.
#[test]
fn ipa_state_values_in_x1_decode_to_their_states_and_others_to_none() {
    use hvc_abi::IpaState;
    for state in [
        IpaState::Unmapped,
        IpaState::Owned,
        IpaState::Shared,
        IpaState::Mmio,
    ] {
        assert_eq!(IpaState::from_x1(state as u64), Some(state));
    }
    assert_eq!(IpaState::from_x1(0), Some(IpaState::Unmapped));
    assert_eq!(IpaState::from_x1(3), Some(IpaState::Mmio));
    for x1 in [4, 5, 0xff, 1 << 32, u64::MAX] {
        assert_eq!(IpaState::from_x1(x1), None, "x1 = {x1:#x}");
    }
}

/// PSCI AFFINITY_INFO in its SMC32 form (0x8400_0004) takes W1 and W2: the upper halves of
/// x1 and x2 are dropped, not refused or kept.
#[test]
fn affinity_info_smc32_takes_the_low_halves_of_its_arguments() {
    let call = decode([
        0x8400_0004,
        0xffff_ffff_0000_0101,
        0x1_0000_0000,
        0,
        0,
        0,
        0,
        0,
    ]);
    assert_eq!(
        call,
        Ok(GuestCall::Psci(GuestPsci::AffinityInfo {
            target_affinity: 0x101,
            lowest_level: 0,
        }))
    );
}
