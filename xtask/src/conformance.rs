//! `cargo xtask conformance`: the conformance suite of docs/abi.md on QEMU, held against
//! the reference model.
//!
//! The payload runs under `tests/conformance/host`, which prints one TAP line per case.
//! The same cases run here against the model (`conformance::model_backend`, plain data,
//! in this process). A case passes if it passed on QEMU and the payload's outcome equals
//! the model's; every disagreement is printed. The last line is `N passed, N failed`.
//!
//! Two boots (`conformance::Boot`): the default one runs almost every case; a second one
//! with `/chosen/el2,unconfined-dma` runs VM_CREATE's cases of that boot option (4.3 row
//! 6: the payload then creates no VM, so no other case could run there).

use std::collections::HashMap;
use std::time::Duration;

use conformance::model_backend::ModelBackend;
use conformance::tap::{self, Totals};
use conformance::{Boot, boot_cases, run_case};

use crate::boot::{self, DtbVariant, Host, Plan, Via};
use crate::build::{self, Image};
use crate::console::{self, RunOptions, Verdict, Watcher};
use crate::error::Result;
use crate::layout::{GIB, MemSize};
use crate::qemu::{self, Machine};
use crate::{paths, prereqs};

/// The check's name in `cargo xtask test`.
pub const SUITE_CASE: &str = "conformance_suite";
/// The check of the boot with `/chosen/el2,unconfined-dma`.
pub const UNCONFINED_CASE: &str = "conformance_suite_unconfined_dma";

/// The boot a check of `cargo xtask test` runs the suite in, if it is one of the suite's.
pub fn boot_of_case(name: &str) -> Option<Boot> {
    match name {
        SUITE_CASE => Some(Boot::Plain),
        UNCONFINED_CASE => Some(Boot::UnconfinedDma),
        _ => None,
    }
}
/// A generous hang timeout: the suite takes well under a minute under TCG.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// `cargo xtask conformance`: both boots; exit status 0 if every case of each passed and
/// agreed. The last line is the sum of the two.
pub fn run() -> Result<u8> {
    prereqs::ensure()?;
    build::build(&[Image::El2, Image::ConformanceHost])?;
    let mut failed = false;
    let mut totals = Totals::default();
    for (name, boot) in [
        (SUITE_CASE, Boot::Plain),
        (UNCONFINED_CASE, Boot::UnconfinedDma),
    ] {
        let (ok, boot_totals) = run_boot(name, boot)?;
        failed |= !ok;
        totals.passed += boot_totals.passed;
        totals.failed += boot_totals.failed;
    }
    println!("{totals}");
    Ok(u8::from(failed))
}

/// One boot of the suite: whether every case passed and agreed, and the counts.
fn run_boot(name: &str, boot: Boot) -> Result<(bool, Totals)> {
    let qemu_args = boot::prepare(&plan(name, boot))?;
    println!("{}", qemu::display(&qemu_args));
    let log = paths::qemu_logs().join(format!("{name}.log"));
    let mut lines = Lines::default();
    let outcome = console::run(
        &qemu_args,
        &RunOptions {
            echo: true,
            log: Some(&log),
            timeout: Some(TIMEOUT),
            interactive: false,
        },
        &mut lines,
    )?;
    let agreement = compare(&lines.0, boot);
    println!(
        "# QEMU {}; console in {}",
        describe(outcome.exit_code()),
        paths::pretty(&log)
    );
    for line in agreement.report() {
        println!("{line}");
    }
    Ok((
        agreement.all_passed() && outcome.exit_code() == 0,
        agreement.totals,
    ))
}

fn describe(code: u8) -> String {
    match code {
        124 => "timed out".into(),
        code => format!("exited with status {code}"),
    }
}

/// The boot: the release payload with the conformance host as its host kernel, with the
/// boot option `boot` names.
pub fn plan(name: &str, boot: Boot) -> Plan {
    Plan {
        machine: Machine {
            board: crate::qemu::Board::Virt,
            virtualization: true,
            smp: 4,
            mem: MemSize::from_bytes(GIB),
            smmu: false,
            devices: Vec::new(),
            cpu: crate::qemu::DEFAULT_CPU.into(),
            mte: false,
        },
        via: Via::Direct,
        payload: Some(Image::El2.path()),
        host: Host {
            kernel: Image::ConformanceHost.path(),
            initrd: None,
            bootargs: String::new(),
        },
        dtb: match boot {
            Boot::Plain => DtbVariant::WithModules,
            Boot::UnconfinedDma => DtbVariant::UnconfinedDma,
        },
        work_dir: paths::qemu().join(name),
    }
}

/// Collects every console line.
#[derive(Default)]
struct Lines(Vec<String>);

impl Watcher for Lines {
    fn on_line(&mut self, line: &str) -> Verdict {
        self.0.push(line.to_string());
        Verdict::Continue
    }
}

/// The verdict of `cargo xtask test`'s conformance check on a saved console log of the
/// boot `boot`: `Ok` if the host's last line says 0 failed and the model agrees on every
/// case.
pub fn check_log(text: &str, boot: Boot) -> std::result::Result<String, (String, Vec<String>)> {
    let lines: Vec<String> = text.lines().map(|l| l.replace('\r', "")).collect();
    let agreement = compare(&lines, boot);
    if agreement.all_passed() {
        Ok(format!(
            "{} cases, the model agrees on all",
            agreement.totals.passed
        ))
    } else {
        Err((
            format!(
                "{} of {} cases failed or disagree with the model",
                agreement.totals.failed,
                agreement.totals.passed + agreement.totals.failed
            ),
            agreement.report(),
        ))
    }
}

