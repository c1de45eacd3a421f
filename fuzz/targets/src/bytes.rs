//! Reading fuzz input: a cursor that hands out bytes and never fails.
//!
//! Once the input is used up every read returns zeros, so any input (including the empty
//! one) decodes to something, and a short input is a prefix of a longer one: libFuzzer's
//! mutations of the tail do not change what the head means.

/// A cursor over fuzz input.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// One of `items`, chosen by the next byte (modulo the length).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.u8()) % items.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_then_zeros() {
        let mut b = Bytes::new(&[1, 2, 3]);
        assert_eq!(b.u16(), 0x0201);
        assert!(!b.is_empty());
        assert_eq!(b.u32(), 3);
        assert!(b.is_empty());
        assert_eq!(b.u64(), 0);
    }

    #[test]
    fn pick_wraps_around() {
        let mut b = Bytes::new(&[5]);
        assert_eq!(b.pick(&['a', 'b', 'c']), 'c');
        assert_eq!(b.pick(&['a', 'b', 'c']), 'a');
    }
}
