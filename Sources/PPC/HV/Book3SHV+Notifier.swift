// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The MMU-notifier hooks of arch/powerpc/kvm/book3s_64_mmu_hv.c (v3.8), called
/// with `kvm->mmu_lock` held.
extension Book3SHV {
    /// kvm_unmap_rmapp(): for each HPTE on the gfn's chain: unlink it, and if it
    /// was valid mark it ABSENT and invalidate it globally (kvmppc_invalidate_hpte).
    func kvmUnmapRmapp(_ gfn: Int) {
        kvm.mmuLock.assertHeld("kvm_unmap_rmapp()")
        while true {
            rmap.lock(gfn)
            guard let i = rmap.first(gfn) else { rmap.unlock(gfn); return }
            // Never spin on the HPTE lock holding the rmap lock.
            if !hpt.tryLock(i) {
                rmap.unlock(gfn)
                engine.waitUntil("kvm_unmap_rmapp:hpte_locked") { [hpt] in hpt.v(i) & HPT.hvlock == 0 }
                continue
            }
            rmap.remove(gfn, slot: i)
            rmap.unlock(gfn)
            if hpt.v(i) & HPT.valid != 0 && HPT.pfn(hpt.guestRpte(i)) == gfn {
                hpt.setV(i, hpt.v(i) | HPT.absent)
                kvmppcInvalidateHPTE(i)
                let rc = hpt.r(i) & (HPT.referenced | HPT.changed)
                if rc & HPT.referenced != 0 { rmap.lock(gfn); rmap.setReferenced(gfn); rmap.unlock(gfn) }
                engine.cover(Self.markUnmap)
                engine.event("kvm_unmap_rmapp(gfn \(gfn)): HPTE \(i) absent")
            }
            hpt.unlock(i, hpt.v(i))
        }
    }

    /// kvm_unmap_hva_range(): kvm_unmap_rmapp() on every gfn of the range.
    public func unmapHvaRange(_ range: Range<Int>) -> Bool {
        kvm.mmuLock.assertHeld("kvm_unmap_hva_range()")
        for hva in range { if let gfn = kvm.memslots.hvaToGfn(hva) { kvmUnmapRmapp(gfn) } }
        return false   // the HPTEs were invalidated with tlbie already
    }

    /// kvm_set_spte_hva(): kvm_handle_hva(kvm, hva, kvm_unmap_rmapp).
    public func setSpteHva(_ hva: Int, _ pte: PTE) {
        kvm.mmuLock.assertHeld("kvm_set_spte_hva()")
        if let gfn = kvm.memslots.hvaToGfn(hva) { kvmUnmapRmapp(gfn) }
    }

    /// kvm_age_rmapp(): clear the rmap's referenced bit and the R bit of every
    /// referenced valid HPTE on the chain (kvmppc_clear_ref_hpte(): tlbie).
    public func ageHva(_ range: Range<Int>) -> Bool {
        kvm.mmuLock.assertHeld("kvm_age_hva()")
        var young = false
        for hva in range {
            guard let gfn = kvm.memslots.hvaToGfn(hva) else { continue }
            retry: while true {
                rmap.lock(gfn)
                if rmap.testAndClearReferenced(gfn) { young = true }
                for i in rmap.slots(gfn) where hpt.r(i) & HPT.referenced != 0 {
                    if !hpt.tryLock(i) {
                        rmap.unlock(gfn)
                        engine.waitUntil("kvm_age_rmapp:hpte_locked") { [hpt] in hpt.v(i) & HPT.hvlock == 0 }
                        continue retry
                    }
                    if hpt.v(i) & HPT.valid != 0 && hpt.r(i) & HPT.referenced != 0 {
                        hpt.setR(i, hpt.r(i) & ~HPT.referenced)
                        tlbie(vpn: HPT.avpn(hpt.v(i)))
                        young = true
                    }
                    hpt.unlock(i, hpt.v(i))
                }
                rmap.unlock(gfn)
                break
            }
        }
        return young
    }

    /// kvm_test_age_rmapp().
    public func testAgeHva(_ hva: Int) -> Bool {
        kvm.mmuLock.assertHeld("kvm_test_age_hva()")
        guard let gfn = kvm.memslots.hvaToGfn(hva) else { return false }
        rmap.lock(gfn)
        defer { rmap.unlock(gfn) }
        if rmap.testAndClearReferenced(gfn) { rmap.setReferenced(gfn); return true }
        return rmap.slots(gfn).contains { hpt.r($0) & HPT.referenced != 0 }
    }
}