/// The QEMU run held against the model.
pub struct Agreement {
    /// Cases that passed on QEMU and agree with the model, and the others.
    pub totals: Totals,
    /// `disagree: ...` and `missing: ...` lines.
    pub disagreements: Vec<String>,
    /// The host's own closing line, if it printed one as its last case-related line.
    pub host_totals: Option<Totals>,
    pub cases: usize,
}

impl Agreement {
    pub fn all_passed(&self) -> bool {
        self.totals.failed == 0
            && self.cases > 0
            && self
                .host_totals
                .is_some_and(|t| t.failed == 0 && t.passed == self.cases)
    }

    /// The lines to print: disagreements, a summary, and the total, last.
    pub fn report(&self) -> Vec<String> {
        let mut out = self.disagreements.clone();
        out.push(match self.host_totals {
            Some(host) => format!("# conformance host: {host}"),
            None => "# conformance host: no closing line (it did not finish)".into(),
        });
        let agreeing = self.cases - self.disagreements.len().min(self.cases);
        out.push(format!(
            "# model agreement: {agreeing} of {} cases",
            self.cases
        ));
        out.push(self.totals.to_string());
        out
    }
}

/// Compares the host's TAP lines with the model's outcome for every case of `boot`.
pub fn compare(lines: &[String], boot: Boot) -> Agreement {
    let mut payload: HashMap<&str, tap::ParsedLine<'_>> = HashMap::new();
    let mut host_totals = None;
    for line in lines {
        if let Some(parsed) = tap::parse_line(line) {
            payload.insert(parsed.name, parsed);
        } else if let Some(totals) = tap::parse_totals(line) {
            host_totals = Some(totals);
        }
    }
    let mut model = ModelBackend::for_boot(boot);
    let mut totals = Totals::default();
    let mut disagreements = Vec::new();
    let mut cases = 0;
    for case in boot_cases(boot) {
        cases += 1;
        let name = case.name().to_string();
        let result = run_case(&mut model, &case);
        let model_says = match result.got {
            Some(got) => got.to_string(),
            None => "no outcome (setup failed in the model)".into(),
        };
        let expected = result.expected.to_string();
        let Some(line) = payload.get(name.as_str()) else {
            disagreements.push(format!("missing: {name}: no line from QEMU"));
            totals.failed += 1;
            continue;
        };
        let payload_says = if line.ok {
            expected.clone()
        } else {
            match line.got {
                Some(got) => got.to_string(),
                None => format!("no outcome ({})", line.detail),
            }
        };
        if payload_says != model_says {
            disagreements.push(format!(
                "disagree: {name}: model says {model_says}, payload says {payload_says}"
            ));
        }
        if line.ok && payload_says == model_says && result.passed() {
            totals.passed += 1;
        } else {
            totals.failed += 1;
        }
    }
    Agreement {
        totals,
        disagreements,
        host_totals,
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the host prints when the payload behaves as the document says.
    fn perfect_run(boot: Boot) -> Vec<String> {
        let mut model = ModelBackend::for_boot(boot);
        let mut lines = vec!["[el2] payload".to_string(), tap::VERSION_LINE.to_string()];
        let mut totals = Totals::default();
        for (i, case) in boot_cases(boot).enumerate() {
            let result = run_case(&mut model, &case);
            totals.count(&result);
            let line = tap::CaseLine {
                number: i + 1,
                case: &case,
                result: &result,
            };
            lines.push(line.to_string());
        }
        lines.push(totals.to_string());
        lines
    }

    #[test]
    fn a_run_that_matches_the_model_passes() {
        for boot in [Boot::Plain, Boot::UnconfinedDma] {
            let agreement = compare(&perfect_run(boot), boot);
            assert!(agreement.all_passed(), "{:?}", agreement.report());
            assert!(agreement.disagreements.is_empty());
        }
    }

    #[test]
    fn a_run_of_one_boot_does_not_pass_as_the_other() {
        let agreement = compare(&perfect_run(Boot::Plain), Boot::UnconfinedDma);
        assert!(!agreement.all_passed());
    }

    #[test]
    fn a_different_outcome_is_a_disagreement_and_a_failure() {
        let mut lines = perfect_run(Boot::Plain);
        let index = lines
            .iter()
            .position(|l| l.ends_with(" - VM_TOPUP/hyp/valid"))
            .unwrap();
        let number = lines[index].split(' ').nth(1).unwrap().to_string();
        lines[index] = format!("not ok {number} - VM_TOPUP/hyp/valid: expected DENIED, got OK");
        let agreement = compare(&lines, Boot::Plain);
        assert!(!agreement.all_passed());
        assert_eq!(
            agreement.disagreements,
            ["disagree: VM_TOPUP/hyp/valid: model says DENIED, payload says OK"]
        );
        assert_eq!(
            agreement.report().last().unwrap(),
            &agreement.totals.to_string()
        );
    }

    #[test]
    fn a_run_that_stops_early_fails() {
        let mut lines = perfect_run(Boot::Plain);
        lines.truncate(lines.len() / 2);
        let agreement = compare(&lines, Boot::Plain);
        assert!(!agreement.all_passed());
        assert!(agreement.disagreements[0].starts_with("missing: "));
    }
}
