//! `log` backend for the payload: every record becomes one console line
//! `"{prefix}{message}\r\n"` (e.g. `[el2] ...`, which xtask matches).
//!
//! The console sits behind a spin lock so lines from several CPUs do not interleave. The lock
//! is not re-entrant: logging from code that interrupted a log call on the same CPU (an
//! exception handler) would wait forever, so handlers that can interrupt logging must not log.

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};
use spin::{Mutex, Once};

use super::Console;

/// The global logger: a console (once [`init`] ran) and the line prefix.
pub struct Logger {
    state: Mutex<State>,
}

struct State {
    console: Option<Console>,
    prefix: &'static str,
}

static LOGGER: Logger = Logger {
    state: Mutex::new(State {
        console: None,
        prefix: "",
    }),
};
static REGISTERED: Once<bool> = Once::new();

/// [`init`] found another `log` backend already installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnotherLoggerInstalled;

impl fmt::Display for AnotherLoggerInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("another log backend is already installed")
    }
}

/// Routes `log` records at `level` or above to `console`, each line starting with `prefix`.
/// Calling it again replaces the console, prefix and level.
///
/// Errors: [`AnotherLoggerInstalled`] if some other `log` backend was installed first.
pub fn init(
    console: Console,
    prefix: &'static str,
    level: LevelFilter,
) -> Result<(), AnotherLoggerInstalled> {
    {
        let mut state = LOGGER.state.lock();
        state.console = Some(console);
        state.prefix = prefix;
    }
    if !*REGISTERED.call_once(|| log::set_logger(&LOGGER).is_ok()) {
        return Err(AnotherLoggerInstalled);
    }
    log::set_max_level(level);
    Ok(())
}

/// Writes one line, `"{args}\r\n"`, without the prefix (for banners and raw output). Does
/// nothing before [`init`].
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(console) = LOGGER.state.lock().console.as_mut() {
        let _ = write_line(console, "", args);
    }
}

/// The line format shared by log records and [`print`].
fn write_line(out: &mut impl Write, prefix: &str, args: fmt::Arguments<'_>) -> fmt::Result {
    out.write_str(prefix)?;
    out.write_fmt(args)?;
    out.write_str("\r\n")
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut state = self.state.lock();
        let prefix = state.prefix;
        if let Some(console) = state.console.as_mut() {
            // A console write cannot fail (the driver only waits for FIFO space).
            let _ = write_line(console, prefix, *record.args());
        }
    }

    fn flush(&self) {
        if let Some(console) = self.state.lock().console.as_mut() {
            console.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::*;
    use super::*;

    #[test]
    fn lines_are_prefixed_and_end_in_crlf() {
        let mut out = String::new();
        write_line(&mut out, "[el2] ", format_args!("booted {} CPUs", 4)).unwrap();
        assert_eq!(out, "[el2] booted 4 CPUs\r\n");
        out.clear();
        write_line(&mut out, "", format_args!("raw")).unwrap();
        assert_eq!(out, "raw\r\n");
    }

    #[test]
    fn init_installs_the_logger_and_records_reach_the_uart() {
        let regs = leak_registers();
        regs[FLAG_REGISTER / 4] = TXFE;
        let base = regs.as_mut_ptr() as usize;
        // SAFETY: a leaked, aligned 4 KiB block used only by this console.
        let console = unsafe { Console::new(base) }.unwrap();
        init(console, "[el2] ", LevelFilter::Info).unwrap();
        assert_eq!(log::max_level(), LevelFilter::Info);
        let data = (base + DATA_REGISTER) as *mut u32;
        // SAFETY: the block is leaked, so still valid; clear the data register.
        unsafe { core::ptr::write_volatile(data, 0) };
        log::debug!("filtered out");
        // SAFETY: as above.
        let last = unsafe { core::ptr::read_volatile(data) };
        assert_eq!(last, 0, "debug is below the Info level");
        log::info!("hello");
        // SAFETY: as above.
        let last = unsafe { core::ptr::read_volatile(data) };
        assert_eq!(last, u32::from(b'\n'), "a line ends in CR LF");
        print(format_args!("x"));
        log::logger().flush();
    }
}
