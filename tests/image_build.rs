// Build-script helpers shared by the bare-metal test images (included with `include!` from
// each image's build.rs: a build script cannot depend on workspace code otherwise without
// a build-dependency crate of its own).

/// Links the crate's binaries with `linker/<script>` (path relative to the workspace root,
/// found from the crate's manifest directory) when building for aarch64.
#[allow(dead_code)]
fn link_with_script(script: &str) {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("linker").join(script).is_file())
        .unwrap_or_else(|| panic!("no linker/{script} above {}", manifest.display()));
    let script = root.join("linker").join(script);
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}

/// Requires `TEST_GUEST_BIN` to name the raw test guest the image embeds
/// (`include_bytes!(env!("TEST_GUEST_BIN"))`); xtask builds `test-guest` first and sets it.
#[allow(dead_code)]
fn require_test_guest(image: &str) {
    println!("cargo:rerun-if-env-changed=TEST_GUEST_BIN");
    match std::env::var_os("TEST_GUEST_BIN").map(std::path::PathBuf::from) {
        Some(path) if path.is_file() => println!("cargo:rerun-if-changed={}", path.display()),
        Some(path) => panic!(
            "TEST_GUEST_BIN={} is not a file: build tests/test-guest and objcopy it to a raw \
             binary first (cargo xtask build does both)",
            path.display()
        ),
        None => panic!(
            "TEST_GUEST_BIN is not set: it must name the raw test-guest binary {image} \
             embeds (cargo xtask build sets it)"
        ),
    }
}
