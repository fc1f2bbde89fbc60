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
    /// Seed 002: `global_invalidates()`, `need_tlb_flush`, `online_vcores`.
    case patched

    /// Seed 002.
    public static let seedCommit = KernelCommit("1b400ba0cd24", "KVM: PPC: Book3S HV: Improve handling of local vs. global TLB invalidations")

    public var commit: KernelCommit? { self == .preFix ? Self.seedCommit.parent : Self.seedCommit }
}
