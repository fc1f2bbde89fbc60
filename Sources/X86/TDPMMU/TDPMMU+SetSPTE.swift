// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Changing SPTEs and the bookkeeping that follows (tdp_mmu.c, v6.10-era).
extension TDPMMU {
    /// handle_changed_spte(): the side effects of `old` -> `new` at `level` for
    /// `gfn`: the page's dirty and accessed state handed to the host
    /// (kvm_set_pfn_dirty(), kvm_set_pfn_accessed()) and, for a removed
    /// non-leaf SPTE, the table below it torn down (`handleRemovedPT`).
    /// `shared`: mmu_lock is held for read. `sptep` is the model's, for its
    /// oracle's record of zapped leaves (the kernel's function does not take it).
    func handleChangedSPTE(sptep: Int, asID: Int, gfn: Int, old: SPTE, new: SPTE, level: Int, shared: Bool) {
        let wasPresent = old.isShadowPresent, isPresent = new.isShadowPresent
        let wasLeaf = wasPresent && old.isLast(level: level)
        let isLeaf = isPresent && new.isLast(level: level)
        let pfnChanged = old.pfn != new.pfn
        engine.kvmWarnOn(level > rootLevel || level < 1, "handle_changed_spte(): level \(level)")
        engine.kvmWarnOn(gfn & (pagesPerSPTE(level: level) - 1) != 0, "handle_changed_spte(): gfn \(gfn) not aligned to level \(level)")
        // A present leaf is never replaced by a present leaf of another pfn:
        // a notifier zaps first (the kernel BUG()s here).
        if wasLeaf && isLeaf && pfnChanged {
            engine.kvmWarnOn(true, "Invalid SPTE change: cannot replace a present leaf SPTE (gfn \(gfn): \(old)) with another present leaf mapping a different PFN (\(new))")
        }
        if old == new { return }
        if !wasPresent && !isPresent {
            // Only a frozen SPTE may replace a non-present one (MMIO SPTEs are not modelled).
            engine.kvmWarnOn(!new.isFrozen && !old.isFrozen, "Unexpected SPTE change! Nonpresent SPTEs should not be replaced with another, different nonpresent SPTE (gfn \(gfn))")
            return
        }
        // The oracle's record of a translation removed (a split, which links a
        // table of the same translations in its place, removes none).
        if wasLeaf && (!isPresent || (isLeaf && pfnChanged)) { oracle.leafZapped(sptep: sptep, gfn: gfn, old: old, mmuLock: kvm.mmuLock) }
        if wasLeaf && old.isDirty && (!isPresent || !new.isDirty || pfnChanged) {
            if code.changedSPTEDirtyHandOver == .setPfnDirty { kvmSetPfnDirty(old.pfn, gfn: gfn) }
        }
        // Recursively handle child PTs if the change removed a subtree.
        if wasPresent && !wasLeaf && (isLeaf || !isPresent || pfnChanged) {
            engine.kvmWarnOn(isPresent && !isLeaf && pfnChanged, "handle_changed_spte(): a non-leaf SPTE's table changed")
            handleRemovedPT(old.pfn, shared: shared)
        }
        if wasLeaf && old.isAccessed && (!isPresent || !new.isAccessed || pfnChanged) {
            kvmSetPfnAccessed(old.pfn, gfn: gfn)
        }
    }

    /// kvm_set_pfn_dirty() (virt/kvm/kvm_main.c, v6.10: `if
    /// (WARN_ON(is_error_noslot_pfn(pfn))) return; if (pfn_valid(pfn))
    /// kvm_set_page_dirty(pfn_to_page(pfn));`, and kvm_set_page_dirty():
    /// `if (kvm_is_ad_tracked_page(page)) SetPageDirty(page);`, i.e. unless
    /// PG_reserved): the page was written through the SPTE, so it is dirty
    /// for the host (PG_dirty of the page, or of a huge page's head), and
    /// reclaim writes it out instead of dropping it. The model's oracle checks
    /// first that the page is still the host's at the gfn (page-use-after-free);
    /// the flag is kept only with the host's page dirty state
    /// (`HostPages.pageFlags`, `--page-dirty 1`). The TDP MMU calls it under
    /// mmu_lock, for read or write (handle_changed_spte(),
    /// clear_dirty_pt_masked()); asserted. Removed in v6.13, where KVM marks a
    /// folio dirty when it installs a writable SPTE instead
    /// (kvm_release_faultin_page()).
    func kvmSetPfnDirty(_ pfn: Int, gfn: Int) {
        kvm.mmuLock.assertHeld("kvm_set_pfn_dirty")
        oracle.kvmTouchesPage(pfn, gfn: gfn, what: "kvm_set_pfn_dirty", dirty: true)
        let pages = hostMM.pages
        if pages.pageFlags { pages.setDirty(pfn) }
    }
    /// kvm_set_pfn_accessed().
    func kvmSetPfnAccessed(_ pfn: Int, gfn: Int) { oracle.kvmTouchesPage(pfn, gfn: gfn, what: "kvm_set_pfn_accessed", dirty: false) }

