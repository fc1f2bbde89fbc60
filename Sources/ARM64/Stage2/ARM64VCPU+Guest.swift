// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// One guest access through the run loop of kvm_arch_vcpu_ioctl_run()
/// (arch/arm64/kvm/arm.c; the VMID steps of the variant's kernel) and the
/// CPU's stage-2 translation: a TLB hit, or a walk of the table VTTBR points
/// at that fills the TLB or raises a stage-2 abort into kvm_handle_guest_abort().
extension ARM64VCPU {
    /// One guest access to IPA page `gfn` on the CPU this vcpu is loaded on,
    /// replayed through aborts until it completes (or a bounded number of
    /// tries passes, or the run stops).
    public func guestAccess(gfn: Int, _ kind: GuestAccessKind) {
        let engine = mmu.engine
        precondition(cpu >= 0, "guestAccess on a vcpu that is not loaded")
        for _ in 0..<6 {
            guard let abort = runOnce(gfn: gfn, kind) else { return }
            if engine.stopRequested { return }
            let r = mmu.kvmHandleGuestAbort(self, gfn: gfn, kind: abort.kind, level: abort.level, write: kind.isWrite, exec: kind.isFetch)
            if r < 0 { return }                               // exit to userspace
        }
    }

    /// One pass of the run loop body: the VMID update (where the variant's
    /// kernel has it), interrupts off, guest mode, the legacy final VMID
    /// check, entry, the access, exit. nil: the access completed (or the
    /// entry was cancelled); else the abort the CPU took.
    func runOnce(gfn: Int, _ kind: GuestAccessKind) -> (kind: Stage2FaultKind, level: Int)? {
        let engine = mmu.engine, p = pcpu
        switch (mmu.code.vmid, mmu.vmid) {
        case (.allocator(updateInVCPULoad: false), .allocator(let v)):
            // v6.7-v6.13: preempt_disable(); the VTTBR loaded at vcpu_load is
            // reloaded only if this call allocated (5eba523e1e5e).
            if mmu.vmids.allocator!.update(v, cpu: cpu) {
                p.loadStage2(vm: mmu.vmIndex, vmid: mmu.currentVMID)
            }
        case (.legacy, .legacy(let v)):
            mmu.vmids.legacy!.updateVTTBR(v)                  // update_vttbr(): preemptible, IRQs on
        default:
            break
        }
        engine.point("kvm_arch_vcpu_ioctl_run:before_local_irq_disable")
        p.regs.store(0, .irqsOff, 1)                          // local_irq_disable()
        defer {
            p.regs.store(0, .irqsOff, 0)                      // local_irq_enable(): a pending IPI is taken
            p.regs.add(0, .irqEnables, 1)
        }
        guard state.enterGuestMode() else { return nil }      // smp_store_mb(vcpu->mode, IN_GUEST_MODE)
        if case .legacy(let v) = mmu.vmid {
            // The final check, interrupts off: a generation moved on since update_vttbr().
            if mmu.vmids.legacy!.needNewVMIDGen(v) {
                state.exitGuestMode()
                engine.yieldPoint("kvm_arch_vcpu_ioctl_run:need_new_vmid_gen")
                return nil
            }
            p.loadStage2(vm: mmu.vmIndex, vmid: mmu.vmids.legacy!.entryVMID(v))   // __kvm_vcpu_run(): VTTBR from kvm->arch.vttbr
        }
        engine.point("kvm_arm_vcpu_enter_exit")
        p.regs.store(0, .inGuest, UInt64(mmu.vmIndex + 1))
        let abort = cpuAccess(gfn: gfn, kind)
        p.regs.store(0, .inGuest, 0)
        state.exitGuestMode()
        return abort
    }

    // MARK: - the CPU in the guest

