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
/// Facets: this file holds the state and the fault path (get_user_pages);
/// `HostMM+Events.swift` the events.
///
/// Locking: `page_table_lock` (a modelled spinlock with no scheduling point
/// inside) guards every change of host PTEs and swap state; readers (oracles)
/// load atomics.
public final class HostMM: @unchecked Sendable {
    public let engine: SimEngine
    public let pages: HostPages
    /// First host virtual page of the region (the VMM's guest RAM mapping).
    public let base: Int
    public let count: Int
    let hostPTE: AtomicWords
    let vmaWritable: AtomicWords
    let swapContent: AtomicWords
    /// 0: nothing swapped; 1: content on disk (`swapContent`); else pfn + 2 of a
    /// page kept in the swap cache by an extra reference.
    let swapState: AtomicWords
    /// With `HostMMDetail.pageDirty`: 1 while `swapContent` holds a copy the
    /// hva's page may be dropped for when it is clean (the page is, or was just
    /// read back into, the swap cache and nothing dirtied it since); 0 once the
    /// copy is freed (reuse_swap_page(), a COW, a zap).
    let swapCopyValid: AtomicWords
    /// With `HostMMDetail.sharedFile`: 1 while the page cache page of this
    /// file offset is under writeback (PG_writeback: set by ->writepage()
    /// after clear_page_dirty_for_io(), cleared by end_page_writeback() when
    /// the I/O, which reads the page, completes). With `sharedFile` the other
    /// words mean: `swapState` pfn + 2 for a page in the page cache that no
    /// PTE maps (0 or 1: not cached, the file holds the content),
    /// `swapContent` the file's copy on disk.
    let underWriteback: AtomicWords
    /// 1 from the moment v4.11's page_mkclean_one() write-protects `hva`'s
    /// PTE until its mmu_notifier_invalidate_page() has returned: the window
    /// the kernel leaves by notifying after the PTE change, in which a
    /// secondary MMU may still write through a mapping it made before
    /// (kvm_mmu_notifier_invalidate_page(): "If instead the kvm page fault
    /// establishes the spte before ->invalidate_page runs, kvm_unmap_hva will
    /// release it before returning"). Oracle bookkeeping, not kernel state.
    let invalidatePagePending: AtomicWords
    /// The page table lock (`pte_lockptr()`); a modelled spinlock because
    /// `set_pte_at_notify()` calls `change_pte` notifiers, which take `mmu_lock`,
    /// while holding it.
    let pageTableLock: SpinLock
    /// Registered secondary MMUs. Unowned: a subscriber (KVM) owns the HostMM, not
    /// the other way round. Registered before any actor runs (`register`),
    /// read-only after: no dynamic exclusivity checks.
    @exclusivity(unchecked) var subscriberRefs: [Unowned] = []
    struct Unowned { unowned(unsafe) let s: MMUNotifierSubscriber }
    /// The oracle watching host mm events. Unowned: the KVM that owns the oracle
    /// sets it and clears it when it goes away (as `kvm_destroy_vm()` calls
    /// `mmu_notifier_unregister()`). Not `weak`: a weak reference gives the oracle a
    /// side table, and every retain of it on the guest-access path then takes the
    /// runtime's slow, contended path.
    public unowned(unsafe) var observer: HostMMObserver?

