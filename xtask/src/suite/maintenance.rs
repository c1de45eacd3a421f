//! `payload_maintenance_sequences`: the built payload's TLB, cache and SMMU maintenance,
//! read back from its disassembly and compared with the sequence the architecture requires.
//!
//! QEMU models no walk caches, no VMID-tagged TLB and no data caches, so a missing `tlbi`,
//! barrier or cache clean passes every boot (issue 12). This check disassembles the release
//! ELF (`llvm-objdump` from the toolchain's `llvm-tools` component), takes each maintenance
//! function by name (they are `#[inline(never)]` for this), keeps its *key* instructions
//! (TLBIs, barriers, cache maintenance, system-register moves, the VMID insert, and calls to
//! other maintenance functions) in address order, drops those the sequence does not name,
//! and from the sequence's first instruction on requires exactly the expected list:
//! deleting, duplicating or reordering one of them fails the check with both lists printed.
//! Operand values (VTTBR composition, TLBI operand, DC ZVA block, cache line) are plain
//! functions of `stage2` with unit tests of their own (`stage2::tlb`, `stage2::cache_geometry`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::report::Report;
use crate::build::{self, Image};
use crate::paths;

pub const NAME: &str = "payload_maintenance_sequences";

/// One maintenance function and the key instructions it must consist of.
struct Sequence {
    /// The function's demangled path, without the hash.
    function: &'static str,
    /// Key instructions, in address order (see [`key_instruction`] for their spelling).
    expect: &'static [&'static str],
    /// The architecture rule the sequence follows.
    rule: &'static str,
}

