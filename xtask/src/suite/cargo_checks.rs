//! The checks that are cargo commands: formatting, clippy (host and bare-metal), host tests.

use std::process::Stdio;
use std::time::Instant;

use super::report::{Report, lines_of, print_failed, print_ok};
use crate::build::{self, EL2_TARGET, IMAGE_TARGET, Image, cargo_command};
use crate::paths;

pub const NAMES: [&str; 6] = [
    "fmt",
    "clippy_host",
    "clippy_el2",
    "clippy_images",
    "clippy_vmm",
    "host_unit_tests",
];

pub fn run(report: &mut Report, selected: &dyn Fn(&str) -> bool) {
    let bare_metal_on = |target: &'static str| -> Vec<&'static str> {
        let mut args = vec!["clippy", "--release"];
        for image in Image::ALL.iter().filter(|i| i.target() == target) {
            args.extend(["-p", image.package()]);
        }
        args.extend(["--target", target, "--", "-D", "warnings"]);
        args
    };
    let lint_checks: [(&str, Vec<&str>); 5] = [
        ("fmt", vec!["fmt", "--all", "--", "--check"]),
        // Default members only: el2 and the test images are bare-metal and do not build
        // for the host.
        (
            "clippy_host",
            vec!["clippy", "--all-targets", "--", "-D", "warnings"],
        ),
        ("clippy_el2", bare_metal_on(EL2_TARGET)),
        ("clippy_images", bare_metal_on(IMAGE_TARGET)),
        // The VMM is a Linux binary for the Linux host only (crate::pvm).
        (
            "clippy_vmm",
            vec![
                "clippy",
                "--release",
                "-p",
                "vmm",
                "--target",
                crate::pvm::VMM_TARGET,
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    for (name, args) in lint_checks {
        if !selected(name) {
            continue;
        }
        let started = Instant::now();
        if name == "clippy_images"
            && let Err((reason, output)) = build::build_quiet(&embedded_images())
        {
            report.fail(name, &reason, &output);
            continue;
        }
        match cargo(&args) {
            Ok(_) => report.pass(name, &format!("{:.1} s", started.elapsed().as_secs_f64())),
            Err((reason, output)) => report.fail(name, &reason, &output),
        }
    }
    if selected("host_unit_tests") {
        host_unit_tests(report);
    }
}

/// Every image some other image embeds.
fn embedded_images() -> Vec<Image> {
    let mut out: Vec<Image> = Image::ALL
        .iter()
        .flat_map(|i| i.embeds().iter().map(|(e, _)| *e))
        .collect();
    out.dedup();
    out
}

/// `cargo test` on the default members; every libtest summary adds to the totals.
/// `--no-fail-fast` so that one crate's failure does not hide the other crates' counts.
fn host_unit_tests(report: &mut Report) {
    let started = Instant::now();
    let (ok, text) = match cargo_output(&["test", "--no-fail-fast"]) {
        Ok(pair) => pair,
        Err(reason) => {
            report.fail("host_unit_tests", &reason, &[]);
            return;
        }
    };
    let (passed, failed) = libtest_totals(&text);
    let elapsed = started.elapsed().as_secs_f64();
    if ok && failed == 0 {
        // The unit tests are the counts; an empty run still counts as one passed check.
        report.add_counts(passed.max(1), 0);
        print_ok(
            "host_unit_tests",
            &format!("{passed} unit tests passed, {elapsed:.1} s"),
        );
    } else {
        // A failure that no test result counted (a build error) still counts once.
        report.add_counts(passed, failed.max(1));
        let reason = if failed > 0 {
            format!("{failed} unit tests failed")
        } else {
            "`cargo test` failed".to_string()
        };
        print_failed("host_unit_tests", &reason, &failure_summary(&text));
    }
}

/// The failing tests and their panic messages; the output's tail if there are none (a
/// build error).
fn failure_summary(output: &str) -> Vec<String> {
    let lines = lines_of(output);
    let mut summary = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("test ") && line.ends_with("FAILED") {
            summary.push(line.clone());
        } else if line.contains("panicked at") {
            summary.extend(lines[i..].iter().take(2).cloned());
        }
    }
    if summary.is_empty() { lines } else { summary }
}

/// Sums `test result: ok. 12 passed; 1 failed; ...` lines.
pub fn libtest_totals(output: &str) -> (u64, u64) {
    let count = |fields: &[&str], what: &str| -> u64 {
        fields
            .iter()
            .find_map(|f| {
                let f = f.trim();
                let n = f.strip_suffix(what)?.trim();
                n.parse().ok()
            })
            .unwrap_or(0)
    };
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("test result: "))
        .map(|rest| {
            let after_status = rest.split_once(". ").map_or(rest, |(_, r)| r);
            let fields: Vec<&str> = after_status.split(';').collect();
            (count(&fields, "passed"), count(&fields, "failed"))
        })
        .fold((0, 0), |(p, f), (dp, df)| (p + dp, f + df))
}

/// Runs cargo with output captured; on failure returns the reason and its output.
pub fn cargo(args: &[&str]) -> Result<String, (String, Vec<String>)> {
    match cargo_output(args) {
        Ok((true, text)) => Ok(text),
        Ok((false, text)) => Err((
            format!("`cargo {}` failed", args.join(" ")),
            lines_of(&text),
        )),
        Err(reason) => Err((reason, Vec::new())),
    }
}

/// (success, stdout followed by stderr).
fn cargo_output(args: &[&str]) -> Result<(bool, String), String> {
    let mut cargo = cargo_command();
    // Images that embed others (`include_bytes!`) need their paths even to be linted;
    // `run` builds them first.
    for image in Image::ALL {
        for (embedded, var) in image.embeds() {
            cargo.env(var, embedded.path());
        }
    }
    let out = cargo
        .args(args)
        .env("CARGO_TERM_COLOR", "never")
        .current_dir(paths::repo_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summaries_are_summed() {
        let out = "\
running 3 tests
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
test result: FAILED. 5 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
   Doc-tests stage2
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(libtest_totals(out), (8, 2));
    }

    #[test]
    fn a_failure_summary_names_the_failing_tests_and_their_panics() {
        let out = "\
test a::ok_one ... ok
test a::bad_one ... FAILED
---- a::bad_one stdout ----

thread 'a::bad_one' panicked at src/a.rs:3:5:
assertion failed: x
stack backtrace:
   0: noise
test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";
        assert_eq!(
            failure_summary(out),
            [
                "test a::bad_one ... FAILED",
                "thread 'a::bad_one' panicked at src/a.rs:3:5:",
                "assertion failed: x",
            ]
        );
        assert_eq!(failure_summary("error[E0308]: x"), ["error[E0308]: x"]);
    }

    #[test]
    fn output_without_summaries_counts_nothing() {
        assert_eq!(libtest_totals("error[E0308]: mismatched types"), (0, 0));
    }
}
