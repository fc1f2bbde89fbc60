// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Seed 003's variants of PAPR per-vcpu area registration, 2e25aa5f ("KVM:
/// PPC: Book3S HV: Make virtual processor area registration more robust").
public enum VPAVariant: String, ModelVariant {
    /// v3.4: do_h_register_vpa(), on the caller's CPU, pins the new area and sets
    /// the target's `vpa`, `dtl`, `dtl_end`, `dtl_ptr` and `slb_shadow` directly,
    /// unpinning the old area first.
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
}
