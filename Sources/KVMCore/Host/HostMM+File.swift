// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Guest RAM as a MAP_SHARED mapping of a regular file (`HostMMDetail.sharedFile`):
/// reclaim of page cache pages and writeback, as v4.11 (and, with
/// `HostMMForm.v413`, v4.13) does them. The faults are in HostMM.swift
/// (`faultInFileLocked`, `wp_page_shared()` in `getUserPage`), zap in
/// HostMM+Events.swift (`unmapFilePTEsLocked`).
///
/// The page lock, which the kernel's writeback, reclaim and write faults
/// (page_mkwrite) hold, is stood for by the page table lock, as elsewhere in
/// `HostMM`.
extension HostMM {
    /// The page cache page of `hva`'s file offset: the mapped one, or one no
    /// PTE maps (nil: not cached).
    func cachedPfn(_ hva: Int) -> Int? {
        let p = pte(hva)
        if p.isPresent { return p.pfn }
        let s = swapState.load(idx(hva))
        return s >= 2 ? Int(s - 2) : nil
    }

    /// Writeback of the page at `hva`'s file offset by the flusher
    /// (write_cache_pages(), WB_SYNC_NONE, mm/page-writeback.c, v4.11):
    /// lock_page(); a page under writeback is skipped, a clean one too;
    /// clear_page_dirty_for_io():
    ///
    /// ```c
    /// 		if (page_mkclean(page))
    /// 			set_page_dirty(page);
    /// 		...
    /// 		if (TestClearPageDirty(page)) {
    /// ```
    ///
    /// with page_mkclean_one() (mm/rmap.c, v4.11, f27176cfc363) for the
    /// mapping: under the page table lock, a dirty or writable PTE is
    /// `ptep_clear_flush()`ed, `pte_wrprotect()`ed, `pte_mkclean()`ed and set
    /// again, and `mmu_notifier_invalidate_page(vma->vm_mm, address)` is
    /// called inside the page_vma_mapped_walk() loop, the lock still held.
    /// v4.13 (369ea8242c0f) brackets the walk with
    /// invalidate_range_start/end instead. Then ->writepage():
    /// set_page_writeback(), unlock_page(), the bio; the I/O reads the page
    /// later (a scheduling point), and end_page_writeback() clears
    /// PG_writeback. A write in between faults (the PTE is read-only) and
    /// dirties the page again, so it is written again later.
    public func writeback(_ hva: Int) {
        guard detail.contains(.sharedFile) else { return }
        let i = idx(hva)
        let r = hva..<(hva + 1)
        // v4.13: page_mkclean() of a mapped page brackets page_mkclean_one()'s
        // walk with range start/end. The kernel knows the page is mapped
        // under the page lock (page_mapped()), which no fault can change
        // while writeback holds it; here the lock (the page table lock) is
        // not held across the notifier, so a walk that finds a PTE to clean
        // without having bracketed it starts again with the bracket.
        var bracket = false
        var pfn: Int? = nil
        while true {
            if bracket {
                invalidateRangeStart(r)
                engine.point("page_mkclean_one:after_invalidate_range_start")
            }
            var needBracket = false
            pfn = withPageTableLock {
                guard let pfn = cachedPfn(hva), underWriteback.load(i) == 0, pages.isDirty(pfn) else { return nil }
                let p = pte(hva)
                if p.isPresent && (p.isDirty || p.isWrite) {
                    if form == .v413 && !bracket && !plantedMkcleanSkipsNotifier { needBracket = true; return nil }
                    let notify = form == .v411 && !plantedMkcleanSkipsNotifier
                    if notify { invalidatePagePending.store(i, 1) }
                    hostPTE.store(i, p.wrprotect().raw)      // ptep_clear_flush(); pte_wrprotect(); pte_mkclean(); set_pte_at()
                    engine.event("host: page_mkclean_one(hva \(hex(hva))): \(p) -> \(p.wrprotect())")
                    if notify { invalidatePage(hva) }        // still under the lock
                    pages.setDirty(pfn)                      // if (page_mkclean(page)) set_page_dirty(page);
                }
                pages.testClearDirty(pfn)                    // TestClearPageDirty()
                underWriteback.store(i, 1)                   // ->writepage(): set_page_writeback(); unlock_page()
                return pfn
            }
            if bracket {
                engine.point("page_mkclean_one:before_invalidate_range_end")
                invalidateRangeEnd(r)
            }
            if needBracket { bracket = true; continue }
            break
        }
        guard let pfn else { return }
        engine.event("host: writeback hva \(hex(hva)): clear_page_dirty_for_io(pfn \(pfn)), I/O submitted")
        engine.point("writeback:io")
        withPageTableLock {
            swapContent.store(i, pages.content.load(pfn))   // the I/O reads the page
            underWriteback.store(i, 0)                      // end_page_writeback()
        }
        engine.event("host: writeback hva \(hex(hva)) done: the file holds \(pages.content.load(pfn) & 0xFF_FFFF)")
    }

