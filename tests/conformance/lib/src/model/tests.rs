use super::*;
use hvc_abi::FunctionId;

const RAM: PfnRange = PfnRange {
    start: 0x40000,
    end: 0x80000,
};
const CARVE_OUT: PfnRange = PfnRange {
    start: 0x7fc00,
    end: 0x80000,
};
const UART: PfnRange = PfnRange {
    start: 0x9000,
    end: 0x9001,
};

fn world() -> World {
    let mut world = World::default();
    world.ram[0] = RAM;
    world.hyp[0] = CARVE_OUT;
    world.mmio[0] = UART;
    world
}

fn call(model: &mut Model, id: FunctionId, args: &[u64]) -> [u64; 4] {
    let mut regs = [0; 8];
    regs[0] = id.to_x0();
    regs[1..=args.len()].copy_from_slice(args);
    match model.host_hvc(regs) {
        HostAnswer::Regs(regs) => regs,
        other => panic!("{id:?} {args:x?}: {other:?}"),
    }
}

fn error(e: Error) -> [u64; 4] {
    [e.as_x0(), 0, 0, 0]
}

const OK: [u64; 4] = [0; 4];

fn create(model: &mut Model) -> u64 {
    let regs = call(model, FunctionId::VM_CREATE, &[2, 32]);
    assert_eq!(regs[0], 0);
    regs[1]
}

#[test]
fn default_states_follow_the_world() {
    let model = Model::new(world());
    assert_eq!(model.page_state(0x50000), PageState::Host);
    assert_eq!(model.page_state(0x7fc00), PageState::Hyp);
    assert_eq!(model.page_state(0x9000), PageState::Mmio);
    assert_eq!(model.page_state(0x100000), PageState::NoRam);
}

#[test]
fn a_handle_is_never_issued_twice() {
    let mut model = Model::new(world());
    let first = create(&mut model);
    assert_eq!(call(&mut model, FunctionId::VM_DESTROY, &[first]), OK);
    let second = create(&mut model);
    assert_ne!(first, second);
    assert_eq!(
        call(&mut model, FunctionId::VM_DESTROY, &[first]),
        error(Error::NotFound)
    );
}

#[test]
fn donate_needs_pool_memory_and_destroy_makes_pages_reclaimable() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    let donate = [vm, 0x50000, 0x40200, 1];
    assert_eq!(
        call(&mut model, FunctionId::VM_DONATE, &donate),
        error(Error::NoMemory)
    );
    assert_eq!(model.page_state(0x50000), PageState::Host);
    assert_eq!(
        call(&mut model, FunctionId::VM_TOPUP, &[vm, 0x51000, 17]),
        OK
    );
    assert_eq!(call(&mut model, FunctionId::VM_DONATE, &donate), OK);
    assert_eq!(model.page_state(0x50000), PageState::GuestOwned);
    assert_eq!(model.host_read(0x50000), None);
    assert_eq!(call(&mut model, FunctionId::VM_DESTROY, &[vm]), OK);
    assert_eq!(model.page_state(0x50000), PageState::Reclaimable);
    assert_eq!(model.page_state(0x51010), PageState::Reclaimable);
    assert_eq!(call(&mut model, FunctionId::VM_RECLAIM, &[0x50000, 1]), OK);
    assert_eq!(model.host_read(0x50000), Some(0));
}

#[test]
fn a_pool_too_small_to_be_sure_is_not_guessed() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    call(&mut model, FunctionId::VM_TOPUP, &[vm, 0x51000, 2]);
    let mut regs = [0; 8];
    regs[..5].copy_from_slice(&[FunctionId::VM_DONATE.to_x0(), vm, 0x50000, 0x40200, 1]);
    assert!(matches!(model.host_hvc(regs), HostAnswer::Unmodelled(_)));
}

#[test]
fn a_range_with_one_refused_page_changes_nothing() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    assert_eq!(call(&mut model, FunctionId::HOST_SHARE_HYP, &[0x50001]), OK);
    assert_eq!(
        call(&mut model, FunctionId::VM_TOPUP, &[vm, 0x50000, 2]),
        error(Error::Denied)
    );
    assert_eq!(model.page_state(0x50000), PageState::Host);
    assert_eq!(model.page_state(0x50001), PageState::SharedHyp);
}

