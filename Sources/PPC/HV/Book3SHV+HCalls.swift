// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The HPT hcalls of arch/powerpc/kvm/book3s_hv_rm_mmu.c (v3.7/v3.8): H_ENTER,
/// H_REMOVE, H_BULK_REMOVE, H_PROTECT.
extension Book3SHV {
    /// kvmppc_do_h_enter() / kvmppc_h_enter(): enter a translation of guest
    /// virtual page `vpn` to `gfn`. With MMU notifiers the HPTE holds no page
    /// reference: it is made VALID only if it could be linked into the gfn's rmap
    /// chain with no invalidation in progress since `mmu_seq` was read, else it is
    /// written ABSENT and the first access faults it in.
    public func kvmppcDoHEnter(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, vpn: Int, gfn: Int, writable: Bool) -> (HCallStatus, Int) {
        let mmuSeq = kvm.mmuNotifierSeq
        smp_rmb()
        guard pteIndex >= 0, pteIndex < hpt.npte, let slot = kvm.memslots.slot(forGfn: gfn) else { return (.parameter, 0) }
        let gPtel = HPT.makeR(pfn: gfn, writable: writable)
        // Look up the Linux PTE for the backing page (real mode: no reference taken).
        let hva = slot.gfnToHva(gfn)
        let hostPTE = kvm.hostMM.pte(hva)
        engine.point("h_enter:lookup_linux_pte")
        var ptel: UInt64 = 0
        var pteh = HPT.makeV(vpn: vpn, flags: 0)
        if hostPTE.isPresent {
            ptel = HPT.makeR(pfn: hostPTE.pfn, writable: writable)
            if writable && !hostPTE.isWrite { ptel = HPT.makeReadonly(ptel) }
            pteh |= HPT.valid
        } else {
            pteh |= HPT.absent
        }
        // Find and lock the HPTEG slot to use.
        var index = pteIndex
        if !flags.contains(.exact) {
            let group = pteIndex & ~(HPT.hpteGroupSize - 1)
            var found: Int? = nil
            for i in group..<(group + HPT.hpteGroupSize) where hpt.v(i) & (HPT.valid | HPT.absent | HPT.hvlock) == 0 {
                if hpt.tryLock(i) {
                    if hpt.v(i) & (HPT.valid | HPT.absent) == 0 { found = i; break }
                    hpt.unlock(i, hpt.v(i))
                }
            }
            guard let found else { return (.ptegFull, 0) }
            index = found
        } else {
            hpt.lock(index)
            if hpt.v(index) & (HPT.valid | HPT.absent) != 0 {
                hpt.unlock(index, hpt.v(index))
                return (.ptegFull, 0)
            }
        }
        hpt.setGuestRpte(index, gPtel)
        // Link the HPTE into the rmap chain, checking for invalidations under its lock.
        if pteh & HPT.valid != 0 {
            rmap.lock(gfn)
            if kvm.mmuNotifierRetry(mmuSeq) {
                engine.cover(Self.markEnterRetry)
                engine.event("h_enter: mmu_notifier_retry, HPTE \(index) written absent")
                pteh = (pteh | HPT.absent) & ~HPT.valid
            } else {
                rmap.add(gfn, slot: index)
            }
            rmap.unlock(gfn)
        }
        hpt.setR(index, ptel)
        oracle.newTranslation(index, fresh: true)
        hpt.unlock(index, pteh)                                     // eieio; hpte[0] = pteh
        engine.event("vcpu\(vcpu.id): H_ENTER HPTE \(index) = vpn \(hex(vpn)) -> gfn \(gfn) \(pteh & HPT.valid != 0 ? "pfn \(HPT.pfn(ptel))" : "absent")")
        return (.success, index)
    }

    /// The common start of H_REMOVE and H_PROTECT: lock the HPTE; if it is neither
    /// valid nor absent, or H_AVPN is given and the AVPN differs, unlock and
    /// return nil (H_NOT_FOUND). Else return hpte[0] without the lock bit, locked.
    func lockMatchingHPTE(_ pteIndex: Int, flags: HCallFlags, avpn: Int) -> UInt64? {
        hpt.lock(pteIndex)
        let v = hpt.v(pteIndex) & ~HPT.hvlock
        if v & (HPT.absent | HPT.valid) == 0 || (flags.contains(.avpn) && HPT.avpn(v) != avpn) {
            hpt.unlock(pteIndex, v)
            return nil
        }
        return v
    }

    /// H_REMOVE's and H_PROTECT's invalidation of a locked, valid HPTE: clear
    /// VALID, let global_invalidates() (or the pre-fix rule) pick `tlbie` or
    /// `tlbiel`, invalidate. Returns whether it was local.
    func invalidateLockedHPTE(_ i: Int, _ v: UInt64, flags: HCallFlags, vcpu: PPCVCPU) -> Bool {
        hpt.setV(i, hpt.v(i) & ~HPT.valid)
        let global = globalInvalidates(flags, vcpu)
        invalidate(vpn: HPT.avpn(v), global: global, vcpu: vcpu)
        return !global
    }

