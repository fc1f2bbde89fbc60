// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// RET_PF_* (arch/x86/kvm/mmu/mmu_internal.h).
public enum PageFaultResult: Sendable, Equatable {
    case `continue`, retry, emulate, invalid, fixed, spurious
    /// -EFAULT and friends: the fault cannot be handled (the vcpu exits to userspace).
    case error
}

/// `struct kvm_page_fault` (mmu_internal.h), the fields the TDP MMU's path uses.
struct KVMPageFault {
    let gfn: Int
    let write: Bool
    let exec: Bool
    /// The EPT violation was on a present SPTE (a permission fault).
    let present: Bool
    var slot: Memslot?
    var mmuSeq: UInt64 = 0
    var pfn = 0
    var mapWritable = false
    /// KVM_MAX_HUGEPAGE_LEVEL, the host mapping's level, and the level chosen.
    var maxLevel = 1, reqLevel = 1, goalLevel = 1
    /// The NX huge page mitigation forbids a huge page for this (fetch) fault.
    var hugePageDisallowed = false
}

/// The TDP MMU's fault path (mmu.c and tdp_mmu.c, v6.10-era): the lockless fast
/// path, then the pfn looked up against a snapshot of `mmu_invalidate_seq`,
/// mmu_lock taken for read, the snapshot checked, the SPTE installed with a
/// cmpxchg. Many vcpus run it in parallel.
extension TDPMMU {
    /// kvm_tdp_page_fault() -> kvm_tdp_mmu_page_fault(): handle an EPT violation
    /// on `gfn`. `present`: the CPU found a present SPTE that did not allow the access.
    @discardableResult
    public func kvmTDPPageFault(_ vcpu: X86VCPU, gfn: Int, write: Bool, exec: Bool, present: Bool = false) -> PageFaultResult {
        var fault = KVMPageFault(gfn: gfn, write: write, exec: exec, present: present)
        fault.slot = memslots.slot(forGfn: gfn, asID: vcpu.asID)     // kvm_vcpu_gfn_to_memslot()
        count(.faults)
        let r = fastPageFault(vcpu, fault)
        if r != .invalid { count(.fastFaults); return r }
        let c = kvmFaultinPfn(vcpu, &fault)
        if c != .continue { if c == .retry { count(.faultRetries) }; return c }
        var ret = PageFaultResult.retry
        kvm.mmuLock.readLock()
        if !isPageFaultStale(vcpu, fault) {
            // Before 47b0c2e4c220 (T5) direct_page_fault() served both MMUs and
            // called make_mmu_pages_available() whichever lock it held.
            if code.pagesAvailable == .everyDirectFault && !shadowPages.makeMMUPagesAvailable() {
                ret = .error
            } else {
                ret = kvmTDPMMUMap(vcpu, fault)
            }
        }
        kvm.mmuLock.readUnlock()
        kvm.releasePfnClean(fault.pfn)
        if ret == .retry { count(.faultRetries); engine.yieldPoint("kvm_tdp_mmu_page_fault:retry") }
        return ret
    }

    /// kvm_faultin_pfn(): snapshot `mmu_invalidate_seq` (then smp_rmb()) before
    /// the pfn is looked up; retry early if an invalidation of the gfn is under
    /// way (mmu_invalidate_retry_gfn_unsafe()), before and after the lookup.
    func kvmFaultinPfn(_ vcpu: X86VCPU, _ fault: inout KVMPageFault) -> PageFaultResult {
        let late = code.faultinSeqSnapshot == .afterPfnLookup           // a planted bug only
        if !late {
            fault.mmuSeq = kvm.invalidate.seq
            smp_rmb()
            if fault.slot != nil && kvm.invalidate.retryGFNUnsafe(fault.mmuSeq, gfn: UInt64(fault.gfn)) { return .retry }
        }
        // __kvm_faultin_pfn() -> __gfn_to_pfn_memslot(): may sleep (get_user_pages).
        guard fault.slot != nil, let got = kvm.gfnToPfnProt(fault.gfn, writeFault: fault.write) else { return .error }
        if late {
            fault.mmuSeq = kvm.invalidate.seq
            smp_rmb()
        }
        fault.pfn = got.pfn
        fault.mapWritable = got.writable
        engine.point("kvm_faultin_pfn:after_gfn_to_pfn")
        if kvm.invalidate.retryGFNUnsafe(fault.mmuSeq, gfn: UInt64(fault.gfn)) {
            kvm.releasePfnClean(fault.pfn)
            return .retry
        }
        return .continue
    }

