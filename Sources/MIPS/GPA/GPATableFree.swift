// SPDX-License-Identifier: GPL-2.0-only

/// How `kvm_mips_flush_gpa_pt()` frees the GPA page tables it empties
/// (arch/mips/kvm/mmu.c, v4.11 to today), a dimension of the seed-004 worlds
/// beside the variant (`--gpa-table-free`).
///
/// The lock-free reader is the VZ root TLB refill handler (v4.12 on;
/// `MIPSVCPUContext.guestAccess`), which walks the GPA table with no lock.
public enum GPATableFree: String, CaseIterable, Codable, Sendable {
    /// kvmsim's design: an unlinked table is freed after an RCU grace period
    /// (`call_rcu`), so a walker that already followed the link finishes on a
    /// table that still holds what it held.
    case rcu
    /// The kernel's: `kvm_mips_flush_gpa_pmd()` does `pmd_clear()` then
    /// `pte_free_kernel()`, and `kvm_mips_flush_gpa_pud()` `pud_clear()` then
    /// `pmd_free()`, at once, under `mmu_lock`; the flush of the guest's
    /// translations (`flush_shadow_all`, `kvm_flush_remote_tlbs()`) comes after
    /// the frees, so it cannot wait out a walker that is already past the link.
    case immediate
    /// A fix in the shape x86 (`kvm_mmu_commit_zap_page()`: flush, then free)
    /// and LoongArch KVM (`kvm_flush_range()`) use: unlink under `mmu_lock`,
    /// flush, free after `kvm_flush_remote_tlbs()` returned. The flush waits for
    /// every vcpu in guest mode to take its IPI, which the refill handler holds
    /// off (it runs at EXL), so no walk that saw the old link is still running.
    /// No MIPS kernel had it.
    case afterFlush = "after-flush"
}
