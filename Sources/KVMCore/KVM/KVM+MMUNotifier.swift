// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The generic MMU-notifier callbacks of virt/kvm/kvm_main.c (v4.9-v4.12), each
/// taking `kvm->mmu_lock` around the arch hook it calls.
extension KVM {
    /// kvm_mmu_notifier_invalidate_range_start().
    public func invalidateRangeStart(_ range: Range<Int>) {
        mmuLock.lock()
        notifier.raiseCount()
        engine.event("kvm_mmu_notifier_invalidate_range_start: mmu_notifier_count = \(mmuNotifierCount)")
        let needFlush = arch.unmapHvaRange(range)
        if needFlush { flushRemoteTLBs() }
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_invalidate_range_end().
    public func invalidateRangeEnd(_ range: Range<Int>) {
        mmuLock.lock()
        notifier.bumpSeq()
        smp_wmb()
        let left = notifier.dropCount()
        precondition(left < 1 << 62, "mmu_notifier_count underflow")
        engine.event("kvm_mmu_notifier_invalidate_range_end: mmu_notifier_seq = \(mmuNotifierSeq), count = \(left)")
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_invalidate_page() (virt/kvm/kvm_main.c, v4.11; removed
    /// in v4.13 with the op): called by try_to_unmap_one() and
    /// page_mkclean_one() after they cleared the host PTE, under their page
    /// table lock. Takes `kvm->mmu_lock`; `mmu_notifier_seq++` (no count: no
    /// invalidation is "in progress"), `kvm_unmap_hva()`, the flush the arch
    /// asked for (`| kvm->tlbs_dirty`, which MIPS never sets), unlock; then
    /// `kvm_arch_mmu_notifier_invalidate_page()`, empty on MIPS. The
    /// `kvm->srcu` read section around it is not modelled (memslots are fixed).
    public func invalidatePage(hva: Int) {
        mmuLock.lock()
        notifier.bumpSeq()
        engine.event("kvm_mmu_notifier_invalidate_page(hva \(hex(hva))): mmu_notifier_seq = \(mmuNotifierSeq)")
        let needFlush = arch.unmapHva(hva)
        if needFlush { flushRemoteTLBs() }
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_change_pte().
    public func changePTE(hva: Int, pte: PTE) {
        guard handlesChangePTE else { return }
        mmuLock.lock()
        notifier.bumpSeq()
        arch.setSpteHva(hva, pte)
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_clear_flush_young().
    public func clearFlushYoung(_ range: Range<Int>) -> Bool {
        mmuLock.lock()
        let wasYoung = oracle?.youngGfns(range) ?? []
        let young = arch.ageHva(range)
        if young { flushRemoteTLBs() }
        oracle?.agedWithFlush(wasYoung)
        mmuLock.unlock()
        return young
    }

    /// kvm_mmu_notifier_clear_young().
    public func clearYoung(_ range: Range<Int>) -> Bool {
        mmuLock.lock()
        let young = arch.ageHva(range)
        mmuLock.unlock()
        return young
    }

    /// kvm_mmu_notifier_test_young().
    public func testYoung(hva: Int) -> Bool {
        mmuLock.lock()
        let young = arch.testAgeHva(hva)
        mmuLock.unlock()
        return young
    }
}