    /// handle_removed_pt(): a table just unlinked from the paging structure;
    /// this thread owns it. Every child SPTE is frozen (with an xchg under the
    /// read lock, retrying while another thread holds it frozen; under the write
    /// lock with `kvm_tdp_mmu_write_spte()`, since the CPU may still set A/D bits
    /// through TLB-cached upper levels until the flush) and handled, then the
    /// table is freed after a grace period.
    func handleRemovedPT(_ pt: Int, shared: Bool) {
        let level = spLevel(pt), baseGFN = spGfn(pt), asID = spAsID(pt)
        unlinkSP(pt)
        for i in 0..<entriesPerTable {
            let sptep = arena.slot(pt, i)
            let gfn = baseGFN + i * pagesPerSPTE(level: level)
            var old: SPTE
            if shared {
                // Set the SPTE to a value other threads will not overwrite; if it
                // is already frozen, a fault owns it: wait until it lets go.
                while true {
                    old = writeSPTEAtomic(sptep, .frozen)
                    if !old.isFrozen { break }
                    engine.waitUntil("handle_removed_pt:frozen") { [self] in !SPTE(raw: arena.words.peek(sptep)).isFrozen }
                }
            } else {
                old = readSPTE(sptep)
                if !old.isShadowPresent { continue }
                old = writeSPTE(sptep, old: old, new: .frozen, level: level)
            }
            handleChangedSPTE(sptep: sptep, asID: asID, gfn: gfn, old: old, new: .frozen, level: level, shared: shared)
        }
        count(.tablesFreed)
        freeSPAfterGracePeriod(pt)
    }

    /// tdp_mmu_unlink_sp(): off the possible-NX-huge-page list.
    func unlinkSP(_ t: Int) {
        guard sp.load(t, .nxHugePageDisallowed) != 0 else { return }
        pagesLock.lock()
        sp.store(t, .nxHugePageDisallowed, 0)
        untrackPossibleNXHugePage(t)
        pagesLock.unlock()
    }

    /// tdp_mmu_set_spte_atomic(): mmu_lock held for read. A cmpxchg against the
    /// iterator's snapshot; on failure the snapshot is refreshed and the caller
    /// retries (or gives up: RET_PF_RETRY). Never on a frozen SPTE.
    func setSPTEAtomic(_ iter: inout TDPIter, _ new: SPTE) -> Bool {
        kvm.mmuLock.assertHeldRead("tdp_mmu_set_spte_atomic")
        engine.kvmWarnOn(iter.yielded || iter.oldSPTE.isFrozen, "__tdp_mmu_set_spte_atomic() on a yielded iterator or a frozen SPTE")
        guard arena.words.cas(iter.sptep, iter.oldSPTE.raw, new.raw) else {
            iter.oldSPTE = readSPTE(iter.sptep)           // try_cmpxchg64() updates iter->old_spte
            return false
        }
        handleChangedSPTE(sptep: iter.sptep, asID: iter.asID, gfn: iter.gfn, old: iter.oldSPTE, new: new, level: iter.level, shared: true)
        return true
    }

