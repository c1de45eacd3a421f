//! Running QEMU with its console streamed through a watcher: live echo, a log file, a hang
//! timeout, and killing QEMU when the watcher has seen what it waited for.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};
use crate::qemu;
use crate::{child_guard, cmd};

/// What the console watcher wants after seeing a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Kill QEMU now (it reached the point the test waits for, e.g. a fatal halt that spins).
    Stop,
    /// Kill QEMU after this much more output time (lets a panic message finish printing).
    StopWithin(Duration),
}

/// Looks at each console line (stdout and stderr, `\r` removed) as it arrives.
pub trait Watcher {
    fn on_line(&mut self, line: &str) -> Verdict;
}

/// Watches nothing: QEMU runs to its end.
#[cfg(test)]
pub struct NoWatch;

#[cfg(test)]
impl Watcher for NoWatch {
    fn on_line(&mut self, _line: &str) -> Verdict {
        Verdict::Continue
    }
}

/// How a QEMU run ended.
#[derive(Debug)]
pub enum Outcome {
    /// QEMU exited by itself.
    Exited(ExitStatus),
    /// The watcher asked to stop and xtask killed QEMU.
    Stopped,
    /// The hang timeout ran out and xtask killed QEMU.
    TimedOut(Duration),
    /// xtask got this signal (SIGINT, SIGTERM, SIGHUP) and killed QEMU
    /// ([`crate::child_guard`]).
    Interrupted(i32),
}

impl Outcome {
    /// The exit code `cargo xtask run` passes on: QEMU's own, 128 + signal if it was
    /// killed by one, 124 (like timeout(1)) after a hang timeout, 128 + signal when xtask
    /// itself was interrupted.
    pub fn exit_code(&self) -> u8 {
        use std::os::unix::process::ExitStatusExt;
        match self {
            Outcome::Exited(status) => match (status.code(), status.signal()) {
                (Some(code), _) => u8::try_from(code).unwrap_or(1),
                (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
                (None, None) => 1,
            },
            Outcome::Stopped => 0,
            Outcome::TimedOut(_) => 124,
            Outcome::Interrupted(signal) => u8::try_from(128 + signal).unwrap_or(1),
        }
    }
}

/// How to run QEMU.
pub struct RunOptions<'a> {
    /// Copy the console to our stdout/stderr as it arrives.
    pub echo: bool,
    /// Also write the console to this file (created or truncated).
    pub log: Option<&'a Path>,
    /// Kill QEMU if it has not ended after this long.
    pub timeout: Option<Duration>,
    /// Give QEMU our stdin (interactive `run`); otherwise /dev/null.
    pub interactive: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Starts QEMU with `args` and streams its console through `watcher` until QEMU exits, the
/// watcher stops it, or the timeout runs out.
pub fn run(args: &[String], opts: &RunOptions<'_>, watcher: &mut dyn Watcher) -> Result<Outcome> {
    run_program(qemu::command(args), opts, watcher)
}

/// [`run`] for any program (the tests drive it with a shell).
fn run_program(
    mut program: Command,
    opts: &RunOptions<'_>,
    watcher: &mut dyn Watcher,
) -> Result<Outcome> {
    let name = program.get_program().to_string_lossy().into_owned();
    let mut log = match opts.log {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = File::create(path).context(|| format!("creating {}", path.display()))?;
            writeln!(f, "# {}", cmd::display(&program))?;
            Some(f)
        }
        None => None,
    };
    if let Some(signal) = child_guard::caught() {
        return Ok(Outcome::Interrupted(signal));
    }
    child_guard::kill_with_parent(&mut program);
    let mut child = program
        .stdin(if opts.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("starting {name}"))?;
    child_guard::running(child.id());

