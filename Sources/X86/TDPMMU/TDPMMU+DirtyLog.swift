// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Dirty logging with A/D bits and PML (kvm_main.c, mmu.c, tdp_mmu.c,
/// v6.10-era): turning KVM_MEM_LOG_DIRTY_PAGES on for a slot clears every
/// Dirty bit in it (kvm_mmu_slot_leaf_clear_dirty()), and each harvest
/// (kvm_get_dirty_log_protect()) takes the bitmap and clears the Dirty bits of
/// the pages it took, then flushes TLBs, so that a page written afterwards has
/// its Dirty bit set, and so its gfn logged, again.
extension TDPMMU {
    /// kvm_get_dirty_log_protect() of `slot` (KVM_GET_DIRTY_LOG without manual
    /// protection; the caller holds kvm->slots_lock): each non-zero bitmap word
    /// taken with an xchg and its pages' Dirty bits cleared, mmu_lock held for
    /// write; then a remote flush if any bit was taken. Returns the gfns taken.
    @discardableResult
    public func kvmGetDirtyLogProtect(slot: Memslot) -> [Int] {
        // kvm_arch_sync_dirty_log(): vcpus are kicked so that they flush their
        // PML buffers at their next exit (the model's vcpus flush at every exit).
        oracle.dirtyPassStarts()
        var flush = false
        var taken: [Int] = []
        kvm.mmuLock.writeLock()
        for w in 0..<dirtyLog.bitmap.count {
            if dirtyLog.bitmap.load(w) == 0 { continue }
            flush = true
            let mask = dirtyLog.bitmap.exchange(w, 0)
            for b in 0..<64 where mask & (1 << UInt64(b)) != 0 { taken.append(w * 64 + b) }
            kvmArchMMUEnableLogDirtyPTMasked(slot, gfnOffset: w * 64, mask: mask)
        }
        kvm.mmuLock.writeUnlock()
        if flush { flushRemoteTLBs() }                     // kvm_flush_remote_tlbs_memslot()
        count(.harvests)
        engine.event("KVM_GET_DIRTY_LOG(slot \(slot.id)): \(taken)")
        // The PML buffers first, then the bitmap: an entry leaves a buffer only
        // after its bit is set (flushPML()), so on real threads one that moves
        // while the oracle looks is seen in one or the other, never in neither.
        oracle.dirtyHarvestReturned(taken, pending: { [self] g in vcpus.contains { $0.pmlHolds(g) } || dirtyLog.isMarked(g) },
                                    state: { [self] g in describeGFN(g) })
        return taken
    }

    /// kvm_arch_mmu_enable_log_dirty_pt_masked(): with PML
    /// kvm_mmu_clear_dirty_pt_masked(), without it
    /// kvm_mmu_write_protect_pt_masked(); both end in
    /// kvm_tdp_mmu_clear_dirty_pt_masked() (`wrprot` the difference) over the
    /// valid roots of the slot's address space.
    func kvmArchMMUEnableLogDirtyPTMasked(_ slot: Memslot, gfnOffset: Int, mask: UInt64) {
        forEachRoot(asID: slot.asID, onlyValid: true) { root in
            clearDirtyPTMasked(root, gfn: slot.baseGfn + gfnOffset, mask: mask, wrprot: !pml)
        }
    }

    /// clear_dirty_pt_masked(): clear the Dirty bit (`wrprot`: the Writable
    /// bit; `dbit` in the kernel) of each 4K leaf whose gfn has its bit in
    /// `mask` (a LOCK AND for an SPTE with volatile bits), and hand the page's
    /// dirty state to the host. mmu_lock held for write.
    func clearDirtyPTMasked(_ root: Int, gfn: Int, mask: UInt64, wrprot: Bool) {
        let dbit = wrprot ? SPTE.writable : SPTE.dirty
        kvm.mmuLock.assertHeldWrite("clear_dirty_pt_masked")
        var mask = mask
        rcu.readLock()
        var iter = TDPIter(mmu: self, root: root, minLevel: 1, start: gfn + mask.trailingZeroBitCount)
        while iter.valid && iter.gfn < gfn + 64 {
            defer { iter.next() }
            if mask == 0 { break }
            guard iter.oldSPTE.isShadowPresent, iter.oldSPTE.isLast(level: iter.level) else { continue }
            let bit = UInt64(1) << UInt64(iter.gfn - gfn)
            if iter.level > 1 || mask & bit == 0 { continue }
            mask &= ~bit
            if iter.oldSPTE.raw & dbit == 0 { continue }
            iter.oldSPTE = clearSPTEBits(iter.sptep, old: iter.oldSPTE, mask: dbit, level: iter.level)
            kvmSetPfnDirty(iter.oldSPTE.pfn, gfn: iter.gfn)
        }
        rcu.readUnlock()
    }

