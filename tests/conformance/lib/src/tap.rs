//! The suite's output, TAP version 14: `TAP version 14`, the plan `1..N`, one line per case
//! (`ok N - call/state/argclass` or `not ok N - call/state/argclass: expected X, got Y`,
//! with `; <what else differed>` when something besides the outcome did), and as the very
//! last line `N passed, N failed`. The parser is what `cargo xtask conformance` uses to
//! compare the payload's lines with the model's results.

use crate::cases::Case;
use crate::runner::CaseResult;
use core::fmt;

/// The first line.
pub const VERSION_LINE: &str = "TAP version 14";

/// The plan line for `count` cases.
pub struct PlanLine(pub usize);

impl fmt::Display for PlanLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1..{}", self.0)
    }
}

/// The line of case number `number` (from 1).
pub struct CaseLine<'a> {
    pub number: usize,
    pub case: &'a Case,
    pub result: &'a CaseResult,
}

impl fmt::Display for CaseLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.case.name();
        let result = self.result;
        if result.passed() {
            return write!(f, "ok {} - {name}", self.number);
        }
        write!(f, "not ok {} - {name}: ", self.number)?;
        match (result.got, result.problem) {
            (Some(got), None) => write!(f, "expected {}, got {got}", result.expected),
            (Some(got), Some(problem)) => {
                write!(f, "expected {}, got {got}; {problem}", result.expected)
            }
            (None, Some(problem)) => write!(f, "{problem}"),
            (None, None) => f.write_str("not run"),
        }
    }
}

/// The closing line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
}

impl Totals {
    pub fn count(&mut self, result: &CaseResult) {
        if result.passed() {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// A case line read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    pub ok: bool,
    pub number: usize,
    pub name: &'a str,
    /// The outcome the line reports, for `not ok` lines that made the call.
    pub got: Option<&'a str>,
    /// Everything after the name, for `not ok` lines.
    pub detail: &'a str,
}

/// Reads a case line; `None` for any other line.
pub fn parse_line(line: &str) -> Option<ParsedLine<'_>> {
    let line = line.trim_end();
    let (ok, rest) = if let Some(rest) = line.strip_prefix("ok ") {
        (true, rest)
    } else {
        (false, line.strip_prefix("not ok ")?)
    };
    let (number, rest) = rest.split_once(" - ")?;
    let number = number.parse().ok()?;
    let (name, detail) = match rest.split_once(": ") {
        Some((name, detail)) if !ok => (name, detail),
        _ => (rest, ""),
    };
    let got = detail
        .split_once(", got ")
        .map(|(_, got)| match got.split_once("; ") {
            Some((got, _)) => got,
            None => got,
        });
    Some(ParsedLine {
        ok,
        number,
        name,
        got,
        detail,
    })
}

/// Reads the closing line.
pub fn parse_totals(line: &str) -> Option<Totals> {
    let (passed, rest) = line.trim().split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some(Totals {
        passed: passed.parse().ok()?,
        failed: failed.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_lines_have_no_detail() {
        let parsed = parse_line("ok 3 - VM_TOPUP/host/valid").unwrap();
        assert_eq!(
            parsed,
            ParsedLine {
                ok: true,
                number: 3,
                name: "VM_TOPUP/host/valid",
                got: None,
                detail: "",
            }
        );
    }

    #[test]
    fn not_ok_lines_give_the_outcome_up_to_the_problem() {
        let line = "not ok 12 - MEM_SHARE/ipa_guest_owned/valid: expected exit MEM_SHARED \
                    ipa=0x40200000 nr=1, guest gets OK, got guest gets DENIED; afterwards P0: x";
        let parsed = parse_line(line).unwrap();
        assert!(!parsed.ok);
        assert_eq!(parsed.name, "MEM_SHARE/ipa_guest_owned/valid");
        assert_eq!(parsed.got, Some("guest gets DENIED"));
        let setup = parse_line("not ok 1 - A/b/c: setup step 2 (x) gave DENIED").unwrap();
        assert_eq!(setup.got, None);
    }

    #[test]
    fn other_lines_are_not_cases() {
        assert_eq!(parse_line("[el2] ok then"), None);
        assert_eq!(parse_line("1..300"), None);
        assert_eq!(
            parse_totals("297 passed, 3 failed"),
            Some(Totals {
                passed: 297,
                failed: 3
            })
        );
        assert_eq!(parse_totals("conformance: running at EL1"), None);
    }
}
