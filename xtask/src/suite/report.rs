//! Counting and printing check results.

use std::io::Write;

#[derive(Default)]
pub struct Report {
    passed: u64,
    failed: u64,
}

/// Lines of output shown under a failure.
pub const TAIL_LINES: usize = 30;

impl Report {
    /// `ok NAME` plus an optional note such as the time taken.
    pub fn pass(&mut self, name: &str, note: &str) {
        self.passed += 1;
        print_ok(name, note);
    }

    /// `FAILED NAME: reason`, then the last lines of whatever explains it, indented.
    pub fn fail(&mut self, name: &str, reason: &str, tail: &[String]) {
        self.failed += 1;
        print_failed(name, reason, tail);
    }

    /// Adds counts that another runner reported (libtest), without printing.
    pub fn add_counts(&mut self, passed: u64, failed: u64) {
        self.passed += passed;
        self.failed += failed;
    }

    /// Prints the closing line and returns the exit status.
    pub fn finish(self) -> u8 {
        println!("{} passed, {} failed", self.passed, self.failed);
        flush();
        u8::from(self.failed != 0)
    }
}

/// The `ok` line alone, for checks whose counts come from [`Report::add_counts`].
pub fn print_ok(name: &str, note: &str) {
    if note.is_empty() {
        println!("ok {name}");
    } else {
        println!("ok {name} ({note})");
    }
    flush();
}

/// The `FAILED` line alone, for checks whose counts come from [`Report::add_counts`].
pub fn print_failed(name: &str, reason: &str, tail: &[String]) {
    println!("FAILED {name}: {reason}");
    for line in last_lines(tail, TAIL_LINES) {
        println!("    | {line}");
    }
    flush();
}

fn flush() {
    let _ = std::io::stdout().flush();
}

pub fn last_lines(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

/// Splits captured output into lines for [`Report::fail`], without terminal colour codes.
pub fn lines_of(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| strip_escapes(&l.replace('\r', "")))
        .collect()
}

/// Removes ANSI escape sequences (`ESC [ ... letter`, `ESC ( B` and the like).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in '@'..='~'.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(_) => {
                // Two-byte sequences such as `ESC ( B` carry one more character.
                chars.next_if(|c| c.is_ascii_alphanumeric());
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_removed_from_captured_output() {
        let lines = lines_of("\u{1b}[31m-use x;\r\n\u{1b}(B\u{1b}[m plain");
        assert_eq!(lines, ["-use x;", " plain"]);
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        let lines: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(
            last_lines(&lines, 30).first().map(String::as_str),
            Some("10")
        );
        assert_eq!(last_lines(&lines[..3], 30).len(), 3);
    }
}