    /// clear_dirty_gfn_range(): clear the Dirty bits of a root's leaves in a
    /// range with cmpxchg, mmu_lock held for read; true if any was set.
    func clearDirtyGFNRange(_ root: Int, start: Int, end: Int) -> Bool {
        var set = false
        rcu.readLock()
        var iter = TDPIter(mmu: self, root: root, minLevel: 1, start: start)
        while iter.valid && iter.gfn < end {
            guard iter.oldSPTE.isShadowPresent, iter.oldSPTE.isLast(level: iter.level) else { iter.next(); continue }
            if iterCondResched(&iter, flush: false, shared: true) { iter.next(); continue }
            guard iter.oldSPTE.isDirty else { iter.next(); continue }
            if !setSPTEAtomic(&iter, SPTE(raw: iter.oldSPTE.raw & ~SPTE.dirty)) { continue }    // goto retry
            set = true
            iter.next()
        }
        rcu.readUnlock()
        return set
    }

    /// kvm_mmu_slot_leaf_clear_dirty() -> kvm_tdp_mmu_clear_dirty_slot(): every
    /// Dirty bit of the slot cleared under the read lock (the caller flushes).
    func kvmMMUSlotLeafClearDirty(_ slot: Memslot) {
        kvm.mmuLock.readLock()
        kvm.mmuLock.assertHeldRead("kvm_tdp_mmu_clear_dirty_slot")
        forEachRootYieldSafe(asID: slot.asID, onlyValid: true) { root in
            _ = clearDirtyGFNRange(root, start: slot.baseGfn, end: slot.baseGfn + slot.npages)
            return true
        }
        kvm.mmuLock.readUnlock()
    }

    /// kvm_mmu_slot_remove_write_access() -> kvm_tdp_mmu_wrprot_slot(): the
    /// slot's leaves of `minLevel` and above write-protected with cmpxchg under
    /// the read lock (the caller flushes).
    func kvmMMUSlotRemoveWriteAccess(_ slot: Memslot, minLevel: Int) {
        kvm.mmuLock.readLock()
        kvm.mmuLock.assertHeldRead("kvm_tdp_mmu_wrprot_slot")
        forEachRootYieldSafe(asID: slot.asID, onlyValid: true) { root in
            wrprotGFNRange(root, start: slot.baseGfn, end: slot.baseGfn + slot.npages, minLevel: minLevel)
            return true
        }
        kvm.mmuLock.readUnlock()
    }

    /// wrprot_gfn_range().
    private func wrprotGFNRange(_ root: Int, start: Int, end: Int, minLevel: Int) {
        rcu.readLock()
        var iter = TDPIter(mmu: self, root: root, minLevel: minLevel, start: start)
        while iter.valid && iter.gfn < end {
            if iterCondResched(&iter, flush: false, shared: true) { iter.next(); continue }
            guard iter.oldSPTE.isShadowPresent, iter.oldSPTE.isLast(level: iter.level), iter.oldSPTE.isWritable else { iter.next(); continue }
            if !setSPTEAtomic(&iter, SPTE(raw: iter.oldSPTE.raw & ~SPTE.writable)) { continue }    // goto retry
            iter.next()
        }
        rcu.readUnlock()
    }

