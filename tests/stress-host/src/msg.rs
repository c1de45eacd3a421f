//! A one-line message in a fixed buffer (the image has no allocator): why a test failed,
//! or what a stress operation saw that the document does not allow.

use core::fmt::{self, Write};

/// Longest message kept; longer ones are cut.
const CAPACITY: usize = 200;

pub struct Msg {
    text: [u8; CAPACITY],
    len: usize,
}

impl Msg {
    pub fn new(args: fmt::Arguments) -> Self {
        let mut msg = Self {
            text: [0; CAPACITY],
            len: 0,
        };
        // Writing into the buffer cannot fail; it only truncates.
        let _ = msg.write_fmt(args);
        msg
    }

    pub fn as_str(&self) -> &str {
        // Truncation may cut a multi-byte character: keep the valid prefix.
        match core::str::from_utf8(&self.text[..self.len]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.text[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            // One line: a newline inside a message would break the runner's format.
            let byte = if byte == b'\n' { b' ' } else { byte };
            if let Some(slot) = self.text.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Any displayable error becomes a message with its text, so tests can use `?`.
impl<E: fmt::Display> From<E> for Msg {
    fn from(error: E) -> Self {
        Self::new(format_args!("{error}"))
    }
}

/// Fails the current test with a `format!`-style message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::msg::Msg::new(format_args!($($arg)*)))
    };
}
pub(crate) use bail;

/// `Ok(())` if `condition` holds, else fails the test with the message.
macro_rules! ensure {
    ($condition:expr, $($arg:tt)*) => {
        if !$condition {
            $crate::msg::bail!($($arg)*);
        }
    };
}
pub(crate) use ensure;

pub type TestResult = Result<(), Msg>;
