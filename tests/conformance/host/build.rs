//! Links the conformance host at its fixed load address with `linker/conformance-host.ld`.
//! The host needs no embedded image: its test guest is a few instructions of its own
//! (src/guest_code.rs).

include!("../../image_build.rs");

fn main() {
    link_with_script("conformance-host.ld");
}