    /// kvm_mmu_zap_collapsible_sptes() (later renamed kvm_mmu_recover_huge_pages(),
    /// which then replaces rather than zaps) -> kvm_tdp_mmu_zap_collapsible_sptes():
    /// under the read lock, the tables of the slot that a huge page could
    /// replace again are zapped (zap_collapsible_spte_range(), with a flush each).
    func kvmMMURecoverHugePages(_ slot: Memslot) {
        kvm.mmuLock.readLock()
        kvm.mmuLock.assertHeldRead("kvm_tdp_mmu_zap_collapsible_sptes")
        forEachRootYieldSafe(asID: slot.asID, onlyValid: true) { root in
            rcu.readLock()
            var iter = TDPIter(mmu: self, root: root, minLevel: 2, start: slot.baseGfn)
            while iter.valid && iter.gfn < slot.baseGfn + slot.npages {
                if iterCondResched(&iter, flush: false, shared: true) { iter.next(); continue }
                let s = iter.oldSPTE
                guard iter.level <= 2, s.isShadowPresent, !s.isLast(level: iter.level),
                      iter.gfn >= slot.baseGfn, iter.gfn < slot.baseGfn + slot.npages,
                      maxMappingLevel(slot, gfn: iter.gfn, maxLevel: 2) >= iter.level else { iter.next(); continue }
                if !zapSPTEAtomic(&iter) { continue }                                    // goto retry
                iter.next()
            }
            rcu.readUnlock()
            return true
        }
        kvm.mmuLock.readUnlock()
    }

    /// A memslot update that sets or clears KVM_MEM_LOG_DIRTY_PAGES
    /// (kvm_set_memslot(): the new memslots published, then
    /// synchronize_srcu(&kvm->srcu) so that no vcpu still uses the old ones),
    /// then kvm_mmu_slot_apply_flags(): turning logging on splits the slot's
    /// huge pages (eager_page_split, default on), then with PML clears its
    /// Dirty bits and write-protects the huge pages left (so that writes split
    /// them), without PML write-protects every leaf (`pml`), then
    /// flushes unconditionally, after mmu_lock; turning it off recovers huge pages. The caller holds kvm->slots_lock. (The wait for
    /// mn_active_invalidate_count to drain before the swap is not modelled: no
    /// memslot changes its range.)
    public func kvmSetDirtyLogging(slot: Memslot, _ on: Bool) {
        guard slot.asID == 0 else { return }
        if on {
            oracle.dirtyPassStarts()
            dirtyLog.setLogging(slot.id, true)
            kvm.srcu.synchronize()                          // kvm_swap_active_memslots()
            if eagerPageSplit { kvmMMUSlotTrySplitHugePages(slot) }
            if pml {                                        // kvm_x86_ops.cpu_dirty_log_size
                kvmMMUSlotLeafClearDirty(slot)
                kvmMMUSlotRemoveWriteAccess(slot, minLevel: 2)
            } else {
                kvmMMUSlotRemoveWriteAccess(slot, minLevel: 1)
            }
            flushRemoteTLBs()                               // kvm_flush_remote_tlbs_memslot()
            engine.event("KVM_SET_USER_MEMORY_REGION(slot \(slot.id), KVM_MEM_LOG_DIRTY_PAGES): \(pml ? "Dirty bits cleared, huge pages write-protected" : "write-protected (no PML)")")
            oracle.dirtyLoggingEnabled()
        } else {
            dirtyLog.setLogging(slot.id, false)
            kvm.srcu.synchronize()
            oracle.dirtyLoggingDisabled()
            kvmMMURecoverHugePages(slot)
            engine.event("KVM_SET_USER_MEMORY_REGION(slot \(slot.id)): dirty logging off")
        }
    }
}

extension TDPMMU {
    /// The gfn's SPTEs in every root and the vcpus' TLB entries for it (reports).
    func describeGFN(_ g: Int) -> String {
        let view = TDPMMUView(self)
        return oracleReadSection {
            let sptes = roots.map { r in "root \(r)\(isInvalid(r) ? " (invalid)" : ""): \(view.lookup(root: r, gfn: g))" }
            let tlbs = vcpus.map { v in "vcpu\(v.id) TLB: \(v.describeTLB(g))" }
            return (sptes + tlbs).joined(separator: "; ")
        }
    }
}
