//! Links the bench host at its fixed load address with `linker/bench-host.ld`, and checks
//! that `TEST_GUEST_BIN` names the raw test guest it embeds (xtask builds `test-guest`
//! first and sets it).
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest.join("../../linker/bench-host.ld");
    let script = script.canonicalize().unwrap_or(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=src/asm");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
    println!("cargo:rerun-if-env-changed=TEST_GUEST_BIN");
    match std::env::var_os("TEST_GUEST_BIN") {
        Some(path) if PathBuf::from(&path).is_file() => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(path).display());
        }
        Some(path) => panic!(
            "TEST_GUEST_BIN={} is not a file: build tests/test-guest and objcopy it to a raw \
             binary first (cargo xtask build does both)",
            PathBuf::from(path).display()
        ),
        None => panic!(
            "TEST_GUEST_BIN is not set: it must name the raw test-guest binary bench-host \
             embeds (cargo xtask build sets it)"
        ),
    }
}
