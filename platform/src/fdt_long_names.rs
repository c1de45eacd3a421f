//! Property names longer than the 31 characters the devicetree specification allows.
//!
//! Real DTBs have them and Linux reads them: Debian's `zynqmp-zcu102-rev1.0.dtb` gives its
//! DWC3 USB controllers `snps,quirk-frame-length-adjustment` (34 characters; dtc accepts it
//! with a warning). `vm-fdt` refuses to write such a name, so the host DTB writer hands it
//! a short placeholder instead ([`LongNames::name_to_write`]) and, once `vm-fdt` has
//! finished the blob, [`LongNames::restore`] appends the real names to the strings block
//! and points those properties at them. `vm-fdt` writes the strings block last, so
//! appending to it moves no other block; the placeholder strings stay, unused, which the
//! specification allows. A hand-written step beside the crate because no maintained
//! no_std FDT writer takes such names.

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use crate::fdt_check::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FDT_PROP};

/// The specification's limit (Devicetree Specification v0.4, 2.2.4.1).
pub const SPEC_MAX_LEN: usize = 31;
/// Placeholders are this prefix and an index (at most 31 characters for 10^8 names).
const PLACEHOLDER_PREFIX: &str = "el2,long-property-name-";

const TOTALSIZE: usize = 4;
const OFF_DT_STRUCT: usize = 8;
const OFF_DT_STRINGS: usize = 12;
const SIZE_DT_STRINGS: usize = 32;
const SIZE_DT_STRUCT: usize = 36;

/// Why the long names could not be put back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongNameError {
    /// The input already has a property named like a placeholder.
    PlaceholderInInput,
    /// The finished blob is not laid out as `vm-fdt` writes it (`what` says where).
    UnexpectedLayout(&'static str),
}

impl fmt::Display for LongNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PlaceholderInInput => write!(
                f,
                "a property name starts with {PLACEHOLDER_PREFIX}, which the writer reserves"
            ),
            Self::UnexpectedLayout(what) => {
                write!(f, "cannot restore long property names: {what}")
            }
        }
    }
}

/// The long names seen so far, in placeholder order.
#[derive(Debug, Default)]
pub struct LongNames<'a> {
    names: Vec<&'a str>,
}

