use super::build::plan_problem;
use super::calls::Trigger;
use super::*;
use crate::model_backend::ModelBackend;
use crate::outcome::{Ret, Summary};
use crate::plan::{Caller, Sym};
use crate::runner::run_case;
use crate::tap::{CaseLine, Totals};
use hvc_abi::{GuestRoute, HostCall, route_guest_hvc};
use std::collections::HashSet;

fn cases() -> Vec<Case> {
    all_cases().collect()
}

#[test]
fn case_names_are_unique_and_read_call_state_class() {
    let mut seen = HashSet::new();
    for case in cases() {
        let name = case.name().to_string();
        assert_eq!(name.split('/').count(), 3, "{name}");
        assert!(!name.contains(' ') && !name.contains(':'), "{name}");
        assert!(seen.insert(name.clone()), "two cases are named {name}");
    }
}

#[test]
fn the_matrix_stays_in_the_low_hundreds() {
    let count = cases().len();
    println!("{count} cases");
    assert!((300..=500).contains(&count), "{count} cases");
}

#[test]
fn no_call_overflows_its_case_list() {
    for call in Call::ALL {
        assert!(!generate::cases_of(call).overflowed(), "{call}");
    }
}

#[test]
fn every_plan_is_one_the_generator_can_follow() {
    for case in cases() {
        assert_eq!(plan_problem(&case), None, "{}", case.name());
        let plan = case.plan();
        assert!(
            !plan.steps.overflowed() && !plan.before.overflowed() && !plan.after.overflowed(),
            "{}",
            case.name()
        );
    }
}

#[test]
fn a_failed_call_leaves_every_watch_as_it_was() {
    for case in cases() {
        let plan = case.plan();
        let failed = matches!(
            plan.expect,
            Summary::Host(Ret::Error(_))
                | Summary::Guest {
                    end: crate::outcome::GuestEnd::Returned(Ret::Error(_)),
                    ..
                }
        );
        if failed {
            assert_eq!(plan.before, plan.after, "{}", case.name());
        }
    }
}

/// The heart of the agreement: the document's expectations (tables, transcribed) and the
/// model (written call by call) give the same outcome and the same observations for
/// every case.
#[test]
fn every_case_passes_against_the_model() {
    for boot in [Boot::Plain, Boot::UnconfinedDma] {
        let mut backend = ModelBackend::for_boot(boot);
        let mut totals = Totals::default();
        let mut failures = Vec::new();
        for (i, case) in boot_cases(boot).enumerate() {
            let result = run_case(&mut backend, &case);
            totals.count(&result);
            if !result.passed() {
                let line = CaseLine {
                    number: i + 1,
                    case: &case,
                    result: &result,
                };
                failures.push(line.to_string());
            }
        }
        println!("{boot:?}: {totals}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // Teardown gave everything back: no VM is left.
        assert_eq!(backend.model.vm_count(), 0);
    }
}

/// The model of the default boot never answers VM_CREATE's row 6, and the cases of the
/// boot with unconfined DMA fail against it: the two boots are told apart.
#[test]
fn the_unconfined_dma_cases_fail_against_the_default_boot() {
    let mut backend = ModelBackend::new();
    let cases: Vec<Case> = boot_cases(Boot::UnconfinedDma).collect();
    assert!(cases.len() >= 5);
    let valid = cases.iter().find(|c| c.classes().next().is_none()).unwrap();
    assert!(!run_case(&mut backend, valid).passed(), "{}", valid.name());
}

/// Where `hvc-abi`'s stateless decoders refuse a call, the case expects that error; where
/// they accept it, the case does not expect an error of the stateless phases.
#[test]
fn stateless_errors_agree_with_hvc_abi_decoders() {
    for case in cases() {
        let plan = case.plan();
        let regs = plan.call.regs.map(|sym| match sym {
            Sym::Lit(value) => value,
            Sym::Pfn(_) => 0x5_8000,
            Sym::Handle(_) => 0x1_0001,
        });
        let name = case.name();
        match plan.call.caller {
            Caller::Host => match HostCall::decode(&regs) {
                Err(error) => {
                    assert_eq!(plan.expect, Summary::Host(Ret::Error(error)), "{name}")
                }
                Ok(_) => {
                    let stateless = matches!(
                        plan.expect,
                        Summary::Host(Ret::Error(hvc_abi::Error::NotSupported))
                    ) || (plan.expect
                        == Summary::Host(Ret::Error(hvc_abi::Error::InvalidParameter))
                        && !case.has(ArgClass::Completion));
                    assert!(
                        !stateless,
                        "{name}: decoder accepts, case expects {}",
                        plan.expect
                    );
                }
            },
            Caller::Guest(_) => match route_guest_hvc(&regs) {
                GuestRoute::Payload(Err(error)) => {
                    assert_eq!(plan.expect, Summary::guest(Ret::Error(error)), "{name}")
                }
                GuestRoute::Forward(exit) => match plan.expect {
                    Summary::Guest { exit: expected, .. } => {
                        assert_eq!(expected, Some(exit), "{name}")
                    }
                    other => panic!("{name}: forwarded, but expects {other}"),
                },
                GuestRoute::Payload(Ok(_)) => {}
            },
        }
    }
}

#[test]
fn every_row_of_every_error_table_is_tried() {
    let all = cases();
    for call in Call::ALL {
        for (index, row) in call.rows().iter().enumerate() {
            for trigger in row.triggers {
                let tried = all.iter().any(|case| {
                    case.call == call
                        && match *trigger {
                            Trigger::Class(class) => case.has(class),
                            Trigger::State(state) => case.subject == state,
                        }
                });
                assert!(
                    tried,
                    "{call} row {} ({trigger:?}) is never tried",
                    index + 1
                );
            }
        }
    }
}

#[test]
fn every_cell_of_tables_7_1_and_7_2_is_tried() {
    let all = cases();
    let page_calls = [
        Call::HostShareHyp,
        Call::HostUnshareHyp,
        Call::VmTopup,
        Call::VmDonate,
        Call::VmReclaim,
    ];
    for call in page_calls {
        for state in PageState::ALL {
            let case = Case::new(call, Subject::Page(state), [None, None]);
            assert!(all.contains(&case), "{}", case.name());
        }
    }
    let ipa_calls = [
        Call::VmDonate,
        Call::MemShare,
        Call::MemUnshare,
        Call::MemRelinquish,
    ];
    for call in ipa_calls {
        for state in IpaState::ALL {
            let case = Case::new(call, Subject::Ipa(state), [None, None]);
            assert!(all.contains(&case), "{}", case.name());
        }
    }
}

/// `cargo test -p conformance -- --ignored --nocapture print_the_matrix` lists every case
/// with the outcome the document promises.
#[test]
#[ignore]
fn print_the_matrix() {
    for (i, case) in cases().iter().enumerate() {
        println!("{:3} {} -> {}", i + 1, case.name(), case.plan().expect);
    }
}