    /// Pages per huge page when the region is hugetlbfs-backed (0: 4K anonymous
    /// memory). A hugetlb page is mapped whole (every PTE of its block at once,
    /// standing for the one PMD), zapped whole, never swapped, merged by KSM or
    /// copied on write (hugetlb_wp() reuses a page mapped once).
    public let hugeBlock: Int
    /// Per huge-page block of the region: 1 while the VMA over it is hugetlbfs
    /// (`is_vm_hugetlb_page(vma)`), 0 once `remap` put 4K anonymous memory
    /// there. Changed only with `mmapLock` held for write and inside
    /// `page_table_lock` (the model's host faults take the latter, not
    /// mmap_lock); a model record (not an access-level point).
    let vmaHugetlb: AtomicWords
    /// mm->mmap_lock (an rw_semaphore; modelled by the queued rwlock, which
    /// has its reader/writer exclusion): `remap` holds it for write, VMA
    /// lookups (`vmaLookup`) and `getUserPagesUnlocked` for read.
    public let mmapLock: RWLock
    /// Set (before any actor runs) by a world whose VMM changes VMAs (`remap`):
    /// then the host paths that depend on the VMA take mmap_lock as the kernel
    /// does (madvise()/munmap() for read, mprotect() for write). Worlds whose
    /// VMAs never change skip it: it would only add scheduling points no race uses.
    public var vmasChange = false
    /// Which kernel's notifier calls reclaim makes (`HostMMForm`): v4.13 (range
    /// start/end around try_to_unmap_one()) unless a world sets v4.11
    /// (`.invalidate_page` under the page table lock). Set before any actor runs.
    public var form: HostMMForm = .v413
    /// The parts of the host mm this world models (`HostMMDetail`: the zero
    /// page, KSM's change_pte); none unless a world asks. Set before any actor runs.
    public var detail: HostMMDetail = [] {
        didSet {
            precondition(!detail.contains(.zeroPage) || pages.zeroPfn != nil, "the zero page needs HostPages(zeroPage: true)")
            precondition(!detail.contains(.pageDirty) || pages.pageFlags, "page dirty state needs HostPages(pageFlags: true)")
            precondition(!detail.contains(.sharedFile) || (detail.contains(.pageDirty) && !detail.contains(.zeroPage) && hugeBlock == 0),
                         "a shared file mapping needs the page dirty state, has no zero page and no hugetlb blocks")
            precondition(!detail.contains(.swapInMapsWritable) || (detail.contains(.pageDirty) && !detail.contains(.sharedFile)),
                         "a writable swap-in needs the page dirty state of anonymous memory")
        }
    }

    /// A planted bug, for tests only (no kernel has it): page_mkclean_one()
    /// write-protects and cleans the PTE but calls no notifier (neither v4.11's
    /// invalidate_page nor v4.13's range start/end), so a secondary MMU keeps
    /// its writable mapping across writeback. Set before any actor runs.
    public var plantedMkcleanSkipsNotifier = false

    public init(engine: SimEngine, pages: HostPages, base: Int, count: Int, hugeBlock: Int = 0) {
        precondition(hugeBlock == 0 || (base % hugeBlock == 0 && count % hugeBlock == 0 && pages.blockPages == hugeBlock))
        self.engine = engine
        self.pages = pages
        self.base = base
        self.count = count
        self.hugeBlock = hugeBlock
        vmaHugetlb = AtomicWords(count: hugeBlock > 0 ? count / hugeBlock : 1, initial: hugeBlock > 0 ? 1 : 0)
        mmapLock = RWLock(read: "mmap_read_lock(mm)", write: "mmap_write_lock(mm)", lockName: "mm->mmap_lock",
                          waitLockPoint: "mmap_lock:wait", engine: engine)
        hostPTE = AtomicWords(count: count, kernel: true)
        vmaWritable = AtomicWords(count: count, initial: 1, kernel: true)
        swapContent = AtomicWords(count: count, kernel: true)
        swapState = AtomicWords(count: count, kernel: true)
        swapCopyValid = AtomicWords(count: count, kernel: true)
        underWriteback = AtomicWords(count: count, kernel: true)
        invalidatePagePending = AtomicWords(count: count)
        pageTableLock = SpinLock("spin_lock(pte_lockptr)", engine: engine)
    }

    /// mmu_notifier_register(). Call before any actor runs.
    public func register(_ s: MMUNotifierSubscriber) { subscriberRefs.append(Unowned(s: s)) }

