// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec

/// The guest-ASID side of trap and emulate: the lazy user-ASID regeneration
/// before guest entry (seed 000), its v4.11 form, and the guest kernel's EntryHi
/// writes (with seed 001's GVA flushes).
extension TrapEmulVCPU {
    /// What runs before every guest entry, preemption disabled: for the v4.10
    /// variants kvm_mips_check_asids(), for upstream-4.11 kvm_trap_emul_vcpu_reenter().
    public func beforeGuestEntry() {
        if variant == .upstream411 { kvmTrapEmulVCPUReenter() } else { kvmMipsCheckASIDs() }
    }

    /// kvm_trap_emul_vcpu_reenter() (arch/mips/kvm/trap_emul.c, v4.11): handle
    /// requests, regenerate the user context when the guest ASID changed since
    /// guest user mode last ran, then take a new ASID for the running mm if stale.
    func kvmTrapEmulVCPUReenter() {
        kvmTrapEmulCheckRequests()
        let mm: MipsMM
        if guestKernelMode {
            mm = guestKernelMM
        } else {
            mm = guestUserMM
            let gasid = entryHiASID
            if gasid != lastUserGASID {
                if let gva, gva.variant == .patched {
                    kvmMipsFlushGvaPt(gva.user, .user)
                    engine.event("vcpu\(id): reenter: kvm_mips_flush_gva_pt(user_mm->pgd, KMF_USER)")
                }
                for i in 0..<asids.cpus { guestUserMM.setCPUContext(i, 0) }
                lastUserGASID = gasid
                engine.event("vcpu\(id): reenter: guest ASID now \(gasid): user cpu_context zeroed on every CPU")
            }
        }
        if asids.isStale(mm.cpuContext(cpu), cpu: cpu) { kvmGetNewMMUContext(mm) }
    }

    /// kvm_mips_check_asids() (arch/mips/kvm/mips.c, v4.10): the lazy guest-user
    /// ASID regeneration, where seed 000 differs from its parent.
    func kvmMipsCheckASIDs() {
        guard !guestKernelMode else { return }
        let gasid = entryHiASID
        guard gasid != lastUserGASID else { return }
        kvmGetNewMMUContext(guestUserMM)
        userASIDs.store(cpu, guestUserMM.cpuContext(cpu))
        switch variant.propagation {
        case .none:
            break
        case .zeroCurrentCPU:
            for i in 0..<asids.cpus where i != cpu { userASIDs.store(cpu, 0) }    // guest_user_asid[cpu], as written
        case .zeroOtherCPUs:
            for i in 0..<asids.cpus where i != cpu { userASIDs.store(i, 0) }
        }
        lastUserGASID = gasid
        engine.cover(Self.markLazyRegen)
        engine.event("vcpu\(id): check_asids on cpu\(cpu): guest ASID \(gasid) != last_user_gasid: regenerated; guest_user_asid = \(perCPU(userASIDs))")
    }

    /// kvm_trap_emul_check_requests(vcpu, cpu, false) (v4.11 trap_emul.c):
    /// KVM_REQ_TLB_FLUSH flushes both GVA tables (KMF_GPA) and zeroes both mms'
    /// contexts on every CPU, so the staleness check that follows takes new ASIDs.
    func kvmTrapEmulCheckRequests() {
        guard state.checkRequest(VCPUState.reqTLBFlush) else { return }
        engine.cover(Self.markTLBFlushRequest)
        if let gva {
            kvmMipsFlushGvaPt(gva.kernel, [.gpa, .kern])
            kvmMipsFlushGvaPt(gva.user, [.gpa, .user])
        }
        for i in 0..<asids.cpus {
            if plantedBug != .tlbFlushRequestZeroesUserContextsOnly { guestKernelMM.setCPUContext(i, 0) }
            guestUserMM.setCPUContext(i, 0)
        }
        engine.event("vcpu\(id): KVM_REQ_TLB_FLUSH: GVA tables flushed (KMF_GPA), contexts zeroed")
    }

    func perCPU(_ w: AtomicWords) -> String {
        "[" + (0..<asids.cpus).map { String(w.load($0) & asids.asidMask) + "/v" + String(w.load($0) >> asids.bits) }.joined(separator: ", ") + "]"
    }

    /// The host ASID guest user mode runs with on this CPU (EntryHi.ASID on guest entry).
    public var hostUserASID: Int {
        let ctx = variant.usesPerVCPUArrays ? userASIDs.load(cpu) : guestUserMM.cpuContext(cpu)
        return Int(ctx & asids.asidMask)
    }

    /// The host ASID guest kernel mode runs with on this CPU (v4.10
    /// `guest_kernel_asid[cpu] & ASID_MASK`; v4.11 `cpu_asid(cpu, kern_mm)`).
    public var hostKernelASID: Int {
        let ctx = variant.usesPerVCPUArrays ? kernelASIDs.load(cpu) : guestKernelMM.cpuContext(cpu)
        return Int(ctx & asids.asidMask)
    }

    /// kvm_mips_flush_gva_pt(pgd, flags) (arch/mips/kvm/mmu.c, v4.11), through the
    /// vcpu so that a test can plant a range cut short (`plantedBug`).
    func kvmMipsFlushGvaPt(_ pgd: PageTable, _ flags: KVMMipsFlush) {
        if plantedBug == .usegFlushOnePageShort {
            GVAPageTables.plantedFlushUsegOnePageShort(pgd, flags)
        } else {
            GVAPageTables.kvmMipsFlushGvaPt(pgd, flags)
        }
    }

    /// The guest kernel switches process: an emulated `mtc0 EntryHi` with a new ASID
    /// (kvm_mips_emulate_CP0(), arch/mips/kvm/emulate.c), in guest kernel mode. The
    /// kernel host ASID is regenerated at once; the user one lazily on re-entry.
    public func kvmMipsEmulateCP0WriteEntryHi(_ newASID: Int) {
        guestKernelMode = true                                  // exception: guest kernel mode
        engine.point("guest:kernel_mode")
        if entryHiASID != newASID {
            if let gva, gva.variant == .patched {
                kvmMipsFlushGvaPt(gva.kernel, .kern)
                engine.event("vcpu\(id): mtc0 EntryHi: kvm_mips_flush_gva_pt(kern_mm->pgd, KMF_KERN)")
            }
            if variant.usesPerVCPUArrays {
                kvmGetNewMMUContext(guestKernelMM)
                kernelASIDs.store(cpu, guestKernelMM.cpuContext(cpu))
                if plantedBug != .entryHiKeepsOtherKernelContexts {
                    for i in 0..<asids.cpus where i != cpu { kernelASIDs.store(i, 0) }
                }
            } else {
                kvmGetNewMMUContext(guestKernelMM)
                if plantedBug != .entryHiKeepsOtherKernelContexts {
                    for i in 0..<asids.cpus where i != cpu { guestKernelMM.setCPUContext(i, 0) }
                }
            }
            engine.event("vcpu\(id): guest mtc0 EntryHi: ASID \(entryHiASID) -> \(newASID)")
            entryHiASID = newASID
        }
        guestKernelMode = false                                 // eret to guest user mode
    }
}
