//! Checks of `cargo xtask run` itself: this xtask binary is run as a user runs it, and its
//! exit status, its last words and the QEMU it started are checked. A failed boot must end
//! at once with a non-zero status and the line that says why, a hang at the timeout, a
//! signal must take QEMU with it, and small RAM must still boot.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::report::{Report, lines_of};
use crate::paths;

pub const NAMES: [&str; 6] = [
    "xtask_run_stops_at_once_at_a_fatal_line",
    "xtask_run_stops_at_a_linux_panic",
    "xtask_run_stops_a_hang_at_its_timeout",
    "xtask_run_leaves_no_qemu_after_sigterm",
    "xtask_run_boots_the_demo_in_256m",
    "xtask_run_boots_linux_in_256m",
];

/// A check: the `xtask run` arguments and what its end must look like.
struct RunCase {
    name: &'static str,
    args: Vec<String>,
    /// The exit status `xtask run` must end with.
    status: i32,
    /// Text its output must hold, in this order.
    expect: Vec<&'static str>,
    /// It must have ended within this long (the "at once" of a failure).
    within: Duration,
}

pub fn run(report: &mut Report, selected: &dyn Fn(&str) -> bool) {
    if !NAMES.iter().any(|n| selected(n)) {
        return;
    }
    let work = paths::qemu().join("run-cases");
    let fixtures = match Fixtures::write(&work) {
        Ok(f) => f,
        Err(e) => {
            for name in NAMES.iter().filter(|n| selected(n)) {
                report.fail(name, &format!("not run: writing fixtures: {e}"), &[]);
            }
            return;
        }
    };
    for case in cases(&fixtures) {
        if selected(case.name) {
            run_case(report, &case);
        }
    }
    if selected(NAMES[3]) {
        sigterm_case(report, &fixtures);
    }
}

/// Files the cases boot: a kernel that spins at its first instruction, and a text file
/// given to Linux as its initramfs (Linux then finds no /init and panics).
struct Fixtures {
    spin: PathBuf,
    bad_initrd: PathBuf,
}