    deinit { hostPTE.free(); vmaWritable.free(); swapContent.free(); swapState.free(); swapCopyValid.free(); underWriteback.free(); invalidatePagePending.free(); vmaHugetlb.free() }

    public var range: Range<Int> { base..<(base + count) }
    @inline(__always) func idx(_ hva: Int) -> Int { hva - base }

    /// pte_offset_map_lock() ... pte_unmap_unlock().
    @inline(__always)
    func withPageTableLock<R>(_ body: () -> R) -> R { pageTableLock.withLock { body() } }

    /// Whether the caller holds `page_table_lock` (lockdep_is_held(); tests).
    public var pageTableLockHeldByCaller: Bool { pageTableLock.isHeldByCaller }

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

    /// host_pfn_mapping_level(): the page-table level the host maps `hva` at
    /// (2: a huge page of a hugetlbfs VMA; 1: a 4K PTE, or nothing).
    public func hugeMappingLevel(_ hva: Int) -> Int { isHugetlb(hva) && pte(hva).isPresent ? 2 : 1 }

    /// is_vm_hugetlb_page() of the VMA over `hva`.
    @inline(__always) public func isHugetlb(_ hva: Int) -> Bool {
        hugeBlock > 0 && vmaHugetlb.load((hva - base) / hugeBlock) != 0
    }

