// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The VMM process's address space (`struct mm_struct`) over the guest RAM it maps,
/// with the host memory-management events that fire MMU notifiers.
///
/// State per host virtual page: the host PTE (present, write, dirty, young, pfn),
/// whether the VMA allows writes (mprotect), and, for a page not present, where its
/// content is: on "disk" (a saved content word) or still in the swap cache (a pfn
/// that someone else's reference kept alive).
///
/// Every event follows the kernel's order: `mmu_notifier_invalidate_range_start`,
/// then the host PTE change under `page_table_lock`, then the pages are released,
/// then `mmu_notifier_invalidate_range_end`. Scheduling points sit between those
/// steps, where another CPU can run.
///
/// Locking: `page_table_lock` (a mutex with no scheduling point inside) guards
/// every change of host PTEs and swap state; readers (oracles) load atomics.
public final class HostMM: @unchecked Sendable {
    public let engine: SimEngine
    public let pages: HostPages
    /// First host virtual page of the region (the VMM's guest RAM mapping).
    public let base: Int
    public let count: Int
    private let hostPTE: AtomicWords
    private let vmaWritable: AtomicWords
    private let swapContent: AtomicWords
    /// 0: nothing swapped; 1: content on disk (`swapContent`); else pfn + 2 of a
    /// page kept in the swap cache by an extra reference.
    private let swapState: AtomicWords
    /// The page table lock (`pte_lockptr()`); a modelled spinlock because
    /// `set_pte_at_notify()` calls `change_pte` notifiers, which take `mmu_lock`,
    /// while holding it.
    private let pageTableLock: SpinLock
    /// Registered secondary MMUs. Unowned: a subscriber (KVM) owns the HostMM, not
    /// the other way round. Registered before any actor runs (`register`),
    /// read-only after: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var subscriberRefs: [Unowned] = []
    private struct Unowned { unowned(unsafe) let s: MMUNotifierSubscriber }
    /// The oracle watching host mm events. Unowned: the KVM that owns the oracle
    /// sets it and clears it when it goes away (as `kvm_destroy_vm()` calls
    /// `mmu_notifier_unregister()`). Not `weak`: a weak reference gives the oracle a
    /// side table, and every retain of it on the guest-access path then takes the
    /// runtime's slow, contended path.
    public unowned(unsafe) var observer: HostMMObserver?

    public init(engine: SimEngine, pages: HostPages, base: Int, count: Int) {
        self.engine = engine
        self.pages = pages
        self.base = base
        self.count = count
        hostPTE = AtomicWords(count: count)
        vmaWritable = AtomicWords(count: count, initial: 1)
        swapContent = AtomicWords(count: count)
        swapState = AtomicWords(count: count)
        pageTableLock = SpinLock("spin_lock(pte_lockptr)", engine: engine)
    }

    /// mmu_notifier_register(). Call before any actor runs.
    public func register(_ s: MMUNotifierSubscriber) { subscriberRefs.append(Unowned(s: s)) }

    deinit { hostPTE.free(); vmaWritable.free(); swapContent.free(); swapState.free() }

    public var range: Range<Int> { base..<(base + count) }
    @inline(__always) func idx(_ hva: Int) -> Int { hva - base }

    /// pte_offset_map_lock() ... pte_unmap_unlock().
    @inline(__always)
    private func withPageTableLock<R>(_ body: () -> R) -> R { pageTableLock.withLock { body() } }

    /// The host PTE of `hva` (oracle and test view).
    public func pte(_ hva: Int) -> PTE { PTE(raw: hostPTE.load(idx(hva))) }

    /// The pfn the host considers the current page of `hva`: the mapped page, or the
    /// page still in the swap cache. nil when the content is only on disk or the
    /// page was never touched.
    public func currentPfn(_ hva: Int) -> Int? {
        let p = pte(hva)
        if p.isPresent { return p.pfn }
        let s = swapState.load(idx(hva))
        return s >= 2 ? Int(s - 2) : nil
    }