/// Every maintenance sequence EL2 issues. A function whose VMID is already loaded takes the
/// short path (first group), otherwise the long one (VMID loaded, `isb`, the same, restore,
/// `isb`), on speculative-AT cores between `block_stage1_walks` and `unblock_stage1_walks`;
/// all three are in the list because the compiler lays out all three.
const SEQUENCES: &[Sequence] = &[
    Sequence {
        function: "<el2::tlb::Tlb as stage2::tlb::TlbMaintenance>::invalidate_ipa",
        expect: &[
            "mrs ID_AA64MMFR2_EL1",
            "mrs VTTBR_EL2",
            "bfi #48, #16",
            "dsb ishst",
            "tlbi ipas2e1is",
            "call el2::speculative_at::block_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ishst",
            "tlbi ipas2e1is",
            "msr VTTBR_EL2",
            "isb",
            "call el2::speculative_at::unblock_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ishst",
            "tlbi ipas2e1is",
            "msr VTTBR_EL2",
            "isb",
        ],
        rule: "Arm ARM D8.13 (break-before-make, TLB maintenance of stage 2): the descriptor write is \
               visible to the walkers (dsb ishst) before TLBI IPAS2E1IS by IPA, which acts on the VMID \
               in VTTBR_EL2 (VMID field replaced, bfi, then isb); FEAT_TTL hint from ID_AA64MMFR2_EL1; \
               on speculative-AT cores stage-1 walks are stopped before the VMID changes and the \
               translation controls restored after it is back (pKVM's enter/exit_vmid_context)",
    },
    Sequence {
        function: "<el2::tlb::Tlb as stage2::tlb::TlbMaintenance>::invalidate_stage1_for_vmid",
        expect: &[
            "mrs VTTBR_EL2",
            "bfi #48, #16",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            "call el2::speculative_at::block_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            "msr VTTBR_EL2",
            "isb",
            "call el2::speculative_at::unblock_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            "msr VTTBR_EL2",
            "isb",
        ],
        rule: "Arm ARM D8.13: combined stage-1+2 entries are tagged by VA, so after stage-2 TLBIs by \
               IPA complete (dsb ish) TLBI VMALLE1IS for the VMID, dsb ish to complete it, isb",
    },
    Sequence {
        function: "<el2::tlb::Tlb as stage2::tlb::TlbMaintenance>::invalidate_vmid",
        expect: &[
            "mrs VTTBR_EL2",
            "bfi #48, #16",
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            "call el2::speculative_at::block_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            "msr VTTBR_EL2",
            "isb",
            "call el2::speculative_at::unblock_stage1_walks",
            "msr VTTBR_EL2",
            "isb",
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            "msr VTTBR_EL2",
            "isb",
        ],
        rule: "Arm ARM D8.13/D8.16 (VMID reuse): before a VMID is reused every entry tagged with it, \
               stage 1, stage 2 and walk caches, is removed: TLBI VMALLS12E1IS, dsb ish, isb",
    },
    Sequence {
        function: "el2::speculative_at::block_stage1_walks",
        expect: &[
            "mrs TCR_EL1",
            "msr TCR_EL1",
            "isb",
            "mrs SCTLR_EL1",
            "msr SCTLR_EL1",
            "isb",
        ],
        rule: "Cortex-A57/A72/A76/A55 speculative-AT errata (Linux ARM64_WORKAROUND_SPECULATIVE_AT, \
               pKVM nVHE __deactivate_traps / enter_vmid_context): TCR_EL1.EPD0/EPD1 set and \
               synchronised, then SCTLR_EL1.M, before the EL1&0 context (VTTBR, stage-1 registers) changes",
    },
    Sequence {
        function: "el2::speculative_at::unblock_stage1_walks",
        expect: &["isb", "msr SCTLR_EL1", "isb", "msr TCR_EL1"],
        rule: "pKVM nVHE __activate_traps / __sysreg_restore_el1_state / exit_vmid_context: the new \
               stage 2 synchronised, then the world's SCTLR_EL1, isb, and only then its TCR_EL1",
    },
    Sequence {
        function: "<el2::tlb::Sanitizer as stage2::ownership::PageSanitizer>::zero_and_clean",
        expect: &[
            "mrs DCZID_EL0",
            "dc zva",
            "call el2::cache::clean_to_poc",
            "call memset",
            "call el2::cache::clean_to_poc",
        ],
        rule: "Arm ARM D7.5.9 / DCZID_EL0: DC ZVA zeroes BS words per instruction unless DZP (or a \
               block larger than a page: ordinary stores, memset); either way the zeroes are then \
               cleaned to the PoC before the page changes hands",
    },
    Sequence {
        function: "el2::tlb::DeferredSanitizer::finish",
        expect: &[
            "call <el2::tlb::Sanitizer as stage2::ownership::PageSanitizer>::zero_and_clean",
            "call stage2::ownership::Ownership<_>::sanitized_to_host",
        ],
        rule: "deferred zeroing: every noted page is zeroed and cleaned to the PoC before the record \
               gives it to the host",
    },
    Sequence {
        function: "el2::cache::clean_to_poc",
        expect: &["mrs CTR_EL0", "dc cvac", "dsb sy"],
        rule: "Arm ARM D7.5.9: DC CVAC per line of CTR_EL0.DminLine over the range, then dsb to \
               complete the cleans before anyone is told",
    },
    Sequence {
        function: "el2::cache::clean_invalidate_to_poc",
        expect: &["mrs CTR_EL0", "dc civac", "dsb sy"],
        rule: "Arm ARM D7.5.9: DC CIVAC per line of CTR_EL0.DminLine over the range, then dsb",
    },
    Sequence {
        function: "el2::vm::vm_donate",
        expect: &["call el2::cache::clean_invalidate_to_poc"],
        rule: "donated pages are cleaned and invalidated to the PoC (no host line survives into a \
               guest that runs with its caches off)",
    },
    Sequence {
        function: "el2::vm::wipe_all_vcpus_for_reset",
        expect: &["call el2::cache::clean_to_poc"],
        rule: "the wiped vCPU contexts reach the PoC before a reset",
    },
    Sequence {
        function: "el2::el2_regs::configure_for_host",
        expect: &[
            "msr VTTBR_EL2",
            "tlbi alle1",
            "dsb nsh",
            "isb",
            "msr HCR_EL2",
            "isb",
        ],
        rule: "Arm ARM D8.13: entries left by earlier EL1&0 software (any VMID) are removed, TLBI \
               ALLE1, dsb nsh, isb, before HCR_EL2.VM enables the host's stage 2",
    },
    Sequence {
        function: "el2::mmu::enable",
        expect: &[
            "msr MAIR_EL2",
            "msr TCR_EL2",
            "msr TTBR0_EL2",
            "tlbi alle2",
            "dsb ish",
            "isb",
            "msr SCTLR_EL2",
            "isb",
        ],
        rule: "Arm ARM D8.13: EL2's stage-1 entries from before are removed (TLBI ALLE2, dsb, isb) \
               before SCTLR_EL2.M turns the MMU on; EL2's tables are not changed afterwards",
    },
    Sequence {
        function: "<el2::smmu::SmmuDma as stage2::host_dma::HostDma>::revoke",
        expect: &[
            "call stage2::dma_table::DmaTable::unmap",
            "call el2::smmu::queues::CommandQueue::run",
        ],
        rule: "SMMUv3 (IHI 0070) 3.21/4.7.3: the entries are removed first, then TLBI commands and \
               CMD_SYNC, waited for, before the call that took the pages returns",
    },
    Sequence {
        function: "el2::smmu::queues::CommandQueue::run",
        expect: &[
            "call el2::smmu::queues::CommandQueue::push_all",
            "call el2::smmu::queues::CommandQueue::push",
            "call el2::smmu::queues::CommandQueue::publish",
        ],
        rule: "SMMUv3 4.7.3: the commands, then a CMD_SYNC after them, then PROD published, then \
               EL2 waits until CONS passes the sync",
    },
    Sequence {
        function: "el2::smmu::queues::CommandQueue::publish",
        expect: &["dsb ishst", "str"],
        rule: "SMMUv3 3.5: command words are visible to the SMMU (dsb) before the PROD write that \
               hands them over",
    },
];

