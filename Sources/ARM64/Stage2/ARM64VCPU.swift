// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// A vcpu of an arm64 VM (`struct kvm_vcpu` with its arch part) and the run
/// loop that takes it into the guest on a physical CPU: kvm_arch_vcpu_load()
/// and _put() around a stretch of kvm_arch_vcpu_ioctl_run() (arch/arm64/kvm/arm.c,
/// VHE), with the VMID allocation the variant's kernel does where it does it.
///
/// Facets: `+Guest` (one guest access: entry, the CPU's stage-2 walk and TLB,
/// the abort into kvm_handle_guest_abort()).
///
/// Locking: only this vcpu's thread runs it; a physical CPU runs one loaded
/// vcpu at a time (`load` waits for its CPU to be free, as the scheduler would).
public final class ARM64VCPU: @unchecked Sendable {
    public let state: VCPUState
    unowned(unsafe) let mmu: Stage2MMU
    /// The physical CPU this vcpu is loaded on (-1: none).
    @exclusivity(unchecked) public private(set) var cpu = -1

    init(state: VCPUState, mmu: Stage2MMU) {
        self.state = state
        self.mmu = mmu
    }

    /// A world reset in place (Catalog's `ResettableWorld`): loaded on no
    /// physical CPU, as `Stage2MMU.createVCPU` made it (a schedule that
    /// finished has put every vcpu already; the CPUs' registers are words the
    /// world's `WorldMemory` restores).
    func resetForReuse() { cpu = -1 }

    public var id: Int { state.id }
    var pcpu: ARM64CPU { mmu.domain.cpus[cpu] }

    /// kvm_arch_vcpu_load() on physical CPU `c` (vcpu_load() / kvm_sched_in(),
    /// preemption disabled): since fa808ed4e199 the VMID is updated first; a
    /// different vcpu of this VM ran on `c` last: __kvm_flush_cpu_context();
    /// VHE loads the stage-2 context now (kvm_vcpu_load_vhe() -> __load_stage2(),
    /// 934bf871f011, v6.7+). The legacy kernels load VTTBR at each entry instead.
    public func load(on c: Int) {
        let engine = mmu.engine
        let p = mmu.domain.cpus[c]
        // The scheduler runs one task on a CPU: wait for the one there to go.
        repeat {
            engine.waitUntil("schedule:cpu_busy") { p.regs.peek(0, .loaded) == 0 }
        } while !p.regs.cas(0, .loaded, 0, UInt64(id + 1))
        cpu = c
        if case .allocator(updateInVCPULoad: true) = mmu.code.vmid, case .allocator(let v) = mmu.vmid {
            _ = mmu.vmids.allocator!.update(v, cpu: c)
        }
        if mmu.lastVCPURan(cpu: c) != id {
            p.invalidateVMID(mmu.currentVMID)                 // __kvm_flush_cpu_context(): TLBI VMALLE1, this CPU
            mmu.setLastVCPURan(cpu: c, id)
        }
        if case .allocator = mmu.code.vmid {
            p.loadStage2(vm: mmu.vmIndex, vmid: mmu.currentVMID)
            engine.event("vcpu\(id) of VM \(mmu.vmIndex): vcpu_load on cpu\(c): VTTBR_EL2 VMID \(p.vttbrVMID)")
        }
    }

    /// kvm_arch_vcpu_put() (vcpu_put() / kvm_sched_out()): the VMID stops being
    /// active on this CPU (kvm_arm_vmid_clear_active(), v5.18+).
    public func put() {
        guard cpu >= 0 else { return }
        let p = pcpu
        if case .allocator = mmu.code.vmid { mmu.vmids.allocator!.clearActive(cpu: cpu) }
        p.regs.store(0, .loaded, 0)
        cpu = -1
    }

    /// The relaxing fault's local TLBI (__kvm_tlb_flush_vmid_ipa_nsh()): this
    /// CPU's entries for the IPA.
    func invalidateLocalIPA(_ gfn: Int) {
        guard cpu >= 0 else { return }
        pcpu.invalidateIPA(vmid: mmu.currentVMID, gfn: gfn, blockPages: mmu.pgt.blockPages)
    }
}

extension Stage2MMU {
    /// mmu->last_vcpu_ran[cpu] (a per-CPU variable of the VM's stage-2 MMU).
    func lastVCPURan(cpu: Int) -> Int { Int(lastRan.load(cpu)) - 1 }
    func setLastVCPURan(cpu: Int, _ v: Int) { lastRan.store(cpu, UInt64(v + 1)) }
}