impl<'a> LongNames<'a> {
    /// The name to give `vm-fdt` for the property `name`: itself if the specification
    /// allows its length, else a placeholder that [`restore`](Self::restore) replaces.
    pub fn name_to_write(&mut self, name: &'a str) -> Result<Cow<'a, str>, LongNameError> {
        if name.starts_with(PLACEHOLDER_PREFIX) {
            return Err(LongNameError::PlaceholderInInput);
        }
        if name.len() <= SPEC_MAX_LEN {
            return Ok(Cow::Borrowed(name));
        }
        let index = match self.names.iter().position(|&n| n == name) {
            Some(index) => index,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        Ok(Cow::Owned(placeholder(index)))
    }

    /// Puts the long names into `blob`, which `vm-fdt` finished: appends each to the
    /// strings block and rewrites the `nameoff` of every property that names its
    /// placeholder. Updates `size_dt_strings` and `totalsize`.
    pub fn restore(&self, mut blob: Vec<u8>) -> Result<Vec<u8>, LongNameError> {
        use LongNameError::UnexpectedLayout as Bad;
        if self.names.is_empty() {
            return Ok(blob);
        }
        let total = word(&blob, TOTALSIZE)? as usize;
        let strings = word(&blob, OFF_DT_STRINGS)? as usize;
        let strings_size = word(&blob, SIZE_DT_STRINGS)? as usize;
        if total != blob.len() || strings.checked_add(strings_size) != Some(total) {
            return Err(Bad("the strings block is not the blob's last"));
        }
        // (placeholder's offset, real name's offset) in the strings block.
        let mut renames = Vec::with_capacity(self.names.len());
        let mut appended = Vec::new();
        for (index, name) in self.names.iter().enumerate() {
            let old = find_string(&blob[strings..], &placeholder(index))
                .ok_or(Bad("a placeholder is missing from the strings block"))?;
            let new = strings_size + appended.len();
            renames.push((to_u32(old)?, to_u32(new)?));
            appended.extend_from_slice(name.as_bytes());
            appended.push(0);
        }
        rename_properties(&mut blob, &renames)?;
        blob.extend_from_slice(&appended);
        let new_total = to_u32(blob.len())?;
        let new_strings_size = to_u32(strings_size + appended.len())?;
        put_word(&mut blob, TOTALSIZE, new_total);
        put_word(&mut blob, SIZE_DT_STRINGS, new_strings_size);
        Ok(blob)
    }
}

fn placeholder(index: usize) -> alloc::string::String {
    format!("{PLACEHOLDER_PREFIX}{index}")
}

fn to_u32(value: usize) -> Result<u32, LongNameError> {
    u32::try_from(value).map_err(|_| LongNameError::UnexpectedLayout("offset beyond 4 GiB"))
}

fn word(blob: &[u8], at: usize) -> Result<u32, LongNameError> {
    blob.get(at..at.wrapping_add(4))
        .and_then(|w| w.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(LongNameError::UnexpectedLayout("truncated"))
}

/// Only called at offsets `word` has read.
fn put_word(blob: &mut [u8], at: usize, value: u32) {
    if let Some(w) = blob.get_mut(at..at + 4) {
        w.copy_from_slice(&value.to_be_bytes());
    }
}

/// The offset of the NUL-terminated `wanted` in a strings block.
fn find_string(strings: &[u8], wanted: &str) -> Option<usize> {
    let mut offset = 0;
    for s in strings.split(|&b| b == 0) {
        if s == wanted.as_bytes() {
            return Some(offset);
        }
        offset += s.len() + 1;
    }
    None
}

fn align4(offset: usize) -> usize {
    offset.next_multiple_of(4)
}

/// Walks the structure block and points each property whose `nameoff` is a placeholder's
/// at the real name.
fn rename_properties(blob: &mut [u8], renames: &[(u32, u32)]) -> Result<(), LongNameError> {
    use LongNameError::UnexpectedLayout as Bad;
    let start = word(blob, OFF_DT_STRUCT)? as usize;
    let end = start
        .checked_add(word(blob, SIZE_DT_STRUCT)? as usize)
        .filter(|&end| end <= blob.len())
        .ok_or(Bad("the structure block lies outside the blob"))?;
    let mut at = start;
    while at < end {
        let token = word(blob, at)?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let nul = blob
                    .get(at..end)
                    .and_then(|name| name.iter().position(|&b| b == 0))
                    .ok_or(Bad("unterminated node name"))?;
                at = align4(at + nul + 1);
            }
            FDT_PROP => {
                let len = word(blob, at)? as usize;
                let nameoff = word(blob, at + 4)?;
                if let Some(&(_, new)) = renames.iter().find(|&&(old, _)| old == nameoff) {
                    put_word(blob, at + 4, new);
                }
                at = align4(at + 8 + len);
            }
            FDT_END_NODE | FDT_NOP => {}
            FDT_END => return Ok(()),
            _ => return Err(Bad("unknown token in the structure block")),
        }
    }
    Err(Bad("no FDT_END in the structure block"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    const LONG: &str = "snps,quirk-frame-length-adjustment";

    /// A blob with `/usb { LONG = <0x20>; reg = <1>; }` and a second long name, written
    /// through `LongNames` as the host DTB writer does.
    fn blob_with_long_names() -> Vec<u8> {
        let mut names = LongNames::default();
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        let usb = w.begin_node("usb@fe200000").unwrap();
        w.property_u32(&names.name_to_write(LONG).unwrap(), 0x20)
            .unwrap();
        w.property_u32("reg", 1).unwrap();
        w.property_null(
            &names
                .name_to_write("snps,another-very-long-property-name")
                .unwrap(),
        )
        .unwrap();
        w.end_node(usb).unwrap();
        let other = w.begin_node("usb@fe300000").unwrap();
        w.property_u32(&names.name_to_write(LONG).unwrap(), 0x30)
            .unwrap();
        w.end_node(other).unwrap();
        w.end_node(root).unwrap();
        names.restore(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn long_property_names_come_back_with_their_values() {
        let blob = blob_with_long_names();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let usb = fdt.find_node("/usb@fe200000").unwrap();
        assert_eq!(usb.property(LONG).unwrap().value, 0x20u32.to_be_bytes());
        assert_eq!(usb.property("reg").unwrap().value, 1u32.to_be_bytes());
        assert!(
            usb.property("snps,another-very-long-property-name")
                .is_some()
        );
        let other = fdt.find_node("/usb@fe300000").unwrap();
        assert_eq!(other.property(LONG).unwrap().value, 0x30u32.to_be_bytes());
        assert!(
            fdt.all_nodes()
                .flat_map(|n| n.properties())
                .all(|p| !p.name.starts_with(PLACEHOLDER_PREFIX))
        );
    }

    #[test]
    fn restored_blob_passes_the_payload_format_check() {
        let blob = blob_with_long_names();
        assert!(crate::fdt_check::check(&blob).is_ok());
    }

    #[test]
    fn short_names_are_written_as_they_are_and_need_no_restore() {
        let mut names = LongNames::default();
        assert_eq!(names.name_to_write("reg").unwrap(), "reg");
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.end_node(root).unwrap();
        let blob = w.finish().unwrap();
        assert_eq!(names.restore(blob.clone()).unwrap(), blob);
    }

    #[test]
    fn a_blob_not_laid_out_as_vm_fdt_writes_it_is_an_error_not_a_panic() {
        let mut names = LongNames::default();
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_null(&names.name_to_write(LONG).unwrap())
            .unwrap();
        w.end_node(root).unwrap();
        let blob = w.finish().unwrap();
        // Something after the strings block.
        let mut trailing = blob.clone();
        trailing.extend_from_slice(&[0; 8]);
        let total = trailing.len() as u32;
        put_word(&mut trailing, TOTALSIZE, total);
        assert!(matches!(
            names.restore(trailing),
            Err(LongNameError::UnexpectedLayout(_))
        ));
        // A structure block cut short.
        let mut cut = blob.clone();
        put_word(&mut cut, SIZE_DT_STRUCT, 8);
        assert!(matches!(
            names.restore(cut),
            Err(LongNameError::UnexpectedLayout(_))
        ));
        assert!(names.restore(blob).is_ok());
    }

    #[test]
    fn an_input_name_that_looks_like_a_placeholder_is_refused() {
        let mut names = LongNames::default();
        assert_eq!(
            names.name_to_write("el2,long-property-name-0"),
            Err(LongNameError::PlaceholderInInput)
        );
    }
}
