// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The architecture's MMU-notifier hooks (`kvm_unmap_hva_range()`,
/// `kvm_set_spte_hva()`, `kvm_age_hva()`, `kvm_test_age_hva()` in
/// arch/<arch>/kvm, v4.11 names). The generic callbacks (`KVM+MMUNotifier.swift`)
/// call each with `kvm->mmu_lock` held; ranges are host virtual page numbers.
///
/// Where each runs relative to the notifier counts (docs/extension-points.md):
/// `unmapHvaRange` after `mmu_notifier_count` is raised, `setSpteHva` after
/// `mmu_notifier_seq` is bumped, the aging hooks with no count change.
public protocol KVMArchMMU: AnyObject, Sendable {
    /// kvm_unmap_hva_range(): returns whether the generic code must flush TLBs.
    func unmapHvaRange(_ range: Range<Int>) -> Bool
    /// kvm_unmap_hva() (called by `.invalidate_page`, v4.12 and before):
    /// returns whether the generic code must flush TLBs.
    func unmapHva(_ hva: Int) -> Bool
    /// kvm_set_spte_hva().
    func setSpteHva(_ hva: Int, _ pte: PTE)
    /// kvm_age_hva(): returns whether any mapping was young.
    func ageHva(_ range: Range<Int>) -> Bool
    /// kvm_test_age_hva().
    func testAgeHva(_ hva: Int) -> Bool
}

extension KVMArchMMU {
    /// kvm_unmap_hva() as every architecture of the era wrote it: the range
    /// hook over the one page. MIPS states its own (`MIPSMMU.unmapHva`).
    public func unmapHva(_ hva: Int) -> Bool { unmapHvaRange(hva..<(hva + 1)) }
}