    /// The pages a range covers once every hugetlb page it touches is taken
    /// whole (the range itself over 4K memory).
    func hugeRange(_ r: Range<Int>) -> Range<Int> {
        guard hugeBlock > 0 else { return r }
        let lo = isHugetlb(r.lowerBound) ? base + (r.lowerBound - base) / hugeBlock * hugeBlock : r.lowerBound
        let hi = isHugetlb(r.upperBound - 1) ? base + (r.upperBound - base + hugeBlock - 1) / hugeBlock * hugeBlock : r.upperBound
        return lo..<hi
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

    /// mmu_notifier_invalidate_page() (v4.12 and before): `page_table_lock`
    /// held by the caller, as try_to_unmap_one() and page_mkclean_one() of
    /// v4.11 call it inside their page_vma_mapped_walk() loop.
    func invalidatePage(_ hva: Int) {
        pageTableLock.assertHeld("mmu_notifier_invalidate_page() from try_to_unmap_one() or page_mkclean_one()")
        engine.event("host: mmu_notifier_invalidate_page(hva \(hex(hva)))")
        for ref in subscriberRefs { ref.s.invalidatePage(hva: hva) }
        observer?.invalidatePageReturned(hva: hva)
        if detail.contains(.sharedFile) { invalidatePagePending.store(idx(hva), 0) }
    }

    /// Whether the host has changed `hva`'s PTE and the invalidate_page that
    /// tells the secondary MMUs has not returned yet (v4.11's
    /// page_mkclean_one(); oracle view: a write through a mapping made before
    /// is the protocol's window, judged when the notifier returns).
    public func invalidatePageInProgress(_ hva: Int) -> Bool { invalidatePagePending.load(idx(hva)) != 0 }

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
                guard let p = faultInLocked(hva, write: write) else { return nil }
                if write && !p.isWrite {
                    if detail.contains(.sharedFile) {
                        // do_wp_page() of a VM_SHARED mapping -> wp_page_shared()
                        // (mm/memory.c, v4.11): do_page_mkwrite() (the page
                        // locked), finish_mkwrite_fault() -> wp_page_reuse():
                        // pte_mkyoung(), maybe_mkwrite(pte_mkdirty()); then
                        // fault_dirty_shared_page(): set_page_dirty(),
                        // unlock_page(). No copy. The page lock, which
                        // clear_page_dirty_for_io() also holds, is the page
                        // table lock here, so both steps are one.
                        hostPTE.store(idx(hva), p.mkwrite().mkdirty().mkyoung().raw)
                        pages.setDirty(p.pfn)
                        engine.event("host: wp_page_shared hva \(hex(hva)): page_mkwrite, pfn \(p.pfn) writable and dirty, set_page_dirty()")
                    } else if isHugetlb(hva) {
                        // hugetlb_wp(): a page mapped once is reused, the whole huge page.
                        for h in hugeRange(hva..<(hva + 1)) { hostPTE.store(idx(h), pte(h).mkwrite().mkdirty().raw) }
                    } else {
                        // do_wp_page(): the zero page (no struct page to reuse) and a
                        // page someone else holds are copied.
                        if pages.refs(p.pfn) > 1 || pages.isZero(p.pfn) { needCOW = p; return nil }
                        // do_wp_page() reuse: the only user may write in place;
                        // reuse_swap_page() frees the swap copy and dirties the page.
                        if detail.contains(.pageDirty) && swapCopyValid.load(idx(hva)) == 1 {
                            swapCopyValid.store(idx(hva), 0)            // delete_from_swap_cache()
                            pages.setDirty(p.pfn)                       // SetPageDirty()
                        }
                        hostPTE.store(idx(hva), p.mkwrite().mkdirty().raw)
                    }
                }
                pages.get(p.pfn)
                // hva_to_pfn(): writable when the host PTE allows writes (the
                // FOLL_WRITE gup, or __get_user_pages_fast(write=1) for a read fault).
                let now = pte(hva)
                return (now.pfn, now.isWrite)
            }
            if let got { return got }
            if let orig = needCOW { wpPageCopy(hva, orig: orig); continue }
            return nil
        }
    }

    /// An access to `hva` through its current mapping, as a CPU makes it through a
    /// translation the host keeps coherent (a guest access through EPT, which MMU
    /// notifiers keep in step; a copy_to_user()): the page is faulted in (COW broken
    /// for a write) if need be, then `body` runs on the pfn mapped at that moment,
    /// with the page table lock held, so no PTE change overlaps it. `body` must not
    /// reach a scheduling point. nil: the access is not allowed (EFAULT).
    public func accessMapped<R>(_ hva: Int, write: Bool, _ body: (Int) -> R) -> R? {
        while !engine.stopRequested {
            let p = pte(hva)
            if !p.isPresent || (write && !p.isWrite) {
                guard let got = getUserPage(hva, write: write) else { return nil }
                pages.put(got.pfn)
            }
            let r: R? = withPageTableLock {
                let p = pte(hva)
                guard p.isPresent, !write || p.isWrite else { return nil }
                return body(p.pfn)
            }
            if let r { return r }
        }
        return nil
    }

    /// Makes the page present (page_table_lock held): first touch allocates a zeroed
    /// page (do_anonymous_page()), or with `HostMMDetail.zeroPage` maps the shared
    /// zero page read-only for a read; a swapped page is read back or taken from
    /// the swap cache (do_swap_page()).
    private func faultInLocked(_ hva: Int, write: Bool) -> PTE? {
        pageTableLock.assertHeld("handle_pte_fault()")
        let i = idx(hva)
        let p = PTE(raw: hostPTE.load(i))
        if p.isPresent { return p }
        if isHugetlb(hva) { return faultInHugeLocked(hva) }
        if detail.contains(.sharedFile) { return faultInFileLocked(hva, write: write) }
        let s = swapState.load(i)
        if s == 0 && !write && detail.contains(.zeroPage), let zero = pages.zeroPfn {
            // do_anonymous_page(): "Use the zero-page for reads":
            // pte_mkspecial(pfn_pte(my_zero_pfn(address), vma->vm_page_prot)),
            // read-only whatever the VMA allows (a write copies it).
            let zp = PTE(pfn: zero, flags: PTE.present | PTE.read | PTE.young)
            hostPTE.store(i, zp.raw)
            engine.event("host: fault-in hva \(hex(hva)) -> the zero page (pfn \(zero))")
            return zp
        }
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
        var flags = PTE.present | PTE.read | PTE.young | (writable && pages.refs(pfn) == 1 ? PTE.write : 0)
        if detail.contains(.pageDirty) {
            flags = PTE.present | PTE.read | PTE.young
            if s == 0 {
                // do_anonymous_page(): entry = mk_pte(page, vma->vm_page_prot);
                // if (vma->vm_flags & VM_WRITE) entry = pte_mkwrite(pte_mkdirty(entry));
                if writable { flags |= PTE.write | PTE.dirty }
                swapCopyValid.store(i, 0)
            } else if write && writable && pages.refs(pfn) == 1 {
                // do_swap_page(): a write with reuse_swap_page():
                // delete_from_swap_cache(); SetPageDirty(); pte_mkdirty(), mkwrite.
                swapCopyValid.store(i, 0)
                pages.setDirty(pfn)
                flags |= PTE.write | PTE.dirty
            } else if !write && writable && pages.refs(pfn) == 1 && detail.contains(.swapInMapsWritable) {
                // v6.11's do_swap_page() of a read on an exclusive folio:
                // pte_mkwrite() without pte_mkdirty(); should_try_to_free_swap()
                // is false for a read, so the page stays in the swap cache,
                // clean, and its copy stays valid.
                flags |= PTE.write
            }
            // else do_swap_page() of a read: pte = mk_pte(page, vma->vm_page_prot),
            // read-only; the page stays in the swap cache and its copy stays valid.
        }
        let np = PTE(pfn: pfn, flags: flags)
        hostPTE.store(i, np.raw)
        engine.event("host: fault-in hva \(hex(hva)) -> \(np)")
        return np
    }

    /// A fault on a MAP_SHARED file mapping with write-notify (page_table_lock
    /// held; it stands for the page lock too): filemap_fault() finds the page
    /// in the page cache or reads it from the file (->readpage(): a clean,
    /// up-to-date page holding the file's copy); do_read_fault() maps it
    /// read-only (vm_page_prot has no write permission when
    /// vma_wants_writenotify()), do_shared_fault() (a write) calls
    /// do_page_mkwrite(), maps it with maybe_mkwrite(pte_mkdirty(entry)) and
    /// fault_dirty_shared_page() calls set_page_dirty() (mm/memory.c, v4.11).
    private func faultInFileLocked(_ hva: Int, write: Bool) -> PTE? {
        let i = idx(hva)
        let s = swapState.load(i)
        let pfn: Int
        if s >= 2 {
            pfn = Int(s - 2)                 // find_get_page(): still in the page cache
        } else {
            guard let fresh = pages.alloc() else { return nil }
            pfn = fresh
            pages.content.store(pfn, swapContent.load(i))      // ->readpage(): the file's copy
        }
        var flags = PTE.present | PTE.read | PTE.young
        if write && vmaWritable.load(i) == 1 {
            flags |= PTE.write | PTE.dirty
            pages.setDirty(pfn)
        }
        let np = PTE(pfn: pfn, flags: flags)
        hostPTE.store(i, np.raw)             // the mapping takes over the page cache's reference
        swapState.store(i, 0)
        engine.event("host: file fault-in hva \(hex(hva)) -> \(np)\(s >= 2 ? " (page cache)" : " (read from the file)")")
        return np
    }

    /// hugetlb_no_page(): a zeroed huge page, mapped whole (page_table_lock held).
    private func faultInHugeLocked(_ hva: Int) -> PTE? {
        guard let head = pages.allocHuge() else { return nil }
        let block = hugeRange(hva..<(hva + 1))
        let writable = vmaWritable.load(idx(block.lowerBound)) == 1
        for h in block {
            hostPTE.store(idx(h), PTE(pfn: head + (h - block.lowerBound), flags: PTE.present | PTE.read | PTE.young | (writable ? PTE.write : 0)).raw)
        }
        engine.event("host: hugetlb fault-in hva \(hex(block.lowerBound))..<\(hex(block.upperBound)) -> pfns \(head)..<\(head + hugeBlock)")
        return pte(hva)
    }
}
