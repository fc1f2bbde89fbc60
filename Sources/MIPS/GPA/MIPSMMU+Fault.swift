// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec

/// The GPA fault handler of arch/mips/kvm/mmu.c (v4.11): the fast path under
/// `mmu_lock`, then the slow path with the `mmu_notifier_seq` snapshot,
/// gfn_to_pfn_prot() outside the lock, and the mmu_notifier_retry() check under it.
extension MIPSMMU {
    /// _kvm_mips_map_page_fast() (arch/mips/kvm/mmu.c, v4.11): handle the fault
    /// with what the GPA table already has. patched: make an old PTE young; dirty
    /// a clean one if it is writable, else -EFAULT (slow path, which may break
    /// COW). pre-fix (the seed's parent, "KVM: MIPS/MMU: Handle dirty logging on
    /// GPA faults"): dirty a clean PTE on a write fault with no write check (every
    /// pre-fix PTE has `_PAGE_WRITE`, and none is ever made old).
    /// patched hands the page state over as the seed does: kvm_set_pfn_dirty()
    /// under the lock when it dirties, kvm_set_pfn_accessed() after the unlock
    /// when it made the PTE young (also on the -EFAULT way out), holding no
    /// reference to the page. Takes `kvm->mmu_lock`.
    func kvmMipsMapPageFast(_ vcpu: VCPUState, gfn: Int, write: Bool) -> PTE? {
        mmuLock.lock()
        var accessedPfn: Int? = nil                 // pfn_valid: "call kvm_set_pfn_accessed() after unlock"
        let r = kvmMipsMapPageFastLocked(vcpu, gfn: gfn, write: write, accessedPfn: &accessedPfn)
        mmuLock.unlock()
        if let pfn = accessedPfn {
            // spin_unlock() is a preemption point; only worlds that keep page
            // flags switch here (for the others nothing after it can race).
            if kvm.hostMM.pages.pageFlags { engine.point("kvm_mips_map_page_fast:after_unlock") }
            kvm.kvmSetPfnAccessed(pfn)
        }
        return r
    }

    private func kvmMipsMapPageFastLocked(_ vcpu: VCPUState, gfn: Int, write: Bool, accessedPfn: inout Int?) -> PTE? {
        guard let s = table.walk(gfn, cache: nil) else { return nil }
        var p = table.load(slot: s)
        guard p.isPresent else { return nil }
        engine.cover(Self.markFastPath)
        if variant == .preFix {
            if write && !p.isDirty {
                // "Track dirtying of pages": set_pte(ptep, pte_mkdirty(*ptep)); mark_page_dirty().
                oracle.dirtying(gfn: gfn, pte: p)
                p = p.mkdirty()
                table.set(slot: s, p)
                engine.event("vcpu\(vcpu.id): map_page_fast: gfn \(gfn) dirtied")
            }
            return p
        }
        if !p.isYoung {
            p = p.mkyoung()
            table.set(slot: s, p)
            if accessedMarking == .v411 { accessedPfn = p.pfn }     // v6.13: no marking here (4d75f14fc869)
            engine.event("vcpu\(vcpu.id): map_page_fast: gfn \(gfn) made young")
        }
        if write && !p.isDirty {
            if !p.isWrite { return nil }
            oracle.dirtying(gfn: gfn, pte: p)
            p = p.mkdirty()
            table.set(slot: s, p)   // mark_page_dirty()
            kvm.kvmSetPfnDirty(p.pfn)
            engine.event("vcpu\(vcpu.id): map_page_fast: gfn \(gfn) dirtied")
        }
        return p
    }

