//! `cargo xtask`: builds the EL2 payload and test images, boots them under QEMU (directly
//! or through U-Boot, with the demo host or Debian's Linux), and runs the test suite.

mod apt;
mod bench;
mod boot;
mod build;
mod child_guard;
mod cli;
mod cmd;
mod conformance;
mod console;
mod dtb;
mod error;
mod expect;
mod image_check;
mod layout;
mod linux;
mod mutants;
mod paths;
mod prereqs;
mod pvm;
mod qemu;
mod run;
mod run_watch;
mod suite;
mod uboot;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    child_guard::install();
    let result = match cli.command {
        Cmd::Build => build::build_all().map(|()| 0),
        Cmd::Run(args) => run::run(args),
        Cmd::Test(args) => suite::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Conformance => conformance::run(),
        Cmd::Mutants(args) => mutants::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
