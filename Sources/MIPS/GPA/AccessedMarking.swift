// SPDX-License-Identifier: GPL-2.0-only

/// Where kvm_mips_map_page() hands the accessed state of a page to the host
/// (`--mark-accessed`, a dimension of the seed-004 worlds beside the variant).
public enum AccessedMarking: String, CaseIterable, Codable, Sendable {
    /// 411740f5422a (v4.11) to v6.12: `_kvm_mips_map_page_fast()` calls
    /// kvm_set_pfn_accessed() after `spin_unlock(&kvm->mmu_lock)`, holding no
    /// reference to the page; the slow path ends with
    /// `spin_unlock(&kvm->mmu_lock); kvm_release_pfn_clean(pfn);
    /// kvm_set_pfn_accessed(pfn);`, marking the page after it dropped its
    /// reference. Either may touch a page the host has freed meanwhile.
    case v411 = "v4.11"
    /// v6.13: 4d75f14fc869 ("KVM: MIPS: Mark "struct page" pfns accessed only
    /// in "slow" page fault path") drops the fast path's marking, and
    /// 13d66fddaaa4 ("... accessed prior to dropping mmu_lock") drops the
    /// reference, marking the page accessed (kvm_release_pfn_clean() did by
    /// then), before `spin_unlock()`.
    case v613 = "v6.13"
}
