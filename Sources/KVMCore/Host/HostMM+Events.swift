// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The host mm events that fire MMU notifiers (mm/memory.c, mm/vmscan.c,
/// mm/ksm.c, mm/mprotect.c, mm/page_idle.c), each in the kernel's order:
/// invalidate_range_start, the PTE change under the page table lock, the old
/// page released, invalidate_range_end, with scheduling points between the steps.
extension HostMM {
    /// Host touch of a page (the VMM or a host thread reading or writing guest RAM).
    public func touch(_ hva: Int, write: Bool) {
        guard let r = getUserPage(hva, write: write) else { return }
        pages.put(r.pfn)
    }

    /// wp_page_copy() (mm/memory.c): a write fault on a shared (KSM or COW) page whose PTE was
    /// `orig` copies it. In the kernel's order: allocate and copy, then
    /// invalidate_range_start, then under the PTL check `pte_same(orig)` and
    /// `set_pte_at_notify()` (change_pte notifiers, then the PTE), then release the
    /// old page, then invalidate_range_end.
    public func wpPageCopy(_ hva: Int, orig: PTE) {
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
            if detail.contains(.pageDirty) { swapCopyValid.store(idx(hva), 0) }   // the new page has no swap copy
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

    /// MADV_DONTNEED / munmap of guest RAM (balloon inflation, memory hot-unplug):
    /// zap the pages; the next touch gets fresh zero pages.
    public func zap(_ r: Range<Int>) {
        if vmasChange { mmapLock.readLock() }                  // madvise(MADV_DONTNEED)
        defer { if vmasChange { mmapLock.readUnlock() } }
        let r = hugeRange(r)                                   // hugetlb: whole huge pages
        invalidateRangeStart(r)
        engine.point("zap_page_range:after_invalidate_range_start")
        if detail.contains(.sharedFile) {
            // MADV_DONTNEED of a shared file mapping unmaps; the pages stay in
            // the page cache with their content (nothing is discarded).
            withPageTableLock { unmapFilePTEsLocked(r) }
            engine.event("host: zapped hva \(hex(r.lowerBound))..<\(hex(r.upperBound)) (file pages stay in the page cache)")
            engine.point("zap_page_range:before_invalidate_range_end")
            invalidateRangeEnd(r)
            return
        }
        let toPut = withPageTableLock { clearPTEsLocked(r) }
        for h in r { observer?.contentDiscarded(hva: h) }   // after the host PTEs are gone
        engine.event("host: zapped hva \(hex(r.lowerBound))..<\(hex(r.upperBound)), releasing pfns \(toPut)")
        for pfn in toPut { pages.put(pfn) }
        engine.point("zap_page_range:before_invalidate_range_end")
        invalidateRangeEnd(r)
    }

    /// zap_pte_range() over `r` (page_table_lock held): every host PTE and
    /// swap entry cleared; the pages whose references go with them (a huge
    /// page's mapping holds one, its head's), for the caller to put.
    func clearPTEsLocked(_ r: Range<Int>) -> [Int] {
        var toPut: [Int] = []
        for h in r {
            let p = pte(h)
            if p.isPresent && pages.head(p.pfn) == p.pfn { toPut.append(p.pfn) }
            hostPTE.store(idx(h), 0)
            let s = swapState.load(idx(h))
            if s >= 2 { toPut.append(Int(s - 2)) }
            swapState.store(idx(h), 0)
            if detail.contains(.pageDirty) { swapCopyValid.store(idx(h), 0) }   // free_swap_and_cache()
        }
        return toPut
    }

    /// zap_pte_range() of a shared file mapping (page_table_lock held): the
    /// dirty bit of each PTE moves to its page (`if (!PageAnon(page)) { if
    /// (pte_dirty(ptent)) { ... set_page_dirty(page); }`), the PTE is cleared
    /// and the page stays in the page cache (recorded before the PTE goes, so
    /// a reader never sees the offset without its page).
    func unmapFilePTEsLocked(_ r: Range<Int>) {
        for h in r {
            let p = pte(h)
            guard p.isPresent else { continue }
            if p.isDirty { pages.setDirty(p.pfn) }
            swapState.store(idx(h), UInt64(p.pfn + 2))
            hostPTE.store(idx(h), 0)
        }
    }

    /// ptep_clear_flush_young_notify() (include/linux/mmu_notifier.h,
    /// v4.11), page_table_lock held: `__young = ptep_clear_flush_young(...);
    /// __young |= mmu_notifier_clear_flush_young(mm, address, address +
    /// PAGE_SIZE);` (KVM: kvm_mmu_notifier_clear_flush_young(): kvm_age_hva()
    /// under mmu_lock, and kvm_flush_remote_tlbs() if it was young).
    func ptepClearFlushYoungNotify(_ hva: Int) -> Bool {
        pageTableLock.assertHeld("ptep_clear_flush_young_notify()")
        let p = pte(hva)
        var young = false
        if p.isPresent && p.isYoung { young = true; hostPTE.store(idx(hva), p.mkold().raw) }
        for ref in subscriberRefs { young = ref.s.clearFlushYoung(hva..<(hva + 1)) || young }
        engine.event("host: ptep_clear_flush_young_notify(hva \(hex(hva))) -> \(young)")
        return young
    }

    /// page_check_references() -> page_referenced() -> page_referenced_one()
    /// (mm/vmscan.c, mm/rmap.c, v4.11) for the page `pfn` mapped at `hva`,
    /// before try_to_unmap(): with the page table lock held,
    /// `ptep_clear_flush_young_notify()`; a referenced page is kept
    /// (PAGEREF_ACTIVATE for an anonymous page, PAGEREF_KEEP or _ACTIVATE for
    /// a mapped file page). PG_referenced (`TestClearPageReferenced()`)
    /// decides only between reclaiming a file page and reclaiming it only if
    /// clean, which is the same here (reclaim keeps dirty file pages).
    /// Returns true when the page is kept.
    func pageReferenced(_ hva: Int, pfn: Int) -> Bool {
        let referenced: Bool = withPageTableLock {
            let p = pte(hva)
            guard p.isPresent, p.pfn == pfn else { return false }      // page_vma_mapped_walk()
            return ptepClearFlushYoungNotify(hva)
        }
        if referenced { engine.event("host: reclaim keeps pfn \(pfn) of hva \(hex(hva)): page_referenced()") }
        return referenced
    }

    /// Page reclaim of one page (shrink_page_list -> try_to_unmap -> pageout): the
    /// page leaves the host page table; if nobody else holds a reference its content
    /// goes to swap and it is freed, otherwise it stays in the swap cache. The
    /// notifier calls are those of `form`: v4.13's range_start/end around
    /// try_to_unmap_one() (here), or v4.11's invalidate_page inside it
    /// (`swapOutV411`).
    public func swapOut(_ hva: Int) {
        if detail.contains(.sharedFile) { reclaimFile(hva); return }
        let victim = pte(hva)                // the page reclaim picked from the LRU
        guard victim.isPresent, !isHugetlb(hva), !pages.isZero(victim.pfn) else { return }    // hugetlb pages and the zero page are not reclaimed
        if detail.contains(.reclaimChecksYoung) {
            if pageReferenced(hva, pfn: victim.pfn) { return }
            engine.point("shrink_page_list:before_try_to_unmap")
        }
        if form == .v411 { swapOutV411(hva, victim: victim); return }
        let r = hva..<(hva + 1)
        invalidateRangeStart(r)
        engine.point("try_to_unmap:after_invalidate_range_start")
        var freedPfn: Int? = nil
        var swapFail = false
        withPageTableLock {
            let p = pte(hva)
            guard p.isPresent, p.pfn == victim.pfn else { return }   // page_vma_mapped_walk()
            if detail.contains(.reclaimChecksYoung) && ptepClearFlushYoungNotify(hva) { swapFail = true; return }   // SWAP_FAIL
            hostPTE.store(idx(hva), 0)
            if detail.contains(.pageDirty) {
                if p.isDirty { pages.setDirty(p.pfn) }                // "Move the dirty bit to the page"
                freedPfn = reclaimUnmapped(hva, pfn: p.pfn)
                return
            }
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
        } else if swapFail {
            engine.event("host: try_to_unmap_one(hva \(hex(hva))): young, SWAP_FAIL")
        } else {
            engine.event("host: hva \(hex(hva)) unmapped for swap, page kept in swap cache (extra reference)")
        }
        engine.point("try_to_unmap:before_invalidate_range_end")
        invalidateRangeEnd(r)
    }

    /// Reclaim of one page through v4.11's try_to_unmap_one() (mm/rmap.c,
    /// c7ab0d2fdc84): inside the page_vma_mapped_walk() loop, with the page
    /// table lock held, `ptep_clear_flush()`, the swap entry set,
    /// `page_remove_rmap(); put_page();` and `mmu_notifier_invalidate_page(mm,
    /// address)`, all before the lock is dropped; no invalidate_range_start/end.
    /// The page is in the swap cache from add_to_swap() on (before the unmap),
    /// so until the notifier returns the host's page for `hva` is still this
    /// one (the window the notifier's comment speaks of: "the linux pte has
    /// been zapped already but the page is still allocated until
    /// ->invalidate_page returns"). The rest of shrink_page_list() (pageout(),
    /// __remove_mapping(): the page stays in the swap cache while someone else
    /// holds a reference) runs with the page locked, so no fault maps it again
    /// meanwhile; the model decides it under the same lock hold, after the
    /// notifier returned.
    func swapOutV411(_ hva: Int, victim: PTE) {
        var freedPfn: Int? = nil
        var unmapped = false
        var swapFail = false
        withPageTableLock {
            let p = pte(hva)
            guard p.isPresent, p.pfn == victim.pfn else { return }   // page_vma_mapped_walk()
            // if (!(flags & TTU_IGNORE_ACCESS)) { if (ptep_clear_flush_young_notify(vma,
            // address, pvmw.pte)) { ret = SWAP_FAIL; ... break; } }
            if detail.contains(.reclaimChecksYoung) && ptepClearFlushYoungNotify(hva) { swapFail = true; return }
            // add_to_swap() put the page in the swap cache before the unmap:
            // recorded first, so a reader never sees the hva without a page.
            swapState.store(idx(hva), UInt64(p.pfn + 2))
            hostPTE.store(idx(hva), 0)                               // ptep_clear_flush(), then set_pte_at(swp_pte)
            if detail.contains(.pageDirty) && p.isDirty { pages.setDirty(p.pfn) }   // "Move the dirty bit to the page"
            unmapped = true
            invalidatePage(hva)                                      // still under the page table lock
            if detail.contains(.pageDirty) {
                freedPfn = reclaimUnmapped(hva, pfn: p.pfn)
            } else if pages.refs(p.pfn) > 1 {
                // __remove_mapping() fails: the page stays in the swap cache.
            } else {
                swapContent.store(idx(hva), pages.content.load(p.pfn))
                swapState.store(idx(hva), 1)
                freedPfn = p.pfn
            }
        }
        if swapFail { engine.event("host: try_to_unmap_one(hva \(hex(hva))): young, SWAP_FAIL") }
        guard unmapped else { return }
        if let pfn = freedPfn {
            engine.event("host: swapped out hva \(hex(hva)), pfn \(pfn) freed")
            pages.put(pfn)
        } else {
            engine.event("host: hva \(hex(hva)) unmapped for swap, page kept in swap cache (extra reference)")
        }
    }

    /// The rest of shrink_page_list() for an unmapped anonymous page, with the
    /// page dirty state (`HostMMDetail.pageDirty`; page table lock held, which
    /// stands for the page lock reclaim holds): a page someone else holds stays
    /// in the swap cache (pageout()'s is_page_cache_freeable() and
    /// __remove_mapping() fail: PAGE_KEEP, nothing written); a dirty page, or
    /// one with no swap copy, is written out (pageout(): clear_page_dirty_for_io(),
    /// the copy) and freed; a clean page whose swap copy is valid is freed
    /// without a write (__remove_mapping()), which the oracle checks
    /// (`HostMMObserver.droppingClean`: lost-dirty-page). Returns the pfn to free.
    func reclaimUnmapped(_ hva: Int, pfn: Int) -> Int? {
        pageTableLock.assertHeld("shrink_page_list() (page locked)")
        let i = idx(hva)
        if pages.refs(pfn) > 1 {
            swapState.store(i, UInt64(pfn + 2))
            return nil
        }
        if !pages.isDirty(pfn) && swapCopyValid.load(i) == 1 {
            observer?.droppingClean(hva: hva, pfn: pfn, swapCopy: swapContent.load(i))
            swapState.store(i, 1)
            return pfn
        }
        pages.testClearDirty(pfn)                                    // clear_page_dirty_for_io()
        swapContent.store(i, pages.content.load(pfn))                // swap_writepage()
        swapCopyValid.store(i, 1)
        swapState.store(i, 1)
        return pfn
    }

    /// Swap-in by a host touch (do_swap_page).
    public func swapIn(_ hva: Int) { touch(hva, write: false) }

    /// KSM (mm/ksm.c): merge two pages with equal content into one write-protected
    /// page. write_protect_page() on both, then replace_page() maps the second hva
    /// to the first page. Pages with extra references (page_count() above the
    /// mapping's) are skipped, as `write_protect_page()` does; so is the zero
    /// page (not an anonymous page: the KSM scan passes over it).
    public func ksmMerge(_ a: Int, _ b: Int) {
        guard a != b, !isHugetlb(a), !isHugetlb(b) else { return }         // KSM does not merge hugetlb pages
        guard !detail.contains(.sharedFile) else { return }                // nor VM_SHARED mappings (ksm_madvise())
        let pa = pte(a), pb = pte(b)
        guard pa.isPresent, pb.isPresent, pa.pfn != pb.pfn, !pages.isZero(pa.pfn), !pages.isZero(pb.pfn),
              pages.refs(pa.pfn) == 1, pages.refs(pb.pfn) == 1,
              pages.content.load(pa.pfn) == pages.content.load(pb.pfn) else { return }
        // With the page dirty state the model merges only pages outside the swap
        // cache (a KSM page in the swap cache is not modelled).
        if detail.contains(.pageDirty) && (swapCopyValid.load(idx(a)) != 0 || swapCopyValid.load(idx(b)) != 0) { return }
        for h in [a, b] { writeProtectPage(h) }
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

    /// KSM's write_protect_page() (mm/ksm.c, v4.11): inside
    /// invalidate_range_start/end, under the page table lock, a writable or
    /// dirty PTE is made clean and read-only. With `HostMMDetail.ksmChangePTE`
    /// as the kernel does it: `ptep_clear_flush_notify()` (only
    /// `.invalidate_range`, which KVM does not implement; the transient empty
    /// PTE under the lock is not modelled), then
    /// `set_pte_at_notify(mm, pvmw.address, pvmw.pte, entry)`: change_pte to
    /// every subscriber, then the PTE. Without it (every other world), the PTE
    /// is write-protected with no change_pte, as the model had it.
    func writeProtectPage(_ h: Int) {
        let r = h..<(h + 1)
        invalidateRangeStart(r)
        engine.point("write_protect_page:after_invalidate_range_start")
        withPageTableLock {
            let p = pte(h)
            guard p.isPresent else { return }                       // page_vma_mapped_walk() failed
            guard detail.contains(.ksmChangePTE) else {
                // v6.9 on (no change_pte): ptep_clear_flush(); ... if
                // (pte_dirty(entry)) folio_mark_dirty(folio); entry =
                // pte_mkclean(entry); if (pte_write(entry)) entry =
                // pte_wrprotect(entry); set_pte_at(). Without the page dirty
                // state the dirty bit is dropped, as the model always did.
                if detail.contains(.pageDirty) && p.isDirty { pages.setDirty(p.pfn) }
                hostPTE.store(idx(h), p.wrprotect().raw)
                return
            }
            guard p.isWrite || p.isDirty else { return }            // already clean and read-only
            if detail.contains(.pageDirty) && p.isDirty { pages.setDirty(p.pfn) }   // if (pte_dirty(entry)) set_page_dirty(page);
            let entry = p.wrprotect()                               // pte_mkclean(pte_wrprotect(entry))
            changePTE(h, entry)                                     // set_pte_at_notify(): notifiers first,
            hostPTE.store(idx(h), entry.raw)                        // then the PTE
        }
        invalidateRangeEnd(r)
    }

    /// pte_wrprotect() as change_protection() and clear_refs use it: the write
    /// permission goes, the dirty bit (`_PAGE_MODIFIED`, in `_PAGE_CHG_MASK`)
    /// stays. Only with `HostMMDetail.pageDirty`: the other worlds' host mm
    /// clears both (`PTE.wrprotect()`), as it always did.
    func wrprotectKeepingDirty(_ p: PTE) -> PTE {
        detail.contains(.pageDirty) ? PTE(raw: p.raw & ~PTE.write) : p.wrprotect()
    }

    /// mprotect(): make the range read-only or writable again (change_protection).
    public func mprotect(_ r: Range<Int>, writable: Bool) {
        if vmasChange { mmapLock.writeLock() }
        defer { if vmasChange { mmapLock.writeUnlock() } }
        let r = hugeRange(r)                                   // hugetlb: whole huge pages
        invalidateRangeStart(r)
        engine.point("change_protection:after_invalidate_range_start")
        withPageTableLock {
            for h in r {
                vmaWritable.store(idx(h), writable ? 1 : 0)
                let p = pte(h)
                if p.isPresent && !writable { hostPTE.store(idx(h), wrprotectKeepingDirty(p).raw) }
            }
        }
        engine.event("host: mprotect hva \(hex(r.lowerBound))..<\(hex(r.upperBound)) \(writable ? "read-write" : "read-only")")
        invalidateRangeEnd(r)
    }

    /// clear_refs_write(CLEAR_REFS_SOFT_DIRTY) (fs/proc/task_mmu.c): the range's
    /// PTEs write-protected (soft-dirty tracking, as a checkpointing VMM uses it)
    /// inside an invalidation; the VMA stays writable, so the next write fault
    /// reuses the page, or copies it when someone else holds a reference
    /// (do_wp_page(): page_count() != 1).
    public func clearSoftDirty(_ r: Range<Int>) {
        let r = hugeRange(r)
        invalidateRangeStart(r)
        engine.point("clear_refs:after_invalidate_range_start")
        withPageTableLock {
            for h in r { let p = pte(h); if p.isPresent && p.isWrite { hostPTE.store(idx(h), wrprotectKeepingDirty(p).raw) } }
        }
        engine.event("host: clear_refs soft-dirty hva \(hex(r.lowerBound))..<\(hex(r.upperBound))")
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

// MARK: - VMAs (mm/mmap.c)

extension HostMM {
    /// mmap(MAP_FIXED) over one huge-page block of the region with the other
    /// kind of memory (hugetlbfs <-> anonymous 4K pages), as a VMM does when it
    /// replaces guest RAM's backing (or munmap() then mmap()): with mmap_lock
    /// held for write, the old mapping is unmapped (do_vmi_munmap() ->
    /// unmap_region(): the notifier's invalidation around the zap) and the new
    /// VMA inserted. A fault that looked the old VMA up and dropped mmap_lock
    /// before this may still act on it (arm64's R1, 13ec9308a857).
    public func remap(_ hva: Int) {
        guard hugeBlock > 0 else { return }
        let block = (hva - base) / hugeBlock
        let r = (base + block * hugeBlock)..<(base + (block + 1) * hugeBlock)
        mmapLock.writeLock()
        let wasHuge = isHugetlb(r.lowerBound)
        invalidateRangeStart(r)
        engine.point("unmap_region:after_invalidate_range_start")
        // The old pages unmapped and the new VMA in place in one step: host
        // faults, which mmap_lock keeps out of the whole call, see one or the other.
        let toPut = withPageTableLock {
            let put = clearPTEsLocked(r)
            for h in r { vmaWritable.store(idx(h), 1) }
            vmaHugetlb.store(block, wasHuge ? 0 : 1)
            return put
        }
        for h in r { observer?.contentDiscarded(hva: h) }
        engine.event("host: mmap(MAP_FIXED) hva \(hex(r.lowerBound))..<\(hex(r.upperBound)) as \(wasHuge ? "anonymous 4K pages" : "hugetlbfs"), releasing pfns \(toPut)")
        for pfn in toPut { pages.put(pfn) }
        engine.point("unmap_region:before_invalidate_range_end")
        invalidateRangeEnd(r)
        mmapLock.writeUnlock()
    }

    /// vma_lookup() for a fault: the size of the host page backing `hva`
    /// (`huge_page_size(hstate_vma(vma))` for hugetlbfs, PAGE_SIZE otherwise),
    /// in pages. The caller holds mmap_lock for read.
    public func vmaPageSize(_ hva: Int) -> Int {
        mmapLock.assertHeldRead("vma_lookup()")
        return isHugetlb(hva) ? hugeBlock : 1
    }

    /// get_user_pages_unlocked(), as hva_to_pfn_slow() calls it today: takes
    /// mmap_lock for read around get_user_pages().
    public func getUserPagesUnlocked(_ hva: Int, write: Bool) -> (pfn: Int, writable: Bool)? {
        mmapLock.readLock()
        defer { mmapLock.readUnlock() }
        return getUserPage(hva, write: write)
    }
}