/// Functions whose calls count as key instructions (other maintenance functions, the
/// record's hand-back, the SMMU table and queue).
const KEY_CALLEES: &[&str] = &[
    "el2::cache::",
    "el2::tlb::",
    "sanitized_to_host",
    "DmaTable::unmap",
    "CommandQueue::",
    "memset",
    "el2::speculative_at::",
];

/// Builds the payload and disassembles it: its ELF and the text, or `None` once the
/// failure has been reported as check `name`.
pub(super) fn payload_disassembly(report: &mut Report, name: &str) -> Option<(PathBuf, String)> {
    let elf = match build::build_quiet(&[Image::El2]) {
        Ok(_) => Image::El2.elf(),
        Err((reason, output)) => {
            report.fail(name, &reason, &output);
            return None;
        }
    };
    match disassemble(&elf) {
        Ok(text) => Some((elf, text)),
        Err(e) => {
            report.fail(name, &e, &[]);
            None
        }
    }
}

pub fn run(report: &mut Report) {
    let Some((_, text)) = payload_disassembly(report, NAME) else {
        return;
    };
    let errors = check(&text, SEQUENCES);
    if errors.is_empty() {
        report.pass(
            NAME,
            &format!("{} maintenance functions as required", SEQUENCES.len()),
        );
    } else {
        report.fail(
            NAME,
            &format!("{} maintenance functions differ", errors.len()),
            &errors,
        );
    }
}

