// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A secondary MMU that mirrors the host's page tables (`struct mmu_notifier_ops`,
/// include/linux/mmu_notifier.h). KVM registers one per VM when the architecture
/// has KVM_CAP_SYNC_MMU. Ranges are half-open ranges of host virtual page numbers.
///
/// Contract (mm/mmu_notifier.c): after `invalidateRangeStart` returns, the
/// subscriber holds no mapping of any page in the range and creates none until the
/// matching `invalidateRangeEnd`; the host frees or changes pages only after start
/// has returned.
public protocol MMUNotifierSubscriber: AnyObject, Sendable {
    /// mmu_notifier_ops.invalidate_range_start.
    func invalidateRangeStart(_ range: Range<Int>)
    /// mmu_notifier_ops.invalidate_range_end.
    func invalidateRangeEnd(_ range: Range<Int>)
    /// mmu_notifier_ops.change_pte: the host PTE for `hva` now is `pte`.
    func changePTE(hva: Int, pte: PTE)
    /// mmu_notifier_ops.invalidate_page (v4.12 and before): the host PTE of
    /// `hva` has been cleared (the page table lock is still held); drop every
    /// mapping of it before returning, since the page may be freed after.
    func invalidatePage(hva: Int)
    /// mmu_notifier_ops.clear_flush_young: age, flush TLBs if anything was young.
    func clearFlushYoung(_ range: Range<Int>) -> Bool
    /// mmu_notifier_ops.clear_young: age without a TLB flush.
    func clearYoung(_ range: Range<Int>) -> Bool
    /// mmu_notifier_ops.test_young.
    func testYoung(hva: Int) -> Bool
}

extension MMUNotifierSubscriber {
    /// A subscriber without `.invalidate_page` (every notifier from v4.13 on,
    /// which has no such op): `__mmu_notifier_invalidate_page()` calls only the
    /// ops that are set.
    public func invalidatePage(hva: Int) {}
}

/// Oracle hooks the host mm calls at points the notifier contract speaks about.
public protocol HostMMObserver: AnyObject, Sendable {
    /// Every subscriber's `invalidateRangeStart(range)` has returned.
    func invalidateRangeStartReturned(_ range: Range<Int>)
    /// Every subscriber's `invalidatePage(hva:)` has returned (v4.11).
    func invalidatePageReturned(hva: Int)
    /// Reclaim is about to free the clean page `pfn` of `hva` without writing
    /// it, trusting the swap copy `swapCopy` (`HostMMDetail.pageDirty`).
    func droppingClean(hva: Int, pfn: Int, swapCopy: UInt64)
    /// The host discarded the content of `hva` (MADV_DONTNEED, munmap): writes
    /// before this are legitimately gone.
    func contentDiscarded(hva: Int)
}
