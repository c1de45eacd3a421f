//! Random inputs through both targets on the stable toolchain: the same checks as the fuzzer
//! runs, without coverage guidance, on every `cargo test`.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_register_sets_decode_as_documented(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_targets::abi_decode(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_call_sequences_agree_with_the_model(data in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzz_targets::ownership_ops(&data);
    }
}
