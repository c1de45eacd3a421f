//! Structural pre-validation of a flattened device tree blob.
//!
//! Why this exists: `fdt` 0.1.5 trusts the blob it is given. Read from its source, it slices
//! the structure and strings blocks with offsets from the header without bounds checks,
//! `unwrap`s/`expect`s on missing tokens, non-UTF-8 names and `#address-cells` values shorter
//! than one cell, asserts on unexpected tokens while skipping nodes, underflows its depth
//! counter on a stray `FDT_END_NODE`, overflows a 64-entry parent array on deep trees, and
//! mishandles `FDT_NOP` tags between properties (it then panics in `skip_current_node` or
//! silently stops iterating). Measured: iterating all nodes and properties with `fdt` alone
//! panics on about one in four random single-byte changes to QEMU virt's DTB (773 of 3000
//! mutations of `tests/data/virt-modules.dtb`). The blob comes from the loader, and a rewritten one goes to the
//! host, so EL2 must not panic on it: every blob is walked here first, and `fdt` only ever sees
//! a blob this module accepted. The rules are those of the devicetree specification (v0.4,
//! chapter 5) plus the restrictions the `fdt` parser needs (no NOP tags, depth limit).

use core::fmt;

/// Deepest node nesting accepted (the same limit as libfdt's `FDT_MAX_DEPTH`; `fdt` 0.1.5
/// breaks at 64, `vm-fdt` refuses more than 64).
pub const MAX_DEPTH: usize = 32;

const HEADER_SIZE: usize = 40;
const FDT_MAGIC: u32 = 0xd00d_feed;
/// The structure block's tokens (devicetree specification 5.4.1); `fdt_long_names` reads
/// them too.
pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_NOP: u32 = 4;
pub(crate) const FDT_END: u32 = 9;

/// Why a byte slice is not a device tree this crate can parse safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtFormatError {
    /// Fewer bytes than the 40-byte FDT header.
    TooShortForHeader { available: usize },
    /// The first word is not 0xd00dfeed.
    BadMagic,
    /// The header's `totalsize` is larger than the bytes we were given.
    Truncated { totalsize: usize, available: usize },
    /// The header's `totalsize` cannot even hold the header.
    TotalSizeTooSmall { totalsize: usize },
    /// Version older than 17 (no `size_dt_struct`) or not backwards compatible with 17.
    UnsupportedVersion { version: u32, last_compatible: u32 },
    /// A block (memory reservation map, structure, strings) lies outside `totalsize`.
    BlockOutOfBounds { block: &'static str },
    /// A block offset violates the alignment the specification requires.
    Misaligned { block: &'static str },
    /// The memory reservation map has no (0, 0) terminator inside the blob.
    UnterminatedReservationMap,
    /// The structure block is malformed at `offset` (relative to the structure block).
    BadStructure { offset: usize, reason: &'static str },
    /// The structure block contains an `FDT_NOP` tag.
    NopTag { offset: usize },
    /// Nodes nest deeper than [`MAX_DEPTH`].
    TooDeep { max: usize },
}

impl fmt::Display for FdtFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShortForHeader { available } => write!(
                f,
                "not a device tree: {available} bytes cannot hold the {HEADER_SIZE}-byte header"
            ),
            Self::BadMagic => write!(f, "not a device tree: bad magic"),
            Self::Truncated {
                totalsize,
                available,
            } => write!(
                f,
                "truncated device tree: header totalsize is {totalsize} bytes, only {available} available"
            ),
            Self::TotalSizeTooSmall { totalsize } => write!(
                f,
                "bad device tree header: totalsize {totalsize} cannot hold the header"
            ),
            Self::UnsupportedVersion {
                version,
                last_compatible,
            } => write!(
                f,
                "unsupported device tree version {version} (last compatible {last_compatible}); \
                 need version >= 17 readable by a version 17 parser"
            ),
            Self::BlockOutOfBounds { block } => {
                write!(
                    f,
                    "bad device tree header: the {block} block lies outside totalsize"
                )
            }
            Self::Misaligned { block } => {
                write!(f, "bad device tree header: the {block} block is misaligned")
            }
            Self::UnterminatedReservationMap => {
                write!(
                    f,
                    "bad device tree: memory reservation map has no terminator"
                )
            }
            Self::BadStructure { offset, reason } => write!(
                f,
                "malformed device tree structure block at offset {offset:#x}: {reason}"
            ),
            Self::NopTag { offset } => write!(
                f,
                "device tree structure block has an FDT_NOP tag at offset {offset:#x}, \
                 which the fdt 0.1.5 parser mishandles (repack the blob, e.g. with dtc)"
            ),
            Self::TooDeep { max } => write!(f, "device tree nodes nest deeper than {max} levels"),
        }
    }
}

