//! Links the test guest at its IPA with `linker/test-guest.ld` (the binary only; the
//! protocol library is an ordinary crate).
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest.join("../../linker/test-guest.ld");
    let script = script.canonicalize().unwrap_or(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=src/entry.S");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
