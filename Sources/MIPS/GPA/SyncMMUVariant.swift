// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Variants of MIPS GPA fault handling around seed 004, 411740f5422a ("KVM:
/// MIPS/MMU: Implement KVM_CAP_SYNC_MMU", v4.11).
public enum SyncMMUVariant: String, ModelVariant, Codable {
    /// Before the commit: no MMU notifiers, `gfn_to_pfn()` (always a write fault),
    /// every GPA PTE writable, young and dirty, and the page reference kept.
    case preFix = "pre-fix"
    /// The commit as written: notifiers, `gfn_to_pfn_prot()`, the
    /// `mmu_notifier_seq` snapshot and `mmu_notifier_retry()` check, a fast path
    /// that tracks young and dirty, references dropped after mapping.
    case patched = "patched"
    /// `patched` without the `mmu_notifier_retry()` check (a mutation).
    case noRetry = "no-retry"
    /// `patched` with KVM's `.change_pte()` notifier gone, as upstream later did:
    /// a host PTE change is seen only through invalidate_range_start/end. This is
    /// the form that closes the change_pte-during-invalidation race kvmsim finds
    /// in `patched` (docs/mechanisms/sync-mmu.md).
    case noChangePTE = "no-change-pte"

    /// Seed 004.
    public static let seedCommit = KernelCommit("411740f5422a", "KVM: MIPS/MMU: Implement KVM_CAP_SYNC_MMU", release: "v4.11")

    public var commit: KernelCommit? {
        switch self {
        case .preFix: Self.seedCommit.parent
        case .patched: Self.seedCommit
        case .noRetry, .noChangePTE: nil        // forms no MIPS kernel had (a mutation; the upstream shape of 2024)
        }
    }

    /// Whether KVM registers an MMU notifier (KVM_CAP_SYNC_MMU).
    public var registersMMUNotifier: Bool { self != .preFix }

    /// Whether KVM implements mmu_notifier_ops.change_pte.
    public var handlesChangePTE: Bool { self != .noChangePTE }
}
