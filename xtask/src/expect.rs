//! What a QEMU test expects of the console and of the way QEMU ends, and the verdict.

use std::time::Duration;

use crate::console::{Outcome, Verdict, Watcher};

/// After a forbidden line, how long to keep reading so the log holds the whole message.
const FORBIDDEN_GRACE: Duration = Duration::from_secs(1);

/// How a test's QEMU run must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// QEMU exits by itself with this status.
    Exit(i32),
    /// Kill QEMU once every expected pattern has appeared (the payload's fatal stop spins
    /// forever by design).
    KillWhenAllSeen,
}

#[derive(Clone, Debug)]
pub struct Expectation {
    /// Substrings that must appear, in this order (several may share one line).
    pub expect: Vec<&'static str>,
    /// Substrings that must not appear anywhere.
    pub forbid: Vec<&'static str>,
    pub end: End,
}

/// Follows the console against an [`Expectation`].
pub struct ConsoleCheck<'a> {
    exp: &'a Expectation,
    next: usize,
    /// The first forbidden pattern seen, and its line.
    forbidden: Option<(&'static str, String)>,
}

impl<'a> ConsoleCheck<'a> {
    pub fn new(exp: &'a Expectation) -> Self {
        Self {
            exp,
            next: 0,
            forbidden: None,
        }
    }

    fn all_seen(&self) -> bool {
        self.next == self.exp.expect.len()
    }

    /// `Ok` if the run met the expectation, else the reason, worded for the test report.
    pub fn verdict(&self, outcome: &Outcome) -> Result<(), String> {
        if let Some((pattern, line)) = &self.forbidden {
            return Err(format!("forbidden {pattern:?} appeared: {}", line.trim()));
        }
        let waiting = self.exp.expect.get(self.next);
        match (outcome, self.exp.end) {
            (Outcome::TimedOut(after), _) => Err(match waiting {
                Some(p) => format!(
                    "timed out after {:.0} s waiting for {p:?}",
                    after.as_secs_f64()
                ),
                None => format!(
                    "timed out after {:.0} s waiting for QEMU to exit",
                    after.as_secs_f64()
                ),
            }),
            (_, _) if waiting.is_some() => Err(format!(
                "{:?} never appeared (after {} of {} expected lines); QEMU {}",
                waiting.unwrap_or(&""),
                self.next,
                self.exp.expect.len(),
                describe(outcome)
            )),
            (Outcome::Exited(status), End::Exit(want)) => match status.code() {
                Some(code) if code == want => Ok(()),
                _ => Err(format!(
                    "QEMU {}, expected exit status {want}",
                    describe(outcome)
                )),
            },
            (Outcome::Stopped, End::Exit(want)) => Err(format!(
                "QEMU was stopped, expected it to exit with status {want}"
            )),
            (Outcome::Interrupted(_), _) => Err(format!("QEMU {}", describe(outcome))),
            // Stopped on purpose, or it exited right after the last line before the kill.
            (_, End::KillWhenAllSeen) => Ok(()),
        }
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(status) => match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => format!("ended by {status}"),
        },
        Outcome::Stopped => "was stopped".into(),
        Outcome::TimedOut(after) => format!("timed out after {:.0} s", after.as_secs_f64()),
        Outcome::Interrupted(signal) => format!(
            "was killed: xtask got {}",
            crate::child_guard::name(*signal)
        ),
    }
}

