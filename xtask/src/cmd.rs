//! Running external programs with errors that name the exact command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Result, bail};

/// Quotes one word for a POSIX shell, only when it needs quoting.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The command as one line that can be pasted into a shell.
pub fn display(cmd: &Command) -> String {
    let mut words = vec![shell_quote(&cmd.get_program().to_string_lossy())];
    words.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    words.join(" ")
}

/// Runs `cmd` with inherited stdio and fails unless it exits with status 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => bail!("could not start `{line}`: {e}"),
    };
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output; on failure the error carries its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let out = match cmd.stdin(Stdio::null()).output() {
        Ok(out) => out,
        Err(e) => bail!("could not start `{line}`: {e}"),
    };
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where `name` is found on `PATH`, if anywhere.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether this process runs as root (needed for apt-get and for `mknod` in the initramfs).
pub fn is_root() -> bool {
    // The real uid is the first number on the `Uid:` line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_not_quoted_and_others_are() {
        assert_eq!(
            shell_quote("virt,virtualization=on"),
            "virt,virtualization=on"
        );
        assert_eq!(
            shell_quote("console=ttyAMA0 earlycon"),
            "'console=ttyAMA0 earlycon'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn display_joins_program_and_quoted_args() {
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(["-append", "a b"]);
        assert_eq!(display(&cmd), "qemu-system-aarch64 -append 'a b'");
    }
}
