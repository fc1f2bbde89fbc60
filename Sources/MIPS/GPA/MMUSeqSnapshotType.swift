// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The C type a fault handler keeps its `mmu_notifier_seq` snapshot in: x86
/// kept it in an `int` from a955cad84cda ("KVM: x86/mmu: Retry page fault if
/// root is invalidated by memslot update") until ba6e3fe25543 ("KVM:
/// x86/mmu: Grab mmu_invalidate_seq in kvm_faultin_pfn()", v6.3) fixed it
/// unknowingly; v6.1.50 got a stable-only fix ("KVM: x86/mmu: Fix an
/// sign-extension bug with mmu_seq that hangs vCPUs").
public enum MMUSeqSnapshotType: String, ModelVariant {
    /// `int mmu_seq`: the unsigned long is truncated to 32 bits and sign-extended
    /// again when `mmu_notifier_retry()` compares it; from 2^31 on it never
    /// matches and every fault retries forever.
    case signedInt = "pre-fix"
    /// `unsigned long mmu_seq`, as every kernel has it now.
    case unsignedLong = "patched"

    public static let fixCommit = KernelCommit("ba6e3fe25543", "KVM: x86/mmu: Grab mmu_invalidate_seq in kvm_faultin_pfn()", release: "v6.3")

    public var commit: KernelCommit? { self == .signedInt ? Self.fixCommit.parent : Self.fixCommit }

    /// The value `mmu_notifier_retry()` gets for a snapshot of `seq`.
    public func snapshot(_ seq: UInt64) -> UInt64 {
        switch self {
        case .signedInt: UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: seq)))
        case .unsignedLong: seq
        }
    }
}