    /// tdp_mmu_zap_spte_atomic(): mmu_lock held for read. Freeze, flush the
    /// gfn's TLB entries, unfreeze to non-present, then the bookkeeping.
    func zapSPTEAtomic(_ iter: inout TDPIter) -> Bool {
        kvm.mmuLock.assertHeldRead("tdp_mmu_zap_spte_atomic")
        engine.kvmWarnOn(iter.yielded || iter.oldSPTE.isFrozen, "__tdp_mmu_set_spte_atomic() on a yielded iterator or a frozen SPTE")
        guard arena.words.cas(iter.sptep, iter.oldSPTE.raw, SPTE.frozen.raw) else {
            iter.oldSPTE = readSPTE(iter.sptep)
            return false
        }
        flushRemoteTLBs()                                 // kvm_flush_remote_tlbs_gfn()
        writeSPTERaw(iter.sptep, .nonPresent)
        handleChangedSPTE(sptep: iter.sptep, asID: iter.asID, gfn: iter.gfn, old: iter.oldSPTE, new: .nonPresent, level: iter.level, shared: true)
        return true
    }

    /// tdp_mmu_set_spte(): mmu_lock held for write; returns the value replaced
    /// (which may differ from `old` when the SPTE had volatile bits).
    @discardableResult
    func setSPTE(asID: Int, sptep: Int, old: SPTE, new: SPTE, gfn: Int, level: Int) -> SPTE {
        kvm.mmuLock.assertHeldWrite("tdp_mmu_set_spte")
        engine.kvmWarnOn(old.isFrozen || new.isFrozen, "tdp_mmu_set_spte() to or from a frozen SPTE")
        let replaced = writeSPTE(sptep, old: old, new: new, level: level)
        handleChangedSPTE(sptep: sptep, asID: asID, gfn: gfn, old: replaced, new: new, level: level, shared: false)
        return replaced
    }

    /// tdp_mmu_iter_set_spte().
    func iterSetSPTE(_ iter: inout TDPIter, _ new: SPTE) {
        engine.kvmWarnOn(iter.yielded, "tdp_mmu_iter_set_spte() on a yielded iterator")
        iter.oldSPTE = setSPTE(asID: iter.asID, sptep: iter.sptep, old: iter.oldSPTE, new: new, gfn: iter.gfn, level: iter.level)
    }

    /// tdp_mmu_link_sp(): replace the SPTE with a link to table `child`.
    func linkSP(_ iter: inout TDPIter, _ child: Int, shared: Bool) -> Bool {
        let spte = SPTE.nonLeaf(table: child)
        if shared {
            guard setSPTEAtomic(&iter, spte) else { return false }
        } else {
            iterSetSPTE(&iter, spte)
        }
        return true
    }

    /// kvm_flush_remote_tlbs() (and its _gfn/_range forms, flushed whole); also
    /// the generic notifier's flush hook.
    public func flushRemoteTLBs() {
        count(.remoteFlushes)
        kvm.flushRemoteTLBs()
    }

    /// tdp_mmu_iter_cond_resched(): at a point the kernel may be preempted in a
    /// long walk, yield if mmu_lock is contended (rwlock_needbreak(); the model
    /// has no timer tick, so need_resched() never is), flushing first if
    /// `flush`: drop RCU and the lock, retake them, restart the walk from the
    /// root at the current gfn. Returns whether it yielded.
    func iterCondResched(_ iter: inout TDPIter, flush: Bool, shared: Bool) -> Bool {
        engine.kvmWarnOn(iter.yielded, "tdp_mmu_iter_cond_resched() on a yielded iterator")
        // Ensure forward progress has been made before yielding.
        if iter.nextLastLevelGFN == iter.yieldedGFN { return false }
        engine.point("tdp_mmu_iter_cond_resched")
        guard kvm.mmuLock.isContended else { return false }
        count(.zapYields)
        engine.event("tdp_mmu_iter_cond_resched: mmu_lock contended at gfn \(iter.gfn) of root \(iter.root): \(flush ? "flush, then " : "")drop \(shared ? "read" : "write") lock")
        if flush { flushRemoteTLBs() }
        rcu.readUnlock()
        if shared {
            kvm.mmuLock.readUnlock()                      // cond_resched_rwlock_read()
            engine.yieldPoint("cond_resched_rwlock_read")
            kvm.mmuLock.readLock()
        } else {
            kvm.mmuLock.writeUnlock()                     // cond_resched_rwlock_write()
            engine.yieldPoint("cond_resched_rwlock_write")
            kvm.mmuLock.writeLock()
        }
        rcu.readLock()
        engine.kvmWarnOn(iter.gfn > iter.nextLastLevelGFN, "tdp_mmu_iter_cond_resched(): gfn past the walk")
        iter.yielded = true
        return true
    }
}