    /// kvmppc_h_remove().
    public func kvmppcHRemove(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, avpn: Int) -> HCallStatus {
        guard pteIndex >= 0, pteIndex < hpt.npte else { return .parameter }
        guard let v = lockMatchingHPTE(pteIndex, flags: flags, avpn: avpn) else { return .notFound }
        let gen = oracle.generation(pteIndex)
        var local = false
        if v & HPT.valid != 0 {
            local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu)
            removeRevmapChain(pteIndex)
        }
        hpt.unlock(pteIndex, 0)
        engine.event("vcpu\(vcpu.id): H_REMOVE HPTE \(pteIndex) (vpn \(hex(HPT.avpn(v))))\(flags.contains(.local) ? " H_LOCAL" : "")")
        oracle.guestInvalidated(pteIndex, gen: gen, .remove, local: local, vcpu: vcpu.id)
        return .success
    }

    /// kvmppc_h_bulk_remove(): up to four (pte_index, avpn) requests. HPTEs are
    /// collected and left locked, then invalidated in one batch; a busy HPTE ends
    /// the batch early ("don't spin on HPTE locks while holding others").
    public func kvmppcHBulkRemove(_ vcpu: PPCVCPU, _ requests: [(pteIndex: Int, avpn: Int)]) -> [HCallStatus] {
        let reqs = Array(requests.prefix(4))
        // v3.7 to v3.10: `if (atomic_read(&kvm->online_vcpus) == 1) local = 1;`
        // (no H_LOCAL, no need_tlb_flush); later: global_invalidates(kvm, 0).
        let global: Bool
        if variant.bulkRemoveUsesGlobalInvalidates {
            global = globalInvalidates([], vcpu)
        } else {
            global = onlineVCPUs > 1
            count(global ? .globalInvalidations : .localInvalidations)
        }
        var status = [HCallStatus](repeating: .success, count: reqs.count)
        var i = 0
        while i < reqs.count {
            var batch: [(slot: Int, vpn: Int, gen: UInt64, wasValid: Bool)] = []
            while i < reqs.count {
                let req = reqs[i]
                guard req.pteIndex >= 0, req.pteIndex < hpt.npte else { status[i] = .parameter; i += 1; continue }
                if !hpt.tryLock(req.pteIndex) {
                    if !batch.isEmpty { break }
                    hpt.lock(req.pteIndex)
                }
                let v = hpt.v(req.pteIndex) & ~HPT.hvlock
                if v & (HPT.absent | HPT.valid) == 0 || HPT.avpn(v) != req.avpn {
                    hpt.unlock(req.pteIndex, v)
                    status[i] = .notFound
                    i += 1
                    continue
                }
                hpt.setV(req.pteIndex, hpt.v(req.pteIndex) & ~HPT.valid)   // leave it locked
                batch.append((req.pteIndex, HPT.avpn(v), oracle.generation(req.pteIndex), v & HPT.valid != 0))
                i += 1
            }
            // Now that we've collected a batch, do the tlbies.
            let toFlush = batch.filter(\.wasValid)
            if !toFlush.isEmpty {
                engine.point("h_bulk_remove:invalidate")
                if global {
                    tlbieLock.lock()
                    for b in toFlush { for t in host.tlbs { t.invalidatePage(lpid: lpid, vpn: b.vpn) }; count(.tlbie) }
                    engine.event("tlbie x\(toFlush.count): all cores")
                    tlbieLock.unlock()
                } else {
                    for b in toFlush { tlbiel(vpn: b.vpn, core: core(of: vcpu)) }
                }
            }
            for b in batch {
                if b.wasValid { removeRevmapChain(b.slot) }
                hpt.unlock(b.slot, 0)
            }
            for b in batch { oracle.guestInvalidated(b.slot, gen: b.gen, .remove, local: !global, vcpu: vcpu.id) }
            if !batch.isEmpty { engine.event("vcpu\(vcpu.id): H_BULK_REMOVE HPTEs \(batch.map(\.slot))") }
        }
        return status
    }

    /// kvmppc_h_protect(): the model's guest only write-protects (PP read-only).
    public func kvmppcHProtect(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, avpn: Int) -> HCallStatus {
        guard pteIndex >= 0, pteIndex < hpt.npte else { return .parameter }
        guard let v = lockMatchingHPTE(pteIndex, flags: flags, avpn: avpn) else { return .notFound }
        if flags.contains(.local) { engine.cover(Self.markProtectLocal) }
        // Update the guest view of the second HPTE dword, then the HPTE.
        hpt.setGuestRpte(pteIndex, HPT.makeReadonly(hpt.guestRpte(pteIndex)))
        let r = HPT.makeReadonly(hpt.r(pteIndex))
        let gen = oracle.generation(pteIndex)
        var local = false
        if v & HPT.valid != 0 { local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu) }
        hpt.setR(pteIndex, r)
        oracle.newTranslation(pteIndex, fresh: false)
        hpt.unlock(pteIndex, v)                                      // eieio; hpte[0] = v
        engine.event("vcpu\(vcpu.id): H_PROTECT HPTE \(pteIndex) read-only\(flags.contains(.local) ? " H_LOCAL" : "")")
        if v & HPT.valid != 0 { oracle.guestInvalidated(pteIndex, gen: gen, .writeProtect, local: local, vcpu: vcpu.id) }
        return .success
    }

    /// remove_revmap_chain(): unlink a slot from its gfn's chain, keeping R; HPTE locked.
    func removeRevmapChain(_ slot: Int) {
        engine.lockdepAssert(hpt.isLocked(slot), "remove_revmap_chain() on HPTE \(slot) without its HVLOCK")
        let gfn = HPT.pfn(hpt.guestRpte(slot))
        guard gfn < rmap.gfns else { return }
        rmap.lock(gfn)
        rmap.remove(gfn, slot: slot)
        if hpt.r(slot) & HPT.referenced != 0 { rmap.setReferenced(gfn) }
        rmap.unlock(gfn)
    }
}
