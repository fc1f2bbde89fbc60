// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Aging (tdp_mmu.c and mmu.c, v6.10-era): the notifier's clear_young /
/// clear_flush_young / test_young hooks over every root of the range's address
/// space, with mmu_lock held for write.
extension TDPMMU {
    /// kvm_tdp_mmu_handle_gfn(): `handler` on every present leaf of the range in
    /// every root (no yielding: the aging notifiers may not block).
    private func handleGFN(_ range: KVMGFNRange, _ handler: (inout TDPIter) -> Bool) -> Bool {
        var ret = false
        forEachRoot(asID: range.slot.asID, onlyValid: false) { root in
            rcu.readLock()
            var iter = TDPIter(mmu: self, root: root, minLevel: 1, start: Int(range.start))
            while iter.valid && iter.gfn < Int(range.end) {
                if iter.oldSPTE.isShadowPresent && iter.oldSPTE.isLast(level: iter.level) {
                    ret = handler(&iter) || ret
                }
                iter.next()
            }
            rcu.readUnlock()
        }
        return ret
    }

    /// age_gfn_range(): clear the Accessed bit (a LOCK AND when the SPTE has
    /// volatile bits: tdp_mmu_clear_spte_bits()); true if it was set. No TLB
    /// flush: an access through a cached entry may go unseen (clear_young).
    private func ageGFNRange(_ iter: inout TDPIter) -> Bool {
        guard iter.oldSPTE.isAccessed else { return false }
        iter.oldSPTE = clearSPTEBits(iter.sptep, old: iter.oldSPTE, mask: SPTE.accessed, level: iter.level)
        return true
    }

    /// kvm_age_gfn() (mmu.c) -> kvm_tdp_mmu_age_gfn_range(): mmu_lock held for write.
    public func ageGFN(_ range: KVMGFNRange) -> Bool {
        kvm.mmuLock.assertHeldWrite("kvm_age_gfn")
        return handleGFN(range) { ageGFNRange(&$0) }
    }

    /// kvm_test_age_gfn() -> kvm_tdp_mmu_test_age_gfn().
    public func testAgeGFN(_ range: KVMGFNRange) -> Bool {
        kvm.mmuLock.assertHeldWrite("kvm_test_age_gfn")
        return handleGFN(range) { $0.oldSPTE.isAccessed }
    }
}
