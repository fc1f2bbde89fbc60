// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// Error returns of the fault path.
public enum MapPageError: Error, Equatable, Sendable {
    /// -EFAULT: no memslot, or a write the host does not allow (handled as MMIO).
    case efault
    /// -ENOMEM: the page-table memory cache could not be topped up.
    case enomem
    /// -EINTR: the run is stopping (the model's stand-in for a pending signal).
    case eintr
}

/// KVM/MIPS GPA MMU (arch/mips/kvm/mmu.c after seed 004, and its pre-fix form).
///
/// Owns the arch side of the MMU notifier protocol (`KVMArchMMU`) and the GPA
/// fault handler. Every function here that touches the GPA table requires
/// `kvm->mmu_lock`, as the kernel's does, except `kvmMipsMapPage`, which takes it.
public final class MIPSMMU: KVMArchMMU, @unchecked Sendable {
    /// Coverage marks: the fast path found a PTE, the slow path retried,
    /// change_pte installed a PTE.
    public static let markFastPath = CoverageMark("mips: kvm_mips_map_page fast path")
    public static let markRetry = CoverageMark("mips: kvm_mips_map_page mmu_notifier_retry taken")
    public static let markSetSpte = CoverageMark("mips: kvm_set_spte_hva installs a PTE")
    /// unowned(unsafe): the world keeps the KVM alive as long as its arch MMU (and a
    /// checked unowned reference costs an atomic retain per use on the fault path).
    public unowned(unsafe) let kvm: KVM
    public let variant: SyncMMUVariant
    /// The type of the fault's `mmu_seq` snapshot (`unsigned long` on MIPS; the
    /// mmu-seq-wrap scenario carries x86's old `int` on this fault path).
    public var mmuSeqType = MMUSeqSnapshotType.unsignedLong
    /// `kvm.engine` and `kvm.gpaTable`, kept here: fetching them through `kvm` on
    /// every fault retains and releases objects every vcpu shares, and their
    /// reference counts then bounce between cores.
    let engine: SimEngine
    let table: PageTable
    /// KVM_MMU_CACHE_MIN_PAGES (3-level tables: 2) and KVM_NR_MEM_OBJS.
    let cacheMinPages: Int
    let cacheMaxPages = 4

    public init(kvm: KVM, variant: SyncMMUVariant) {
        self.kvm = kvm
        self.variant = variant
        engine = kvm.engine
        table = kvm.gpaTable
        cacheMinPages = kvm.gpaTable.levels - 1
        kvm.arch = self
        kvm.handlesChangePTE = variant.handlesChangePTE
        if variant.registersMMUNotifier { kvm.registerMMUNotifier() }
    }

    // MARK: - range helpers

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