    /// Reclaim of the page cache page at `hva`'s file offset
    /// (shrink_page_list(), mm/vmscan.c, v4.11), in the kernel's order: a
    /// page under writeback is kept (`if (PageWriteback(page)) { ... goto
    /// keep_locked; }` for background reclaim); page_check_references()
    /// (`HostMMDetail.reclaimChecksYoung`); try_to_unmap() of a mapped page
    /// (v4.11: inside try_to_unmap_one(), under the page table lock, the
    /// young check, `ptep_clear_flush()`, "Move the dirty bit to the page",
    /// `page_remove_rmap(); put_page(); mmu_notifier_invalidate_page()`;
    /// v4.13: range start/end around it); a dirty page is kept for the
    /// flusher (`if (page_is_file_cache(page) && (!current_is_kswapd() ||
    /// ...)) { SetPageReclaim(page); goto activate_locked; }`: kswapd's own
    /// pageout() is not modelled, the writeback event does the same); a page
    /// someone else holds stays (`__remove_mapping()`'s page_ref_freeze()
    /// fails); a clean one is removed from the page cache and freed
    /// (`__remove_mapping()`), which the lost-dirty-page oracle checks
    /// against the file's copy.
    func reclaimFile(_ hva: Int) {
        let i = idx(hva)
        guard let pfn = cachedPfn(hva), underWriteback.load(i) == 0 else { return }
        let victim = pte(hva)
        if victim.isPresent && detail.contains(.reclaimChecksYoung) {
            if pageReferenced(hva, pfn: pfn) { return }
            engine.point("shrink_page_list:before_try_to_unmap")
        }
        let r = hva..<(hva + 1)
        let bracket = victim.isPresent && form == .v413
        if bracket {
            invalidateRangeStart(r)
            engine.point("try_to_unmap:after_invalidate_range_start")
        }
        var outcome = ""
        let freed: Int? = withPageTableLock {
            // Reclaim holds the page lock from before its PageWriteback check
            // to the end; here the lock is taken twice, so writeback may have
            // started in between: check again under it.
            guard underWriteback.load(i) == 0 else { outcome = "under writeback"; return nil }
            let p = pte(hva)
            if victim.isPresent {
                guard p.isPresent, p.pfn == pfn else { outcome = "page_vma_mapped_walk() failed"; return nil }
                if detail.contains(.reclaimChecksYoung) && ptepClearFlushYoungNotify(hva) { outcome = "young, SWAP_FAIL"; return nil }
                swapState.store(i, UInt64(pfn + 2))           // the page stays in the page cache
                hostPTE.store(i, 0)                            // ptep_clear_flush()
                if p.isDirty { pages.setDirty(pfn) }           // "Move the dirty bit to the page"
                if form == .v411 { invalidatePage(hva) }       // still under the lock
            } else {
                guard !p.isPresent, swapState.load(i) == UInt64(pfn + 2) else { outcome = "mapped again"; return nil }
            }
            if pages.isDirty(pfn) { outcome = "dirty: kept for the flusher"; return nil }
            if pages.refs(pfn) > 1 { outcome = "kept in the page cache (extra reference)"; return nil }
            observer?.droppingClean(hva: hva, pfn: pfn, swapCopy: swapContent.load(i))
            swapState.store(i, 1)                              // __remove_mapping()
            return pfn
        }
        if let freed {
            engine.event("host: reclaim drops clean file page pfn \(freed) of hva \(hex(hva))")
            pages.put(freed)
        } else {
            engine.event("host: reclaim of hva \(hex(hva)) (pfn \(pfn)): \(outcome)")
        }
        if bracket {
            engine.point("try_to_unmap:before_invalidate_range_end")
            invalidateRangeEnd(r)
        }
    }
}