/// A blob that passed [`check`]: safe to hand to `fdt::Fdt::new`.
#[derive(Clone, Copy, Debug)]
pub struct CheckedBlob<'a> {
    /// The blob, cut to the header's `totalsize`.
    pub bytes: &'a [u8],
    /// `boot_cpuid_phys` from the header (copied into a rewritten blob).
    pub boot_cpuid_phys: u32,
}

impl<'a> CheckedBlob<'a> {
    /// Parses the checked blob with `fdt`. `check` already tested everything `Fdt::new` tests
    /// (magic, header length, totalsize), so the error arm is not expected to be taken; it is
    /// mapped rather than unwrapped all the same.
    pub fn parse(&self) -> Result<fdt::Fdt<'a>, FdtFormatError> {
        fdt::Fdt::new(self.bytes).map_err(|e| match e {
            fdt::FdtError::BadMagic => FdtFormatError::BadMagic,
            fdt::FdtError::BadPtr | fdt::FdtError::BufferTooSmall => {
                FdtFormatError::TooShortForHeader {
                    available: self.bytes.len(),
                }
            }
        })
    }
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let word = bytes.get(offset..end)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    Some((u64::from(be32(bytes, offset)?) << 32) | u64::from(be32(bytes, offset.checked_add(4)?)?))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// Checks the header, the memory reservation map and every token of the structure block.
///
/// Errors: every [`FdtFormatError`] variant, as documented on it.
pub fn check(dtb: &[u8]) -> Result<CheckedBlob<'_>, FdtFormatError> {
    if dtb.len() < 4 {
        return Err(FdtFormatError::TooShortForHeader {
            available: dtb.len(),
        });
    }
    let header = |index: usize| be32(dtb, index * 4).unwrap_or(0);
    if header(0) != FDT_MAGIC {
        return Err(FdtFormatError::BadMagic);
    }
    if dtb.len() < HEADER_SIZE {
        return Err(FdtFormatError::TooShortForHeader {
            available: dtb.len(),
        });
    }
    let totalsize = header(1) as usize;
    if totalsize < HEADER_SIZE {
        return Err(FdtFormatError::TotalSizeTooSmall { totalsize });
    }
    if totalsize > dtb.len() {
        return Err(FdtFormatError::Truncated {
            totalsize,
            available: dtb.len(),
        });
    }
    let (version, last_compatible) = (header(5), header(6));
    if version < 17 || last_compatible > 17 {
        return Err(FdtFormatError::UnsupportedVersion {
            version,
            last_compatible,
        });
    }
    let blob = &dtb[..totalsize];

    let off_struct = header(2) as usize;
    let off_strings = header(3) as usize;
    let off_rsvmap = header(4) as usize;
    let size_strings = header(8) as usize;
    let size_struct = header(9) as usize;

    let block = |name: &'static str, off: usize, size: usize| match off.checked_add(size) {
        Some(end) if off >= HEADER_SIZE && end <= totalsize => Ok(off..end),
        _ => Err(FdtFormatError::BlockOutOfBounds { block: name }),
    };
    let struct_range = block("structure", off_struct, size_struct)?;
    let strings_range = block("strings", off_strings, size_strings)?;
    if !off_struct.is_multiple_of(4) {
        return Err(FdtFormatError::Misaligned { block: "structure" });
    }
    if !off_rsvmap.is_multiple_of(8) {
        return Err(FdtFormatError::Misaligned {
            block: "memory reservation",
        });
    }
    if off_rsvmap < HEADER_SIZE || off_rsvmap >= totalsize {
        return Err(FdtFormatError::BlockOutOfBounds {
            block: "memory reservation",
        });
    }
    check_reservation_map(&blob[off_rsvmap..])?;
    check_structure(&blob[struct_range], &blob[strings_range])?;

    Ok(CheckedBlob {
        bytes: blob,
        boot_cpuid_phys: header(7),
    })
}

