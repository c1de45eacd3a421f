//! Links the bench host at its fixed load address with `linker/bench-host.ld` and checks that
//! `TEST_GUEST_BIN` names the raw test guest it embeds.

include!("../image_build.rs");

fn main() {
    link_with_script("bench-host.ld");
    println!("cargo:rerun-if-changed=src/asm");
    require_test_guest("bench-host");
}
