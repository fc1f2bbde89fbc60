// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// NX huge page recovery (mmu.c, v6.10-era: kvm_recover_nx_huge_pages(), run
/// by the VM's kvm-nx-lpage-recovery thread): the tables that stand where an
/// executable huge page was refused (the NX mitigation) are zapped now and then,
/// so that non-executable accesses can map the huge page again.
extension TDPMMU {
    /// kvm_recover_nx_huge_pages(): with mmu_lock held for write and inside one
    /// RCU read section (the zapped tables are freed by RCU callbacks, and the
    /// flush must come before they can be), zap up to `toZap` of the oldest
    /// tables on kvm->arch.possible_nx_huge_pages, owing a TLB flush for each,
    /// and do it (kvm_mmu_remote_flush_or_zap()) before every yield and before
    /// the unlock. How the flush owed is kept is the variant's (T2): dropped
    /// (29cf0f5007a2), assigned (048f49809c52, 33a3164161fc) or accumulated
    /// (315f02c60d94). A table of a dirty-logged slot is only taken off the list.
    public func kvmRecoverNXHugePages(toZap: Int) {
        kvm.mmuLock.writeLock()
        rcu.readLock()
        var flush = false
        for _ in 0..<toZap {
            guard let sp = possibleNXHugePages.first else { break }
            engine.kvmWarnOn(self.sp.load(sp, .nxHugePageDisallowed) == 0, "kvm_recover_nx_huge_pages(): a page on the list is not nx_huge_page_disallowed")
            if let slot = memslots.slot(forGfn: spGfn(sp), asID: spAsID(sp)), dirtyLog.isLogging(slot) {
                unaccountNXHugePage(sp)
            } else {
                engine.event("kvm_recover_nx_huge_pages: zaps table \(sp) (gfn \(spGfn(sp)))")
                let zapped = zapSP(sp)
                count(.nxRecovered)
                switch code.nxRecoveryFlush {
                case .dropped: break                                  // kvm_tdp_mmu_zap_sp(kvm, sp);
                case .assigned: flush = zapped                        // flush = kvm_tdp_mmu_zap_sp(kvm, sp);
                case .accumulated: flush = zapped || flush            // flush |= kvm_tdp_mmu_zap_sp(kvm, sp);
                }
            }
            engine.kvmWarnOn(self.sp.load(sp, .nxHugePageDisallowed) != 0, "kvm_recover_nx_huge_pages(): the zapped page is still nx_huge_page_disallowed")
            engine.point("kvm_recover_nx_huge_pages:need_resched")
            if kvm.mmuLock.isContended {
                remoteFlushOrZap(flush)
                rcu.readUnlock()
                kvm.mmuLock.writeUnlock()                              // cond_resched_rwlock_write()
                engine.yieldPoint("cond_resched_rwlock_write")
                kvm.mmuLock.writeLock()
                flush = false
                rcu.readLock()
            }
        }
        remoteFlushOrZap(flush)
        rcu.readUnlock()
        kvm.mmuLock.writeUnlock()
    }

    /// kvm_mmu_remote_flush_or_zap() with no shadow pages to commit: a flush if one is owed.
    private func remoteFlushOrZap(_ flush: Bool) {
        if flush { flushRemoteTLBs() }
    }

    /// unaccount_nx_huge_page(): off the list, no longer disallowed.
    private func unaccountNXHugePage(_ t: Int) {
        sp.store(t, .nxHugePageDisallowed, 0)
        pagesLock.lock()
        untrackPossibleNXHugePage(t)
        pagesLock.unlock()
    }

    /// disallowed_hugepage_adjust(): at the goal level, a present table that
    /// stands for a refused executable huge page is kept: the fault goes one
    /// level down (and takes the pfn of its 4K page again).
    func disallowedHugepageAdjust(_ fault: inout KVMPageFault, _ spte: SPTE, level: Int) {
        guard level > 1, level == fault.goalLevel, spte.isShadowPresent, !spte.isLarge,
              sp.load(spte.pfn, .nxHugePageDisallowed) != 0 else { return }
        fault.pfn |= fault.gfn & (pagesPerSPTE(level: level) - pagesPerSPTE(level: level - 1))
        fault.goalLevel -= 1
    }
}