/// Removes every `FDT_NOP` tag from the structure block, in place, and shrinks the header's
/// `size_dt_struct` to match; returns how many were removed.
///
/// Why: libfdt leaves NOP tags where it deletes or shrinks properties in place, and QEMU
/// does exactly that to the blob it passes with `-dtb` (measured: a NOP at offset 0x150 of
/// its `/chosen`). `fdt` 0.1.5 cannot parse those, so EL2 compacts the blob first. Tokens are
/// only moved towards the start of the block, never past its end; a malformed blob is left
/// partly compacted but still in bounds, and [`check`] then reports what is wrong with it.
pub fn strip_nops(dtb: &mut [u8]) -> Result<usize, FdtFormatError> {
    let off_struct = check_header_for_compaction(dtb)?;
    let size_struct = be32(dtb, 36).unwrap_or(0) as usize;
    let structure = &mut dtb[off_struct..off_struct + size_struct];
    let bad = |offset: usize, reason: &'static str| FdtFormatError::BadStructure { offset, reason };
    let (mut read, mut write, mut removed) = (0usize, 0usize, 0usize);
    loop {
        let token =
            be32(structure, read).ok_or(bad(read, "structure block ends without FDT_END"))?;
        let len = match token {
            FDT_NOP => {
                read += 4;
                removed += 1;
                continue;
            }
            FDT_BEGIN_NODE => {
                let name = structure.get(read + 4..).unwrap_or_default();
                let nul = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(bad(read, "string not NUL-terminated"))?;
                align4(4 + nul + 1).ok_or(bad(read, "overflow"))?
            }
            FDT_PROP => {
                let value =
                    be32(structure, read + 4).ok_or(bad(read, "truncated property"))? as usize;
                align4(12usize.checked_add(value).ok_or(bad(read, "overflow"))?)
                    .ok_or(bad(read, "overflow"))?
            }
            FDT_END_NODE | FDT_END => 4,
            _ => return Err(bad(read, "unknown token")),
        };
        let end = read
            .checked_add(len)
            .filter(|&e| e <= structure.len())
            .ok_or(bad(read, "token runs past the structure block"))?;
        structure.copy_within(read..end, write);
        write += len;
        read = end;
        if token == FDT_END {
            break;
        }
    }
    dtb[36..40].copy_from_slice(&(write as u32).to_be_bytes());
    Ok(removed)
}

/// The header checks [`strip_nops`] needs before it writes: magic, totalsize within the
/// slice, structure block within totalsize. Returns the structure block's offset.
fn check_header_for_compaction(dtb: &[u8]) -> Result<usize, FdtFormatError> {
    if dtb.len() < HEADER_SIZE {
        return Err(FdtFormatError::TooShortForHeader {
            available: dtb.len(),
        });
    }
    if be32(dtb, 0) != Some(FDT_MAGIC) {
        return Err(FdtFormatError::BadMagic);
    }
    let totalsize = be32(dtb, 4).unwrap_or(0) as usize;
    if totalsize > dtb.len() {
        return Err(FdtFormatError::Truncated {
            totalsize,
            available: dtb.len(),
        });
    }
    let off = be32(dtb, 8).unwrap_or(0) as usize;
    let size = be32(dtb, 36).unwrap_or(0) as usize;
    match off.checked_add(size) {
        Some(end) if off >= HEADER_SIZE && end <= totalsize && off.is_multiple_of(4) => Ok(off),
        _ => Err(FdtFormatError::BlockOutOfBounds { block: "structure" }),
    }
}

