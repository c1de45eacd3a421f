//! `docs/abi.md` and this crate must say the same thing: the tables of the document are
//! parsed here and compared with the crate in both directions.

mod common;

use hvc_abi::function_id::{
    GUEST_CALLS, GUEST_FEATURES_BITMAP, HOST_CALLS, HOST_FEATURES_BITMAP, UID,
};
use hvc_abi::limits::*;
use hvc_abi::{Error, ExitReason, FunctionId, Version};

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/abi.md"));

/// The rows of the first table whose header line is `header`, split into trimmed cells
/// with backticks removed.
fn table(header: &str) -> Vec<Vec<String>> {
    let mut lines = DOC.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "no table with header {header:?}");
    lines
        .skip(1) // the |---| line
        .map(str::trim)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn parse_int(s: &str) -> u64 {
    let s = s.replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

#[test]
fn error_table_matches_the_error_enum() {
    let rows = table("| Error | x0 (i64) | Meaning |");
    assert_eq!(rows.len(), Error::ALL.len());
    for (row, e) in rows.iter().zip(Error::ALL) {
        assert_eq!(row[0], e.name());
        assert_eq!(row[1].parse::<i64>().unwrap(), e.as_i64(), "{}", e.name());
        assert_eq!(row[2], e.meaning(), "{}", e.name());
    }
}

#[test]
fn function_id_table_matches_the_crate() {
    let rows = table("| Function id | Name | Caller |");
    let mut host = Vec::new();
    let mut guest = Vec::new();
    for row in &rows {
        let id = FunctionId(u32::try_from(parse_int(&row[0])).unwrap());
        assert_eq!(id.name(), Some(row[1].as_str()), "{row:?}");
        for caller in row[2].split(", ") {
            match caller {
                "host" => host.push(id),
                "guest" => guest.push(id),
                other => panic!("unknown caller {other}"),
            }
        }
    }
    assert_eq!(host, HOST_CALLS);
    assert_eq!(guest, GUEST_CALLS);
}

#[test]
fn exit_table_matches_the_exit_reasons() {
    let rows = table("| Exit | x1[7:0] | x2 | x3 | Next VCPU_RUN |");
    assert_eq!(rows.len(), ExitReason::ALL.len());
    for row in &rows {
        let reason = ExitReason::from_u8(row[1].parse().unwrap()).unwrap();
        assert_eq!(reason.name(), row[0]);
    }
}

#[test]
fn limits_table_matches_the_constants() {
    let rows = table("| Limit | Value |");
    let expected: [(&str, u64); 9] = [
        ("PAGE_SIZE", PAGE_SIZE),
        ("MAX_PAGES_PER_CALL", MAX_PAGES_PER_CALL.into()),
        ("PA_BITS", PA_BITS.into()),
        ("MIN_IPA_BITS", MIN_IPA_BITS.into()),
        ("MAX_IPA_BITS", MAX_IPA_BITS.into()),
        ("MAX_VCPUS", MAX_VCPUS.into()),
        ("MAX_VMS", MAX_VMS.into()),
        ("MAX_POOL_PAGES_PER_CALL", MAX_POOL_PAGES_PER_CALL.into()),
        ("MAX_MMIO_GUARD_PAGES", MAX_MMIO_GUARD_PAGES.into()),
    ];
    assert_eq!(rows.len(), expected.len());
    for (row, (name, value)) in rows.iter().zip(expected) {
        assert_eq!(row[0], name);
        assert_eq!(parse_int(&row[1]), value, "{name}");
    }
}

#[test]
fn uid_table_matches_the_crate() {
    let rows = table("| Register | Value |");
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("x{i}"));
        assert_eq!(parse_int(&row[1]), u64::from(UID[i]));
    }
    assert!(DOC.contains("6b1d7b6b-e4d5-4208-94d2-bd597c39f2da"));
}

#[test]
fn features_values_in_the_text_match_the_crate() {
    assert!(DOC.contains(&format!("Host: `{:#X}`", HOST_FEATURES_BITMAP).replace("0X", "0x")));
    assert!(DOC.contains("Guest: `0x7F_0000_0001`"));
    assert_eq!(GUEST_FEATURES_BITMAP, 0x7F_0000_0001);
    assert!(DOC.contains(&format!(
        "Version {}.{} = `0x0002_0000`",
        Version::CURRENT.major,
        Version::CURRENT.minor
    )));
    assert_eq!(Version::CURRENT.to_x1(), 0x0002_0000);
}

/// N of the first "xN..x7 MBZ" in `text`.
fn first_mbz_in_text(text: &str) -> Option<usize> {
    let before = &text[..text.find("..x7 MBZ")?];
    let x = before.rfind('x')?;
    before[x + 1..].parse().ok()
}

/// Every "### ... NAME (0x...)" section states "xN..x7 MBZ"; N must be the first register
/// the decoder checks as MBZ.
#[test]
fn mbz_ranges_in_call_sections_match_the_decoders() {
    let mut checked = 0;
    let sections = DOC.split("\n### ").skip(1);
    for section in sections {
        let heading = section.lines().next().unwrap();
        let ids: Vec<FunctionId> = heading
            .split('(')
            .skip(1)
            .filter_map(|s| s.split(')').next())
            .filter_map(|s| s.strip_prefix("0x"))
            .map(|hex| FunctionId(u32::from_str_radix(hex, 16).unwrap()))
            .collect();
        let Some(first) = first_mbz_in_text(section) else {
            continue;
        };
        for id in ids {
            assert_eq!(common::first_mbz(id), Some(first), "{heading}");
            checked += 1;
        }
    }
    // Every host and guest call with MBZ registers except FEATURES (documented in section 2).
    assert_eq!(checked, 9 + 7);
}

#[test]
fn features_takes_no_arguments_in_the_text() {
    let section = DOC.split("## 2. Discovery").nth(1).unwrap();
    let features = section.split("`FEATURES`, function id").nth(1).unwrap();
    assert!(features.contains("x1..x7 MBZ"));
    assert_eq!(common::first_mbz(FunctionId::FEATURES), Some(1));
}

/// Every (call, page state) cell of the section 7 tables holds exactly one outcome: a
/// documented error or a `→` transition.
fn assert_complete(header: &str, states: &[&str]) {
    let rows = table(header);
    let calls = header.trim_matches('|').split(" | ").count() - 1;
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, states, "{header}");
    for row in &rows {
        assert_eq!(row.len(), calls + 1, "{row:?}");
        for cell in &row[1..] {
            let is_error = Error::ALL.iter().any(|e| e.name() == cell);
            assert!(is_error || cell.starts_with("→ "), "{row:?}: {cell:?}");
        }
    }
}

#[test]
fn physical_page_state_table_is_complete() {
    assert_complete(
        "| State | HOST_SHARE_HYP | HOST_UNSHARE_HYP | VM_TOPUP | VM_DONATE | VM_RECLAIM |",
        &[
            "HOST",
            "HOST_SHARED_HYP",
            "GUEST_OWNED",
            "GUEST_SHARED",
            "VM_POOL",
            "RECLAIMABLE",
            "HYP",
            "MMIO",
            "NO_RAM",
        ],
    );
    let defined: Vec<String> = table("| State | Meaning | Host access |")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(defined.len(), 9);
}

#[test]
fn ipa_state_table_is_complete() {
    assert_complete(
        "| IPA state | VM_DONATE | MEM_SHARE | MEM_UNSHARE | MEM_RELINQUISH |",
        &["UNMAPPED", "GUEST_OWNED", "GUEST_SHARED"],
    );
}
