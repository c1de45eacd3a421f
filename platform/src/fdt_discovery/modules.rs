//! Host images passed as Xen-style multiboot module nodes under `/chosen`
//! (`compatible = "multiboot,kernel", "multiboot,module"` and `"multiboot,ramdisk", ...`).

use super::{DiscoveryError, NodeName};
use crate::fdt_tree::{self, address_cells, entries, is_compatible, prop_str, size_cells};
use crate::fixed_list::MemRange;

/// The host kernel image and the command line that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostModule<'a> {
    /// Where the loader put the image (the module's `reg`).
    pub range: MemRange,
    /// The module's `bootargs`, if any.
    pub bootargs: Option<&'a str>,
}

/// The host modules found under `/chosen`; absent ones are `None` (the payload decides
/// whether a missing kernel is fatal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostModules<'a> {
    pub kernel: Option<HostModule<'a>>,
    pub ramdisk: Option<MemRange>,
}

/// Compatible strings that mark a `/chosen` child as a multiboot module. `host_dtb` removes
/// exactly these nodes from the host's copy.
pub const MODULE_COMPATIBLES: &[&str] =
    &["multiboot,module", "multiboot,kernel", "multiboot,ramdisk"];

/// The bytes of an arm64 `Image` header (Linux Documentation/arch/arm64/booting.rst:
/// `image_size` at 0x10, the magic `ARM\x64` at 0x38).
pub const IMAGE_HEADER_LEN: usize = 0x40;
/// Offset of `image_size` (u64, little-endian) in the header.
pub const IMAGE_SIZE_OFFSET: usize = 0x10;
/// Offset of the magic in the header.
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
pub const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// The header's `image_size` (0 means "unknown", as before Linux 3.17), or `None` if
/// `image` is shorter than the header or has no magic: not an arm64 `Image`.
pub fn image_size(image: &[u8]) -> Option<u64> {
    let header = image.get(..IMAGE_HEADER_LEN)?;
    if &header[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4] != IMAGE_MAGIC {
        return None;
    }
    let mut size = [0; 8];
    size.copy_from_slice(&header[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8]);
    Some(u64::from_le_bytes(size))
}

/// How many bytes from its first the kernel module occupies once it runs: an arm64 `Image`
/// needs its header's `image_size` (code, data and .bss, larger than the file) when that is
/// set; a raw image (no magic, or `image_size` 0) just its file. `header` is the module's
/// first bytes (fewer than [`IMAGE_HEADER_LEN`] if the file is shorter).
pub fn kernel_footprint(header: &[u8], file_size: u64) -> u64 {
    image_size(header).map_or(file_size, |size| size.max(file_size))
}

/// True if `node` is a multiboot module node.
pub fn is_module(node: fdt::node::FdtNode<'_, '_>) -> bool {
    MODULE_COMPATIBLES.iter().any(|c| is_compatible(node, c))
}

