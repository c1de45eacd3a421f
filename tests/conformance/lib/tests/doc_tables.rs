//! The suite's transcriptions of `docs/abi.md` checked against the document's text: the
//! error column of every call's table, in row order, and every cell of tables 7.1 and
//! 7.2. A change to the document that the suite does not follow fails here.

use conformance::cases::Call;
use conformance::cases::calls::COVERED_ELSEWHERE;
use conformance::cases::tables::{IpaCell, IpaColumn, PageCell, PageColumn, TABLE_7_1, TABLE_7_2};
use conformance::states::{IpaState, PageState};

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../docs/abi.md");
    std::fs::read_to_string(path).expect("docs/abi.md")
}

/// The cells of a Markdown table row, trimmed, backticks removed.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let inner = line
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .unwrap_or(line);
    inner
        .split('|')
        .map(|cell| cell.replace('`', "").trim().to_string())
        .collect()
}

/// The first table after the line starting with `heading` whose header row satisfies
/// `wanted`: its header and body rows.
fn table_after(
    doc: &str,
    heading: &str,
    wanted: impl Fn(&[String]) -> bool,
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = doc
        .lines()
        .skip_while(|line| !line.starts_with(heading))
        .skip(1)
        .peekable();
    assert!(lines.peek().is_some(), "no heading {heading:?}");
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with('|') {
            continue;
        }
        let header = cells(line);
        let mut body = Vec::new();
        // The separator row, then the body up to the first non-table line.
        lines.next();
        while let Some(row) = lines.next_if(|l| l.trim_start().starts_with('|')) {
            body.push(cells(row));
        }
        if wanted(&header) {
            return (header, body);
        }
    }
    panic!("no matching table after {heading:?}");
}

#[test]
fn every_error_table_lists_the_rows_the_cases_use() {
    let doc = document();
    let mut checked = 0;
    for call in Call::ALL {
        let Some(section) = call.doc_section() else {
            assert!(call.rows().is_empty(), "{call} has rows but no section");
            continue;
        };
        let (header, body) = table_after(&doc, section, |h| h.iter().any(|c| c == "Error"));
        let column = header.iter().position(|c| c == "Error").unwrap();
        let documented: Vec<&str> = body.iter().map(|row| row[column].as_str()).collect();
        let transcribed: Vec<&str> = call.rows().iter().map(|row| row.error.name()).collect();
        assert_eq!(transcribed, documented, "{call} ({section})");
        checked += 1;
    }
    assert!(checked >= 14, "{checked} tables");
}

fn page_cell_text(cell: PageCell) -> String {
    match cell {
        PageCell::Denied => "DENIED".into(),
        PageCell::To(state) => format!("→ {}", state.doc_name()),
        PageCell::ToZeroed(state) => format!("→ {} (zeroed)", state.doc_name()),
    }
}

#[test]
fn table_7_1_is_transcribed_cell_by_cell() {
    let doc = document();
    let (header, body) = table_after(&doc, "### 7.1", |h| {
        h.first().is_some_and(|c| c == "State") && h.len() == PageColumn::ALL.len() + 1
    });
    let columns: Vec<&str> = PageColumn::ALL.iter().map(|c| c.doc_name()).collect();
    assert_eq!(&header[1..], columns.as_slice());
    assert_eq!(body.len(), PageState::ALL.len());
    for (row, state) in body.iter().zip(PageState::ALL) {
        assert_eq!(row[0], state.doc_name());
        for (i, cell) in TABLE_7_1[state as usize].iter().enumerate() {
            assert_eq!(
                row[i + 1],
                page_cell_text(*cell),
                "{state} x {}",
                columns[i]
            );
        }
    }
}

fn ipa_cell_matches(cell: IpaCell, text: &str) -> bool {
    match cell {
        IpaCell::Denied => text == "DENIED",
        IpaCell::NotFound => text == "NOT_FOUND",
        IpaCell::To(state) => text == format!("→ {}", state.doc_name()),
        IpaCell::Unmapped { zeroed } => {
            text.starts_with("→ UNMAPPED (page → HOST") && text.contains("zeroed") == zeroed
        }
    }
}

#[test]
fn table_7_2_is_transcribed_cell_by_cell() {
    let doc = document();
    let (header, body) = table_after(&doc, "### 7.2", |h| {
        h.first().is_some_and(|c| c == "IPA state")
    });
    let columns: Vec<&str> = IpaColumn::ALL.iter().map(|c| c.doc_name()).collect();
    assert_eq!(&header[1..], columns.as_slice());
    assert_eq!(body.len(), IpaState::ALL.len());
    for (row, state) in body.iter().zip(IpaState::ALL) {
        assert_eq!(row[0], state.doc_name());
        for (i, cell) in TABLE_7_2[state as usize].iter().enumerate() {
            assert!(
                ipa_cell_matches(*cell, &row[i + 1]),
                "{state} x {}: document says {:?}, suite has {cell:?}",
                columns[i],
                row[i + 1]
            );
        }
    }
}

#[test]
fn host_access_follows_table_7_1() {
    let doc = document();
    let (_, body) = table_after(&doc, "### 7.1", |h| h.iter().any(|c| c == "Host access"));
    for (row, state) in body.iter().zip(PageState::ALL) {
        assert_eq!(row[0], state.doc_name());
        let expected = match state.host_access() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "as the platform maps it",
        };
        assert_eq!(row[2], expected, "{state}");
    }
}

/// A row no case reaches (no trigger) is one of the rows of MMIO_GUARD_MAP and
/// MMIO_GUARD_UNMAP's shared table that belongs to the other call, or is listed in
/// `COVERED_ELSEWHERE` with a test that exists.
#[test]
fn every_row_no_case_reaches_names_the_test_that_does() {
    for call in Call::ALL {
        for (index, row) in call.rows().iter().enumerate() {
            let shared_guard_row = matches!(call, Call::MmioGuardMap | Call::MmioGuardUnmap)
                && (5..=7).contains(&(index + 1));
            if !row.triggers.is_empty() || shared_guard_row {
                continue;
            }
            let covered = COVERED_ELSEWHERE
                .iter()
                .find(|c| c.call == call && c.row == index + 1);
            let Some(covered) = covered else {
                panic!("{call} row {} is reached by no case and no test", index + 1);
            };
            let path = format!("{}/../../../{}", env!("CARGO_MANIFEST_DIR"), covered.file);
            let source = std::fs::read_to_string(&path).expect(covered.file);
            assert!(
                source.contains(&format!("\"{}\"", covered.test))
                    || source.contains(&format!("fn {}(", covered.test)),
                "{call} row {}: {} has no test {}",
                index + 1,
                covered.file,
                covered.test
            );
        }
    }
    for covered in COVERED_ELSEWHERE {
        let row = covered.call.rows().get(covered.row - 1);
        assert!(
            row.is_some_and(|row| row.triggers.is_empty()),
            "{} row {} is listed as covered elsewhere but a case reaches it",
            covered.call,
            covered.row
        );
    }
}
