// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Seed 002's variants of the TLB-invalidation choice and the entry flush,
/// 1b400ba0cd24 ("KVM: PPC: Book3S HV: Improve handling of local vs. global
/// TLB invalidations", v3.8).
public enum TLBInvalidationVariant: String, ModelVariant {
    /// v3.7: local when H_LOCAL is set or the guest has one vcpu; each thread
    /// flushes the whole TLB on entry when its vcpu last ran elsewhere or its
    /// thread last ran another vcpu (`last_vcpu[]` / `last_cpu`).
    case preFix = "pre-fix"
    /// Seed 002: `global_invalidates()` for H_REMOVE and H_PROTECT,
    /// `need_tlb_flush`, `online_vcores`. H_BULK_REMOVE keeps the v3.7 choice
    /// (tlbiel when `online_vcpus == 1`, `need_tlb_flush` untouched), as the
    /// code after the seed (v3.8-v3.10) has it.
    case patched
    /// `patched` with H_BULK_REMOVE through `global_invalidates(kvm, 0)`, as the
    /// code of about v3.13 has it (the change came between v3.10 and v3.13; its
    /// commit is not identified here).
    case upstream313 = "upstream-3.13"

    /// Seed 002.
    public static let seedCommit = KernelCommit("1b400ba0cd24", "KVM: PPC: Book3S HV: Improve handling of local vs. global TLB invalidations")

    public var commit: KernelCommit? {
        switch self {
        case .preFix: Self.seedCommit.parent
        case .patched: Self.seedCommit
        case .upstream313: .release("v3.13", "H_BULK_REMOVE through global_invalidates() (the v3.13 code)")
        }
    }

    /// `global_invalidates()`, `need_tlb_flush` and the primary thread's entry
    /// flush (seed 002 and later), against v3.7's per-thread `last_cpu` flush.
    public var hasGlobalInvalidates: Bool { self != .preFix }
    /// Whether H_BULK_REMOVE chooses through `global_invalidates(kvm, 0)`.
    public var bulkRemoveUsesGlobalInvalidates: Bool { self == .upstream313 }
}
