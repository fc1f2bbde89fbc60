// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Variants of seed 001, a31b50d741bd ("KVM: MIPS/MMU: Invalidate GVA PTs on
/// ASID changes", v4.11), on top of the v4.11 ASID code.
public enum GVAFlushVariant: String, ModelVariant, Codable {
    /// GVA page tables that nothing flushes when the guest ASID changes.
    case preFix = "pre-fix"
    /// The seed: flush the kernel GVA table (KMF_KERN) on a guest kernel EntryHi
    /// ASID change, the user one (KMF_USER) lazily on re-entry to guest user mode.
    case patched = "patched"

    /// Seed 001.
    public static let seedCommit = KernelCommit("a31b50d741bd", "KVM: MIPS/MMU: Invalidate GVA PTs on ASID changes", release: "v4.11")

    public var commit: KernelCommit? { self == .preFix ? Self.seedCommit.parent : Self.seedCommit }
}
