// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The steal-time PV TLB flush race (CVE-2019-3016), a historical race for the
/// regression suite (section 7 of the kernel-semantics reference): the PV TLB
/// flush of f38a7b75267f ("KVM: X86: support paravirtualized help for TLB
/// shootdowns", v4.16), fixed in v5.6.
public enum StealTimeVariant: String, ModelVariant {
    /// v5.4 record_steal_time(): read the guest's `struct kvm_steal_time` into
    /// `vcpu->arch.st.steal`, `xchg()` the copy's `preempted`, write the whole
    /// copy back; a KVM_VCPU_FLUSH_TLB the guest sets in between is overwritten.
    case preFix = "pre-fix"
    /// v5.6 ("x86/kvm: Be careful not to clear KVM_VCPU_FLUSH_TLB bit", "x86/KVM:
    /// Make sure KVM_VCPU_FLUSH_TLB flag is not missed"): `xchg()` on the mapped
    /// guest page itself, which kvm_map_gfn() finds through a gfn_to_pfn cache
    /// that keeps the page pinned and that no MMU notifier invalidates;
    /// `kvm_steal_time_set_preempted()` stores there too (a cache miss in its
    /// atomic context writes nothing).
    case patched
    /// v5.16 (7e2175ebd695, "KVM: x86: Fix recording of guest steal time /
    /// preempted status"): back to the gfn_to_hva_cache, with the `xchg` done on
    /// the user address (user_access_begin()), so the page written is the one
    /// mapped now; `kvm_steal_time_set_preempted()` uses copy_to_user_nofault().
    case hvaCache = "hva-cache"

    /// The fix (with its sibling 8c6de56a42e0, "x86/kvm: Be careful not to clear
    /// KVM_VCPU_FLUSH_TLB bit", both in v5.6).
    public static let fixCommit = KernelCommit("b043138246a4", "x86/KVM: Make sure KVM_VCPU_FLUSH_TLB flag is not missed", release: "v5.6")
    /// The fix's fix (T7).
    public static let refixCommit = KernelCommit("7e2175ebd695", "KVM: x86: Fix recording of guest steal time / preempted status", release: "v5.16")

    public var commit: KernelCommit? {
        switch self {
        case .preFix: return Self.fixCommit.parent
        case .patched: return Self.fixCommit
        case .hvaCache: return Self.refixCommit
        }
    }
}
