// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU

/// The parts of `struct kvm` every generation of the notifier code shares: the
/// host mm and memslots guest memory comes from, the vcpus, and the generic
/// helpers over them (gfn_to_pfn_prot(), kvm_release_pfn_clean(),
/// kvm_make_all_cpus_request(), kvm_flush_remote_tlbs()). Two VMs conform, as
/// siblings: `KVM` (v4.9-v4.12: a spinlock `mmu_lock`, `mmu_notifier_seq` /
/// `_count`, hva-based arch hooks), which MIPS and PPC run on, and `ModernKVM`
/// (v6.x: an rwlock `mmu_lock`, `mmu_invalidate_*`, gfn-ranged hooks), which
/// the x86 TDP MMU runs on.
public protocol VirtualMachine: AnyObject, Sendable {
    var engine: SimEngine { get }
    var rcu: any RCUDomain { get }
    var hostMM: HostMM { get }
    var memslots: Memslots { get }
    /// The vcpus' generic state (mode, requests), in creation order.
    var vcpus: [VCPUState] { get }
}

extension VirtualMachine {
    /// gfn_to_pfn_prot() (v4.11 name; __gfn_to_pfn_memslot() today): the pfn
    /// backing `gfn` (the memslot, then hva_to_pfn(), which faults the page in
    /// with get_user_pages and may break COW for a write fault), with a page
    /// reference the caller drops with `releasePfnClean`, and whether the host
    /// mapping is writable. nil: no memslot (KVM_PFN_NOSLOT) or a fault the host
    /// refuses (KVM_PFN_ERR_FAULT). May sleep: a scheduling point.
    public func gfnToPfnProt(_ gfn: Int, writeFault: Bool) -> (pfn: Int, writable: Bool)? {
        guard let hva = memslots.gfnToHva(gfn) else { return nil }
        return hostMM.getUserPage(hva, write: writeFault)
    }

    /// gfn_to_pfn(): `gfnToPfnProt` of a write fault.
    public func gfnToPfn(_ gfn: Int) -> (pfn: Int, writable: Bool)? { gfnToPfnProt(gfn, writeFault: true) }

    /// kvm_release_pfn_clean(): drops the reference gfn_to_pfn*() took (put_page()).
    public func releasePfnClean(_ pfn: Int) { hostMM.pages.put(pfn) }

    /// kvm_make_all_cpus_request().
    public func makeAllCPUsRequest(_ req: UInt64) {
        kvmMakeAllCPUsRequest(vcpus, req, engine: engine)
    }

    /// kvm_flush_remote_tlbs(): every vcpu gets KVM_REQ_TLB_FLUSH, and the caller
    /// waits until each vcpu that was in guest mode has left it (the IPI ack);
    /// a vcpu flushes its TLB before it enters the guest again.
    public func flushRemoteTLBs() {
        engine.event("kvm_flush_remote_tlbs()")
        makeAllCPUsRequest(VCPUState.reqTLBFlush)
    }
}

/// kvm_make_all_cpus_request() (virt/kvm/kvm_main.c): set `req` on every vcpu,
/// then wait until each vcpu that was in guest mode has left it (the IPI ack).
/// A vcpu handles the request before it enters the guest again.
public func kvmMakeAllCPUsRequest(_ vcpus: [VCPUState], _ req: UInt64, engine: SimEngine) {
    var waitFor: [(VCPUState, UInt64)] = []
    for v in vcpus {
        v.makeRequest(req)
        smp_mb()
        let exits = v.exits
        if v.exitingGuestMode() != .outsideGuestMode { waitFor.append((v, exits)) }
    }
    guard !waitFor.isEmpty else { return }
    engine.waitUntil("kvm_make_all_cpus_request:wait_for_ack") {
        waitFor.allSatisfy { $0.0.mode == .outsideGuestMode || $0.0.exits != $0.1 }
    }
}
