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
    /// guest page itself; `kvm_steal_time_set_preempted()` stores there too.
    case patched

    /// The fix (with its sibling 8c6de56a42e0, "x86/kvm: Be careful not to clear
    /// KVM_VCPU_FLUSH_TLB bit", both in v5.6).
    public static let fixCommit = KernelCommit("b043138246a4", "x86/KVM: Make sure KVM_VCPU_FLUSH_TLB flag is not missed", release: "v5.6")

    public var commit: KernelCommit? { self == .preFix ? Self.fixCommit.parent : Self.fixCommit }
}
