//! `payload_vectors_harden_every_lower_el_entry`: the built payload's EL2 vectors, read
//! back from its disassembly, run the branch-predictor hardening (`run_branch_hardening`
//! in el2/src/asm/vectors.S, chosen at boot by `el2/src/spectre.rs`) before any indirect
//! branch on every entry from a lower EL that returns to it:
//! - both synchronous slots of `el2_vectors` (the host's, AArch64 and AArch32) load the
//!   word `BRANCH_HARDENING` and branch to `lower_sync_hardened` when it is non-zero;
//! - every lower-EL slot of `guest_vectors` goes to `guest_exit_common`, which loads the
//!   same word before its first indirect branch;
//! - both hardened paths contain each mitigation as Linux writes it: CLRBHB then `isb`; the
//!   branch loop (`b . + 4; subs; b.ne` back to that branch, then `dsb nsh; isb`); `smc #0`.
//!
//! QEMU cannot tell whether a mitigation ran (it models no branch predictor); the boot
//! cases on `cortex-a57`/`cortex-a72` show that the loop is chosen there, this check that
//! the code the choice selects is really on the path.

use std::process::Command;

use super::maintenance::{objdump, payload_disassembly};
use super::report::Report;

pub const NAME: &str = "payload_vectors_harden_every_lower_el_entry";

const WORD: &str = "BRANCH_HARDENING";

pub fn run(report: &mut Report) {
    let Some((elf, text)) = payload_disassembly(report, NAME) else {
        return;
    };
    let word = match Command::new(objdump()).arg("-t").arg(&elf).output() {
        Ok(out) => symbol_address(&String::from_utf8_lossy(&out.stdout), WORD),
        Err(e) => return report.fail(NAME, &format!("objdump -t: {e}"), &[]),
    };
    let Some(word) = word else {
        return report.fail(
            NAME,
            &format!("{WORD} is not in the payload's symbols"),
            &[],
        );
    };
    let errors = check(&text, word);
    if errors.is_empty() {
        report.pass(
            NAME,
            "2 host sync slots and 8 guest slots reach CLRBHB, the branch loop and the SMC",
        );
    } else {
        report.fail(NAME, &format!("{} problems", errors.len()), &errors);
    }
}

/// `name`'s address in `llvm-objdump -t` output.
fn symbol_address(symtab: &str, name: &str) -> Option<u64> {
    symtab.lines().find_map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        (fields.last() == Some(&name))
            .then(|| u64::from_str_radix(fields.first()?, 16).ok())
            .flatten()
    })
}

/// One instruction: address, mnemonic, operands (comment dropped).
struct Insn<'a> {
    addr: u64,
    mnemonic: &'a str,
    operands: Vec<&'a str>,
}

