//! libFuzzer entry for `fuzz_targets::ownership_ops` (the checks live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::ownership_ops(data));
