// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Local vs. global TLB invalidation (book3s_hv_rm_mmu.c): where seed 002
/// changed the choice, and the `tlbie`/`tlbiel` instructions.
extension Book3SHV {
    /// Whether an invalidation on behalf of `vcpu` must be global.
    ///
    /// patched: global_invalidates() (book3s_hv_rm_mmu.c, seed 002): local only
    /// when the VM has one vcore, which is running here; then every other core is
    /// marked in `need_tlb_flush` (after an smp_wmb()).
    /// pre-fix: `!(flags & H_LOCAL) && atomic_read(&kvm->online_vcpus) > 1`
    /// (H_BULK_REMOVE passes no flags: local exactly when there is one vcpu).
    func globalInvalidates(_ flags: HCallFlags, _ vcpu: PPCVCPU) -> Bool {
        let global: Bool
        switch variant {
        case .preFix:
            global = !flags.contains(.local) && onlineVCPUs > 1
        case .patched, .upstream313:
            if onlineVcores == 1 && vcpu.vcore.pcpu != nil {
                global = false
            } else if usingMMUNotifiers {
                global = true
            } else {
                global = !flags.contains(.local)
            }
            if !global {
                smp_wmb()
                needTLBFlush.store(0, allCPUs)                       // cpumask_setall()
                engine.point("global_invalidates:setall")
                clearNeedTLBFlush(vcpu.vcore.pcpu!)                 // cpumask_clear_cpu(pcpu)
            }
        }
        count(global ? .globalInvalidations : .localInvalidations)
        return global
    }

    /// Atomically clears `cpu`'s bit; returns whether it was set.
    @discardableResult
    func clearNeedTLBFlush(_ cpu: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(cpu)
        while true {
            let old = needTLBFlush.load(0)
            if old & bit == 0 { return false }
            if needTLBFlush.cas(0, old, old & ~bit) { return true }
        }
    }

    /// `tlbie` under `tlbie_lock`: every core drops its entries for the page.
    func tlbie(vpn: Int) {
        tlbieLock.lock()
        engine.event("tlbie(vpn \(hex(vpn)), lpid \(lpid)): all cores")
        for t in host.tlbs { t.invalidatePage(lpid: lpid, vpn: vpn) }
        count(.tlbie)
        engine.cover(Self.markTLBIE)
        tlbieLock.unlock()
    }

    /// `tlbiel`: this core only.
    func tlbiel(vpn: Int, core: Int) {
        engine.event("tlbiel(vpn \(hex(vpn)), lpid \(lpid)): core \(core) only")
        host.tlbs[core].invalidatePage(lpid: lpid, vpn: vpn)
        count(.tlbiel)
        engine.cover(Self.markTLBIEL)
    }

    /// The invalidation an hcall does for a slot whose VALID bit it just cleared.
    func invalidate(vpn: Int, global: Bool, vcpu: PPCVCPU) {
        engine.point("hcall:invalidate")
        if global { tlbie(vpn: vpn) } else { tlbiel(vpn: vpn, core: core(of: vcpu)) }
    }

    /// kvmppc_invalidate_hpte() (book3s_hv_rm_mmu.c): clear VALID, tlbie; HPTE locked.
    func kvmppcInvalidateHPTE(_ slot: Int) {
        engine.lockdepAssert(hpt.isLocked(slot), "kvmppc_invalidate_hpte() on HPTE \(slot) without its HVLOCK")
        let v = hpt.v(slot)
        hpt.setV(slot, v & ~HPT.valid)
        tlbie(vpn: HPT.avpn(v))
    }
}
