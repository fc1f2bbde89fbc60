// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The vcpu's run loop around one guest access: vcpu_enter_guest() (x86.c,
/// v6.10-era) with the requests it handles before entry, the CPU's access in
/// guest mode, and the EPT-violation exit into kvm_tdp_page_fault().
extension X86VCPU {
    /// One guest access to `gfn`, retried through faults until it completes
    /// (or a bounded number of tries passes, or the run stops).
    ///
    /// kvm->srcu is held throughout (kvm_vcpu_srcu_read_lock() in
    /// kvm_arch_vcpu_ioctl_run()) except in guest mode, as vcpu_enter_guest()
    /// drops it around the entry.
    public func guestAccess(gfn: Int, _ kind: GuestAccessKind) {
        let engine = mmu.engine, srcu = mmu.kvm.srcu
        srcu.readLock()
        defer { srcu.readUnlock() }
        for _ in 0..<6 {
            handleRequests()
            if root < 0 {
                guard mmu.kvmMMULoad(self) else { engine.yieldPoint("kvm_mmu_load:enomem"); continue }
            }
            engine.point("vcpu_enter_guest")
            srcu.readUnlock()
            guard state.enterGuestMode() else { srcu.readLock(); engine.yieldPoint("vcpu_enter_guest:cancelled"); continue }
            let done = cpuAccess(gfn: gfn, kind)
            state.exitGuestMode()
            srcu.readLock()
            flushPML()
            if done || engine.stopRequested { return }
            // EPT violation: kvm_mmu_page_fault() -> kvm_tdp_page_fault().
            _ = mmu.kvmTDPPageFault(self, gfn: gfn, write: kind.isWrite, exec: kind.isFetch, present: violationOnPresentSPTE)
        }
    }

    /// kvm_smm_changed() -> kvm_mmu_reset_context(): entering or leaving SMM
    /// changes the MMU role (its address space); the roots are unloaded
    /// (kvm_mmu_unload()) and the next entry loads one of the new role.
    public func smmChanged(_ inSMM: Bool) {
        let want = inSMM ? 1 : 0
        guard want != asID else { return }
        mmu.kvmMMUFreeRoots(self)
        asID = want
    }

    /// The requests vcpu_enter_guest() handles before entering the guest.
    func handleRequests() {
        guard state.requests != 0 else { return }
        if state.checkRequest(X86VCPU.reqMMUFreeObsoleteRoots) { mmu.kvmMMUFreeObsoleteRoots(self) }
        if state.checkRequest(VCPUState.reqTLBFlush) { flushTLBAll() }
    }

    // MARK: - the CPU in guest mode

    /// The CPU's access: through a TLB entry if one allows it (setting the
    /// Dirty bit in the SPTE on the first write, an A/D assist), else a walk of
    /// the EPT tables from the root that fills the TLB. Returns false for an
    /// EPT violation (no present SPTE, or one that does not allow the access).
    func cpuAccess(gfn: Int, _ kind: GuestAccessKind) -> Bool {
        let engine = mmu.engine
        let tag = UInt64(root + 1)
        let permits = kind.isWrite ? tlb.load(gfn, .writable) != 0 : (kind.isFetch ? tlb.load(gfn, .executable) != 0 : true)
        if tlb.load(gfn, .root) == tag && permits {
            engine.point("cpu:tlb_hit")
            mmu.oracle.tlbEntryUsed(vcpu: id, gfn: gfn, sptep: Int(tlb.load(gfn, .sptep)), filledAt: tlb.load(gfn, .filledAt), mmuLock: mmu.kvm.mmuLock)
            if kind.isWrite && tlb.load(gfn, .dirty) == 0 {
                // The first write through the entry sets D in the SPTE, through
                // the cached leaf table; if the SPTE no longer allows it, the
                // CPU faults instead (and the stale entry goes).
                guard adAssist(gfn: gfn) else { tlb.store(gfn, .root, 0); return false }   // sets violationOnPresentSPTE
            }
            complete(gfn: gfn, pfn: Int(tlb.load(gfn, .pfn)), kind, via: "its TLB", agingStamp: tlb.load(gfn, .agingStamp))
            return true
        }
        engine.point("cpu:ept_walk")
        guard let e = walk(gfn: gfn, kind) else { return false }
        complete(gfn: gfn, pfn: e.pfn, kind, via: "the EPT tables", agingStamp: e.agingStamp)
        return true
    }

