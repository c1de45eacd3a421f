//! The arm64 Image header (Linux `Documentation/arch/arm64/booting.rst`) at the start of a
//! raw image: how much memory the image needs once loaded, `.bss` and stacks included,
//! which is more than the file holds. The test guest carries one for this reason.

use core::fmt;
use platform::fdt_discovery::{IMAGE_HEADER_LEN, IMAGE_MAGIC_OFFSET, image_size};

/// Why an image header is unusable.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum HeaderError {
    /// The file is shorter than the 64-byte header.
    TooShort(usize),
    /// No `ARM\x64` at offset 0x38.
    NoMagic,
    /// `image_size` does not fit in `usize`.
    TooBig(u64),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::TooShort(len) => write!(f, "image of {len} bytes has no 64-byte header"),
            Self::NoMagic => write!(f, "no arm64 Image magic at offset {IMAGE_MAGIC_OFFSET:#x}"),
            Self::TooBig(size) => write!(f, "image_size {size:#x} is too big"),
        }
    }
}

/// Bytes the image occupies once loaded: `image_size` from its header, or the file size
/// if that is larger (an `image_size` of 0 means "unknown" in the boot protocol).
pub fn memory_size(image: &[u8]) -> Result<usize, HeaderError> {
    if image.len() < IMAGE_HEADER_LEN {
        return Err(HeaderError::TooShort(image.len()));
    }
    let declared = image_size(image).ok_or(HeaderError::NoMagic)?;
    let declared = usize::try_from(declared).map_err(|_| HeaderError::TooBig(declared))?;
    Ok(declared.max(image.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::fdt_discovery::{IMAGE_MAGIC, IMAGE_SIZE_OFFSET};

    fn header(image_size: u64, len: usize) -> Vec<u8> {
        let mut image = vec![0; len];
        image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&image_size.to_le_bytes());
        image[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(IMAGE_MAGIC);
        image
    }

    #[test]
    fn image_size_covers_more_than_the_file() {
        assert_eq!(memory_size(&header(0x6000, 0x1234)), Ok(0x6000));
    }

    #[test]
    fn a_zero_image_size_means_the_file_size() {
        assert_eq!(memory_size(&header(0, 0x1234)), Ok(0x1234));
    }

    #[test]
    fn no_magic_or_no_header_is_refused() {
        assert_eq!(memory_size(&[0; 64]), Err(HeaderError::NoMagic));
        assert_eq!(memory_size(&[0; 10]), Err(HeaderError::TooShort(10)));
    }
}
