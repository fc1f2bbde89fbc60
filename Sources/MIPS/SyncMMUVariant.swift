// SPDX-License-Identifier: GPL-2.0-only

/// Variants of MIPS GPA fault handling around seed 004
/// ("KVM: MIPS/MMU: Implement KVM_CAP_SYNC_MMU").
public enum SyncMMUVariant: String, CaseIterable, Sendable, Codable {
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

    /// Whether KVM registers an MMU notifier (KVM_CAP_SYNC_MMU).
    public var registersMMUNotifier: Bool { self != .preFix }

    /// Whether KVM implements mmu_notifier_ops.change_pte.
    public var handlesChangePTE: Bool { self != .noChangePTE }
}

/// The C type a fault handler keeps its `mmu_notifier_seq` snapshot in
/// (section 7 of the kernel-semantics reference: x86 once kept it in an `int`).
public enum MMUSeqSnapshotType: String, CaseIterable, Sendable {
    /// `int mmu_seq`: the unsigned long is truncated to 32 bits and sign-extended
    /// again when `mmu_notifier_retry()` compares it; from 2^31 on it never
    /// matches and every fault retries forever.
    case signedInt = "pre-fix"
    /// `unsigned long mmu_seq`, as every kernel has it now.
    case unsignedLong = "patched"

    /// The value `mmu_notifier_retry()` gets for a snapshot of `seq`.
    public func snapshot(_ seq: UInt64) -> UInt64 {
        switch self {
        case .signedInt: UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: seq)))
        case .unsignedLong: seq
        }
    }
}