    /// The A/D assist of a write through a TLB entry whose Dirty bit was clear:
    /// a locked cmpxchg on the leaf SPTE through the cached table.
    private func adAssist(gfn: Int) -> Bool {
        let table = Int(tlb.load(gfn, .table)), sptep = Int(tlb.load(gfn, .sptep)), level = Int(tlb.load(gfn, .level))
        guard mmu.arena.isValid(table, generation: tlb.load(gfn, .tableGen)) else {
            mmu.oracle.hardwareUsedFreedTable(table, vcpu: id, gfn: gfn, how: "set a Dirty bit through cached upper levels into")
            return false
        }
        let pfn = Int(tlb.load(gfn, .pfn))
        while true {
            let old = mmu.readSPTE(sptep)
            guard old.isShadowPresent, old.isLast(level: level), old.isWritable,
                  old.pfn == pfn - (gfn - mmu.roundForLevel(gfn, level: level)) else {
                violationOnPresentSPTE = old.isShadowPresent && old.isLast(level: level)
                return false
            }
            if old.isDirty { break }
            if mmu.arena.words.cas(sptep, old.raw, old.raw | SPTE.dirty | SPTE.accessed) { pmlLog(gfn); break }
        }
        tlb.store(gfn, .dirty, 1)
        return true
    }

    /// The CPU's walk of the EPT tables for `gfn` from the root: each level's
    /// SPTE read, the leaf's permissions checked, A (and D for a write) set with
    /// a cmpxchg, and the TLB filled. nil: an EPT violation.
    private func walk(gfn: Int, _ kind: GuestAccessKind) -> (pfn: Int, agingStamp: UInt64)? {
        var table = root
        var gen = mmu.arena.generation(table)
        var level = mmu.rootLevel
        while true {
            guard mmu.arena.isValid(table, generation: gen) else {
                mmu.oracle.hardwareUsedFreedTable(table, vcpu: id, gfn: gfn, how: "walked")
                violationOnPresentSPTE = false
                return nil
            }
            let sptep = mmu.arena.slot(table, mmu.spteIndex(gfn, level: level))
            let spte = mmu.readSPTE(sptep)
            guard spte.isShadowPresent else { violationOnPresentSPTE = false; return nil }
            if !spte.isLast(level: level) {
                table = spte.pfn
                gen = mmu.arena.generation(table)
                level -= 1
                continue
            }
            // A permission fault: the exit qualification reports the present
            // entry's permissions, and KVM sets PFERR_PRESENT_MASK.
            if kind.isWrite && !spte.isWritable { violationOnPresentSPTE = true; return nil }
            if kind.isFetch && !spte.isExecutable { violationOnPresentSPTE = true; return nil }
            let set = SPTE.accessed | (kind.isWrite ? SPTE.dirty : 0)
            if spte.raw & set != set {
                guard mmu.arena.words.cas(sptep, spte.raw, spte.raw | set) else { continue }   // changed: walk this level again
                if kind.isWrite && !spte.isDirty { pmlLog(gfn) }
            }
            let filledAt = mmu.oracle.fillClock                 // after the read: a zap after it is seen as later
            let agingStamp = mmu.kvm.oracle?.agingClock ?? 0
            let pfn = spte.pfn + (gfn - mmu.roundForLevel(gfn, level: level))
            tlb.store(gfn, .pfn, UInt64(pfn))
            tlb.store(gfn, .writable, spte.isWritable ? 1 : 0)
            tlb.store(gfn, .dirty, kind.isWrite || spte.isDirty ? 1 : 0)
            tlb.store(gfn, .executable, spte.isExecutable ? 1 : 0)
            tlb.store(gfn, .sptep, UInt64(sptep))
            tlb.store(gfn, .level, UInt64(level))
            tlb.store(gfn, .table, UInt64(table))
            tlb.store(gfn, .tableGen, gen)
            tlb.store(gfn, .filledAt, filledAt)
            tlb.store(gfn, .agingStamp, agingStamp)
            tlb.store(gfn, .root, UInt64(root + 1))
            return (pfn, agingStamp)
        }
    }

    /// The access itself: the oracle judges the translation against the host;
    /// a write stores its value into the page.
    private func complete(gfn: Int, pfn: Int, _ kind: GuestAccessKind, via: String, agingStamp: UInt64) {
        var value: UInt64? = nil
        if case .write(let v) = kind { value = v }
        if value != nil {
            let period = mmu.oracle.dirtyPeriod
            if let slot = mmu.memslots.slot(forGfn: gfn, asID: asID), mmu.dirtyLog.isLogging(slot) {
                mmu.oracle.loggedPageWritten(gfn, period: period)
            }
        }
        mmu.kvm.oracle?.guestAccess(vcpu: id, gfn: gfn, pfn: pfn, write: value, via: via, tlbStamp: agingStamp)
        if let value, mmu.hostMM.pages.isInUse(pfn) { mmu.hostMM.pages.content.store(pfn, value) }
    }
}
