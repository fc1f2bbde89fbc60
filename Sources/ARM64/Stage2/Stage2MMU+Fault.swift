// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The kind of stage-2 abort the CPU reports (ESR_ELx's FSC).
public enum Stage2FaultKind: Sendable, Equatable {
    /// ESR_ELx_FSC_FAULT: no valid entry at `level` (the walk stopped there).
    case translation
    /// ESR_ELx_FSC_PERM: the leaf at `level` does not allow the access.
    case permission
    /// ESR_ELx_FSC_ACCESS: the leaf's Access flag is clear.
    case accessFlag
}

/// The stage-2 fault path (arch/arm64/kvm/mmu.c, v6.6): many vcpus run it in
/// parallel with mmu_lock held for read.
extension Stage2MMU {
    /// kvm_handle_guest_abort(): dispatch a stage-2 abort on IPA page `gfn`.
    /// Returns 1 (back to the guest) or a negative errno (exit to userspace).
    @discardableResult
    public func kvmHandleGuestAbort(_ vcpu: ARM64VCPU, gfn: Int, kind: Stage2FaultKind, level: Int, write: Bool, exec: Bool) -> Int32 {
        count(.faults)
        kvm.srcu.readLock()
        defer { kvm.srcu.readUnlock() }
        // gfn_to_memslot(), gfn_to_hva_memslot_prot(): no memslot is MMIO (not modelled).
        guard let slot = memslots.slot(forGfn: gfn), let hva = memslots.gfnToHva(gfn) else { return -Errno.EFAULT }
        if kind == .accessFlag {
            count(.accessFlagFaults)
            handleAccessFault(gfn)
            return 1
        }
        if kind == .permission { count(.permissionFaults) }
        let ret = userMemAbort(vcpu, faultGfn: gfn, slot: slot, hva: hva, isPerm: kind == .permission, faultLevel: level,
                               write: write, exec: exec)
        return ret == 0 ? 1 : ret
    }

    /// handle_access_fault(): set the Access flag under the read lock (no
    /// invalidation check: the entry's output is not changed).
    func handleAccessFault(_ gfn: Int) {
        kvm.mmuLock.readLock()
        _ = pgt.stage2Mkyoung(gfn)
        kvm.mmuLock.readUnlock()
        // kvm_set_pfn_accessed(): the host page's LRU state, not modelled.
    }