    /// kvm_mips_map_page() (arch/mips/kvm/mmu.c, v4.11; pre-fix: the seed's
    /// parent): map guest frame `gfn` for a read or write fault and return the new
    /// GPA PTE. Takes `kvm->mmu_lock`; sleeps in gfn_to_pfn_prot() outside it.
    public func kvmMipsMapPage(_ vcpu: VCPUState, cache: MMUMemoryCache, gfn: Int, write: Bool) -> Result<PTE, MapPageError> {
        let kvm = self.kvm                          // one strong copy (see `kvm`)
        if let p = kvmMipsMapPageFast(vcpu, gfn: gfn, write: write) { return .success(p) }
        guard cache.topup(min: cacheMinPages, max: cacheMaxPages) else { return .failure(.enomem) }

        if variant == .preFix { return kvmMipsMapPageSlowPreFix(vcpu, cache: cache, gfn: gfn, write: write) }

        while true {   // retry:
            if engine.stopRequested { return .failure(.eintr) }
            let seqNow = kvm.mmuNotifierSeq
            let mmuSeq = mmuSeqType.snapshot(seqNow)
            smp_rmb()
            engine.event("vcpu\(vcpu.id): map_page slow path: gfn \(gfn), mmu_notifier_seq snapshot \(mmuSeq)")
            // gfn_to_pfn_prot(): may sleep, may break COW (which fires the notifiers).
            guard let got = kvm.gfnToPfnProt(gfn, writeFault: write) else { return .failure(.efault) }
            let writeable = got.writable
            engine.event("vcpu\(vcpu.id): gfn_to_pfn_prot(gfn \(gfn)) = pfn \(got.pfn)\(writeable ? " writable" : "")")
            engine.point("kvm_mips_map_page:after_gfn_to_pfn_prot")

            mmuLock.lock()
            if variant != .noRetry && kvm.mmuNotifierRetry(mmuSeq) {
                engine.cover(Self.markRetry)
                oracle.retryTaken(vcpu: vcpu.id, snapshotSeq: seqNow)
                engine.event("vcpu\(vcpu.id): mmu_notifier_retry(seq \(mmuSeq)) -> retry")
                mmuLock.unlock()
                kvm.releasePfnClean(got.pfn)
                engine.yieldPoint("kvm_mips_map_page:retry")
                continue
            }
            guard let s = table.walk(gfn, cache: cache) else {
                mmuLock.unlock()
                kvm.releasePfnClean(got.pfn)
                return .failure(.enomem)
            }
            var prot = PTE.present | PTE.read | PTE.young
            if writeable {
                prot |= PTE.write
                if write {
                    prot |= PTE.dirty            // __WRITEABLE; mark_page_dirty()
                    kvm.kvmSetPfnDirty(got.pfn)
                }
            }
            let entry = PTE(pfn: got.pfn, flags: prot)
            oracle.installingMapping(gfn: gfn, pte: entry, mmuSeq: mmuSeq)
            table.set(slot: s, entry)
            engine.event("vcpu\(vcpu.id): map_page: set_pte(gfn \(gfn), \(entry))")
            engine.point("kvm_mips_map_page:before_unlock")
            if accessedMarking == .v613 {
                // 13d66fddaaa4: the page marked accessed and released, then unlock.
                kvm.kvmSetPfnAccessed(got.pfn)
                kvm.releasePfnClean(got.pfn)
                mmuLock.unlock()
                return .success(entry)
            }
            mmuLock.unlock()
            // A preemption point (see the fast path); only worlds that keep page flags switch here.
            if kvm.hostMM.pages.pageFlags { engine.point("kvm_mips_map_page:after_unlock") }
            kvm.releasePfnClean(got.pfn)        // kvm_release_pfn_clean(pfn);
            kvm.kvmSetPfnAccessed(got.pfn)      // kvm_set_pfn_accessed(pfn): after the reference is gone
            return .success(entry)
        }
    }

    /// The slow path of kvm_mips_map_page() as the seed's parent had it
    /// (pre-fix; arch/mips/kvm/mmu.c of the v4.11 series before 411740f5422a):
    /// `gfn_to_pfn()`, then under `kvm->mmu_lock` (taken here) the PTE set with
    /// no notifier check, and the reference of a replaced PTE dropped.
    func kvmMipsMapPageSlowPreFix(_ vcpu: VCPUState, cache: MMUMemoryCache, gfn: Int, write: Bool) -> Result<PTE, MapPageError> {
        // gfn_to_pfn(): a write fault (COW broken up front); the reference is
        // kept while the GPA PTE maps the page, dropped when a later fault
        // replaces the PTE or kvm_mips_flush_gpa_pte() clears it.
        guard let got = kvm.gfnToPfn(gfn) else { return .failure(.efault) }
        engine.point("kvm_mips_map_page:after_gfn_to_pfn")
        mmuLock.lock()
        defer { mmuLock.unlock() }
        guard let s = table.walk(gfn, cache: cache) else { kvm.releasePfnClean(got.pfn); return .failure(.enomem) }
        // prot_bits = __READABLE | _PAGE_PRESENT | _PAGE_WRITE | _page_cachable_default;
        // if (write_fault) { prot_bits |= __WRITEABLE; mark_page_dirty(kvm, gfn); }
        var prot = PTE.present | PTE.read | PTE.young | PTE.write
        if write { prot |= PTE.dirty }
        let entry = PTE(pfn: got.pfn, flags: prot)
        oracle.installingMapping(gfn: gfn, pte: entry, mmuSeq: nil)
        let old = table.load(slot: s)
        table.set(slot: s, entry)
        engine.event("vcpu\(vcpu.id): map_page: gfn \(gfn) -> \(entry) (page pinned)")
        if old.isPresent {
            // if (pte_present(old_pte)) kvm_release_pfn_clean(pte_pfn(old_pte));
            kvm.releasePfnClean(old.pfn)
            engine.event("vcpu\(vcpu.id): map_page: replaced \(old): kvm_release_pfn_clean(pfn \(old.pfn))")
        }
        return .success(entry)
    }
}