    // One reader thread per pipe; a chunk of length 0 never travels, the channel closing
    // (both senders dropped at EOF) means QEMU closed its output.
    let (tx, rx) = mpsc::channel::<(Stream, Vec<u8>)>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, Stream::Out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, Stream::Err, tx.clone()));
    }
    drop(tx);

    let started = Instant::now();
    let hang_deadline = opts.timeout.map(|t| started + t);
    let mut stop_deadline: Option<Instant> = None;
    let mut lines = [LineSplitter::default(), LineSplitter::default()];
    let mut ended_by: Option<Outcome> = None;

    loop {
        let deadline = match (hang_deadline, stop_deadline) {
            (Some(h), Some(s)) => Some(h.min(s)),
            (h, s) => h.or(s),
        };
        let received = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((stream, chunk)) => {
                if opts.echo {
                    echo(stream, &chunk);
                }
                if let Some(f) = log.as_mut() {
                    f.write_all(&chunk)?;
                }
                let splitter = &mut lines[stream as usize];
                for line in splitter.push(&chunk) {
                    match watcher.on_line(&line) {
                        Verdict::Continue => {}
                        Verdict::Stop => stop_deadline = Some(Instant::now()),
                        Verdict::StopWithin(grace) => {
                            let at = Instant::now() + grace;
                            stop_deadline = Some(stop_deadline.map_or(at, |s| s.min(at)));
                        }
                    }
                }
                if stop_deadline.is_some_and(|s| s <= Instant::now()) {
                    ended_by = Some(Outcome::Stopped);
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                ended_by = Some(if stop_deadline.is_some_and(|s| s <= Instant::now()) {
                    Outcome::Stopped
                } else {
                    Outcome::TimedOut(started.elapsed())
                });
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    // Kill and reap only our own child, by its handle; the signal handler forgets it first
    // so that it never signals a reaped (reusable) pid.
    let outcome = match ended_by {
        Some(outcome) => {
            let _ = child.kill();
            child_guard::finished();
            let _ = child.wait();
            outcome
        }
        None => {
            for splitter in &mut lines {
                if let Some(last) = splitter.finish() {
                    watcher.on_line(&last);
                }
            }
            child_guard::finished();
            Outcome::Exited(child.wait().context(|| format!("waiting for {name}"))?)
        }
    };
    let outcome = match child_guard::caught() {
        Some(signal) => Outcome::Interrupted(signal),
        None => outcome,
    };
    if opts.interactive && !matches!(outcome, Outcome::Exited(_)) {
        restore_terminal();
    }
    for reader in readers {
        let _ = reader.join();
    }
    if let Some(f) = log.as_mut() {
        f.flush()?;
    }
    Ok(outcome)
}

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((stream, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn echo(stream: Stream, chunk: &[u8]) {
    // A closed stdout (e.g. `| head`) must not stop the run: ignore write errors.
    let _ = match stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(chunk).and_then(|()| out.flush())
        }
        Stream::Err => std::io::stderr().write_all(chunk),
    };
}

/// QEMU puts a terminal on stdin in raw mode and cannot undo it once killed.
fn restore_terminal() {
    if std::io::stdin().is_terminal() {
        let _ = Command::new("stty").arg("sane").status();
    }
}

/// Cuts a byte stream into lines, dropping `\r` (the serial console sends `\r\n`).
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in chunk {
            if b == b'\n' {
                lines.push(Self::text(&std::mem::take(&mut self.pending)));
            } else {
                self.pending.push(b);
            }
        }
        lines
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| Self::text(&std::mem::take(&mut self.pending)))
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).replace('\r', "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitter_joins_chunks_and_drops_carriage_returns() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"[el2] he").is_empty());
        assert_eq!(s.push(b"llo\r\nde"), vec!["[el2] hello"]);
        assert_eq!(s.push(b"mo\r\n\n"), vec!["demo", ""]);
        assert_eq!(s.finish(), None);
        s.push(b"tail");
        assert_eq!(s.finish().as_deref(), Some("tail"));
    }

    /// Records lines and stops at a marker, like a fatal-case expectation.
    struct StopAt(&'static str, Vec<String>);

    impl Watcher for StopAt {
        fn on_line(&mut self, line: &str) -> Verdict {
            self.1.push(line.to_string());
            if line.contains(self.0) {
                Verdict::Stop
            } else {
                Verdict::Continue
            }
        }
    }

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    fn quiet(timeout: Option<Duration>) -> RunOptions<'static> {
        RunOptions {
            echo: false,
            log: None,
            timeout,
            interactive: false,
        }
    }

    #[test]
    fn a_program_that_exits_passes_its_status_and_all_lines() {
        let mut w = StopAt("never", Vec::new());
        let outcome = run_program(
            shell("printf 'one\\r\\ntwo\\n'; echo err >&2; printf tail; exit 3"),
            &quiet(Some(Duration::from_secs(30))),
            &mut w,
        )
        .unwrap();
        assert_eq!(outcome.exit_code(), 3);
        w.1.sort();
        assert_eq!(w.1, ["err", "one", "tail", "two"]);
    }

    #[test]
    fn a_program_that_spins_after_the_marker_is_killed_there() {
        // `tail -f /dev/null` never ends by itself, like the payload's fatal halt.
        let mut w = StopAt("FATAL", Vec::new());
        let outcome = run_program(
            shell("echo start; echo '[el2] FATAL: x'; exec tail -f /dev/null"),
            &quiet(Some(Duration::from_secs(30))),
            &mut w,
        )
        .unwrap();
        assert!(matches!(outcome, Outcome::Stopped), "{outcome:?}");
        assert_eq!(w.1, ["start", "[el2] FATAL: x"]);
    }

    #[test]
    fn a_program_that_hangs_is_killed_at_the_timeout() {
        let mut w = StopAt("never", Vec::new());
        let outcome = run_program(
            shell("echo start; exec tail -f /dev/null"),
            &quiet(Some(Duration::from_millis(300))),
            &mut w,
        )
        .unwrap();
        assert!(matches!(outcome, Outcome::TimedOut(_)), "{outcome:?}");
        assert_eq!(w.1, ["start"]);
    }

    #[test]
    fn the_log_gets_the_command_line_and_the_raw_console() {
        let dir = std::env::temp_dir().join(format!("xtask-log-test-{}", std::process::id()));
        let log = dir.join("x.log");
        let opts = RunOptions {
            log: Some(&log),
            ..quiet(Some(Duration::from_secs(30)))
        };
        run_program(shell("echo hello"), &opts, &mut NoWatch).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(text, "# sh -c 'echo hello'\nhello\n");
    }

    #[test]
    fn exit_code_passes_qemu_status_through() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(Outcome::Exited(ExitStatus::from_raw(3 << 8)).exit_code(), 3);
        assert_eq!(Outcome::Exited(ExitStatus::from_raw(9)).exit_code(), 137);
        assert_eq!(Outcome::TimedOut(Duration::from_secs(1)).exit_code(), 124);
    }
}