    // MARK: - notifier fan-out (mm/mmu_notifier.c)

    func invalidateRangeStart(_ r: Range<Int>) {
        engine.event("host: mmu_notifier_invalidate_range_start(hva \(hex(r.lowerBound))..<\(hex(r.upperBound)))")
        for ref in subscriberRefs { ref.s.invalidateRangeStart(r) }
        observer?.invalidateRangeStartReturned(r)
    }

    func invalidateRangeEnd(_ r: Range<Int>) {
        engine.event("host: mmu_notifier_invalidate_range_end(hva \(hex(r.lowerBound))..<\(hex(r.upperBound)))")
        for ref in subscriberRefs { ref.s.invalidateRangeEnd(r) }
    }

    func changePTE(_ hva: Int, _ p: PTE) {
        engine.event("host: mmu_notifier_change_pte(hva \(hex(hva)), \(p))")
        for ref in subscriberRefs { ref.s.changePTE(hva: hva, pte: p) }
    }

    // MARK: - faults (mm/memory.c, mm/gup.c)

    /// get_user_pages() of one page, as `hva_to_pfn()` calls it for
    /// `gfn_to_pfn_prot()`: faults the page in (first touch, swap-in), breaks COW
    /// for a write, takes a reference. Returns the pfn and whether the host
    /// mapping is writable, or nil if the access is not allowed (EFAULT).
    /// May sleep: a scheduling point.
    public func getUserPage(_ hva: Int, write: Bool) -> (pfn: Int, writable: Bool)? {
        engine.point("get_user_pages")
        while true {
            if write && vmaWritable.load(idx(hva)) == 0 { return nil }
            var needCOW: PTE? = nil
            let got: (Int, Bool)? = withPageTableLock {
                guard let p = faultInLocked(hva) else { return nil }
                if write && !p.isWrite {
                    if pages.refs(p.pfn) > 1 { needCOW = p; return nil }
                    // do_wp_page() reuse: the only user may write in place.
                    hostPTE.store(idx(hva), p.mkwrite().mkdirty().raw)
                }
                pages.get(p.pfn)
                // hva_to_pfn(): writable when the host PTE allows writes (the
                // FOLL_WRITE gup, or __get_user_pages_fast(write=1) for a read fault).
                let now = pte(hva)
                return (now.pfn, now.isWrite)
            }
            if let got { return got }
            if let orig = needCOW { breakCOW(hva, orig: orig); continue }
            return nil
        }
    }

    /// Makes the page present (page_table_lock held): first touch allocates a zero
    /// page, a swapped page is read back (or taken from the swap cache).
    private func faultInLocked(_ hva: Int) -> PTE? {
        let i = idx(hva)
        let p = PTE(raw: hostPTE.load(i))
        if p.isPresent { return p }
        let s = swapState.load(i)
        let pfn: Int
        if s >= 2 {
            pfn = Int(s - 2)                 // still in the swap cache: map it again
        } else {
            guard let fresh = pages.alloc() else { return nil }
            pfn = fresh
            if s == 1 { pages.content.store(pfn, swapContent.load(i)) }
        }
        swapState.store(i, 0)
        let writable = vmaWritable.load(i) == 1
        let np = PTE(pfn: pfn, flags: PTE.present | PTE.read | PTE.young | (writable && pages.refs(pfn) == 1 ? PTE.write : 0))
        hostPTE.store(i, np.raw)
        engine.event("host: fault-in hva \(hex(hva)) -> \(np)")
        return np
    }

    /// Host touch of a page (the VMM or a host thread reading or writing guest RAM).
    public func touch(_ hva: Int, write: Bool) {
        guard let r = getUserPage(hva, write: write) else { return }
        pages.put(r.pfn)
    }

