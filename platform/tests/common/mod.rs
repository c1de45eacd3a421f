//! Shared helpers for the platform integration tests: fixtures, a flattened view of a DTB for
//! comparisons, and a builder for small synthetic boards.

#![allow(dead_code)]

use std::path::PathBuf;

use vm_fdt::FdtWriter;

/// Reads `tests/data/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// One node of a flattened tree: its full path and its properties in blob order.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct FlatNode {
    pub path: String,
    pub props: Vec<(String, Vec<u8>)>,
}

impl FlatNode {
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Every node of `dtb` in depth-first blob order, parsed with the `fdt` crate.
pub fn flatten(dtb: &[u8]) -> Vec<FlatNode> {
    let fdt = fdt::Fdt::new(dtb).expect("fdt parses the blob");
    let mut out = Vec::new();
    let root = fdt.find_node("/").expect("root");
    flatten_node(root, "", &mut out);
    out
}

fn flatten_node(node: fdt::node::FdtNode<'_, '_>, parent: &str, out: &mut Vec<FlatNode>) {
    let path = if parent.is_empty() && node.name.is_empty() || node.name == "/" {
        "/".to_string()
    } else if parent == "/" {
        format!("/{}", node.name)
    } else {
        format!("{parent}/{}", node.name)
    };
    out.push(FlatNode {
        path: path.clone(),
        props: node
            .properties()
            .map(|p| (p.name.to_string(), p.value.to_vec()))
            .collect(),
    });
    for child in node.children() {
        flatten_node(child, &path, out);
    }
}

/// The memory reservation map of `dtb`, as (address, size) pairs.
pub fn memreserve(dtb: &[u8]) -> Vec<(u64, u64)> {
    let fdt = fdt::Fdt::new(dtb).expect("fdt parses the blob");
    fdt.memory_reservations()
        .map(|r| (r.address() as u64, r.size() as u64))
        .collect()
}

/// Big-endian cells of a property value.
pub fn cells(value: &[u8]) -> Vec<u32> {
    value
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn u64_prop(value: &[u8]) -> u64 {
    u64::from_be_bytes(value.try_into().expect("8-byte property"))
}

/// Writes `value` as big-endian 32-bit cells.
pub fn be_cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Writes extra nodes into a board under construction.
pub type NodeWriter = Box<dyn Fn(&mut FdtWriter)>;

/// A small GICv3 board in the shape of QEMU virt, built with vm-fdt, with hooks to add or
/// change nodes. Addresses and sizes are 2 cells.
pub struct Board {
    pub cpus: Vec<u32>,
    pub banks: Vec<(u64, u64)>,
    /// (compatible list, method); `None` leaves the PSCI node out.
    pub psci: Option<(Vec<&'static str>, &'static str)>,
    /// GIC compatible; `None` leaves the GIC out.
    pub gic: Option<&'static str>,
    pub stdout_path: Option<&'static str>,
    pub aliases: Vec<(&'static str, &'static str)>,
    /// Extra root children, written after the standard ones.
    pub extra: Vec<NodeWriter>,
    /// Extra `/chosen` children (module nodes).
    pub chosen_children: Vec<NodeWriter>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            cpus: vec![0, 1],
            banks: vec![(0x4000_0000, 0x4000_0000)],
            psci: Some((vec!["arm,psci-1.0", "arm,psci-0.2", "arm,psci"], "smc")),
            gic: Some("arm,gic-v3"),
            stdout_path: Some("/pl011@9000000"),
            aliases: vec![],
            extra: vec![],
            chosen_children: vec![],
        }
    }
}

pub fn reg2(w: &mut FdtWriter, entries: &[(u64, u64)]) {
    let cells: Vec<u64> = entries.iter().flat_map(|&(a, s)| [a, s]).collect();
    w.property_array_u64("reg", &cells).unwrap();
}

/// A `/chosen` module node with 2/2 cells.
pub fn module(
    name: &'static str,
    compatible: &'static [&'static str],
    reg: Option<(u64, u64)>,
    bootargs: Option<&'static str>,
) -> NodeWriter {
    Box::new(move |w| {
        let n = w.begin_node(name).unwrap();
        w.property_string_list(
            "compatible",
            compatible.iter().map(|s| s.to_string()).collect(),
        )
        .unwrap();
        if let Some(r) = reg {
            reg2(w, &[r]);
        }
        if let Some(b) = bootargs {
            w.property_string("bootargs", b).unwrap();
        }
        w.end_node(n).unwrap();
    })
}

impl Board {
    pub fn build(&self) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_string("compatible", "linux,dummy-virt").unwrap();

        if let Some((compat, method)) = &self.psci {
            let n = w.begin_node("psci").unwrap();
            w.property_string_list("compatible", compat.iter().map(|s| s.to_string()).collect())
                .unwrap();
            w.property_string("method", method).unwrap();
            w.end_node(n).unwrap();
        }
        for &(base, size) in &self.banks {
            let n = w.begin_node(&format!("memory@{base:x}")).unwrap();
            w.property_string("device_type", "memory").unwrap();
            reg2(&mut w, &[(base, size)]);
            w.end_node(n).unwrap();
        }
        let uart = w.begin_node("pl011@9000000").unwrap();
        w.property_string_list(
            "compatible",
            vec!["arm,pl011".into(), "arm,primecell".into()],
        )
        .unwrap();
        reg2(&mut w, &[(0x900_0000, 0x1000)]);
        w.end_node(uart).unwrap();
        if let Some(gic) = self.gic {
            let n = w.begin_node("intc@8000000").unwrap();
            w.property_string("compatible", gic).unwrap();
            reg2(&mut w, &[(0x800_0000, 0x1_0000), (0x80a_0000, 0xf6_0000)]);
            w.property_null("interrupt-controller").unwrap();
            w.end_node(n).unwrap();
        }
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        for &mpidr in &self.cpus {
            let n = w.begin_node(&format!("cpu@{mpidr:x}")).unwrap();
            w.property_string("device_type", "cpu").unwrap();
            w.property_u32("reg", mpidr).unwrap();
            w.end_node(n).unwrap();
        }
        w.end_node(cpus).unwrap();
        if !self.aliases.is_empty() {
            let n = w.begin_node("aliases").unwrap();
            for (name, value) in &self.aliases {
                w.property_string(name, value).unwrap();
            }
            w.end_node(n).unwrap();
        }
        for extra in &self.extra {
            extra(&mut w);
        }
        let chosen = w.begin_node("chosen").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        if let Some(path) = self.stdout_path {
            w.property_string("stdout-path", path).unwrap();
        }
        for child in &self.chosen_children {
            child(&mut w);
        }
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }
}
