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
        let value = node.property("reg").map_or(&[][..], |p| p.value);
        let range = entries(value, address_cells(chosen), size_cells(chosen))
            .map_err(|_| no_reg())?
            .next()
            .ok_or_else(no_reg)?
            .map_err(|_| no_reg())?;
        if range.size == 0 {
            return Err(no_reg());
        }
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
