// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Variants of the lazy guest-user ASID regeneration around seed 000,
/// 9078210ef401 ("KVM: MIPS: Fix lazy user ASID regenerate for SMP", v4.9).
public enum ASIDVariant: String, ModelVariant, Codable {
    /// Before the commit (the v4.9-rc code): `kvm_mips_check_asids()` regenerates on the
    /// current CPU only, and `kvm_arch_vcpu_load()` resets `last_user_gasid` when it
    /// finds the user ASID stale.
    case preFix = "pre-fix"
    /// The seed's diff exactly as written: after regenerating, a loop over the
    /// other CPUs zeroes `vcpu->arch.guest_user_asid[cpu]` (the current CPU's entry,
    /// not `[i]`); the `vcpu_load` reset the message says it drops is not in the diff.
    case patched = "patched"
    /// The commit as merged (9078210ef401): the seed's mips.c hunk with its
    /// `[cpu]` typo, and the mmu.c hunk the seed file lost, which drops the
    /// `last_user_gasid` reset from `kvm_arch_vcpu_load()`.
    case asMerged = "as-merged"
    /// What the commit message describes: zero `guest_user_asid[i]` on the other
    /// CPUs, and no `last_user_gasid` reset in `kvm_arch_vcpu_load()`.
    case patchedIntended = "patched-intended"
    /// v4.11: `kvm_trap_emul_vcpu_reenter()` with the mm's own `cpu_context()` in
    /// place of the per-vcpu ASID arrays (every CPU's user context zeroed, then the
    /// usual staleness check).
    case upstream411 = "upstream-4.11"
    /// Half of the fix: propagate the regeneration to the other CPUs (`[i]`), keep
    /// the `vcpu_load` reset. Leaves hole (b) alone, so it isolates it.
    case propagateOnly = "propagate-only"
    /// The other half: drop the `vcpu_load` reset, do not propagate. Isolates hole (a).
    case noCancelOnly = "no-cancel-only"

    /// Seed 000.
    public static let seedCommit = KernelCommit("9078210ef401", "KVM: MIPS: Fix lazy user ASID regenerate for SMP", release: "v4.9")

    public var commit: KernelCommit? {
        switch self {
        case .preFix: Self.seedCommit.parent
        case .patched: Self.seedCommit                         // the seed's mips.c hunk, as written
        case .asMerged: Self.seedCommit                        // both hunks, as merged
        case .upstream411: .release("v4.11", "the trap-and-emulate ASID code of the release")
        case .patchedIntended, .propagateOnly, .noCancelOnly: nil   // the message's intent and its halves: no kernel had them
        }
    }

    var usesPerVCPUArrays: Bool { self != .upstream411 }

    /// What `kvm_mips_check_asids()` does to the other CPUs' `guest_user_asid[]`
    /// after regenerating on this one.
    enum Propagation { case none, zeroCurrentCPU, zeroOtherCPUs }
    var propagation: Propagation {
        switch self {
        case .preFix, .noCancelOnly, .upstream411: return .none
        case .patched, .asMerged: return .zeroCurrentCPU
        case .patchedIntended, .propagateOnly: return .zeroOtherCPUs
        }
    }

    /// Whether `kvm_arch_vcpu_load()` sets `last_user_gasid` when it regenerates a
    /// stale user ASID (cancelling a pending lazy regeneration everywhere).
    var vcpuLoadResetsLastUserGASID: Bool {
        switch self {
        case .preFix, .patched, .propagateOnly: return true
        case .asMerged, .patchedIntended, .noCancelOnly, .upstream411: return false
        }
    }
}