/// Reads the kernel and ramdisk module nodes. Errors: two kernels or two ramdisks, a module
/// whose `reg` is missing, malformed or of size zero, or bootargs that are not UTF-8.
pub fn find<'a>(fdt: &fdt::Fdt<'a>) -> Result<HostModules<'a>, DiscoveryError> {
    let mut modules = HostModules::default();
    let Some((chosen, _)) = fdt_tree::find_path(fdt, "/chosen") else {
        return Ok(modules);
    };
    let mut kernel_node = "";
    let mut ramdisk_node = "";
    for node in chosen.children() {
        let kind = if is_compatible(node, "multiboot,kernel") {
            "kernel"
        } else if is_compatible(node, "multiboot,ramdisk") {
            "ramdisk"
        } else {
            continue;
        };
        let no_reg = || DiscoveryError::ModuleWithoutReg {
            node: NodeName::new(node.name),
        };
        // `/chosen` is not a bus: module addresses are CPU physical addresses as written.
        let Some(value) = node.property("reg").map(|p| p.value) else {
            return Err(no_reg());
        };
        let (ac, sc) = (address_cells(chosen), size_cells(chosen));
        // Without both properties the cell sizes are the specification's defaults, which
        // no loader that follows the multiboot binding writes `reg` with: say so, as that
        // is the cause to fix, rather than "no reg".
        let defaulted =
            chosen.property("#address-cells").is_none() || chosen.property("#size-cells").is_none();
        let bad_cells = || DiscoveryError::ModuleRegCells {
            node: NodeName::new(node.name),
            bytes: value.len(),
            address_cells: ac,
            size_cells: sc,
            defaulted,
        };
        let decoded = entries(value, ac, sc)
            .ok()
            .and_then(|mut e| e.next())
            .and_then(Result::ok);
        let range = match decoded {
            Some(range) if range.size > 0 => range,
            _ if defaulted || value.is_empty() => {
                return Err(if value.is_empty() {
                    no_reg()
                } else {
                    bad_cells()
                });
            }
            None => return Err(bad_cells()),
            Some(_) => return Err(no_reg()),
        };
        let duplicate = |first: &str| DiscoveryError::DuplicateModule {
            kind,
            first: NodeName::new(first),
            second: NodeName::new(node.name),
        };
        if kind == "kernel" {
            if modules.kernel.is_some() {
                return Err(duplicate(kernel_node));
            }
            let bootargs = match node.property("bootargs") {
                None => None,
                Some(_) => Some(prop_str(node, "bootargs").ok_or(DiscoveryError::BadString {
                    node: NodeName::new(node.name),
                    property: "bootargs",
                })?),
            };
            modules.kernel = Some(HostModule { range, bootargs });
            kernel_node = node.name;
        } else {
            if modules.ramdisk.is_some() {
                return Err(duplicate(ramdisk_node));
            }
            modules.ramdisk = Some(range);
            ramdisk_node = node.name;
        }
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    /// A DTB whose `/chosen` has the given cell sizes (none if `None`) and one kernel module
    /// whose `reg` is written with 2 + 2 cells, as xtask and U-Boot scripts write it.
    fn dtb(chosen_cells: Option<(u32, u32)>) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        if let Some((ac, sc)) = chosen_cells {
            w.property_u32("#address-cells", ac).unwrap();
            w.property_u32("#size-cells", sc).unwrap();
        }
        let module = w.begin_node("module@48400000").unwrap();
        w.property_string_list(
            "compatible",
            vec!["multiboot,kernel".into(), "multiboot,module".into()],
        )
        .unwrap();
        w.property_array_u32("reg", &[0, 0x4840_0000, 0, 0x2000])
            .unwrap();
        w.end_node(module).unwrap();
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_chosen_without_cell_sizes_is_named_as_the_cause() {
        let blob = dtb(None);
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let err = find(&fdt).unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::ModuleRegCells {
                    bytes: 16,
                    address_cells: 2,
                    size_cells: 1,
                    defaulted: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = std::format!("{err}");
        assert!(
            text.contains("/chosen has no #address-cells/#size-cells"),
            "{text}"
        );
        assert!(!text.contains("no reg"), "{text}");
    }

    #[test]
    fn a_reg_that_does_not_match_explicit_cell_sizes_says_which_sizes() {
        let blob = dtb(Some((2, 1)));
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let err = find(&fdt).unwrap_err();
        let text = std::format!("{err}");
        assert_eq!(
            text,
            "module module@48400000 under /chosen: its reg (16 bytes) does not decode with \
             #address-cells = 2 and #size-cells = 1"
        );
    }

    #[test]
    fn a_chosen_with_the_bindings_cell_sizes_reads_the_module() {
        let blob = dtb(Some((2, 2)));
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let kernel = find(&fdt).unwrap().kernel.unwrap();
        assert_eq!(kernel.range, MemRange::new(0x4840_0000, 0x2000).unwrap());
    }
}

#[cfg(test)]
mod footprint_tests {
    use super::*;

    fn header(image_size: u64, magic: &[u8; 4]) -> [u8; IMAGE_HEADER_LEN] {
        let mut h = [0; IMAGE_HEADER_LEN];
        h[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&image_size.to_le_bytes());
        h[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(magic);
        h
    }

    #[test]
    fn an_arm64_image_occupies_its_image_size_beyond_the_file() {
        // Debian's 6.1 Image: a 32.9 MiB file whose .bss takes it to 34.5 MiB.
        assert_eq!(
            kernel_footprint(&header(0x228_0000, b"ARM\x64"), 0x20f_6a00),
            0x228_0000
        );
    }

    #[test]
    fn a_raw_image_or_one_without_image_size_occupies_its_file() {
        assert_eq!(
            kernel_footprint(&header(0x10_0000, b"NOPE"), 0x1000),
            0x1000
        );
        assert_eq!(kernel_footprint(&header(0, b"ARM\x64"), 0x1000), 0x1000);
        assert_eq!(kernel_footprint(&[0; 16], 16), 16);
        // An image_size smaller than the file never shrinks what is in use.
        assert_eq!(kernel_footprint(&header(0x800, b"ARM\x64"), 0x1000), 0x1000);
    }
}
