// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

extension Oracle {
    /// T5 (CVE-2022-45869): the shadow MMU's page lists stay consistent.
    public static let shadowPageLists = Oracle("shadow-page-lists", "each shadow MMU page is zapped by one zapper and freed once (list_move to one invalid_list, then kvm_mmu_free_shadow_page)")
}

/// The shadow MMU's pages beside the TDP MMU (mmu.c, v6.1-era): the pages
/// nested TDP (L1's EPT shadowed for L2) allocates, on `kvm->arch.active_mmu_pages`
/// newest first, counted by `n_used_mmu_pages` against `n_max_mmu_pages`; when
/// fewer than KVM_MIN_FREE_MMU_PAGES are left, make_mmu_pages_available() zaps
/// the oldest (kvm_mmu_zap_oldest_mmu_pages()). Only what the zap touches is
/// modelled: a page's place on the lists and the count; L2's translations are
/// not (its accesses are not modelled).
///
/// Locking rule: all of it with `kvm->mmu_lock` held for write (the shadow
/// MMU never runs under the read lock); __kvm_mmu_prepare_zap_page() asserts
/// it (the assertion 47b0c2e4c220 added). `n_used_mmu_pages` is a plain
/// counter and a page's list move a plain update: two zappers under the read
/// lock lose counts and move one page twice.
final class ShadowMMUPages: @unchecked Sendable {
    /// KVM_MIN_FREE_MMU_PAGES and KVM_REFILL_PAGES, scaled down with the pool (5 and 25 in the kernel).
    static let minFree = 1, refill = 2
    enum Field: Int, CaseIterable {
        /// 0 free, 1 on active_mmu_pages, 2 on a zapper's invalid_list.
        case state
        /// Allocation order (active_mmu_pages is newest first: the oldest has the smallest age).
        case age
    }
    static let free: UInt64 = 0, active: UInt64 = 1, invalid: UInt64 = 2
    let sp: AtomicRecords<Field>
    enum Count: Int, CaseIterable { case nUsed, nextAge }
    let counts: AtomicRecords<Count>
    /// n_max_mmu_pages.
    let nMax: Int
    unowned(unsafe) let mmu: TDPMMU

    init(mmu: TDPMMU, nMax: Int) {
        self.mmu = mmu
        self.nMax = nMax
        sp = AtomicRecords(count: nMax + 4, kernel: true)
        counts = AtomicRecords(count: 1, kernel: true)
    }

    deinit { sp.free(); counts.free() }

    /// kvm_mmu_available_pages().
    func available() -> Int {
        let used = counts.load(0, .nUsed)                         // unsigned long: a lost update can wrap it
        return used < UInt64(nMax) ? nMax - Int(used) : 0
    }

    /// make_mmu_pages_available(): zap the oldest pages if fewer than
    /// KVM_MIN_FREE_MMU_PAGES are left; -ENOSPC (false) if none could be freed.
    /// mmu_lock held for write.
    func makeMMUPagesAvailable() -> Bool {
        let avail = available()
        if avail >= Self.minFree { return true }
        zapOldest(Self.refill - avail)
        return available() > 0
    }

    /// kvm_mmu_zap_oldest_mmu_pages(): oldest first, onto a local invalid_list,
    /// then kvm_mmu_commit_zap_page().
    private func zapOldest(_ toZap: Int) {
        var invalidList: [Int] = []
        while invalidList.count < toZap {
            // list_for_each_entry_safe_reverse(): the oldest page still on the list.
            var oldest = -1, oldestAge = UInt64.max
            for t in 0..<sp.count where sp.load(t, .state) == Self.active {
                let a = sp.load(t, .age)
                if a < oldestAge { oldest = t; oldestAge = a }
            }
            guard oldest >= 0 else { break }
            mmu.engine.point("kvm_mmu_zap_oldest_mmu_pages")
            prepareZap(oldest)
            invalidList.append(oldest)
        }
        commitZap(invalidList)
    }

    /// __kvm_mmu_prepare_zap_page(): off active_mmu_pages onto the caller's
    /// invalid_list, n_used_mmu_pages decremented.
    private func prepareZap(_ t: Int) {
        mmu.kvm.mmuLock.assertHeldWrite("__kvm_mmu_prepare_zap_page")
        if sp.load(t, .state) != Self.active {
            mmu.engine.report(.shadowPageLists, "__kvm_mmu_prepare_zap_page(): shadow page \(t) is no longer on active_mmu_pages: another zapper moved it to its invalid_list (list_move of a page on someone else's list)")
        }
        sp.store(t, .state, Self.invalid)                       // list_move(&sp->link, invalid_list)
        let used = counts.load(0, .nUsed)
        if used == 0 { mmu.engine.report(.shadowPageLists, "n_used_mmu_pages drops below zero: two zappers counted one page") }
        counts.store(0, .nUsed, used &- 1)                      // kvm_mod_used_mmu_pages(kvm, -1)
    }

    /// kvm_mmu_commit_zap_page(): flush, then free every page of the list.
    private func commitZap(_ list: [Int]) {
        guard !list.isEmpty else { return }
        mmu.flushRemoteTLBs()
        for t in list {
            if sp.load(t, .state) != Self.invalid {
                mmu.engine.report(.shadowPageLists, "kvm_mmu_commit_zap_page(): shadow page \(t) freed twice (another zapper freed it from its own invalid_list)")
            }
            sp.store(t, .state, Self.free)                      // kvm_mmu_free_shadow_page()
        }
    }

    /// kvm_mmu_get_shadow_page() of a new page for a nested fault: mmu_lock held for write.
    func allocShadowPage() {
        mmu.kvm.mmuLock.assertHeldWrite("kvm_mmu_get_shadow_page")
        guard let t = (0..<sp.count).first(where: { sp.load($0, .state) == Self.free }) else { return }
        sp.store(t, .age, counts.add(0, .nextAge, 1))
        sp.store(t, .state, Self.active)                        // list_add(&sp->link, &kvm->arch.active_mmu_pages)
        counts.store(0, .nUsed, counts.load(0, .nUsed) &+ 1)     // kvm_account_mmu_page()
    }
}

extension TDPMMU {
    /// A nested fault (L2 on L1's EPT, shadowed): FNAME(page_fault) of the
    /// vcpu's guest_mmu, which runs the shadow MMU with mmu_lock held for write:
    /// make_mmu_pages_available(), then a new shadow page (its SPTEs are not modelled).
    public func nestedTDPFault(_ vcpu: X86VCPU) {
        kvm.mmuLock.writeLock()
        if shadowPages.makeMMUPagesAvailable() { shadowPages.allocShadowPage() }
        kvm.mmuLock.writeUnlock()
    }
}