impl Fixtures {
    fn write(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let spin = dir.join("spin.bin");
        // `b .` (A64 B with offset 0): the host spins at EL1 forever, printing nothing.
        std::fs::write(&spin, 0x1400_0000u32.to_le_bytes())?;
        let bad_initrd = dir.join("not-an-initramfs.txt");
        std::fs::write(&bad_initrd, "this text is not a cpio archive\n")?;
        Ok(Self { spin, bad_initrd })
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn cases(f: &Fixtures) -> Vec<RunCase> {
    vec![
        RunCase {
            name: NAMES[0],
            args: strings(&["--without-module-nodes", "--timeout", "120"]),
            status: 1,
            expect: vec!["xtask: run failed: [el2] FATAL: no host kernel module"],
            within: Duration::from_secs(60),
        },
        RunCase {
            name: NAMES[1],
            args: [
                strings(&["--host", "linux", "--timeout", "600", "--initrd"]),
                vec![f.bad_initrd.display().to_string()],
            ]
            .concat(),
            status: 1,
            expect: vec!["xtask: run failed: ", "Kernel panic - not syncing"],
            within: Duration::from_secs(400),
        },
        RunCase {
            name: NAMES[2],
            args: [
                strings(&["--raw-kernel", "--timeout", "5", "--kernel"]),
                vec![f.spin.display().to_string()],
            ]
            .concat(),
            status: 124,
            expect: vec!["[el2] entering host", "xtask: no end after 5 s"],
            within: Duration::from_secs(90),
        },
        RunCase {
            name: NAMES[4],
            args: strings(&["--mem", "256M", "--timeout", "120"]),
            status: 0,
            expect: vec!["-m 256M", "demo: PASS"],
            within: Duration::from_secs(180),
        },
        RunCase {
            name: NAMES[5],
            args: strings(&["--host", "linux", "--mem", "256M", "--timeout", "600"]),
            status: 0,
            expect: vec!["-m 256M", "init: HOST-OK", "reboot: Power down"],
            within: Duration::from_secs(700),
        },
    ]
}

/// `xtask run ARGS` with its output (stdout and stderr) in `log`.
fn spawn_run(args: &[String], log: &Path) -> std::io::Result<Child> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    Command::new(std::env::current_exe()?)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

/// Waits for `child` up to `limit`; kills it (our own child, by its handle) past that.
fn wait_within(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_path(name: &str) -> PathBuf {
    paths::qemu_logs().join(format!("{name}.log"))
}

fn run_case(report: &mut Report, case: &RunCase) {
    let log = log_path(case.name);
    let started = Instant::now();
    let result = spawn_run(&case.args, &log).and_then(|mut c| wait_within(&mut c, case.within));
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let verdict = match result {
        Err(e) => Err(format!("could not run xtask: {e}")),
        Ok(None) => Err(format!(
            "`xtask run` had not ended after {:.0} s",
            case.within.as_secs_f64()
        )),
        Ok(Some(status)) if status.code() != Some(case.status) => Err(format!(
            "`xtask run` ended with {status}, expected exit status {}",
            case.status
        )),
        Ok(Some(_)) => in_order(&text, &case.expect),
    };
    finish(report, case.name, verdict, elapsed, &log, &text);
}

/// `Ok` if `patterns` appear in `text` in this order.
fn in_order(text: &str, patterns: &[&str]) -> Result<(), String> {
    let mut rest = text;
    for p in patterns {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return Err(format!("{p:?} never appeared (in this order)")),
        }
    }
    Ok(())
}

fn finish(
    report: &mut Report,
    name: &str,
    verdict: Result<(), String>,
    elapsed: Duration,
    log: &Path,
    text: &str,
) {
    let secs = elapsed.as_secs_f64();
    match verdict {
        Ok(()) => report.pass(name, &format!("{secs:.1} s")),
        Err(reason) => report.fail(
            name,
            &format!("{reason} [{secs:.1} s, log {}]", paths::pretty(log)),
            &lines_of(text),
        ),
    }
}

/// SIGTERM to a `xtask run` whose host spins: xtask must end with 128 + 15 and its QEMU
/// must be gone, not left running at 100 % CPU.
fn sigterm_case(report: &mut Report, f: &Fixtures) {
    let name = NAMES[3];
    let log = log_path(name);
    let started = Instant::now();
    let args = [
        strings(&["--raw-kernel", "--timeout", "600", "--kernel"]),
        vec![f.spin.display().to_string()],
    ]
    .concat();
    let verdict = (|| -> Result<(), String> {
        let mut xtask = spawn_run(&args, &log).map_err(|e| format!("could not run xtask: {e}"))?;
        let result = sigterm_and_check(&mut xtask, &log);
        // Whatever happened, no xtask of ours is left behind.
        let _ = xtask.kill();
        let _ = xtask.wait();
        result
    })();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    finish(report, name, verdict, started.elapsed(), &log, &text);
}

fn sigterm_and_check(xtask: &mut Child, log: &Path) -> Result<(), String> {
    let pid = xtask.id();
    // The host is running once the payload has entered it: QEMU is up.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("[el2] entering host")
    {
        if Instant::now() >= deadline {
            return Err("the payload never entered the host".into());
        }
        if let Ok(Some(status)) = xtask.try_wait() {
            return Err(format!("`xtask run` ended early with {status}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let qemu = child_named(pid, crate::qemu::QEMU)
        .ok_or_else(|| format!("`xtask run` (pid {pid}) has no {} child", crate::qemu::QEMU))?;
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = wait_within(xtask, Duration::from_secs(30))
        .map_err(|e| e.to_string())?
        .ok_or("`xtask run` did not end within 30 s of SIGTERM")?;
    if status.code() != Some(128 + libc::SIGTERM) {
        return Err(format!(
            "`xtask run` ended with {status} after SIGTERM, expected exit status 143"
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(qemu) {
        if Instant::now() >= deadline {
            return Err(format!(
                "QEMU (pid {qemu}) still runs 10 s after `xtask run` ended: an orphan"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    in_order(
        &std::fs::read_to_string(log).unwrap_or_default(),
        &["xtask: interrupted by SIGTERM: QEMU killed"],
    )
}

/// The pid of a child of `parent` whose command name starts like `program` (the kernel
/// keeps 15 bytes of it), from /proc/PID/stat.
fn child_named(parent: u32, program: &str) -> Option<u32> {
    let comm: String = program.chars().take(15).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some((name, ppid, _)) = stat(pid) else {
            continue;
        };
        if ppid == parent && name == comm {
            return Some(pid);
        }
    }
    None
}

/// `(comm, ppid, state)` of a process.
fn stat(pid: u32) -> Option<(String, u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID ...": COMM may hold spaces, so split at the last ')'.
    let (head, tail) = text.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((name, ppid, state))
}

/// A process that exists and is not a zombie waiting to be reaped.
fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, _, state)| state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_this_process() {
        let (name, ppid, state) = stat(std::process::id()).unwrap();
        assert!(!name.is_empty());
        assert!(ppid > 0);
        assert!(is_alive(std::process::id()), "state {state}");
    }

    #[test]
    fn a_child_is_found_by_its_name() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let found = child_named(std::process::id(), "sleep");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, Some(child.id()));
        assert!(!is_alive(child.id()));
    }

    #[test]
    fn patterns_must_come_in_order() {
        assert!(in_order("a b c", &["a", "c"]).is_ok());
        assert!(in_order("a b c", &["c", "a"]).is_err());
    }
}