    /// is_page_fault_stale(): the root was invalidated, or an invalidation of
    /// the gfn ran or is running since the snapshot (mmu_invalidate_retry_gfn(),
    /// mmu_lock held).
    func isPageFaultStale(_ vcpu: X86VCPU, _ fault: KVMPageFault) -> Bool {
        if vcpu.root < 0 || isInvalid(vcpu.root) { return true }
        guard fault.slot != nil, kvm.invalidate.retryGFN(fault.mmuSeq, gfn: UInt64(fault.gfn)) else { return false }
        kvm.oracle?.retryTaken(vcpu: vcpu.id, gfn: fault.gfn, snapshotSeq: fault.mmuSeq)
        return true
    }

    /// kvm_tdp_mmu_map(): walk the vcpu's root towards the gfn under RCU with
    /// mmu_lock held for read, linking missing tables with cmpxchg, and install
    /// the leaf at the goal level. A frozen SPTE on the way, or a lost cmpxchg,
    /// sends the fault back to the guest to retry.
    func kvmTDPMMUMap(_ vcpu: X86VCPU, _ fault: KVMPageFault) -> PageFaultResult {
        var fault = fault
        kvmMMUHugepageAdjust(&fault)
        var ret = PageFaultResult.retry
        rcu.readLock()
        var iter = TDPIter(mmu: self, root: vcpu.root, minLevel: 1, start: fault.gfn)
        walk: while iter.valid && iter.gfn < fault.gfn + 1 {
            if nxHugePages { disallowedHugepageAdjust(&fault, iter.oldSPTE, level: iter.level) }
            // Frozen by another thread: give up and retry (no table allocated for nothing).
            if iter.oldSPTE.isFrozen { break walk }
            if iter.level == fault.goalLevel {
                ret = mapHandleTargetLevel(vcpu, fault, &iter)
                break walk
            }
            // Step down into the lower level page table if it exists.
            if iter.oldSPTE.isShadowPresent && !iter.oldSPTE.isLarge { iter.next(); continue }
            // Non-present, or a huge page to split.
            guard let child = allocSP(level: iter.level - 1, gfn: iter.gfn, asID: iter.asID, ptep: iter.sptep) else { break walk }
            sp.store(child, .nxHugePageDisallowed, fault.hugePageDisallowed ? 1 : 0)
            let linked = iter.oldSPTE.isShadowPresent ? splitHugePage(&iter, child, shared: true) : linkSP(&iter, child, shared: true)
            if !linked {
                freeSP(child)                           // never reachable: freed at once
                break walk
            }
            if fault.hugePageDisallowed && fault.reqLevel >= iter.level {
                pagesLock.lock()
                if sp.load(child, .nxHugePageDisallowed) != 0 { trackPossibleNXHugePage(child) }
                pagesLock.unlock()
            }
            iter.next()
        }
        rcu.readUnlock()
        return ret
    }

    /// tdp_mmu_map_handle_target_level(): install the leaf with a cmpxchg; if
    /// it replaced a table (a huge page over a split one), flush.
    private func mapHandleTargetLevel(_ vcpu: X86VCPU, _ fault: KVMPageFault, _ iter: inout TDPIter) -> PageFaultResult {
        let new = makeSPTE(fault, level: iter.level)
        if new == iter.oldSPTE { return .spurious }
        if let o = kvm.oracle {
            o.installingMapping(gfn: fault.gfn, pte: hostView(new, gfn: fault.gfn, level: iter.level), mmuSeq: fault.mmuSeq)
        }
        let old = iter.oldSPTE
        guard setSPTEAtomic(&iter, new) else { return .retry }
        if old.isShadowPresent && !old.isLast(level: iter.level) { flushRemoteTLBs() }   // kvm_flush_remote_tlbs_gfn()
        engine.event("vcpu\(vcpu.id): kvm_tdp_mmu_map: gfn \(fault.gfn) -> \(new) at level \(iter.level)")
        return .fixed
    }