    /// The CPU's access: through its TLB entry under VTTBR's VMID if one allows
    /// it, else a walk of the stage-2 table (atomic: a TLBI's DSB waits for
    /// walks in flight) that fills the TLB. nil: done; else the abort.
    func cpuAccess(gfn: Int, _ kind: GuestAccessKind) -> (kind: Stage2FaultKind, level: Int)? {
        let engine = mmu.engine, p = pcpu
        let vmid = p.vttbrVMID
        mmu.vmidOracleCheck(cpu: p)
        // A TLB hit and the access it translates are one step, and so are a
        // walk and its fill: a TLBI's DSB completes only after them.
        engine.point("cpu:tlb_lookup")
        let hit: Bool = p.translation.withLock {
            guard let e = p.tlbEntry(vmid: vmid, gfn: gfn), !kind.isWrite || e.writable, !kind.isFetch || e.executable else { return false }
            complete(gfn: gfn, pfn: e.pfn, kind, via: e.vm == mmu.vmIndex ? "its TLB" : "a TLB entry VM \(e.vm) filled under VMID \(vmid)",
                     agingStamp: e.agingStamp, ownTable: e.vm == mmu.vmIndex)
            return true
        }
        if hit { return nil }
        engine.point("cpu:stage2_walk")
        return p.translation.withLock {
            switch walk(gfn: gfn, kind, vmid: vmid) {
            case .success(let t):
                complete(gfn: gfn, pfn: t.pfn, kind, via: "the stage-2 tables", agingStamp: t.agingStamp, ownTable: true)
                return nil
            case .failure(let a):
                return (a.kind, a.level)
            }
        }
    }

    struct Abort: Error { let kind: Stage2FaultKind; let level: Int }

    /// The CPU's stage-2 walk for `gfn` from VTTBR's table (no Access-flag or
    /// dirty-state hardware update: FEAT_HAFDBS is not used for stage 2).
    private func walk(gfn: Int, _ kind: GuestAccessKind, vmid: Int) -> Result<(pfn: Int, agingStamp: UInt64), Abort> {
        let pgt = mmu.pgt
        var table = pgt.pgd, gen = pgt.arena.generation(table), level = pgt.startLevel
        while true {
            let pte = pgt.readPTE(pgt.arena.slot(table, pgt.index(gfn, level: level)))
            guard pgt.arena.isValid(table, generation: gen) else {
                mmu.engine.report(.walkerUseAfterFree, "cpu\(cpu)'s stage-2 walk for IPA page \(gfn) read table \(table) after it was freed")
                return .failure(Abort(kind: .translation, level: level))
            }
            guard pte.isValid else { return .failure(Abort(kind: .translation, level: level)) }
            if pte.isTable(level: level, lastLevel: pgt.lastLevel) {
                table = pte.pfn
                gen = pgt.arena.generation(table)
                level += 1
                continue
            }
            if !pte.isYoung { return .failure(Abort(kind: .accessFlag, level: level)) }
            if (kind.isWrite && !pte.isWritable) || (kind.isFetch && !pte.isExecutable) {
                return .failure(Abort(kind: .permission, level: level))
            }
            let g = pgt.granulePages(level), first = gfn / g * g
            let stamp = mmu.kvm.oracle?.agingClock ?? 0
            pcpu.fill(vmid: vmid, vm: mmu.vmIndex, firstGfn: first, pages: g, pfn: pte.pfn, level: level,
                      writable: pte.isWritable, executable: pte.isExecutable, agingStamp: stamp)
            return .success((pte.pfn + (gfn - first), stamp))
        }
    }

    /// The access itself: the oracles judge the translation (against the
    /// host, and against the stage-2 table's entry now); a write stores its
    /// value into the page.
    private func complete(gfn: Int, pfn: Int, _ kind: GuestAccessKind, via: String, agingStamp: UInt64, ownTable: Bool) {
        var value: UInt64? = nil
        if case .write(let v) = kind { value = v }
        // A translation another VM's table gave (a shared VMID) is the vmid oracle's.
        if ownTable { mmu.breakBeforeMakeCheck(cpu: cpu, gfn: gfn, pfn: pfn, via: via) }
        mmu.kvm.oracle?.guestAccess(vcpu: id, gfn: gfn, pfn: pfn, write: value, via: via, tlbStamp: agingStamp)
        if let value, mmu.hostMM.pages.isInUse(pfn) { mmu.hostMM.pages.content.store(pfn, value) }
    }
}