impl Watcher for ConsoleCheck<'_> {
    fn on_line(&mut self, line: &str) -> Verdict {
        if self.forbidden.is_none()
            && let Some(p) = self.exp.forbid.iter().find(|p| line.contains(*p))
        {
            self.forbidden = Some((p, line.to_string()));
        }
        if self.forbidden.is_some() {
            return Verdict::StopWithin(FORBIDDEN_GRACE);
        }
        let mut rest = line;
        while let Some(pattern) = self.exp.expect.get(self.next) {
            match rest.find(pattern) {
                Some(at) => {
                    rest = &rest[at + pattern.len()..];
                    self.next += 1;
                }
                None => break,
            }
        }
        if self.exp.end == End::KillWhenAllSeen && self.all_seen() {
            Verdict::Stop
        } else {
            Verdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn exited(code: i32) -> Outcome {
        Outcome::Exited(ExitStatus::from_raw(code << 8))
    }

    fn demo() -> Expectation {
        Expectation {
            expect: vec!["[el2]", "demo: running at EL1", "demo: PASS"],
            forbid: vec!["[el2] FATAL", "panicked"],
            end: End::Exit(0),
        }
    }

    fn feed(check: &mut ConsoleCheck<'_>, lines: &[&str]) -> Vec<Verdict> {
        lines.iter().map(|l| check.on_line(l)).collect()
    }

    #[test]
    fn expected_lines_in_order_and_exit_status_pass() {
        let exp = demo();
        let mut c = ConsoleCheck::new(&exp);
        feed(
            &mut c,
            &["[el2] hello", "noise", "demo: running at EL1", "demo: PASS"],
        );
        assert_eq!(c.verdict(&exited(0)), Ok(()));
    }

    #[test]
    fn lines_out_of_order_do_not_count() {
        let exp = demo();
        let mut c = ConsoleCheck::new(&exp);
        feed(
            &mut c,
            &["demo: PASS", "[el2] hello", "demo: running at EL1"],
        );
        let err = c.verdict(&exited(0)).unwrap_err();
        assert!(err.contains("\"demo: PASS\" never appeared"), "{err}");
    }

    #[test]
    fn a_wrong_exit_status_fails() {
        let exp = demo();
        let mut c = ConsoleCheck::new(&exp);
        feed(&mut c, &["[el2] x", "demo: running at EL1", "demo: PASS"]);
        let err = c.verdict(&exited(3)).unwrap_err();
        assert!(
            err.contains("exited with status 3, expected exit status 0"),
            "{err}"
        );
    }

    #[test]
    fn a_forbidden_line_fails_and_asks_to_stop_soon() {
        let exp = demo();
        let mut c = ConsoleCheck::new(&exp);
        let v = feed(&mut c, &["[el2] FATAL: oops", "more"]);
        assert_eq!(v, [Verdict::StopWithin(FORBIDDEN_GRACE); 2]);
        let err = c.verdict(&Outcome::Stopped).unwrap_err();
        assert!(err.contains("forbidden \"[el2] FATAL\""), "{err}");
    }

    #[test]
    fn fatal_cases_stop_once_all_patterns_appear_even_on_one_line() {
        let exp = Expectation {
            expect: vec!["[el2] FATAL:", "PSCI"],
            forbid: vec!["panicked"],
            end: End::KillWhenAllSeen,
        };
        let mut c = ConsoleCheck::new(&exp);
        assert_eq!(c.on_line("[el2] starting"), Verdict::Continue);
        assert_eq!(c.on_line("[el2] FATAL: no PSCI node"), Verdict::Stop);
        assert_eq!(c.verdict(&Outcome::Stopped), Ok(()));
    }

    #[test]
    fn patterns_on_one_line_must_also_be_in_order() {
        let exp = Expectation {
            expect: vec!["[el2] FATAL:", "PSCI"],
            forbid: vec![],
            end: End::KillWhenAllSeen,
        };
        let mut c = ConsoleCheck::new(&exp);
        assert_eq!(c.on_line("PSCI then [el2] FATAL: x"), Verdict::Continue);
    }

    #[test]
    fn a_timeout_names_the_line_it_waited_for() {
        let exp = demo();
        let mut c = ConsoleCheck::new(&exp);
        feed(&mut c, &["[el2] x"]);
        let err = c
            .verdict(&Outcome::TimedOut(Duration::from_secs(60)))
            .unwrap_err();
        assert_eq!(
            err,
            "timed out after 60 s waiting for \"demo: running at EL1\""
        );
    }

    #[test]
    fn a_fatal_case_whose_qemu_exits_early_fails() {
        let exp = Expectation {
            expect: vec!["[el2] FATAL:", "EL2"],
            forbid: vec![],
            end: End::KillWhenAllSeen,
        };
        let c = ConsoleCheck::new(&exp);
        let err = c.verdict(&exited(0)).unwrap_err();
        assert!(
            err.contains("never appeared") && err.contains("exited with status 0"),
            "{err}"
        );
    }
}
