// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The owner's side of seed 003: kvmppc_update_vpa() and kvmppc_update_vpas()
/// (book3s_hv.c), run by a vcpu on itself before it enters the guest.
extension VPARegistration {
    /// kvmppc_update_vpa() (book3s_hv.c, v3.8 text; v3.6 on): pin `next_gpa`
    /// with the lock dropped (pinning sleeps), retry if a newer request came
    /// meanwhile, then switch `pinned_addr` and unpin the old area.
    /// `vpa_update_lock` held on entry and exit (lockdep).
    func kvmppcUpdateVPA(_ t: VPAVCPU, _ k: VPAKind) {
        t.vpaUpdateLock.assertHeld("kvmppc_update_vpa()")
        let a = t.area(k)
        var va: KernelVA? = nil
        var nb = 0
        var gpa = 0
        while true {
            gpa = t.load(a.nextGPA)
            oracle.registrationPublished(t)
            t.vpaUpdateLock.unlock()
            va = nil; nb = 0
            // v3.6-v3.8 test the snapshot but pin a fresh read, lock dropped.
            let pinned = variant == .patched ? t.load(a.nextGPA) : gpa
            if gpa != 0, pinned != 0, let p = pinning.pin(pinned) { (va, nb) = (p.va, p.nb) }
            t.vpaUpdateLock.lock()
            if gpa == t.load(a.nextGPA) { break }
            engine.cover(Self.markUpdateRetry)
            if let v = va { pinning.unpin(v) }                        // sigh... unpin that one and try again
        }
        t.words.store(a.updatePending, 0)
        engine.cover(Self.markUpdatePending)
        if let v = va, nb < t.load(a.len) {
            pinning.unpin(v)                                          // now too short: unregister
            va = nil
        }
        if let v = va { oracle.installing(t, k, va: v) }
        let old = t.load(a.pinnedAddr)
        if old != 0 { unpinInstalled(t, k, old) }
        setPointer(t, a.pinnedAddr, va ?? 0, by: t.id)
        if let v = va {
            setPointer(t, a.pinnedEnd, v + t.load(a.len), by: t.id)
            let area = v..<(v + t.load(a.len))
            // The registration it was installed for, read without access points (bookkeeping).
            withoutAccessPoints { oracle.installed(owner: t.id, k, area, registeredGPA: t.load(a.nextGPA), len: area.count) }
        }
        engine.event("vcpu\(t.id): kvmppc_update_vpa(\(k)): pinned \(va.map { hex($0) } ?? "nothing")")
    }

    /// kvmppc_update_vpas() (book3s_hv.c, v3.8 text; v3.6 on): by the owner
    /// before it enters the guest; takes its `vpa_update_lock`. v3.4 has none.
    public func kvmppcUpdateVPAs(_ t: VPAVCPU) {
        guard variant.hasUpdateProtocol else { return }
        guard VPAKind.allCases.contains(where: { t.load(t.area($0).updatePending) != 0 }) else { return }
        t.vpaUpdateLock.lock()
        if t.load(t.area(.vpa).updatePending) != 0 {
            kvmppcUpdateVPA(t, .vpa)
            let p = t.load(t.area(.vpa).pinnedAddr)
            if p != 0 { initVPA(t, p, by: t.id) }
        }
        if t.load(t.area(.dtl).updatePending) != 0 {
            kvmppcUpdateVPA(t, .dtl)
            setPointer(t, VPAVCPU.dtlPtr, t.load(t.area(.dtl).pinnedAddr), by: t.id)
            t.words.store(VPAVCPU.dtlIndex, 0)
            t.dtlGeneration += 1                                             // ghost (VPAVCPU.guestLog)
            oracle.dtlReset(owner: t.id)
        }
        if t.load(t.area(.slbShadow).updatePending) != 0 { kvmppcUpdateVPA(t, .slbShadow) }
        oracle.registrationPublished(t)
        t.vpaUpdateLock.unlock()
    }
}
