// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The arch hooks the generic MMU notifier calls (arch/arm64/kvm/mmu.c,
/// v6.6), each with kvm->mmu_lock held for write (KVM_MMU_LOCK() with
/// KVM_HAVE_MMU_RWLOCK), and dirty logging's write protection.
extension Stage2MMU {
    /// kvm_unmap_gfn_range() -> __unmap_stage2_range(): unmap the range in
    /// chunks (stage2_apply_range()), dropping mmu_lock between chunks when it
    /// may block and the lock is wanted. The walker invalidates TLBs itself:
    /// nothing for the generic code to flush.
    public func unmapGFNRange(_ range: KVMGFNRange) -> Bool {
        kvm.mmuLock.assertHeldWrite("__unmap_stage2_range()")
        stage2ApplyRange(Int(range.start)..<Int(range.end), resched: range.mayBlock) { pgt.stage2Unmap($0.lowerBound, $0.count) }
        return false
    }

    /// kvm_age_gfn(): clear the Access flag of the range's leaves; whether any was young.
    public func ageGFN(_ range: KVMGFNRange) -> Bool {
        pgt.stage2TestClearYoung(Int(range.start), Int(range.end - range.start), mkold: true)
    }

    /// kvm_test_age_gfn().
    public func testAgeGFN(_ range: KVMGFNRange) -> Bool {
        pgt.stage2TestClearYoung(Int(range.start), Int(range.end - range.start), mkold: false)
    }

    /// stage2_apply_range(): `fn` over chunks of a level-1 granule
    /// (stage2_range_addr_end(), KVM_PGTABLE_MIN_BLOCK_LEVEL), with
    /// cond_resched_rwlock_write() between them when `resched`: the lock is
    /// dropped if another CPU waits for it (the model has no timer tick).
    func stage2ApplyRange(_ range: Range<Int>, resched: Bool, _ fn: (Range<Int>) -> Void) {
        let chunk = pgt.granulePages(pgt.startLevel)
        var addr = range.lowerBound
        while addr < range.upperBound {
            let next = min((addr / chunk + 1) * chunk, range.upperBound)
            fn(addr..<next)
            if resched && next != range.upperBound {
                engine.point("stage2_apply_range:cond_resched")
                if kvm.mmuLock.isContended {
                    kvm.mmuLock.writeUnlock()                 // cond_resched_rwlock_write()
                    engine.yieldPoint("cond_resched_rwlock_write")
                    kvm.mmuLock.writeLock()
                }
            }
            addr = next
        }
    }

    /// Dirty logging of `slot` turned on or off (KVM_SET_USER_MEMORY_REGION
    /// with KVM_MEM_LOG_DIRTY_PAGES): the new memslot is published and
    /// synchronize_srcu() waits for every vcpu that may use the old one
    /// (kvm_swap_active_memslots()); then kvm_arch_commit_memory_region()
    /// write-protects the slot when logging starts (kvm_mmu_wp_memory_region()).
    /// Turning it off changes no table: later faults map blocks again, over
    /// the tables logging left (the map walker's table-to-block path).
    public func setDirtyLogging(_ slot: Memslot, _ on: Bool) {
        logging.store(slot.id, on ? 1 : 0)
        kvm.srcu.synchronize()
        if on { kvmMMUWPMemoryRegion(slot) }
        engine.event("KVM_SET_USER_MEMORY_REGION(slot \(slot.id)\(on ? ", KVM_MEM_LOG_DIRTY_PAGES" : "")): dirty logging \(on ? "on" : "off")")
    }

    /// kvm_mmu_wp_memory_region(): write-protect the slot under the write lock
    /// (stage2_wp_range(), in chunks), then, after the unlock,
    /// kvm_flush_remote_tlbs_memslot().
    func kvmMMUWPMemoryRegion(_ slot: Memslot) {
        kvm.mmuLock.writeLock()
        stage2ApplyRange(slot.gfns, resched: true) { pgt.stage2Wrprotect($0.lowerBound, $0.count) }
        kvm.mmuLock.writeUnlock()
        flushRemoteTLBs()
    }
}
