//! The console: the PL011 named by `/chosen/stdout-path`.

use super::reg::{bad_reg, first_reg};
use super::{DiscoveryError, NodeName};
use crate::fdt_tree::{self, CellError, is_compatible};
use crate::fixed_list::MemRange;

/// The registers of the UART that `/chosen/stdout-path` (or the older `linux,stdout-path`)
/// names, after dropping `:options` and resolving an alias. `Ok(None)` if there is no
/// stdout-path. Errors: the path or alias names no node, the node is not `arm,pl011`, or its
/// `reg` is missing or not a CPU address.
pub fn console(fdt: &fdt::Fdt<'_>) -> Result<Option<MemRange>, DiscoveryError> {
    let Some((chosen, _)) = fdt_tree::find_path(fdt, "/chosen") else {
        return Ok(None);
    };
    let property = ["stdout-path", "linux,stdout-path"]
        .into_iter()
        .find(|name| chosen.property(name).is_some());
    let Some(property) = property else {
        return Ok(None);
    };
    let value = fdt_tree::prop_str(chosen, property).ok_or(DiscoveryError::BadString {
        node: NodeName::new("/chosen"),
        property: "stdout-path",
    })?;
    // devicetree specification 3.6: "stdout-path = path[:options]".
    let path = value.split(':').next().unwrap_or(value);
    let not_found = || DiscoveryError::StdoutNotFound {
        path: NodeName::new(path),
    };
    let resolved = if path.starts_with('/') {
        path
    } else {
        let (aliases, _) = fdt_tree::find_path(fdt, "/aliases").ok_or_else(not_found)?;
        fdt_tree::prop_str(aliases, path).ok_or_else(not_found)?
    };
    // An alias must expand to an absolute path; one that names another alias is not allowed
    // (and following it could loop).
    let (node, chain) = fdt_tree::find_path(fdt, resolved).ok_or_else(not_found)?;
    if !is_compatible(node, "arm,pl011") {
        return Err(DiscoveryError::StdoutNotPl011 {
            node: NodeName::new(resolved),
        });
    }
    first_reg(node, &chain)?
        .ok_or(bad_reg(node.name, CellError::NotCpuAddressable))
        .map(Some)
}