    /// user_mem_abort(): look the VMA up for the mapping size under mmap_lock,
    /// snapshot mmu_invalidate_seq (before mmap_read_unlock() since
    /// 13ec9308a857; after it before: R1), fault the pfn in, then under
    /// mmu_lock held for read check the snapshot and either relax the
    /// permissions of the existing leaf (a permission fault at its granule) or
    /// map (break-before-make). 0: handled, or replay the fault (-EAGAIN).
    func userMemAbort(_ vcpu: ARM64VCPU, faultGfn: Int, slot: Memslot, hva: Int, isPerm: Bool, faultLevel: Int,
                      write: Bool, exec: Bool) -> Int32 {
        let faultGranule = pgt.granulePages(faultLevel)
        let loggingActive = isLogging(slot)
        // kvm_mmu_topup_memory_cache(): before mmap_lock since 13ec9308a857
        // (the model's cache is the table arena, never short before it is exhausted).
        hostMM.mmapLock.readLock()
        // vma_lookup(); get_vma_page_shift(); the PMD case's fallback to pages.
        var forcePTE = loggingActive
        var vmaPages = forcePTE ? 1 : hostMM.vmaPageSize(hva)
        if vmaPages > 1 && !faultSupportsStage2HugeMapping(slot, hva: hva, pages: vmaPages) {
            vmaPages = 1
            forcePTE = true
        }
        var ipa = faultGfn
        if vmaPages == pgt.blockPages { ipa = ipa / vmaPages * vmaPages }      // fault_ipa &= ~(vma_pagesize - 1)
        let gfn = ipa
        var mmuSeq: UInt64 = 0
        if code.mmuSeqSnapshot == .beforeMmapUnlock {
            // Rely on mmap_read_unlock() for an implicit smp_rmb().
            mmuSeq = kvm.invalidate.seq
        }
        hostMM.mmapLock.readUnlock()
        engine.point("user_mem_abort:after_mmap_read_unlock")
        if code.mmuSeqSnapshot == .afterMmapUnlock {
            mmuSeq = kvm.invalidate.seq
            smp_rmb()
        }
        // __gfn_to_pfn_memslot(): may sleep (get_user_pages_unlocked()).
        guard let gfnHva = memslots.gfnToHva(gfn), let got = hostMM.getUserPagesUnlocked(gfnHva, write: write) else {
            return -Errno.EFAULT
        }
        let pfn = got.pfn
        // Only actually map the page as writable if this was a write fault.
        let writable = got.writable && !(loggingActive && !write)
        engine.point("user_mem_abort:after_gfn_to_pfn")
        var ret: Int32 = 0
        // kvm_fault_lock(): the read lock; where unlinked tables are freed at
        // once (pKVM), faults are serialised instead: the write lock, and
        // exclusive walks (at EL2 a shared walk is refused: -EPERM).
        let exclusive = pgt.freeUnlinked == .immediate
        if exclusive { kvm.mmuLock.writeLock() } else { kvm.mmuLock.readLock() }
        if kvm.invalidate.retry(mmuSeq) {
            kvm.oracle?.retryTaken(vcpu: vcpu.id, gfn: faultGfn, snapshotSeq: mmuSeq)
            ret = -Errno.EAGAIN
        } else {
            // A permission fault on a block relaxes the block; no THP on this host.
            if vmaPages == 1 && !forcePTE && isPerm && faultGranule > 1 { vmaPages = faultGranule }
            if isPerm && vmaPages == faultGranule {
                ret = pgt.stage2RelaxPerms(faultGfn, writable: writable, executable: exec)
                if ret == 0 { vcpu.invalidateLocalIPA(faultGfn) }      // __kvm_tlb_flush_vmid_ipa_nsh on this CPU
            } else {
                if vmaPages > 1 { count(.blockMappings) }
                let oracle = kvm.oracle, seq = mmuSeq
                ret = pgt.stage2Map(ipa, size: vmaPages, pfn: pfn, writable: writable, executable: exec, forcePTE: forcePTE,
                                    flags: exclusive ? [.handleFault] : [.handleFault, .shared]) { [self] addr, pages, pte in
                    // Every page the leaf maps, judged at the moment it is
                    // published: its page (I1), the snapshot (I2), its write permission.
                    for i in 0..<pages {
                        oracle?.installingMapping(gfn: addr + i, pte: PTE(pfn: pte.pfn + i, flags: PTE.present | PTE.read | (pte.isWritable ? PTE.write : 0)),
                                                  mmuSeq: seq)
                        installingWritableCheck(gfn: addr + i, pte)
                    }
                }
            }
            // kvm_set_pfn_dirty(), mark_page_dirty_in_slot(): the dirty log is not modelled on arm64 yet.
        }
        if exclusive { kvm.mmuLock.writeUnlock() } else { kvm.mmuLock.readUnlock() }
        kvm.releasePfnClean(pfn)
        if ret == -Errno.EAGAIN { count(.faultRetries); engine.yieldPoint("user_mem_abort:replay") }
        return ret == -Errno.EAGAIN ? 0 : ret
    }

    /// wp-write, at the install: a writable stage-2 leaf only over a page the
    /// host maps writable (the facts a mapping is built from hold when it is
    /// published; a host write-protection since the pfn lookup is an
    /// invalidation the retry check saw).
    func installingWritableCheck(gfn: Int, _ pte: KVMPTE) {
        guard pte.isWritable else { return }
        withoutAccessPoints {
            guard let hva = memslots.gfnToHva(gfn) else { return }
            let host = hostMM.pte(hva)
            if host.isPresent && !host.isWrite {
                engine.report(.wpWrite, "stage-2 leaf for gfn \(gfn) installed writable while the host maps hva \(hex(hva)) read-only")
            }
        }
    }
}
