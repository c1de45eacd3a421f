//! Links the stress host at its fixed load address with `linker/stress-host.ld` and checks that
//! `TEST_GUEST_BIN` names the raw test guest it embeds.

include!("../image_build.rs");

fn main() {
    link_with_script("stress-host.ld");
    require_test_guest("stress-host");
}
