//! The report as JSON (`target/bench.json`), written by hand: xtask has no JSON crate and
//! the document is small and flat.

use std::fmt::Write as _;

use super::report::Report;
use super::{boots, ops};

/// A JSON value, enough for the report.
enum Value {
    Num(f64),
    Int(u64),
    Str(String),
    Bool(bool),
    Null,
    List(Vec<Value>),
    Object(Vec<(&'static str, Value)>),
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Num(n) if n.is_finite() => {
            let _ = write!(out, "{}", (n * 100.0).round() / 100.0);
        }
        Value::Num(_) | Value::Null => out.push_str("null"),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Str(s) => write_string(out, s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&"  ".repeat(indent + 1));
                write_value(out, item, indent + 1);
            }
            if !items.is_empty() {
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&"  ".repeat(indent + 1));
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, indent + 1);
            }
            if !fields.is_empty() {
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn opt(value: Option<f64>) -> Value {
    value.map(Value::Num).unwrap_or(Value::Null)
}

pub fn render(report: &Report) -> String {
    let ops = report
        .ops
        .iter()
        .map(|f| {
            let label = ops::spec(f.key).map(|s| s.label).unwrap_or("");
            Value::Object(vec![
                ("op", Value::Str(f.key.into())),
                ("label", Value::Str(label.into())),
                ("calls", Value::Int(f.calls)),
                ("el2_per_op", Value::Num(f.own_el2())),
                ("el2_per_run", Value::Num(f.el2)),
                ("el2_min", Value::Int(f.el2_min)),
                ("el2_max", Value::Int(f.el2_max)),
                ("el2_per_page", opt(f.per_page())),
                ("el1_per_op", Value::Num(f.el1)),
                ("hvc_to_return", Value::Num(f.hvc_to_return)),
                ("el2_above_floor", opt(f.above_floor)),
            ])
        })
        .collect();
    let memory = report
        .memory
        .iter()
        .map(|m| {
            let c = &m.carve_out;
            Value::Object(vec![
                ("ram", Value::Str(m.ram.to_string())),
                ("ram_bytes", Value::Int(m.ram_bytes)),
                ("el2_reserved_bytes", Value::Int(c.total())),
                ("dtb_reserved_bytes", Value::Int(m.dtb_carve_out)),
                ("image_bytes", Value::Int(c.image)),
                ("pools_bytes", Value::Int(c.pools)),
                ("host_stage2_pool_kib", Value::Int(c.host_stage2_pool_kib)),
                ("ownership_record_kib", Value::Int(c.ownership_kib)),
                (
                    "ownership_bytes_per_page",
                    Value::Num(m.record_bytes_per_page()),
                ),
                ("el2_tables_kib", Value::Int(c.el2_tables_kib)),
                ("heap_kib", Value::Int(c.heap_kib)),
                ("host_stage2_table_pages", Value::Int(m.stage2.tables)),
                ("host_stage2_blocks_1g", Value::Int(m.stage2.gib)),
                ("host_stage2_blocks_2m", Value::Int(m.stage2.mib2)),
                ("host_stage2_blocks_4k", Value::Int(m.stage2.kib4)),
                ("ticks_to_host_entry", Value::Int(m.boot_ticks)),
                ("ms_to_host_entry", Value::Num(m.boot_ms())),
            ])
        })
        .collect();
    let linux = match &report.linux {
        Some(l) => Value::Object(vec![
            ("kernel", Value::Str(l.kernel_package.clone())),
            (
                "boots",
                Value::List(
                    l.boots
                        .iter()
                        .map(|b| {
                            Value::Object(vec![
                                ("el2", Value::Str(b.el2.name().into())),
                                ("ticks_to_init", Value::Int(b.ticks)),
                                ("ms_to_init", Value::Num(b.ms())),
                                ("vs_no_el2_percent", opt(l.overhead_percent(b.el2))),
                                (
                                    "el2_reserved_bytes",
                                    b.reserved.map(Value::Int).unwrap_or(Value::Null),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("pkvm_reserved_bytes_4g", Value::Int(l.pkvm_reserved_4g)),
            (
                "el2_pvm_from_user_space",
                Value::Object(
                    l.pvm
                        .iter()
                        .map(|(k, v)| (pvm_key(k), Value::Int(*v)))
                        .collect(),
                ),
            ),
        ]),
        None => Value::Null,
    };
    let targets = report
        .checks()
        .into_iter()
        .map(|c| {
            Value::Object(vec![
                ("target", Value::Str(c.what)),
                ("limit", Value::Str(c.limit)),
                ("measured", Value::Str(c.measured)),
                ("met", Value::Bool(c.met)),
            ])
        })
        .collect();
    let document = Value::Object(vec![
        ("command", Value::Str(report.command.clone())),
        ("quick", Value::Bool(report.quick)),
        ("qemu", Value::Str(report.qemu.clone())),
        (
            "qemu_options",
            Value::Str(boots::ICOUNT.join(" ") + " -smp 1"),
        ),
        ("ops", Value::List(ops)),
        ("memory", Value::List(memory)),
        ("linux", linux),
        ("targets", Value::List(targets)),
    ]);
    let mut out = String::new();
    write_value(&mut out, &document, 0);
    out.push('\n');
    out
}

/// The object keys are `&'static str`: the figures `vmm bench` prints, by name.
fn pvm_key(key: &str) -> &'static str {
    super::table::PVM_ROWS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, _)| *k)
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_nesting_indents() {
        let mut out = String::new();
        write_value(
            &mut out,
            &Value::Object(vec![
                ("a", Value::Str("x\"y\\\n".into())),
                (
                    "b",
                    Value::List(vec![Value::Int(1), Value::Num(2.5), Value::Null]),
                ),
                ("c", Value::List(vec![])),
            ]),
            0,
        );
        assert_eq!(
            out,
            "{\n  \"a\": \"x\\\"y\\\\\\n\",\n  \"b\": [\n    1,\n    2.5,\n    null\n  ],\n  \"c\": []\n}"
        );
    }
}
