//! CPUs (MPIDRs) and the PSCI firmware interface that powers them.

use super::reg::bad_reg;
use super::{DiscoveryError, MAX_CPUS, Psci, PsciVersion};
use crate::fdt_tree::{
    self, CellError, Walk, address_cells, base_name, has_device_type, is_compatible, prop_str,
    read_cells,
};
use crate::psci::Conduit;

/// The CPUs under `/cpus`: how many there are, checked once by [`cpus`], and their MPIDRs,
/// read again from the blob on each [`Cpus::for_each`]. There is no fixed-size copy: the
/// payload sizes its per-CPU state from [`Cpus::len`] (servers have 64 to 256 CPUs and
/// more), and discovery runs before any allocator exists.
#[derive(Clone, Copy)]
pub struct Cpus<'a> {
    fdt: fdt::Fdt<'a>,
    count: usize,
}

impl Cpus<'_> {
    /// How many `/cpus/cpu@*` nodes with `device_type = "cpu"` the DTB has (at least 1).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Never true for a discovered [`Cpus`] (a DTB without CPUs is an error).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f` with each CPU's MPIDR (its first `reg` value), in DTB order.
    pub fn for_each(&self, mut f: impl FnMut(u64)) {
        // `cpus` checked every node already, so nothing fails here.
        let _ = walk(&self.fdt, |mpidr| {
            f(mpidr);
            Ok(())
        });
    }
}

impl core::fmt::Debug for Cpus<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut list = f.debug_list();
        self.for_each(|m| {
            list.entry(&format_args!("{m:#x}"));
        });
        list.finish()
    }
}

/// Calls `f` with the MPIDR of every `/cpus/cpu@*` node with `device_type = "cpu"`.
fn walk(
    fdt: &fdt::Fdt<'_>,
    mut f: impl FnMut(u64) -> Result<(), DiscoveryError>,
) -> Result<(), DiscoveryError> {
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
        f(mpidr)?;
    }
    Ok(())
}

/// Checks the `/cpus/cpu@*` nodes with `device_type = "cpu"`. Errors: no such node, more
/// than [`MAX_CPUS`], a CPU without `reg`, or `#address-cells` of `/cpus` other than 1 or 2.
pub fn cpus<'a>(fdt: &fdt::Fdt<'a>) -> Result<Cpus<'a>, DiscoveryError> {
    let mut count = 0;
    walk(fdt, |_| {
        if count == MAX_CPUS {
            return Err(DiscoveryError::TooManyCpus { max: MAX_CPUS });
        }
        count += 1;
        Ok(())
    })?;
    if count == 0 {
        return Err(DiscoveryError::NoCpus);
    }
    Ok(Cpus { fdt: *fdt, count })
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
