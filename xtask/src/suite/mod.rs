//! `cargo xtask test`: one line per check (`ok NAME` / `FAILED NAME: reason`), then
//! `N passed, N failed` as the last line; non-zero exit on any failure.

mod cargo_checks;
mod maintenance;
mod qemu_cases;
mod report;
mod run_cases;
mod vector_hardening;

use crate::cli::TestArgs;
use crate::error::Result;
use crate::prereqs;
use report::Report;

/// Every check, in the order they run: cheap static checks first, then the boots.
fn names() -> Vec<&'static str> {
    let mut names = cargo_checks::NAMES.to_vec();
    names.push(maintenance::NAME);
    names.push(vector_hardening::NAME);
    names.extend(qemu_cases::STEP_NAMES);
    names.extend(qemu_cases::cases().iter().map(|c| c.name));
    names.push(qemu_cases::BENCH_CASE);
    names.extend(run_cases::NAMES);
    names
}

pub fn run(args: TestArgs) -> Result<u8> {
    let selected = |name: &str| {
        args.filters.is_empty() || args.filters.iter().any(|f| name.contains(f.as_str()))
    };
    if args.list {
        for name in names().into_iter().filter(|n| selected(n)) {
            println!("{name}");
        }
        return Ok(0);
    }
    let mut report = Report::default();
    let unmatched: Vec<&str> = args
        .filters
        .iter()
        .map(String::as_str)
        .filter(|f| !names().iter().any(|n| n.contains(f)))
        .collect();
    if !unmatched.is_empty() {
        // A filter that selects nothing must not pass as "0 failed".
        report.fail(
            "filters",
            &format!(
                "no check matches {}: `cargo xtask test --list` shows their names",
                unmatched.join(", ")
            ),
            &[],
        );
        return Ok(report.finish());
    }
    match prereqs::ensure() {
        Ok(()) => {
            cargo_checks::run(&mut report, &selected);
            if selected(maintenance::NAME) {
                maintenance::run(&mut report);
            }
            if selected(vector_hardening::NAME) {
                vector_hardening::run(&mut report);
            }
            qemu_cases::run(&mut report, &selected);
            run_cases::run(&mut report, &selected);
        }
        Err(e) => report.fail("prerequisites", &e.to_string(), &[]),
    }
    Ok(report.finish())
}