    /// make_spte() (spte.c) for a TDP fault: present and accessed; writable
    /// (and then dirty, as KVM sets D eagerly on a writable SPTE) when the host
    /// mapping is; executable unless the NX huge page mitigation forbids a huge
    /// executable page; the dirty log noted for a writable SPTE of a logged slot.
    func makeSPTE(_ fault: KVMPageFault, level: Int) -> SPTE {
        let huge = level > 1
        let exec = !(huge && nxHugePages)
        // For a huge page kvm_mmu_hugepage_adjust() made fault->pfn its base.
        let spte = SPTE.leaf(pfn: fault.pfn, writable: fault.mapWritable, hostWritable: fault.mapWritable, executable: exec,
                             huge: huge, dirty: fault.mapWritable)
        if spte.isWritable, let slot = fault.slot, dirtyLog.isLogging(slot) { dirtyLog.markPageDirtyInSlot(fault.gfn) }
        return spte
    }

    /// The host's view of an SPTE, for `MMUOracle`: the pfn of `gfn` in it.
    func hostView(_ s: SPTE, gfn: Int, level: Int) -> PTE {
        guard s.isShadowPresent, s.isLast(level: level) else { return .none }
        let pfn = s.pfn + (gfn - roundForLevel(gfn, level: level))
        return PTE(pfn: pfn, flags: PTE.present | PTE.read | (s.isWritable ? PTE.write : 0) | (s.isDirty ? PTE.dirty : 0)
                   | (s.isAccessed ? PTE.young : 0))
    }

    // MARK: - the fast path

    /// fast_page_fault() on the TDP MMU: without mmu_lock, inside
    /// walk_shadow_page_lockless_begin() (rcu_read_lock()), find the last SPTE
    /// for the gfn; a fault that the SPTE now allows is spurious (another vcpu
    /// fixed it); a write to an MMU-writable SPTE is fixed by setting W with a
    /// cmpxchg (fast_pf_fix_direct_spte(), which also notes the dirty log).
    /// Returns `.invalid` when the slow path must run.
    func fastPageFault(_ vcpu: X86VCPU, _ fault: KVMPageFault) -> PageFaultResult {
        // page_fault_can_be_fast(): with A/D bits on, only a write-protection fault.
        guard fault.present && fault.write else { return .invalid }
        var ret = PageFaultResult.invalid
        rcu.readLock()
        for _ in 0...4 {
            guard let (sptep, spte, level) = fastPFGetLastSPTEP(vcpu, gfn: fault.gfn) else { break }
            guard spte.isShadowPresent, spte.isLast(level: level) else { break }
            if spte.isWritable { ret = .spurious; break }             // is_access_allowed()
            guard spte.isMMUWritable else { break }
            // A huge SPTE is not made writable here while its slot is dirty-logged.
            if level > 1, let slot = fault.slot, dirtyLog.isLogging(slot) { break }
            let new = SPTE(raw: spte.raw | SPTE.writable)
            if arena.words.cas(sptep, spte.raw, new.raw) {            // fast_pf_fix_direct_spte()
                engine.event("vcpu\(vcpu.id): fast_page_fault: gfn \(fault.gfn) \(spte) made writable")
                if let slot = fault.slot, dirtyLog.isLogging(slot) { dirtyLog.markPageDirtyInSlot(fault.gfn) }
                ret = .fixed
                break
            }
        }
        rcu.readUnlock()
        return ret
    }

    /// kvm_tdp_mmu_fast_pf_get_last_sptep(): the deepest SPTE on the walk (it
    /// may be non-present). The vcpu's reference keeps its root alive; RCU the tables.
    private func fastPFGetLastSPTEP(_ vcpu: X86VCPU, gfn: Int) -> (Int, SPTE, Int)? {
        guard vcpu.root >= 0 else { return nil }
        return lastSPTEP(root: vcpu.root, gfn: gfn)
    }

    /// The walk of kvm_tdp_mmu_fast_pf_get_last_sptep() and kvm_tdp_mmu_get_walk()
    /// (tdp_mmu_for_each_pte()) from `root` to the deepest SPTE for `gfn`: its
    /// slot, value and level. The caller holds RCU (walk_shadow_page_lockless_begin())
    /// and a reference to the root; `kvmsim bench` times it with and without mmu_lock.
    public func lastSPTEP(root: Int, gfn: Int) -> (sptep: Int, spte: SPTE, level: Int)? {
        var iter = TDPIter(mmu: self, root: root, minLevel: 1, start: gfn)
        var last: (Int, SPTE, Int)? = nil
        while iter.valid && iter.gfn < gfn + 1 {
            last = (iter.sptep, iter.oldSPTE, iter.level)
            iter.next()
        }
        return last
    }
}
