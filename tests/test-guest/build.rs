//! Links the test guest at its IPA with `linker/test-guest.ld` (the binary only; the
//! protocol library is an ordinary crate).

include!("../image_build.rs");

fn main() {
    link_with_script("test-guest.ld");
    println!("cargo:rerun-if-changed=src/entry.S");
}