fn check_reservation_map(map: &[u8]) -> Result<(), FdtFormatError> {
    let mut offset = 0;
    loop {
        let (Some(address), Some(size)) = (be64(map, offset), be64(map, offset + 8)) else {
            return Err(FdtFormatError::UnterminatedReservationMap);
        };
        if address == 0 && size == 0 {
            return Ok(());
        }
        offset += 16;
    }
}

/// Returns the NUL-terminated UTF-8 string at the start of `bytes` (without the NUL).
fn c_str(bytes: &[u8]) -> Result<&str, &'static str> {
    let nul = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or("string not NUL-terminated")?;
    core::str::from_utf8(&bytes[..nul]).map_err(|_| "string is not UTF-8")
}

fn check_structure(structure: &[u8], strings: &[u8]) -> Result<(), FdtFormatError> {
    let bad = |offset: usize, reason: &'static str| FdtFormatError::BadStructure { offset, reason };
    // `has_child[d]`: the open node at depth d already had a child node, so a property there
    // would come after a child, which the specification forbids and `fdt` cannot skip.
    let mut has_child = [false; MAX_DEPTH + 1];
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut offset = 0usize;
    loop {
        let token =
            be32(structure, offset).ok_or(bad(offset, "structure block ends without FDT_END"))?;
        match token {
            FDT_BEGIN_NODE => {
                let name_start = offset + 4;
                let name = c_str(structure.get(name_start..).unwrap_or_default())
                    .map_err(|reason| bad(name_start, reason))?;
                if depth == 0 {
                    if seen_root {
                        return Err(bad(offset, "more than one root node"));
                    }
                    if !name.is_empty() {
                        return Err(bad(offset, "root node has a name"));
                    }
                    seen_root = true;
                } else if name.is_empty() {
                    return Err(bad(offset, "node without a name"));
                }
                has_child[depth] = true;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FdtFormatError::TooDeep { max: MAX_DEPTH });
                }
                has_child[depth] = false;
                offset = align4(name_start + name.len() + 1).ok_or(bad(offset, "overflow"))?;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(bad(offset, "property outside any node"));
                }
                if has_child[depth] {
                    return Err(bad(offset, "property after a child node"));
                }
                let len = be32(structure, offset + 4).ok_or(bad(offset, "truncated property"))?;
                let name_off =
                    be32(structure, offset + 8).ok_or(bad(offset, "truncated property"))?;
                let data_start = offset + 12;
                let data_end = data_start
                    .checked_add(len as usize)
                    .filter(|&end| end <= structure.len())
                    .ok_or(bad(offset, "property value runs past the structure block"))?;
                let name = strings
                    .get(name_off as usize..)
                    .ok_or(bad(
                        offset,
                        "property name offset outside the strings block",
                    ))
                    .and_then(|s| c_str(s).map_err(|reason| bad(offset, reason)))?;
                if name.is_empty() {
                    return Err(bad(offset, "property with an empty name"));
                }
                if (name == "#address-cells" || name == "#size-cells") && len != 4 {
                    return Err(bad(
                        offset,
                        "#address-cells/#size-cells is not exactly one cell",
                    ));
                }
                offset = align4(data_end).ok_or(bad(offset, "overflow"))?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(bad(offset, "FDT_END_NODE without an open node"));
                }
                depth -= 1;
                offset += 4;
            }
            FDT_NOP => return Err(FdtFormatError::NopTag { offset }),
            FDT_END => {
                if depth != 0 {
                    return Err(bad(offset, "FDT_END inside an open node"));
                }
                if !seen_root {
                    return Err(bad(offset, "no root node"));
                }
                return Ok(());
            }
            _ => return Err(bad(offset, "unknown token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal blob around a structure block and a strings block.
    fn blob(structure: &[u32], strings: &[u8]) -> Vec<u8> {
        let off_rsvmap = 40;
        let off_struct = off_rsvmap + 16;
        let size_struct = structure.len() * 4;
        let off_strings = off_struct + size_struct;
        let total = off_strings + strings.len();
        let header = [
            FDT_MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsvmap as u32,
            17,
            16,
            0,
            strings.len() as u32,
            size_struct as u32,
        ];
        let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(&[0; 16]);
        out.extend(structure.iter().flat_map(|w| w.to_be_bytes()));
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn minimal_root_is_accepted() {
        let b = blob(&[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        let checked = check(&b).unwrap();
        assert_eq!(checked.bytes.len(), b.len());
        assert_eq!(checked.parse().unwrap().root().properties().count(), 0);
    }

    #[test]
    fn strip_nops_removes_nop_tags_and_leaves_a_blob_check_accepts() {
        let mut b = blob(
            &[FDT_BEGIN_NODE, 0, FDT_NOP, FDT_NOP, FDT_END_NODE, FDT_END],
            b"",
        );
        assert_eq!(strip_nops(&mut b), Ok(2));
        assert!(check(&b).is_ok());
        assert_eq!(strip_nops(&mut b), Ok(0));
    }

    #[test]
    fn nop_tags_are_refused() {
        let b = blob(&[FDT_BEGIN_NODE, 0, FDT_NOP, FDT_END_NODE, FDT_END], b"");
        assert!(matches!(check(&b), Err(FdtFormatError::NopTag { .. })));
    }

    #[test]
    fn stray_end_node_is_refused() {
        let b = blob(
            &[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END_NODE, FDT_END],
            b"",
        );
        assert!(matches!(
            check(&b),
            Err(FdtFormatError::BadStructure { .. })
        ));
    }

    #[test]
    fn property_after_child_is_refused() {
        let child = u32::from_be_bytes(*b"a\0\0\0");
        let b = blob(
            &[
                FDT_BEGIN_NODE,
                0,
                FDT_BEGIN_NODE,
                child,
                FDT_END_NODE,
                FDT_PROP,
                0,
                0,
                FDT_END_NODE,
                FDT_END,
            ],
            b"x\0",
        );
        assert_eq!(
            check(&b).err(),
            Some(FdtFormatError::BadStructure {
                offset: 20,
                reason: "property after a child node"
            })
        );
    }

    #[test]
    fn short_address_cells_is_refused() {
        let b = blob(
            &[FDT_BEGIN_NODE, 0, FDT_PROP, 2, 0, 0, FDT_END_NODE, FDT_END],
            b"#address-cells\0",
        );
        assert!(matches!(
            check(&b),
            Err(FdtFormatError::BadStructure { .. })
        ));
    }

    #[test]
    fn property_name_outside_strings_is_refused() {
        let b = blob(
            &[FDT_BEGIN_NODE, 0, FDT_PROP, 0, 99, FDT_END_NODE, FDT_END],
            b"x\0",
        );
        assert!(matches!(
            check(&b),
            Err(FdtFormatError::BadStructure { .. })
        ));
    }

    #[test]
    fn named_root_is_refused() {
        let name = u32::from_be_bytes(*b"rt\0\0");
        let b = blob(&[FDT_BEGIN_NODE, name, FDT_END_NODE, FDT_END], b"");
        assert!(matches!(
            check(&b),
            Err(FdtFormatError::BadStructure { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let child = u32::from_be_bytes(*b"a\0\0\0");
        let mut s = vec![FDT_BEGIN_NODE, 0];
        for _ in 0..MAX_DEPTH {
            s.extend([FDT_BEGIN_NODE, child]);
        }
        s.extend(core::iter::repeat_n(FDT_END_NODE, MAX_DEPTH + 1));
        s.push(FDT_END);
        assert_eq!(
            check(&blob(&s, b"")).err(),
            Some(FdtFormatError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn header_errors_are_reported() {
        assert_eq!(
            check(&[]).err(),
            Some(FdtFormatError::TooShortForHeader { available: 0 })
        );
        assert_eq!(check(&[0; 64]).err(), Some(FdtFormatError::BadMagic));
        let mut b = blob(&[FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END], b"");
        let len = b.len();
        assert_eq!(
            check(&b[..len - 1]).err(),
            Some(FdtFormatError::Truncated {
                totalsize: len,
                available: len - 1
            })
        );
        b[20..24].copy_from_slice(&16u32.to_be_bytes());
        assert!(matches!(
            check(&b),
            Err(FdtFormatError::UnsupportedVersion { .. })
        ));
    }
}