/// The toolchain's `llvm-objdump` (component `llvm-tools`, listed in rust-toolchain.toml),
/// else one on PATH.
pub(super) fn objdump() -> PathBuf {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(paths::repo_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let host = Command::new("rustc")
        .args(["--print", "host-tuple"])
        .current_dir(paths::repo_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let (Some(root), Some(host)) = (sysroot, host) {
        let tool = Path::new(&root)
            .join("lib/rustlib")
            .join(host)
            .join("bin/llvm-objdump");
        if tool.exists() {
            return tool;
        }
    }
    PathBuf::from("llvm-objdump")
}

pub(super) fn disassemble(elf: &Path) -> Result<String, String> {
    let tool = objdump();
    let out = Command::new(&tool)
        .args(["-d", "-C", "--no-show-raw-insn"])
        .arg(elf)
        .output()
        .map_err(|e| {
            format!(
                "could not run {}: {e} (`rustup component add llvm-tools`)",
                tool.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            tool.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Rust's legacy mangling as objdump prints it, turned back into a path without its hash.
fn demangle(raw: &str) -> String {
    let mut s = raw.trim_start_matches('_').to_string();
    for (from, to) in [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$u20$", " "),
        ("$C$", ","),
        ("$RF$", "&"),
        ("..", "::"),
    ] {
        s = s.replace(from, to);
    }
    match s.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            path.to_string()
        }
        _ => s,
    }
}

/// Generic arguments, which depend on the build, become `_` (`Ownership<_>`).
fn without_generics(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    // Only `Type<...>` after an identifier is a generic list; a leading `<` is a qualified
    // path (`<T as Trait>::f`) and is kept.
    let mut prev_ident = false;
    for c in path.chars() {
        match c {
            '<' if prev_ident || depth > 0 => {
                if depth == 0 {
                    out.push_str("<_");
                }
                depth += 1;
            }
            '>' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push('>');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
        prev_ident = c.is_alphanumeric() || c == '_';
    }
    out
}

/// The disassembly split into functions: (demangled path, instruction lines).
fn functions(text: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_end();
        if let Some(head) = trimmed.strip_suffix(">:")
            && let Some((_, name)) = head.split_once(" <")
        {
            out.push((without_generics(&demangle(name)), Vec::new()));
        } else if let Some((addr, insn)) = trimmed.trim_start().split_once(':')
            && !addr.is_empty()
            && addr.chars().all(|c| c.is_ascii_hexdigit())
            && let Some(f) = out.last_mut()
        {
            f.1.push(insn.trim());
        }
    }
    out
}

/// The key instruction an instruction line is, if any: `tlbi <op>`, `dsb <dom>`, `isb`,
/// `dc <op>`, `ic <op>`, `msr <reg>`, `mrs <reg>` (system registers only), `bfi #lsb,
/// #width` into bits [63:48] (the VMID field), `call <path>` (`bl`, or `b` as a tail call) of a
/// [`KEY_CALLEES`] function,
/// and `str` (only where a sequence lists it).
fn key_instruction(insn: &str, with_stores: bool) -> Option<String> {
    let mut parts = insn.splitn(2, char::is_whitespace);
    let mnemonic = parts.next()?;
    let operands: Vec<&str> = parts
        .next()
        .unwrap_or("")
        .split("//")
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match mnemonic {
        "tlbi" | "dc" | "ic" | "dsb" | "dmb" => Some(format!("{mnemonic} {}", operands.first()?)),
        "isb" => Some("isb".to_string()),
        "msr" => Some(format!("msr {}", operands.first()?)),
        "mrs" => Some(format!("mrs {}", operands.get(1)?)),
        "bfi" if operands.get(2) == Some(&"#48") => Some(format!("bfi #48, {}", operands.get(3)?)),
        // A call, or a tail call (`b` to another function's start, no `+offset`).
        "bl" | "b" => {
            let target = insn.split_once('<')?.1.trim_end_matches('>');
            if mnemonic == "b" && target.contains('+') {
                return None;
            }
            let path = without_generics(&demangle(target.split('+').next()?));
            KEY_CALLEES
                .iter()
                .any(|k| path.contains(k))
                .then(|| format!("call {path}"))
        }
        "str" if with_stores => Some("str".to_string()),
        _ => None,
    }
}

/// Every difference between `sequences` and the disassembly `text`, one line each (plus
/// the function's key instructions as found).
fn check(text: &str, sequences: &[Sequence]) -> Vec<String> {
    let funcs = functions(text);
    let mut errors = Vec::new();
    for seq in sequences {
        let Some((_, lines)) = funcs.iter().find(|(name, _)| name == seq.function) else {
            errors.push(format!(
                "{}: not in the payload (inlined or renamed?)",
                seq.function
            ));
            continue;
        };
        let with_stores = seq.expect.contains(&"str");
        // Only the instructions the sequence speaks of count (a register write elsewhere in
        // the function is not this check's business), from the first one on.
        let mut found: Vec<String> = lines
            .iter()
            .filter_map(|l| key_instruction(l, with_stores))
            .filter(|k| seq.expect.contains(&k.as_str()))
            .collect();
        if let Some(first) = found.iter().position(|k| k == seq.expect[0]) {
            found.drain(..first);
        }
        if found != seq.expect {
            errors.push(format!(
                "{}: key instructions [{}], the sequence needs [{}] ({})",
                seq.function,
                found.join("; "),
                seq.expect.join("; "),
                seq.rule.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
        if let Err(e) = vttbr_writes_alternate(lines) {
            errors.push(format!("{}: {e}", seq.function));
        }
    }
    errors
}

/// The operands of `xN` or `wN` instructions, split at commas.
fn operands(insn: &str) -> Vec<&str> {
    insn.split_once(char::is_whitespace)
        .map_or("", |(_, o)| o)
        .split("//")
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect()
}

/// Where a function saves VTTBR_EL2 (`mrs xS, VTTBR_EL2`) and composes the VMID into a copy
/// (`bfi xC, ..., #48, #16`), its writes of VTTBR_EL2 must alternate: the composed value
/// (`msr VTTBR_EL2, xC`), then the saved one back. A write of any other register, or a
/// missing restore, would leave a CPU running under a VMID it does not own.
fn vttbr_writes_alternate(lines: &[&str]) -> Result<(), String> {
    let saved = lines.iter().find_map(|l| {
        let ops = operands(l);
        (l.starts_with("mrs") && ops.get(1) == Some(&"VTTBR_EL2")).then(|| ops[0].to_string())
    });
    let composed = lines.iter().find_map(|l| {
        let ops = operands(l);
        (l.starts_with("bfi") && ops.get(2) == Some(&"#48")).then(|| ops[0].to_string())
    });
    let (Some(saved), Some(composed)) = (saved, composed) else {
        return Ok(());
    };
    let writes: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("msr") && operands(l).first() == Some(&"VTTBR_EL2"))
        .map(|l| operands(l).get(1).copied().unwrap_or("").to_string())
        .collect();
    let alternate = !writes.is_empty()
        && writes.len().is_multiple_of(2)
        && writes
            .iter()
            .enumerate()
            .all(|(i, r)| r == if i % 2 == 0 { &composed } else { &saved });
    if alternate {
        Ok(())
    } else {
        Err(format!(
            "VTTBR_EL2 written from [{}]; needs the composed value ({composed}) then the saved one ({saved}) back",
            writes.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
0000000000012554 <_$LT$el2..tlb..Tlb$u20$as$u20$stage2..tlb..TlbMaintenance$GT$::invalidate_ipa::h3224c918dbdd150e>:
   12554:      \tmrs\tx9, VTTBR_EL2
   12578:      \tbfi\tx10, x0, #48, #16
   12588:      \tdsb\tishst
   1258c:      \ttlbi\tipas2e1is, x8
   1258e:      \tmsr\tVTTBR_EL2, x10
   1258f:      \tmsr\tVTTBR_EL2, x9
   12590:      \tbl\t0x12554 <el2::cache::clean_to_poc::h461913db14818944>
   12594:      \tbl\t0x12554 <core::fmt::write::h461913db14818944>
   12598:      \tret

0000000000012600 <stage2::ownership::Ownership$LT$_$GT$::sanitized_to_host::h0123456789abcdef>:
   12600:      \tret
";

    const SEQ: &[Sequence] = &[Sequence {
        function: "<el2::tlb::Tlb as stage2::tlb::TlbMaintenance>::invalidate_ipa",
        expect: &[
            "mrs VTTBR_EL2",
            "bfi #48, #16",
            "dsb ishst",
            "tlbi ipas2e1is",
            "call el2::cache::clean_to_poc",
        ],
        rule: "test",
    }];

    #[test]
    fn the_expected_sequence_passes() {
        assert_eq!(check(SAMPLE, SEQ), Vec::<String>::new());
        assert_eq!(
            functions(SAMPLE)[1].0,
            "stage2::ownership::Ownership<_>::sanitized_to_host"
        );
    }

    #[test]
    fn a_deleted_tlbi_fails() {
        let planted = SAMPLE.replace("   1258c:      \ttlbi\tipas2e1is, x8\n", "");
        let errors = check(&planted, SEQ);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("key instructions [mrs VTTBR_EL2; bfi #48, #16; dsb ishst; call")
        );
    }

    #[test]
    fn a_barrier_moved_after_the_tlbi_fails() {
        let planted = SAMPLE.replace(
            "\tdsb\tishst\n   1258c:      \ttlbi\tipas2e1is, x8",
            "\ttlbi\tipas2e1is, x8\n   1258c:      \tdsb\tishst",
        );
        assert_eq!(check(&planted, SEQ).len(), 1);
    }

    #[test]
    fn a_vmid_ored_over_the_old_one_fails() {
        let planted = SAMPLE.replace("bfi\tx10, x0, #48, #16", "orr\tx10, x9, x0, lsl #48");
        assert_eq!(check(&planted, SEQ).len(), 1);
    }

    const SWITCH: &str = "\
0000000000012554 <el2::tlb::switch::h3224c918dbdd150e>:
   12570:      \tmrs\tx9, VTTBR_EL2
   12574:      \tmov\tx10, x9
   12578:      \tbfi\tx10, x0, #48, #16
   12594:      \tmsr\tVTTBR_EL2, x10
   12598:      \tisb
   125a4:      \tmsr\tVTTBR_EL2, x9
   125a8:      \tisb
";

    #[test]
    fn vttbr_is_written_with_the_composed_value_then_restored() {
        let lines =
            |t: &str| -> Vec<String> { functions(t)[0].1.iter().map(|s| s.to_string()).collect() };
        let ok = lines(SWITCH);
        let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
        assert_eq!(vttbr_writes_alternate(&ok), Ok(()));
        for planted in [
            SWITCH.replace("msr\tVTTBR_EL2, x9", "msr\tVTTBR_EL2, x10"),
            SWITCH.replace("msr\tVTTBR_EL2, x10", "msr\tVTTBR_EL2, x9"),
            SWITCH.replace("   125a4:      \tmsr\tVTTBR_EL2, x9\n", ""),
        ] {
            let l = lines(&planted);
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            assert!(vttbr_writes_alternate(&l).is_err(), "{planted}");
        }
    }

    #[test]
    fn a_missing_function_fails() {
        let errors = check("", SEQ);
        assert!(errors[0].contains("not in the payload"), "{errors:?}");
    }
}
