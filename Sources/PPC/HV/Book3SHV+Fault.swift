// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Guest accesses through a core's TLB and the hardware walk of the HPT, and the
/// HPTE fault of arch/powerpc/kvm/book3s_64_mmu_hv.c (v3.8).
extension Book3SHV {
    enum WalkOutcome { case done, noHPTE, hostFault(slot: Int, v: UInt64, r: UInt64), guestProtection, retry }

    /// A guest load or store by `vcpu` on its core: the core TLB, else the
    /// hardware walk of the HPT's primary group (filling the TLB and setting R/C),
    /// else a hypervisor fault for an ABSENT HPTE or a store to an HPTE the host
    /// made read-only (kvmppc_hpte_hv_fault() -> kvmppc_book3s_hv_page_fault()).
    /// Returns false when the guest has no HPTE for the page (its own page fault).
    public func guestAccess(_ vcpu: PPCVCPU, vpn: Int, write: Bool) -> Bool {
        for _ in 0..<4 {
            engine.point("guest:access")
            let core = core(of: vcpu)
            let outcome: WalkOutcome = host.tlbs[core].withLock { tlb in
                if let e = tlb.lookup(lpid: lpid, vpn: vpn), !write || e.writable {
                    oracle.access(vcpu: vcpu.id, core: core, e, write: write, via: "a TLB hit")
                    return .done
                }
                let g = hpt.group(of: vpn) * HPT.hpteGroupSize
                for i in g..<(g + HPT.hpteGroupSize) {
                    let v = hpt.v(i)
                    guard HPT.avpn(v) == vpn, v & (HPT.valid | HPT.absent) != 0 else { continue }
                    if v & HPT.valid == 0 { return .hostFault(slot: i, v: v & ~HPT.hvlock, r: hpt.r(i)) }
                    let r = hpt.r(i), grpte = hpt.guestRpte(i), gen = oracle.generation(i)
                    guard hpt.v(i) & ~HPT.hvlock == v & ~HPT.hvlock, hpt.r(i) == r else { return .retry }
                    if write && !HPT.isWritable(r) {
                        return HPT.isWritable(grpte) ? .hostFault(slot: i, v: v & ~HPT.hvlock, r: r) : .guestProtection
                    }
                    let e = PPCTLBEntry(lpid: lpid, vpn: vpn, gfn: HPT.pfn(grpte), pfn: HPT.pfn(r), writable: HPT.isWritable(r), slot: i, generation: gen)
                    tlb.insert(e)
                    hpt.orR(i, HPT.referenced | (write ? HPT.changed : 0))
                    oracle.access(vcpu: vcpu.id, core: core, e, write: write, via: "an HPT walk")
                    return .done
                }
                return .noHPTE
            }
            switch outcome {
            case .done, .guestProtection: return true
            case .noHPTE: return false
            case .retry: continue
            case .hostFault(let slot, let v, let r): kvmppcBook3sHvPageFault(vcpu, slot: slot, seen: (v, r), write: write)
            }
        }
        return true
    }

    /// kvmppc_book3s_hv_page_fault(): re-read the HPTE the real-mode handler
    /// (kvmppc_hpte_hv_fault()) found, `seen`, and give up if it changed; fault the
    /// page in with get_user_pages_fast(); then, under the HPTE lock and the gfn's
    /// rmap lock, make the HPTE valid unless it changed meanwhile or
    /// `mmu_notifier_retry()` says an invalidation ran. The page reference is
    /// dropped at the end (the HPTE holds none).
    func kvmppcBook3sHvPageFault(_ vcpu: PPCVCPU, slot: Int, seen: (v: UInt64, r: UInt64), write: Bool) {
        count(.hpteFaults)
        hpt.lock(slot)
        let hv = hpt.v(slot) & ~HPT.hvlock, hr = hpt.r(slot), grpte = hpt.guestRpte(slot)
        hpt.unlock(slot, hv)
        guard hv == seen.v, hr == seen.r else { return }           // changed: re-execute the instruction
        let gfn = HPT.pfn(grpte)
        guard let hva = kvm.memslots.gfnToHva(gfn) else { return }
        let mmuSeq = kvm.mmuNotifierSeq
        smp_rmb()
        let writing = write && HPT.isWritable(grpte)
        guard let (pfn, hostWritable) = kvm.hostMM.getUserPage(hva, write: writing) else { return }
        defer { kvm.hostMM.pages.put(pfn) }                         // put_page()
        var r = HPT.makeR(pfn: pfn, writable: HPT.isWritable(grpte))
        if HPT.isWritable(r) && !hostWritable { r = HPT.makeReadonly(r) }
        hpt.lock(slot)
        guard hpt.v(slot) & ~HPT.hvlock == hv, hpt.r(slot) == hr, hpt.guestRpte(slot) == grpte else {
            hpt.unlock(slot, hpt.v(slot))                            // changed under us: let the guest retry
            return
        }
        let newV = (hv & ~HPT.absent) | HPT.valid
        rmap.lock(gfn)
        if kvm.mmuNotifierRetry(mmuSeq) {
            rmap.unlock(gfn)
            hpt.unlock(slot, hpt.v(slot))
            engine.cover(Self.markFaultRetry)
            engine.event("vcpu\(vcpu.id): HPTE fault on \(slot): mmu_notifier_retry, guest retries")
            return
        }
        if hpt.v(slot) & HPT.valid != 0 {
            // Previously valid (read-only upgrade): invalidate it first.
            rmap.unlock(gfn)
            hpt.setV(slot, hpt.v(slot) | HPT.absent)
            kvmppcInvalidateHPTE(slot)
            r |= hpt.r(slot) & (HPT.referenced | HPT.changed)
        } else {
            rmap.add(gfn, slot: slot)
            rmap.unlock(gfn)
        }
        hpt.setR(slot, r)
        oracle.newTranslation(slot, fresh: false)
        hpt.unlock(slot, newV)
        engine.cover(Self.markFault)
        engine.event("vcpu\(vcpu.id): HPTE fault: HPTE \(slot) valid -> pfn \(pfn)\(HPT.isWritable(r) ? "" : " read-only")")
    }
}
