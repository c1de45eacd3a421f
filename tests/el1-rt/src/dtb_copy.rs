//! A private copy of the DTB without FDT_NOP tokens.
//!
//! `fdt` 0.1.5 stops walking a node's properties at an FDT_NOP that sits between them and
//! then loses the node's children (for example `find_node("/cpus")` fails). NOPs are
//! legal and appear whenever a DTB was edited in place (QEMU's `-dtb` fix-ups, libfdt's
//! nop_property/nop_node), so the images parse a compacted copy instead.

use core::cell::UnsafeCell;
use core::fmt;

/// Room for the copy; QEMU virt's DTB uses about 9 KiB of it.
const COPY_SIZE: usize = 64 * 1024;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_SIZE: usize = 40;
/// Oldest DTB version whose header has size_dt_struct.
const MIN_VERSION: u32 = 17;

#[repr(C, align(8))]
struct CopyBuffer(UnsafeCell<[u8; COPY_SIZE]>);

// SAFETY: the buffer is written once, by `copy_without_nops` on the boot CPU before any
// other CPU runs, and only read afterwards.
unsafe impl Sync for CopyBuffer {}

static COPY: CopyBuffer = CopyBuffer(UnsafeCell::new([0; COPY_SIZE]));

/// Why the DTB could not be copied.
#[derive(Clone, Copy, Debug)]
pub enum DtbError {
    BadMagic(u32),
    OldVersion(u32),
    /// A header offset or size, or a token, points outside the blob.
    Truncated,
    BadToken(u32),
    TooBig(usize),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::BadMagic(magic) => write!(f, "bad magic {magic:#x}"),
            Self::OldVersion(version) => write!(f, "version {version} is older than 17"),
            Self::Truncated => write!(f, "an offset or size points outside the blob"),
            Self::BadToken(token) => write!(f, "unknown structure token {token:#x}"),
            Self::TooBig(size) => write!(f, "{size} bytes do not fit the {COPY_SIZE}-byte copy"),
        }
    }
}

/// The compacted copy and the size of the original blob.
#[derive(Clone, Copy, Debug)]
pub struct DtbCopy {
    pub blob: &'static [u8],
    /// `totalsize` of the DTB as the payload handed it over (memory it occupies).
    pub original_size: usize,
}

/// Copies the DTB at `address` into the static buffer without FDT_NOP tokens and returns
/// the copy.
///
/// # Safety
///
/// `address` must point to readable memory holding a DTB of its header's `totalsize`.
/// Call at most once, before other CPUs run.
pub unsafe fn copy_without_nops(address: usize) -> Result<DtbCopy, DtbError> {
    // SAFETY: the caller promises the header is readable; the full size is only trusted
    // after the magic has been checked.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, HEADER_SIZE) };
    let magic = be32(header, 0)?;
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let total_size = be32(header, 4)? as usize;
    // SAFETY: as above; the header says the blob is `total_size` bytes long.
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, total_size) };
    // SAFETY: the caller guarantees this is the only use of COPY, so no other reference
    // to the buffer exists.
    let buffer = unsafe { &mut *COPY.0.get() };
    let size = compact(blob, buffer)?;
    Ok(DtbCopy {
        blob: &buffer[..size],
        original_size: total_size,
    })
}

/// Writes `blob` without FDT_NOP tokens into `out`; returns the size written.
fn compact(blob: &[u8], out: &mut [u8]) -> Result<usize, DtbError> {
    let version = be32(blob, 20)?;
    if version < MIN_VERSION {
        return Err(DtbError::OldVersion(version));
    }
    let struct_offset = be32(blob, 8)? as usize;
    let strings_offset = be32(blob, 12)? as usize;
    let rsvmap_offset = be32(blob, 16)? as usize;
    let strings_size = be32(blob, 32)? as usize;
    let struct_size = be32(blob, 36)? as usize;
    let structs = slice(blob, struct_offset, struct_size)?;
    let strings = slice(blob, strings_offset, strings_size)?;
    let rsvmap = reservation_map(blob, rsvmap_offset)?;

    let mut writer = Writer { out, len: 0 };
    writer.put(slice(blob, 0, HEADER_SIZE)?)?;
    // The reservation map must be 8-byte aligned; the header is 40 bytes.
    let new_rsvmap_offset = writer.len;
    writer.put(rsvmap)?;
    let new_struct_offset = writer.len;
    let mut offset = 0;
    loop {
        let token = be32(structs, offset)?;
        let length = match token {
            FDT_BEGIN_NODE => {
                let name = structs.get(offset + 4..).ok_or(DtbError::Truncated)?;
                let name_len = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(DtbError::Truncated)?;
                4 + align4(name_len + 1)
            }
            FDT_PROP => 12 + align4(be32(structs, offset + 4)? as usize),
            FDT_END_NODE | FDT_END | FDT_NOP => 4,
            other => return Err(DtbError::BadToken(other)),
        };
        if token != FDT_NOP {
            writer.put(slice(structs, offset, length)?)?;
        }
        offset += length;
        if token == FDT_END {
            break;
        }
    }
    let new_struct_size = writer.len - new_struct_offset;
    let new_strings_offset = writer.len;
    writer.put(strings)?;
    let total = writer.len;

    let header = &mut writer.out[..HEADER_SIZE];
    put_be32(header, 4, total);
    put_be32(header, 8, new_struct_offset);
    put_be32(header, 12, new_strings_offset);
    put_be32(header, 16, new_rsvmap_offset);
    put_be32(header, 36, new_struct_size);
    Ok(total)
}

/// The reservation map including its terminating all-zero entry.
fn reservation_map(blob: &[u8], offset: usize) -> Result<&[u8], DtbError> {
    let mut end = offset;
    loop {
        let entry = slice(blob, end, 16)?;
        end += 16;
        if entry.iter().all(|&b| b == 0) {
            return slice(blob, offset, end - offset);
        }
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), DtbError> {
        let end = self.len + bytes.len();
        let target = self
            .out
            .get_mut(self.len..end)
            .ok_or(DtbError::TooBig(end))?;
        target.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

fn slice(bytes: &[u8], offset: usize, len: usize) -> Result<&[u8], DtbError> {
    let end = offset.checked_add(len).ok_or(DtbError::Truncated)?;
    bytes.get(offset..end).ok_or(DtbError::Truncated)
}

fn be32(bytes: &[u8], offset: usize) -> Result<u32, DtbError> {
    let word = slice(bytes, offset, 4)?;
    Ok(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn put_be32(bytes: &mut [u8], offset: usize, value: usize) {
    // Every value written is below COPY_SIZE, so it fits in 32 bits.
    bytes[offset..offset + 4].copy_from_slice(&(value as u32).to_be_bytes());
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    const AS_LOADED: &[u8] =
        include_bytes!("../../../platform/tests/data/virt-as-loaded-by-qemu.dtb");

    #[test]
    fn compacted_copy_has_no_nops_and_fdt_finds_every_node() {
        let mut out = vec![0; COPY_SIZE];
        let size = compact(AS_LOADED, &mut out).unwrap();
        let fdt = fdt::Fdt::new(&out[..size]).unwrap();
        assert!(fdt.find_node("/cpus").is_some());
        assert_eq!(fdt.cpus().count(), 4);
        assert!(fdt.find_node("/chosen/module@50000000").is_some());
        assert!(size < AS_LOADED.len());
    }

    #[test]
    fn a_blob_that_is_not_a_dtb_is_refused() {
        let mut out = vec![0; 64];
        assert!(matches!(
            compact(&[0u8; 64], &mut out),
            Err(DtbError::OldVersion(0))
        ));
    }
}