/// Symbols with their address and instructions.
fn symbols(text: &str) -> Vec<(String, u64, Vec<Insn<'_>>)> {
    let mut out: Vec<(String, u64, Vec<Insn<'_>>)> = Vec::new();
    for line in text.lines() {
        let t = line.trim_end();
        if let Some(head) = t.strip_suffix(">:")
            && let Some((addr, name)) = head.split_once(" <")
            && let Ok(addr) = u64::from_str_radix(addr, 16)
        {
            out.push((name.to_string(), addr, Vec::new()));
        } else if let Some((addr, insn)) = t.trim_start().split_once(':')
            && let Ok(addr) = u64::from_str_radix(addr, 16)
            && let Some(sym) = out.last_mut()
        {
            let insn = insn.trim();
            let (mnemonic, rest) = insn.split_once(char::is_whitespace).unwrap_or((insn, ""));
            let rest = rest.split("//").next().unwrap_or("");
            let operands = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            sym.2.push(Insn {
                addr,
                mnemonic,
                operands,
            });
        }
    }
    out
}

/// A branch's target address (`b 0x1234 <sym+0x10>`).
fn target(i: &Insn<'_>) -> Option<u64> {
    let op = i.operands.last()?;
    let hex = op.trim_start_matches("0x");
    u64::from_str_radix(hex.split_whitespace().next()?, 16).ok()
}

fn hex(op: &str) -> Option<u64> {
    let op = op
        .trim_start_matches('#')
        .trim_start_matches('[')
        .trim_end_matches(']');
    let op = op.trim_start_matches('#');
    u64::from_str_radix(op.trim_start_matches("0x").split_whitespace().next()?, 16).ok()
}

/// Whether `insns[i..]` starts with `adrp xR, page; ldr xR, [xR, #off]` naming `word`.
fn loads_word(insns: &[Insn<'_>], i: usize, word: u64) -> bool {
    let (Some(adrp), Some(ldr)) = (insns.get(i), insns.get(i + 1)) else {
        return false;
    };
    let page = adrp.operands.get(1).and_then(|o| hex(o));
    let off = ldr.operands.get(2).and_then(|o| hex(o)).or(Some(0));
    adrp.mnemonic == "adrp"
        && ldr.mnemonic == "ldr"
        && ldr.operands.first() == Some(&"x2")
        && page.zip(off).map(|(p, o)| p + o) == Some(word)
}

/// Every mitigation, Linux's way, somewhere in `insns`.
fn hardening_body(where_: &str, insns: &[Insn<'_>]) -> Vec<String> {
    let mut errors = Vec::new();
    let at = |i: usize| insns.get(i).map(|x| x.mnemonic);
    let clrbhb =
        (0..insns.len()).any(|i| matches!(at(i), Some("clrbhb")) && at(i + 1) == Some("isb"));
    if !clrbhb {
        errors.push(format!("{where_}: no CLRBHB followed by isb"));
    }
    let branch_loop = (0..insns.len()).any(|i| {
        let (Some(b), Some(subs), Some(bne), Some(dsb), Some(isb)) = (
            insns.get(i),
            insns.get(i + 1),
            insns.get(i + 2),
            insns.get(i + 3),
            insns.get(i + 4),
        ) else {
            return false;
        };
        b.mnemonic == "b"
            && target(b) == Some(b.addr + 4)
            && subs.mnemonic == "subs"
            && bne.mnemonic == "b.ne"
            && target(bne) == Some(b.addr)
            && dsb.mnemonic == "dsb"
            && dsb.operands.first() == Some(&"nsh")
            && isb.mnemonic == "isb"
    });
    if !branch_loop {
        errors.push(format!(
            "{where_}: no branch loop (b . + 4; subs; b.ne back; dsb nsh; isb)"
        ));
    }
    if !insns
        .iter()
        .any(|i| i.mnemonic == "smc" && i.operands.first() == Some(&"#0"))
    {
        errors.push(format!("{where_}: no smc #0 (SMCCC_ARCH_WORKAROUND_1/3)"));
    }
    errors
}

/// Every problem with the vectors in `text`; `word` is BRANCH_HARDENING's address.
fn check(text: &str, word: u64) -> Vec<String> {
    let syms = symbols(text);
    let find = |name: &str| syms.iter().find(|(n, _, _)| n == name);
    let mut errors = Vec::new();
    let (Some(host), Some(hardened), Some(guest), Some(exit)) = (
        find("el2_vectors"),
        find("lower_sync_hardened"),
        find("guest_vectors"),
        find("guest_exit_common"),
    ) else {
        return vec![
            "el2_vectors, lower_sync_hardened, guest_vectors or guest_exit_common missing".into(),
        ];
    };
    for (slot, offset) in [
        ("lower EL AArch64 sync", 0x400),
        ("lower EL AArch32 sync", 0x600),
    ] {
        let Some(i) = host.2.iter().position(|x| x.addr == host.1 + offset) else {
            errors.push(format!(
                "el2_vectors {slot}: no instruction at +{offset:#x}"
            ));
            continue;
        };
        let s = &host.2[i..];
        let ok = s.first().is_some_and(|x| x.mnemonic == "stp")
            && loads_word(s, 1, word)
            && s.get(3).is_some_and(|x| {
                x.mnemonic == "cbnz"
                    && x.operands.first() == Some(&"x2")
                    && target(x) == Some(hardened.1)
            });
        if !ok {
            errors.push(format!(
                "el2_vectors {slot}: does not start with stp; adrp/ldr {WORD}; cbnz x2, lower_sync_hardened"
            ));
        }
    }
    errors.extend(hardening_body("lower_sync_hardened", &hardened.2));
    for n in 8..16u64 {
        let offset = n * 0x80;
        let slot: Vec<&Insn<'_>> = guest
            .2
            .iter()
            .filter(|x| x.addr >= guest.1 + offset && x.addr < guest.1 + offset + 0x80)
            .collect();
        if !slot
            .iter()
            .any(|x| x.mnemonic == "b" && target(x) == Some(exit.1))
        {
            errors.push(format!(
                "guest_vectors slot {n} (+{offset:#x}) does not go to guest_exit_common"
            ));
        }
    }
    let first_indirect = exit
        .2
        .iter()
        .position(|x| matches!(x.mnemonic, "ret" | "br" | "blr"))
        .unwrap_or(exit.2.len());
    let before = &exit.2[..first_indirect];
    if !(0..before.len()).any(|i| loads_word(before, i, word)) {
        errors.push(format!(
            "guest_exit_common: does not load {WORD} before its first indirect branch"
        ));
    }
    errors.extend(hardening_body("guest_exit_common", before));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORD_AT: u64 = 0x45650;

    /// The shape of the real payload's vectors, cut down to what the check reads.
    fn sample() -> String {
        let mut t = String::from("0000000000000800 <el2_vectors>:\n");
        for base in [0xc00u64, 0xe00] {
            t += &format!(
                "     {base:x}:      \tstp\tx1, x2, [sp, #-0x10]!\n     {:x}:      \tadrp\tx2, 0x45000 <x+0x1000>\n     {:x}:      \tldr\tx2, [x2, #0x650]\n     {:x}:      \tcbnz\tx2, 0xfac <lower_sync_hardened>\n",
                base + 4,
                base + 8,
                base + 12
            );
        }
        let body = |start: u64| {
            format!(
                "     {:x}:      \tclrbhb\n     {:x}:      \tisb\n     {:x}:      \tb\t{:#x} <s+0x1c>\n     {:x}:      \tsubs\tx3, x3, #0x1\n     {:x}:      \tb.ne\t{:#x} <s+0x18>\n     {:x}:      \tdsb\tnsh\n     {:x}:      \tisb\n     {:x}:      \tsmc\t#0\n",
                start,
                start + 4,
                start + 8,
                start + 12,
                start + 12,
                start + 16,
                start + 8,
                start + 20,
                start + 24,
                start + 28
            )
        };
        t += "\n0000000000000fac <lower_sync_hardened>:\n";
        t += &body(0xfb0);
        t += "\n0000000000001800 <guest_vectors>:\n";
        for n in 8..16u64 {
            t += &format!(
                "     {:x}:      \tb\t0x1fbc <guest_exit_common>\n",
                0x1800 + n * 0x80 + 12
            );
        }
        t += "\n0000000000001fbc <guest_exit_common>:\n     1fc0:      \tadrp\tx2, 0x45000 <x+0x1000>\n     1fc4:      \tldr\tx2, [x2, #0x650]\n";
        t += &body(0x1fc8);
        t += "     2000:      \tret\n";
        t
    }

    #[test]
    fn the_payloads_shape_passes() {
        assert_eq!(check(&sample(), WORD_AT), Vec::<String>::new());
    }

    #[test]
    fn a_host_slot_that_skips_the_hardening_fails() {
        let planted = sample().replacen("cbnz\tx2, 0xfac", "cbz\tx2, 0xfac", 1);
        let errors = check(&planted, WORD_AT);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("lower EL AArch64 sync"));
    }

    #[test]
    fn a_loop_without_its_barrier_fails_on_both_paths() {
        let planted = sample().replace("\tdsb\tnsh\n", "\tnop\n");
        let errors = check(&planted, WORD_AT);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.contains("no branch loop")));
    }

    #[test]
    fn a_loop_whose_branch_is_not_to_the_next_instruction_fails() {
        let planted = sample().replace("b\t0xfbc <s+0x1c>", "b\t0xfc0 <s+0x1c>");
        let errors = check(&planted, WORD_AT);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn a_guest_slot_that_bypasses_the_exit_path_fails() {
        let planted = sample().replacen("0x1fbc <guest_exit_common>", "0x2000 <elsewhere>", 1);
        let errors = check(&planted, WORD_AT);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("slot 8"));
    }

    #[test]
    fn the_wrong_word_fails() {
        let errors = check(&sample(), WORD_AT + 8);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn symbol_addresses_come_from_the_symbol_table() {
        let symtab = "0000000000045650 g     O .bss\t0000000000000008 BRANCH_HARDENING\n";
        assert_eq!(symbol_address(symtab, WORD), Some(0x45650));
        assert_eq!(symbol_address(symtab, "OTHER"), None);
    }
}
