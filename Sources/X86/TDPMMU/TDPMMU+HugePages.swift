// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Huge pages and the NX huge page mitigation (mmu.c, tdp_mmu.c, v6.10-era):
/// the mapping level a fault may use, splitting a huge SPTE into a table, and
/// the list of tables that stand where an executable huge page was refused
/// (kvm->arch.possible_nx_huge_pages), which NX recovery zaps.
extension TDPMMU {
    /// is_nx_huge_page_enabled(): the iTLB multihit mitigation (nx_huge_pages=on).
    var nxHugePages: Bool { nxHugePagesEnabled.load(0) != 0 }

    /// kvm_mmu_max_mapping_level() through host_pfn_mapping_level(): the level
    /// the host maps the gfn's page at (2 for a page of a huge host mapping),
    /// capped by the memslot's alignment.
    func maxMappingLevel(_ slot: Memslot, gfn: Int, maxLevel: Int) -> Int {
        guard maxLevel >= 2 else { return 1 }
        let base = roundForLevel(gfn, level: 2)
        // The whole huge page must lie inside the memslot.
        guard base >= slot.baseGfn, base + pagesPerSPTE(level: 2) <= slot.baseGfn + slot.npages else { return 1 }
        return hostMM.hugeMappingLevel(slot.gfnToHva(gfn)) >= 2 ? 2 : 1
    }

    /// kvm_mmu_hugepage_adjust(): the goal level of a fault: the host's mapping
    /// level, unless the slot is dirty-logged, or this is a fetch and the NX
    /// huge page mitigation forbids an executable huge page
    /// (`hugePageDisallowed`); for a huge goal, the pfn of the huge page's base.
    func kvmMMUHugepageAdjust(_ fault: inout KVMPageFault) {
        fault.maxLevel = 2                                // KVM_MAX_HUGEPAGE_LEVEL in the model (no 1G pages)
        fault.hugePageDisallowed = fault.exec && nxHugePages
        guard let slot = fault.slot, !dirtyLog.isLogging(slot) else { return }
        fault.reqLevel = maxMappingLevel(slot, gfn: fault.gfn, maxLevel: fault.maxLevel)
        if fault.reqLevel == 1 || fault.hugePageDisallowed { return }
        fault.goalLevel = fault.reqLevel
        fault.pfn -= fault.gfn & (pagesPerSPTE(level: fault.goalLevel) - 1)
    }

    /// tdp_mmu_split_huge_page(): fill `child` with the huge SPTE's pages
    /// (make_huge_page_split_spte()) before it is linked, then link it.
    func splitHugePage(_ iter: inout TDPIter, _ child: Int, shared: Bool) -> Bool {
        let huge = iter.oldSPTE
        let childLevel = iter.level - 1
        for i in 0..<entriesPerTable {
            var r = huge.raw + UInt64(i * pagesPerSPTE(level: childLevel)) << SPTE.pfnShift
            if childLevel == 1 { r &= ~SPTE.pageSize }
            // A split page may execute again (the mitigation concerns huge pages).
            r |= SPTE.executable
            arena.words.storeRelaxed(arena.slot(child, i), r)   // not yet reachable: no atomics needed
        }
        guard linkSP(&iter, child, shared: shared) else { return false }
        engine.event("tdp_mmu_split_huge_page: gfn \(iter.gfn) \(huge) split into table \(child)")
        return true
    }

    /// kvm_mmu_slot_try_split_huge_pages() -> kvm_tdp_mmu_try_split_huge_pages()
    /// to 4K (eager page splitting, when dirty logging starts): under the read
    /// lock, every huge leaf of the slot split with cmpxchg. (The kernel drops
    /// mmu_lock to allocate a table; the model's arena needs no lock.) No
    /// flush: the caller's follows.
    func kvmMMUSlotTrySplitHugePages(_ slot: Memslot) {
        kvm.mmuLock.readLock()
        kvm.mmuLock.assertHeldRead("kvm_tdp_mmu_try_split_huge_pages")
        forEachRootYieldSafe(asID: slot.asID, onlyValid: true) { root in
            rcu.readLock()
            var iter = TDPIter(mmu: self, root: root, minLevel: 2, start: slot.baseGfn)
            while iter.valid && iter.gfn < slot.baseGfn + slot.npages {
                if iterCondResched(&iter, flush: false, shared: true) { iter.next(); continue }
                guard iter.oldSPTE.isShadowPresent, iter.oldSPTE.isLarge else { iter.next(); continue }
                guard let child = allocSP(level: iter.level - 1, gfn: iter.gfn, asID: iter.asID, ptep: iter.sptep) else { break }
                if !splitHugePage(&iter, child, shared: true) { freeSP(child); continue }     // goto retry
                iter.next()
            }
            rcu.readUnlock()
            return true
        }
        kvm.mmuLock.readUnlock()
    }

    /// track_possible_nx_huge_page(): tdp_mmu_pages_lock held.
    func trackPossibleNXHugePage(_ t: Int) {
        pagesLock.assertHeld("track_possible_nx_huge_page")
        guard sp.load(t, .nxTracked) == 0 else { return }
        sp.store(t, .nxTracked, 1)
        possibleNXHugePages.append(t)
    }

    /// untrack_possible_nx_huge_page(): tdp_mmu_pages_lock held.
    func untrackPossibleNXHugePage(_ t: Int) {
        pagesLock.assertHeld("untrack_possible_nx_huge_page")
        guard sp.load(t, .nxTracked) != 0 else { return }
        sp.store(t, .nxTracked, 0)
        if let i = possibleNXHugePages.firstIndex(of: t) { possibleNXHugePages.remove(at: i) }
    }
}
