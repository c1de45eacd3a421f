//! Links the SMMU test host at its fixed load address with `linker/smmu-host.ld` and checks
//! that `TEST_GUEST_BIN` names the raw test guest it embeds.

include!("../image_build.rs");

fn main() {
    link_with_script("smmu-host.ld");
    require_test_guest("smmu-host");
}