    /// wp_page_copy(): a write fault on a shared (KSM or COW) page whose PTE was
    /// `orig` copies it. In the kernel's order: allocate and copy, then
    /// invalidate_range_start, then under the PTL check `pte_same(orig)` and
    /// `set_pte_at_notify()` (change_pte notifiers, then the PTE), then release the
    /// old page, then invalidate_range_end.
    public func breakCOW(_ hva: Int, orig: PTE) {
        guard let newPfn = pages.alloc() else { return }
        pages.content.store(newPfn, pages.content.load(orig.pfn))   // cow_user_page()
        let r = hva..<(hva + 1)
        invalidateRangeStart(r)
        engine.point("wp_page_copy:after_invalidate_range_start")
        let newPTE = PTE(pfn: newPfn, flags: PTE.present | PTE.read | PTE.write | PTE.dirty | PTE.young)
        let replaced: Bool = withPageTableLock {
            guard pte(hva) == orig else { return false }           // pte_same() failed: someone else changed it
            changePTE(hva, newPTE)                                   // set_pte_at_notify(): notifiers first,
            hostPTE.store(idx(hva), newPTE.raw)                      // then the PTE
            return true
        }
        if replaced {
            engine.event("host: COW break hva \(hex(hva)): pfn \(orig.pfn) -> \(newPfn)")
            pages.put(orig.pfn)
        } else {
            pages.put(newPfn)
        }
        engine.point("wp_page_copy:before_invalidate_range_end")
        invalidateRangeEnd(r)
    }

    /// A host write to `hva` (the VMM touching guest RAM): faults in, breaking COW.
    public func hostWrite(_ hva: Int) { touch(hva, write: true) }

    // MARK: - host mm events

    /// MADV_DONTNEED / munmap of guest RAM (balloon inflation, memory hot-unplug):
    /// zap the pages; the next touch gets fresh zero pages.
    public func zap(_ r: Range<Int>) {
        invalidateRangeStart(r)
        engine.point("zap_page_range:after_invalidate_range_start")
        var toPut: [Int] = []
        withPageTableLock {
            for h in r {
                let p = pte(h)
                if p.isPresent { toPut.append(p.pfn) }
                hostPTE.store(idx(h), 0)
                let s = swapState.load(idx(h))
                if s >= 2 { toPut.append(Int(s - 2)) }
                swapState.store(idx(h), 0)
            }
        }
        for h in r { observer?.contentDiscarded(hva: h) }   // after the host PTEs are gone
        engine.event("host: zapped hva \(hex(r.lowerBound))..<\(hex(r.upperBound)), releasing pfns \(toPut)")
        for pfn in toPut { pages.put(pfn) }
        engine.point("zap_page_range:before_invalidate_range_end")
        invalidateRangeEnd(r)
    }

    /// Page reclaim of one page (shrink_page_list -> try_to_unmap -> pageout): the
    /// page leaves the host page table; if nobody else holds a reference its content
    /// goes to swap and it is freed, otherwise it stays in the swap cache.
    public func swapOut(_ hva: Int) {
        let victim = pte(hva)                // the page reclaim picked from the LRU
        guard victim.isPresent else { return }
        let r = hva..<(hva + 1)
        invalidateRangeStart(r)
        engine.point("try_to_unmap:after_invalidate_range_start")
        var freedPfn: Int? = nil
        withPageTableLock {
            let p = pte(hva)
            guard p.isPresent, p.pfn == victim.pfn else { return }   // page_vma_mapped_walk()
            hostPTE.store(idx(hva), 0)
            if pages.refs(p.pfn) > 1 {
                swapState.store(idx(hva), UInt64(p.pfn + 2))   // __remove_mapping fails: kept in swap cache
            } else {
                swapContent.store(idx(hva), pages.content.load(p.pfn))
                swapState.store(idx(hva), 1)
                freedPfn = p.pfn
            }
        }
        if let pfn = freedPfn {
            engine.event("host: swapped out hva \(hex(hva)), pfn \(pfn) freed")
            pages.put(pfn)
        } else {
            engine.event("host: hva \(hex(hva)) unmapped for swap, page kept in swap cache (extra reference)")
        }
        engine.point("try_to_unmap:before_invalidate_range_end")
        invalidateRangeEnd(r)
    }

