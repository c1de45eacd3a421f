//! Links the conformance host at its fixed load address with `linker/conformance-host.ld`.
//! The host needs no embedded image: its test guest is a few instructions of its own
//! (src/guest_code.rs).
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest.join("../../../linker/conformance-host.ld");
    let script = script.canonicalize().unwrap_or(script);
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
