// SPDX-License-Identifier: GPL-2.0-only
import SimExec

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

extension KVM {
    /// kvm_flush_remote_tlbs(): every vcpu gets KVM_REQ_TLB_FLUSH, and the caller
    /// waits until each vcpu that was in guest mode has left it (the IPI ack);
    /// a vcpu flushes its TLB before it enters the guest again.
    public func flushRemoteTLBs() {
        engine.event("kvm_flush_remote_tlbs()")
        makeAllCPUsRequest(VCPUState.reqTLBFlush)
    }

    /// kvm_make_all_cpus_request().
    public func makeAllCPUsRequest(_ req: UInt64) {
        kvmMakeAllCPUsRequest(vcpus, req, engine: engine)
    }
}