    /// kvm_mips_flush_gpa_pt(kvm, start_gfn, end_gfn): `end_gfn` inclusive.
    /// mmu_lock held. Unlinked tables are freed after an RCU grace period.
    @discardableResult
    public func kvmMipsFlushGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        table.flushRange(startGfn, min(endGfn, table.span - 1), clearCoveredLeaves: true)
    }

    /// kvm_mips_mkold_gpa_pt(). mmu_lock held.
    func kvmMipsMkoldGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        table.rangeOp(startGfn, min(endGfn, table.span - 1)) { $0.mkold() }
    }

    /// kvm_mips_mkclean_gpa_pt(). mmu_lock held.
    public func kvmMipsMkcleanGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        table.rangeOp(startGfn, min(endGfn, table.span - 1)) { $0.mkclean() }
    }

    /// kvm_mips_callbacks->flush_shadow_all(): flush every derived mapping (here the
    /// host TLBs, through KVM_REQ_TLB_FLUSH on every vcpu).
    func flushShadowAll() { kvm.flushRemoteTLBs() }

    // MARK: - KVMArchMMU (mmu_lock held)

    /// kvm_unmap_hva_range(): flush the GPA PTEs, then all derived mappings; returns
    /// 0 since it flushed itself.
    public func unmapHvaRange(_ range: Range<Int>) -> Bool {
        _ = handleHvaToGpa(range) { gfn, gfnEnd, _ in
            engine.event("kvm_unmap_hva_range: kvm_mips_flush_gpa_pt(gfn \(gfn) ... \(gfnEnd))")
            kvmMipsFlushGpaPt(gfn, gfnEnd)
            return true
        }
        engine.point("kvm_unmap_hva_range:before_flush_shadow_all")
        flushShadowAll()
        return false
    }

    /// kvm_set_spte_hva() with kvm_set_spte_handler().
    public func setSpteHva(_ hva: Int, _ pte: PTE) {
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
        handleHvaToGpa(range) { gfn, gfnEnd, _ in kvmMipsMkoldGpaPt(gfn, gfnEnd) }
    }

    /// kvm_test_age_hva(). As written in the seed it calls
    /// `handle_hva_to_gpa(kvm, hva, hva, ...)`: an empty range, so no memslot
    /// matches and it always answers "not young". The model keeps that.
    public func testAgeHva(_ hva: Int) -> Bool {
        handleHvaToGpa(hva..<hva) { gfn, _, _ in
            guard let s = table.walk(gfn, cache: nil) else { return false }
            return table.load(slot: s).isYoung
        }
    }

    // MARK: - GPA faults

    /// _kvm_mips_map_page_fast(): handle the fault with what the GPA table already
    /// has, under mmu_lock. patched: make an old PTE young; dirty a clean one if it
    /// is writable, else -EFAULT (slow path, which may break COW). pre-fix: only an
    /// existing PTE (all PTEs are young, dirty and writable there).
    func mapPageFast(_ vcpu: VCPUState, gfn: Int, write: Bool) -> PTE? {
        kvm.mmuLock.lock()
        defer { kvm.mmuLock.unlock() }
        guard let s = table.walk(gfn, cache: nil) else { return nil }
        var p = table.load(slot: s)
        guard p.isPresent else { return nil }
        engine.cover(Self.markFastPath)
        if variant == .preFix { return p }
        if !p.isYoung {
            p = p.mkyoung()
            table.set(slot: s, p)
            engine.event("vcpu\(vcpu.id): map_page_fast: gfn \(gfn) made young")
        }
        if write && !p.isDirty {
            if !p.isWrite { return nil }
            kvm.oracle.dirtying(gfn: gfn, pte: p)
            p = p.mkdirty()
            table.set(slot: s, p)   // mark_page_dirty(), kvm_set_pfn_dirty()
            engine.event("vcpu\(vcpu.id): map_page_fast: gfn \(gfn) dirtied")
        }
        return p
    }

    /// kvm_mips_map_page(): map guest frame `gfn` for a read or write fault and return
    /// the new GPA PTE. Takes mmu_lock; sleeps in gfn_to_pfn_prot() outside it.
    public func kvmMipsMapPage(_ vcpu: VCPUState, cache: MMUMemoryCache, gfn: Int, write: Bool) -> Result<PTE, MapPageError> {
        if let p = mapPageFast(vcpu, gfn: gfn, write: write) { return .success(p) }
        guard cache.topup(min: cacheMinPages, max: cacheMaxPages) else { return .failure(.enomem) }
        guard let hva = kvm.memslots.gfnToHva(gfn) else { return .failure(.efault) }

        if variant == .preFix {
            // gfn_to_pfn(): a write fault, the reference is kept (the page stays pinned).
            guard let got = kvm.hostMM.getUserPage(hva, write: true) else { return .failure(.efault) }
            engine.point("kvm_mips_map_page:after_gfn_to_pfn")
            kvm.mmuLock.lock()
            defer { kvm.mmuLock.unlock() }
            guard let s = table.walk(gfn, cache: cache) else { kvm.hostMM.pages.put(got.pfn); return .failure(.enomem) }
            let entry = PTE(pfn: got.pfn, flags: PTE.present | PTE.read | PTE.write | PTE.dirty | PTE.young)
            kvm.oracle.installingGPAPTE(gfn: gfn, pte: entry, mmuSeq: nil)
            table.set(slot: s, entry)
            engine.event("vcpu\(vcpu.id): map_page: gfn \(gfn) -> \(entry) (page pinned)")
            return .success(entry)
        }

        while true {   // retry:
            if engine.stopRequested { return .failure(.eintr) }
            let seqNow = kvm.mmuNotifierSeq
            let mmuSeq = mmuSeqType.snapshot(seqNow)
            smp_rmb()
            engine.event("vcpu\(vcpu.id): map_page slow path: gfn \(gfn), mmu_notifier_seq snapshot \(mmuSeq)")
            // gfn_to_pfn_prot(): may sleep, may break COW (which fires the notifiers).
            guard let got = kvm.hostMM.getUserPage(hva, write: write) else { return .failure(.efault) }
            let writeable = got.writable
            engine.event("vcpu\(vcpu.id): gfn_to_pfn_prot(gfn \(gfn)) = pfn \(got.pfn)\(writeable ? " writable" : "")")
            engine.point("kvm_mips_map_page:after_gfn_to_pfn_prot")

            kvm.mmuLock.lock()
            if variant != .noRetry && kvm.mmuNotifierRetry(mmuSeq) {
                engine.cover(Self.markRetry)
                kvm.oracle.retryTaken(vcpu: vcpu.id, snapshotSeq: seqNow)
                engine.event("vcpu\(vcpu.id): mmu_notifier_retry(seq \(mmuSeq)) -> retry")
                kvm.mmuLock.unlock()
                kvm.hostMM.pages.put(got.pfn)   // kvm_release_pfn_clean()
                engine.yieldPoint("kvm_mips_map_page:retry")
                continue
            }
            guard let s = table.walk(gfn, cache: cache) else {
                kvm.mmuLock.unlock()
                kvm.hostMM.pages.put(got.pfn)
                return .failure(.enomem)
            }
            var prot = PTE.present | PTE.read | PTE.young
            if writeable {
                prot |= PTE.write
                if write { prot |= PTE.dirty }   // mark_page_dirty(), kvm_set_pfn_dirty()
            }
            let entry = PTE(pfn: got.pfn, flags: prot)
            kvm.oracle.installingGPAPTE(gfn: gfn, pte: entry, mmuSeq: mmuSeq)
            table.set(slot: s, entry)
            engine.event("vcpu\(vcpu.id): map_page: set_pte(gfn \(gfn), \(entry))")
            engine.point("kvm_mips_map_page:before_unlock")
            kvm.mmuLock.unlock()
            kvm.hostMM.pages.put(got.pfn)       // kvm_release_pfn_clean(); kvm_set_pfn_accessed()
            return .success(entry)
        }
    }
}
