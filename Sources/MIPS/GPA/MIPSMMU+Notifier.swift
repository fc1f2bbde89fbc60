// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec

/// The MMU-notifier hooks of arch/mips/kvm/mmu.c (seed 004, v4.11), called by
/// the generic callbacks with `kvm->mmu_lock` held (asserted).
extension MIPSMMU {
    /// handle_hva_to_gpa(): calls `handler(gfn, gfnEnd, slot)` for each memslot
    /// overlapping the hva range, ORing the results. As in the kernel, `gfnEnd` is
    /// computed as hva_to_gfn(hva_end + PAGE_SIZE - 1), one past the last gfn.
    func handleHvaToGpa(_ range: Range<Int>, _ handler: (Int, Int, Memslot) -> Bool) -> Bool {
        var ret = false
        for slot in kvm.memslots.slots {
            let hvaStart = max(range.lowerBound, slot.userspaceAddr)
            let hvaEnd = min(range.upperBound, slot.userspaceAddr + slot.npages)
            if hvaStart >= hvaEnd { continue }
            let gfn = slot.hvaToGfn(hvaStart)
            let gfnEnd = slot.hvaToGfn(hvaEnd)
            if handler(gfn, gfnEnd, slot) { ret = true }
        }
        return ret
    }

    /// kvm_unmap_hva_range() (arch/mips/kvm/mmu.c, v4.11): flush the GPA PTEs,
    /// then all derived mappings; returns 0 since it flushed itself.
    /// `kvm->mmu_lock` held (lockdep).
    public func unmapHvaRange(_ range: Range<Int>) -> Bool {
        mmuLock.assertHeld("kvm_unmap_hva_range()")
        unmapThenFlush(range, caller: "kvm_unmap_hva_range", point: "kvm_unmap_hva_range:before_flush_shadow_all")
        return false
    }

    /// kvm_unmap_hva() (arch/mips/kvm/mmu.c, v4.11; `.invalidate_page` calls
    /// it): the same two steps for the page at `hva` (`end = hva +
    /// PAGE_SIZE`); returns 0. `kvm->mmu_lock` held (lockdep).
    public func unmapHva(_ hva: Int) -> Bool {
        mmuLock.assertHeld("kvm_unmap_hva()")
        unmapThenFlush(hva..<(hva + 1), caller: "kvm_unmap_hva", point: "kvm_unmap_hva:before_flush_shadow_all")
        return false
    }

    /// handle_hva_to_gpa(..., kvm_unmap_hva_handler), then
    /// kvm_mips_callbacks->flush_shadow_all(): the body both unmap hooks share.
    private func unmapThenFlush(_ range: Range<Int>, caller: StaticString, point: StaticString) {
        _ = handleHvaToGpa(range) { gfn, gfnEnd, _ in
            engine.event("\(caller): kvm_mips_flush_gpa_pt(gfn \(gfn) ... \(gfnEnd))")
            kvmMipsFlushGpaPt(gfn, gfnEnd)
            return true
        }
        engine.point(point)
        flushShadowAll()
    }

    /// kvm_set_spte_hva() with kvm_set_spte_handler().
    public func setSpteHva(_ hva: Int, _ pte: PTE) {
        mmuLock.assertHeld("kvm_set_spte_hva()")
        let ret = handleHvaToGpa(hva..<(hva + 1)) { gfn, _, slot in
            guard let s = table.walk(gfn, cache: nil) else { return false }
            var hvaPTE = pte
            let old = table.load(slot: s)
            if slot.logDirtyPages && !old.isDirty { hvaPTE = hvaPTE.mkclean() }
            else if slot.readOnly { hvaPTE = hvaPTE.wrprotect() }
            table.set(slot: s, hvaPTE)
            engine.cover(Self.markSetSpte)
            engine.event("kvm_set_spte_hva: gfn \(gfn): \(old) -> \(hvaPTE)")
            if !old.isPresent || !old.isYoung { return false }
            return !hvaPTE.isPresent || !hvaPTE.isYoung || old.pfn != hvaPTE.pfn || (old.isDirty && !hvaPTE.isDirty)
        }
        if ret { flushShadowAll() }
    }

    /// kvm_age_hva().
    public func ageHva(_ range: Range<Int>) -> Bool {
        mmuLock.assertHeld("kvm_age_hva()")
        return handleHvaToGpa(range) { gfn, gfnEnd, _ in kvmMipsMkoldGpaPt(gfn, gfnEnd) }
    }

    /// kvm_test_age_hva(). As written in the seed it calls
    /// `handle_hva_to_gpa(kvm, hva, hva, ...)`: an empty range, so no memslot
    /// matches and it always answers "not young". The model keeps that.
    public func testAgeHva(_ hva: Int) -> Bool {
        mmuLock.assertHeld("kvm_test_age_hva()")
        return handleHvaToGpa(hva..<hva) { gfn, _, _ in
            guard let s = table.walk(gfn, cache: nil) else { return false }
            return table.load(slot: s).isYoung
        }
    }
}
