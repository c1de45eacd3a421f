//! libFuzzer entry for `fuzz_targets::abi_decode` (the checks live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::abi_decode(data));