#[test]
fn guest_share_and_relinquish_follow_table_7_2() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    call(&mut model, FunctionId::VM_TOPUP, &[vm, 0x51000, 81]);
    call(
        &mut model,
        FunctionId::VM_DONATE,
        &[vm, 0x50000, 0x40200, 1],
    );
    call(
        &mut model,
        FunctionId::VCPU_CREATE,
        &[vm, 0, 0x4000_0000, 0],
    );
    assert!(model.host_write(0x50002, marker(0x50002)));
    call(
        &mut model,
        FunctionId::VM_DONATE,
        &[vm, 0x50002, 0x40201, 1],
    );
    let mut share = [0; 8];
    share[..3].copy_from_slice(&[FunctionId::MEM_SHARE.to_x0(), 0x4020_1000, 1]);
    let answer = model.guest_hvc(vm, 0, share, 0).unwrap();
    assert_eq!(answer.ret, Some([0; 4]));
    share[1] = 0x4020_0000;
    share[2] = 2;
    // G1 is shared already: MEM_SHARE accepts only owned pages.
    let answer = model.guest_hvc(vm, 0, share, 0).unwrap();
    assert_eq!(answer.ret, Some(error(Error::Denied)));
    share[2] = 1;
    let answer = model.guest_hvc(vm, 0, share, 0).unwrap();
    assert_eq!(
        answer.exit,
        Some(Exit::MemShared {
            ipa: 0x4020_0000,
            nr: 1
        })
    );
    assert_eq!(model.page_state(0x50000), PageState::GuestShared);
    let mut relinquish = [0; 8];
    relinquish[..3].copy_from_slice(&[FunctionId::MEM_RELINQUISH.to_x0(), 0x4020_1000, 1]);
    // A shared page cannot be relinquished; unshared, it comes back zeroed.
    let answer = model.guest_hvc(vm, 0, relinquish, 0).unwrap();
    assert_eq!(answer.ret, Some(error(Error::Denied)));
    let mut unshare = share;
    unshare[..3].copy_from_slice(&[FunctionId::MEM_UNSHARE.to_x0(), 0x4020_1000, 1]);
    model.guest_hvc(vm, 0, unshare, 0).unwrap();
    let answer = model.guest_hvc(vm, 0, relinquish, 0).unwrap();
    assert_eq!(answer.ret, Some([0; 4]));
    assert_eq!(model.host_read(0x50002), Some(0));
    assert_eq!(model.ipa_state(vm, 0x40201), Some(IpaState::Unmapped));
}

#[test]
fn a_stopped_vm_answers_every_run_with_its_stop_exit() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    call(
        &mut model,
        FunctionId::VCPU_CREATE,
        &[vm, 0, 0x4000_0000, 0],
    );
    call(&mut model, FunctionId::VCPU_CREATE, &[vm, 1, 0, 0]);
    let mut off = [0; 8];
    off[0] = FunctionId::PSCI_SYSTEM_OFF.to_x0();
    let answer = model.guest_hvc(vm, 0, off, 0).unwrap();
    assert_eq!(answer.ret, None);
    assert_eq!(
        call(&mut model, FunctionId::VCPU_RUN, &[vm, 1, 0]),
        [0, 8, 0, 0]
    );
    assert_eq!(
        call(&mut model, FunctionId::VCPU_RUN, &[vm, 1, 5]),
        error(Error::InvalidParameter)
    );
}

#[test]
fn forwarded_guest_calls_carry_w0_as_passed_and_x1() {
    let mut model = Model::new(world());
    let vm = create(&mut model);
    call(
        &mut model,
        FunctionId::VCPU_CREATE,
        &[vm, 0, 0x4000_0000, 0],
    );
    let mut regs = [0; 8];
    regs[0] = 0xFFFF_0000_C201_0000;
    regs[1] = 7;
    regs[2] = 9;
    let answer = model.guest_hvc(vm, 0, regs, 42).unwrap();
    assert_eq!(
        answer.exit,
        Some(Exit::GuestHvc {
            function_id: 0xC201_0000,
            x1: 7
        })
    );
    assert_eq!(answer.ret, Some([42, 0, 0, 0]));
}

#[test]
fn a_launched_vm_takes_no_new_vcpu_and_secondaries_wait_for_cpu_on() {
    let mut model = Model::new(world());
    let regs = call(&mut model, FunctionId::VM_CREATE, &[3, 32]);
    let vm = regs[1];
    call(
        &mut model,
        FunctionId::VCPU_CREATE,
        &[vm, 0, 0x4000_0000, 0],
    );
    // Only vCPU 0 takes an entry point.
    assert_eq!(
        call(
            &mut model,
            FunctionId::VCPU_CREATE,
            &[vm, 1, 0x4000_0000, 0]
        ),
        error(Error::InvalidParameter)
    );
    call(&mut model, FunctionId::VCPU_CREATE, &[vm, 1, 0, 0]);
    // Powered off: VCPU_OFF at once.
    assert_eq!(
        call(&mut model, FunctionId::VCPU_RUN, &[vm, 1, 0]),
        [0, 11, 0, 0]
    );
    let mut cpu_on = [0; 8];
    cpu_on[..4].copy_from_slice(&[0xC400_0003, 1, 0x4000_1000, 9]);
    let answer = model.guest_hvc(vm, 0, cpu_on, 0).unwrap();
    assert_eq!(answer.exit, Some(Exit::VcpuStarted { vcpu: 1 }));
    assert_eq!(answer.ret, Some([0; 4]));
    let again = model.guest_hvc(vm, 0, cpu_on, 0).unwrap();
    assert_eq!(again.ret, Some([-4i64 as u64, 0, 0, 0]));
    // The guest ran: the VM is launched.
    assert_eq!(
        call(&mut model, FunctionId::VCPU_CREATE, &[vm, 1, 0, 0]),
        error(Error::Busy)
    );
    assert_eq!(
        call(&mut model, FunctionId::VCPU_CREATE, &[vm, 2, 0, 0]),
        error(Error::Denied)
    );
}
