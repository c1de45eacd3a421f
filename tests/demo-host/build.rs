//! Links the demo host at its fixed load address with `linker/demo-host.ld` and checks that
//! `TEST_GUEST_BIN` names the raw test guest it embeds.

include!("../image_build.rs");

fn main() {
    link_with_script("demo-host.ld");
    require_test_guest("demo-host");
}