    /// Swap-in by a host touch (do_swap_page).
    public func swapIn(_ hva: Int) { touch(hva, write: false) }

    /// KSM (mm/ksm.c): merge two pages with equal content into one write-protected
    /// page. write_protect_page() on both, then replace_page() maps the second hva
    /// to the first page. Pages with extra references (page_count() above the
    /// mapping's) are skipped, as `write_protect_page()` does.
    public func ksmMerge(_ a: Int, _ b: Int) {
        guard a != b else { return }
        let pa = pte(a), pb = pte(b)
        guard pa.isPresent, pb.isPresent, pa.pfn != pb.pfn,
              pages.refs(pa.pfn) == 1, pages.refs(pb.pfn) == 1,
              pages.content.load(pa.pfn) == pages.content.load(pb.pfn) else { return }
        for h in [a, b] {   // write_protect_page()
            let r = h..<(h + 1)
            invalidateRangeStart(r)
            engine.point("write_protect_page:after_invalidate_range_start")
            withPageTableLock { let p = pte(h); if p.isPresent { hostPTE.store(idx(h), p.wrprotect().raw) } }
            invalidateRangeEnd(r)
        }
        // replace_page(): b now maps a's page, read-only.
        let r = b..<(b + 1)
        invalidateRangeStart(r)
        engine.point("replace_page:after_invalidate_range_start")
        var merged = false
        var old = PTE.none
        var kp = PTE.none
        withPageTableLock {
            let ka = pte(a)
            old = pte(b)
            guard ka.isPresent, old.isPresent, !ka.isWrite, !old.isWrite,
                  pages.refs(old.pfn) == 1,
                  pages.content.load(ka.pfn) == pages.content.load(old.pfn) else { return }
            pages.get(ka.pfn)
            kp = PTE(pfn: ka.pfn, flags: PTE.present | PTE.read | PTE.young)
            changePTE(b, kp)                 // set_pte_at_notify()
            hostPTE.store(idx(b), kp.raw)
            merged = true
        }
        if merged {
            engine.event("host: KSM merged hva \(hex(b)) (pfn \(old.pfn)) into pfn \(kp.pfn)")
            pages.put(old.pfn)
        }
        invalidateRangeEnd(r)
    }

    /// mprotect(): make the range read-only or writable again (change_protection).
    public func mprotect(_ r: Range<Int>, writable: Bool) {
        invalidateRangeStart(r)
        engine.point("change_protection:after_invalidate_range_start")
        withPageTableLock {
            for h in r {
                vmaWritable.store(idx(h), writable ? 1 : 0)
                let p = pte(h)
                if p.isPresent && !writable { hostPTE.store(idx(h), p.wrprotect().raw) }
            }
        }
        engine.event("host: mprotect hva \(hex(r.lowerBound))..<\(hex(r.upperBound)) \(writable ? "read-write" : "read-only")")
        invalidateRangeEnd(r)
    }

    /// Idle page tracking (mm/page_idle.c): clear the young bit of the host PTEs and
    /// of every secondary MMU; `flush` selects clear_flush_young over clear_young.
    /// Returns whether any mapping was young.
    @discardableResult
    public func clearYoung(_ r: Range<Int>, flush: Bool) -> Bool {
        var young = false
        withPageTableLock {
            for h in r { let p = pte(h); if p.isPresent && p.isYoung { young = true; hostPTE.store(idx(h), p.mkold().raw) } }
        }
        for ref in subscriberRefs { young = (flush ? ref.s.clearFlushYoung(r) : ref.s.clearYoung(r)) || young }
        engine.event("host: \(flush ? "clear_flush_young" : "clear_young")(hva \(hex(r.lowerBound))..<\(hex(r.upperBound))) -> \(young)")
        return young
    }

    /// mmu_notifier_test_young() plus the host PTE.
    public func testYoung(_ hva: Int) -> Bool {
        var young = pte(hva).isYoung
        for ref in subscriberRefs { young = ref.s.testYoung(hva: hva) || young }
        return young
    }
}
