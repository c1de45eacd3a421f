//! `cargo xtask mutants`: mutation testing of the host-testable crates with cargo-mutants
//! (not part of `cargo xtask test` or CI: hours on two cores). Score, scopes and the
//! survivors judged equivalent: docs/testing.md.

use std::process::Command;

use crate::cli::MutantsArgs;
use crate::cmd;
use crate::error::{Error, Result, bail};
use crate::paths;

/// The crates whose logic runs on the development machine, in the order they are scored.
pub const CRATES: [&str; 3] = ["hvc-abi", "stage2", "platform"];

/// The cargo-mutants command for one crate (public for docs/testing.md's exact command).
pub fn command(package: &str, args: &MutantsArgs) -> Command {
    let mut c = Command::new("cargo");
    c.args(["mutants", "-p", package])
        .args(["-j", &args.jobs.to_string()])
        .args(["--timeout", &args.timeout.to_string()])
        // Cargo.toml's `mutants` profile: the ownership tests take 1 s instead of 20.
        .args(["--profile", "mutants"])
        .args(["-o", &output_dir(package).to_string_lossy()]);
    if package == "stage2" {
        // Its tests are all unit tests; doc-tests would add a slow build per mutant.
        c.arg("--cargo-test-arg=--lib");
    }
    if let Some(filter) = &args.tests {
        c.arg(format!("--cargo-test-arg={filter}"));
    }
    for file in &args.file {
        c.args(["--file", file]);
    }
    if let Some(re) = &args.re {
        c.args(["--re", re]);
    }
    c.current_dir(paths::repo_root());
    c
}

/// Where cargo-mutants writes `mutants.out/` for `package` (it creates only the last
/// component itself).
fn output_dir(package: &str) -> std::path::PathBuf {
    paths::cargo_target().join("mutants-out").join(package)
}

pub fn run(args: MutantsArgs) -> Result<u8> {
    let installed = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        bail!("cargo-mutants is not installed: `cargo install cargo-mutants --locked`");
    }
    let packages: Vec<&str> = match &args.package {
        Some(p) => vec![p.as_str()],
        None => CRATES.to_vec(),
    };
    let mut worst = 0;
    for package in packages {
        let out = output_dir(package);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::msg(format!("could not create {}: {e}", parent.display())))?;
        }
        let mut c = command(package, &args);
        println!("xtask: {}", cmd::display(&c));
        let status = c
            .status()
            .map_err(|e| Error::msg(format!("could not start cargo mutants: {e}")))?;
        // cargo-mutants: 0 all caught, 2 some missed, 3 timeouts, 4 baseline failed.
        let code = status.code().unwrap_or(1) as u8;
        println!(
            "xtask: {package}: exit {code}; survivors in {}",
            out.join("mutants.out/missed.txt").display()
        );
        worst = worst.max(code);
    }
    Ok(worst)
}
