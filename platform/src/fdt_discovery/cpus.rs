//! CPUs (MPIDRs) and the PSCI firmware interface that powers them.

use super::reg::bad_reg;
use super::{DiscoveryError, MAX_CPUS, Psci, PsciVersion};
use crate::fdt_tree::{
    self, CellError, Walk, address_cells, base_name, has_device_type, is_compatible, prop_str,
    read_cells,
};
use crate::fixed_list::FixedList;
use crate::psci::Conduit;

/// The MPIDR (first `reg` value) of every `/cpus/cpu@*` node with `device_type = "cpu"`, in
/// DTB order. Errors: no such node, more than [`MAX_CPUS`], a CPU without `reg`, or
/// `#address-cells` of `/cpus` other than 1 or 2.
pub fn mpidrs(fdt: &fdt::Fdt<'_>) -> Result<FixedList<u64, MAX_CPUS>, DiscoveryError> {
    let mut cpus = FixedList::new();
    let Some((cpus_node, _)) = fdt_tree::find_path(fdt, "/cpus") else {
        return Err(DiscoveryError::NoCpus);
    };
    let cells = address_cells(cpus_node);
    if cells == 0 || cells > 2 {
        return Err(bad_reg(cpus_node.name, CellError::TooManyCells));
    }
    for cpu in cpus_node.children() {
        if base_name(cpu.name) != "cpu" || !has_device_type(cpu, "cpu") {
            continue;
        }
        let mpidr = cpu
            .property("reg")
            .and_then(|reg| read_cells(reg.value, cells))
            .ok_or(bad_reg(cpu.name, CellError::Length))?;
        cpus.push(mpidr)
            .map_err(|_| DiscoveryError::TooManyCpus { max: MAX_CPUS })?;
    }
    if cpus.is_empty() {
        return Err(DiscoveryError::NoCpus);
    }
    Ok(cpus)
}

/// The conduit and version of the first node compatible with `arm,psci-1.0`, `arm,psci-0.2`
/// or `arm,psci`. Errors: no such node, a `method` other than `smc`/`hvc`, or PSCI 0.1 only.
pub fn psci(fdt: &fdt::Fdt<'_>) -> Result<Psci, DiscoveryError> {
    let mut found = None;
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, _| {
        let psci = ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];
        if found.is_none() && psci.iter().any(|c| is_compatible(node, c)) {
            found = Some(node);
        }
        Ok::<_, DiscoveryError>(if found.is_some() {
            Walk::SkipChildren
        } else {
            Walk::Descend
        })
    })?;
    let node = found.ok_or(DiscoveryError::NoPsci)?;
    let conduit = prop_str(node, "method")
        .and_then(Conduit::from_method)
        .ok_or(DiscoveryError::BadPsciMethod)?;
    let version = if is_compatible(node, "arm,psci-1.0") {
        PsciVersion::V1_0
    } else if is_compatible(node, "arm,psci-0.2") {
        PsciVersion::V0_2
    } else {
        return Err(DiscoveryError::PsciVersionUnsupported);
    };
    Ok(Psci { conduit, version })
}
