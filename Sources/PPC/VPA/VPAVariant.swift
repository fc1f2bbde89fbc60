// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Seed 003's variants of PAPR per-vcpu area registration, 2e25aa5f ("KVM:
/// PPC: Book3S HV: Make virtual processor area registration more robust").
public enum VPAVariant: String, ModelVariant {
    /// v3.4: do_h_register_vpa(), on the caller's CPU, pins the new area and sets
    /// the target's `vpa`, `dtl` / `dtl_end` or `slb_shadow` directly. If the
    /// target had an area of that kind it unpins the *caller's*
    /// (`if (tvcpu->arch.vpa) kvmppc_unpin_guest_page(kvm, vcpu->arch.vpa);`),
    /// which is the target's only when a vcpu registers for itself; a
    /// deregistration unpins the target's. No DTL writer: the host writes only
    /// the VPA's yield count, at guest entry and exit (book3s_hv_rmhandlers.S,
    /// through `vcpu->arch.vpa`).
    case preFix = "pre-fix"
    /// Seed 003: `struct kvmppc_vpa`, `vpa_update_lock`; the caller only records
    /// `next_gpa` / `len` / `update_pending`, and the target itself pins and
    /// switches in kvmppc_update_vpas() before it enters the guest.
    /// kvmppc_update_vpa() as v3.6-v3.8 have it: it tests its snapshot of
    /// `next_gpa` but, the lock dropped, pins a fresh read of it:
    /// `if (gpa) va = kvmppc_pin_guest_page(kvm, vpap->next_gpa, &nb);`.
    case patched
    /// `patched` with kvmppc_update_vpa() pinning its snapshot
    /// (`kvmppc_pin_guest_page(kvm, gpa, &nb)`), as later kernels do (the
    /// commit that changed it is not identified here).
    case pinsSnapshot = "pins-snapshot"

    /// Seed 003 (only the short id is known to us).
    public static let seedCommit = KernelCommit("2e25aa5f", "KVM: PPC: Book3S HV: Make virtual processor area registration more robust")

    public var commit: KernelCommit? {
        switch self {
        case .preFix: Self.seedCommit.parent
        case .patched: Self.seedCommit
        case .pinsSnapshot: nil
        }
    }

    /// The seed's protocol: `struct kvmppc_vpa`, `vpa_update_lock`, updates by the owner.
    public var hasUpdateProtocol: Bool { self != .preFix }

    /// kvmppc_create_dtl_entry() with `dtl_ptr` / `dtl_index` (v3.6 on, as in
    /// the v3.8 text `patched` follows); v3.4 kept `dtl` / `dtl_end` only, and
    /// no host code wrote a DTL entry.
    public var hasDTLWriter: Bool { self != .preFix }
}
