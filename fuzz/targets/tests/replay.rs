//! Replays the committed corpus (`fuzz/corpus/<target>/`) through the fuzz targets, so that
//! every input the fuzzer kept, including minimised inputs of past failures, is checked by
//! the ordinary `cargo test` on the stable toolchain.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// The corpus files of `target`, sorted by name.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus file of `target` through `run`; fails naming every file that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= 10,
        "{target}: only {} corpus files; the committed corpus has tens",
        files.len()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("corpus file is readable");
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs fail: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn abi_decode_corpus_passes() {
    replay("abi_decode", fuzz_targets::abi_decode);
}

#[test]
fn ownership_ops_corpus_passes() {
    replay("ownership_ops", fuzz_targets::ownership_ops);
}

#[test]
fn empty_and_short_inputs_pass() {
    for data in [&[][..], &[0], &[0xff], &[1, 2, 3]] {
        fuzz_targets::abi_decode(data);
        fuzz_targets::ownership_ops(data);
    }
}
