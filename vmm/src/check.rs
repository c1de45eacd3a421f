//! Numbered, named checks with loud failures: every check prints `vmm: ok: ...` or
//! `vmm: FAIL: ...` (which `cargo xtask test` looks for), and a run ends with a count.

pub struct Checks {
    name: &'static str,
    passed: u32,
    failed: u32,
}

impl Checks {
    pub fn new(name: &'static str) -> Self {
        println!("vmm: {name}: start");
        Self {
            name,
            passed: 0,
            failed: 0,
        }
    }

    /// Records `ok` for the check `what`; `detail` is what was seen.
    pub fn check(&mut self, ok: bool, what: &str, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
            println!("vmm: ok: {what}: {detail}");
        } else {
            self.failed += 1;
            println!("vmm: FAIL: {what}: {detail}");
        }
        ok
    }

    /// A result that must be `Err(expected)`.
    pub fn errno<T>(&mut self, what: &str, got: crate::pvm::Result<T>, expected: i32) {
        let expected = crate::pvm::Errno(expected);
        match got {
            Ok(_) => self.check(false, what, format!("succeeded, expected {expected}")),
            Err(e) => self.check(e == expected, what, e),
        };
    }

    /// Prints the summary line; true if nothing failed.
    pub fn finish(self) -> bool {
        println!(
            "vmm: {}: {} passed, {} failed",
            self.name, self.passed, self.failed
        );
        self.failed == 0
    }
}
