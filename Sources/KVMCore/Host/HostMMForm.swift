// SPDX-License-Identifier: GPL-2.0-only

/// Which kernel's notifier calls the host mm's reclaim path makes: how
/// `try_to_unmap_one()` (mm/rmap.c) reaches a secondary MMU. A dimension of
/// the seed-004 worlds (`--host-mm`); every other world runs `v4.13`.
public enum HostMMForm: String, CaseIterable, Codable, Sendable {
    /// v4.11 and v4.12 (since c7ab0d2fdc84 "mm: convert try_to_unmap_one() to
    /// use page_vma_mapped_walk()", v4.11-rc1): inside the page walk, with the
    /// page table lock held, the PTE is cleared (`ptep_clear_flush()`), its
    /// dirty bit moved to the page, the swap entry set, the mapping's
    /// reference dropped, and then `mmu_notifier_invalidate_page(mm, address)`
    /// is called, still under the lock. No invalidate_range_start/end brackets
    /// it, so `mmu_notifier_count` never rises: KVM's
    /// `kvm_mmu_notifier_invalidate_page()` bumps `mmu_notifier_seq` and unmaps.
    case v411 = "v4.11"
    /// v4.13 on (369ea8242c0f "mm/rmap: update to new mmu_notifier semantic
    /// v2"): `mmu_notifier_invalidate_range_start()` before the walk, the PTE
    /// cleared under the lock, `mmu_notifier_invalidate_range()` (no KVM
    /// callback), `mmu_notifier_invalidate_range_end()` after it. The form
    /// every world had before issue 19.
    case v413 = "v4.13"
}

/// Parts of the host mm a world opts into (`HostMM.detail`), beside the
/// notifier form. Each is what the kernel did in v4.11 and v4.13 alike; the
/// seed-004 worlds take them all, every other world none (their traces stay
/// as they were: taking them is left for each mechanism's own issue).
public struct HostMMDetail: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// A read fault on a page never touched maps the shared zero page
    /// read-only (do_anonymous_page(): "Use the zero-page for reads"); a
    /// write to it copies it (wp_page_copy(), with set_pte_at_notify()).
    /// Needs `HostPages(zeroPage: true)`.
    public static let zeroPage = HostMMDetail(rawValue: 1 << 0)
    /// KSM's write_protect_page() write-protects and cleans a writable or
    /// dirty PTE with set_pte_at_notify() (a change_pte to every secondary
    /// MMU), inside its invalidate_range_start/end.
    public static let ksmChangePTE = HostMMDetail(rawValue: 1 << 1)
    /// The page dirty state of anonymous memory: `PageDirty` (HostPages), a
    /// host PTE's dirty bit moved to the page when the PTE goes
    /// (try_to_unmap_one(), KSM's write_protect_page()), a swap copy that stays
    /// valid while the page is clean in the swap cache, reclaim that writes a
    /// page out only when it is dirty or has no copy and otherwise drops it
    /// (the lost-dirty-page check), do_swap_page()'s read-only mapping of a
    /// page it leaves in the swap cache, and reuse_swap_page() on a write.
    public static let pageDirty = HostMMDetail(rawValue: 1 << 2)
    /// Guest RAM is a MAP_SHARED mapping of a regular file on a disk file
    /// system with dirty accounting (QEMU's `-mem-path` on such a file
    /// system, `share=on`), not anonymous memory: page cache pages read from
    /// and written back to the file, mapped read-only by read faults
    /// (write-notify: `vma_wants_writenotify()`), made writable and dirty by
    /// `do_shared_fault()` / `wp_page_shared()` with `set_page_dirty()`,
    /// cleaned by writeback (`clear_page_dirty_for_io()` -> `page_mkclean()`
    /// -> `page_mkclean_one()`), dropped clean by reclaim. No zero page, no
    /// COW, no KSM (ksm_madvise() refuses VM_SHARED). Needs `pageDirty`.
    public static let sharedFile = HostMMDetail(rawValue: 1 << 3)
    /// Reclaim honours the young bits as v4.11's shrink_page_list() does:
    /// `page_check_references()` -> `page_referenced()` ->
    /// `page_referenced_one()` clears them with `ptep_clear_flush_young_notify()`
    /// (the host PTE and every secondary MMU's `clear_flush_young`) and keeps
    /// a referenced page, and `try_to_unmap_one()` (no `TTU_IGNORE_ACCESS`)
    /// does it again under the page table lock and fails (`SWAP_FAIL`) on a
    /// young page. Without it (every world before issue 19's last part)
    /// reclaim unmaps whatever page it picks.
    public static let reclaimChecksYoung = HostMMDetail(rawValue: 1 << 4)
    /// With `pageDirty`: a read fault on a swapped-out page the faulting mm
    /// holds alone maps it writable and clean, and leaves it in the swap cache
    /// with its copy valid (mm/memory.c, do_swap_page(), v6.11 on, since
    /// c18160dba5ff "mm: swap: reuse exclusive folio directly instead of wp
    /// page faults"): `if (!folio_test_ksm(folio) && (exclusive ||
    /// folio_ref_count(folio) == 1)) { if ((vma->vm_flags & VM_WRITE) && ...)
    /// { pte = pte_mkwrite(pte, vma); if (vmf->flags & FAULT_FLAG_WRITE) {
    /// pte = pte_mkdirty(pte); ... } } ... }`, with should_try_to_free_swap()
    /// true only for a write fault. A write through that PTE by a secondary
    /// MMU (KVM's EPT, which hva_to_pfn_fast() maps writable with FOLL_WRITE
    /// and no dirtying) leaves the PTE clean and the page clean: only the
    /// secondary MMU's own dirty hand-over (kvm_set_pfn_dirty()) keeps
    /// reclaim from dropping the write. The model takes `refcount == 1` for
    /// exclusivity (the swap PTE's exclusive bit is not modelled). The x86
    /// TDP MMU worlds take it with `pageDirty` (`--page-dirty 1`).
    public static let swapInMapsWritable = HostMMDetail(rawValue: 1 << 5)
}

/// What backs the guest RAM of the seed-004 worlds (`--guest-ram`).
public enum GuestRAM: String, CaseIterable, Codable, Sendable {
    /// Anonymous private memory (swap, the zero page, KSM, COW): the default,
    /// the only kind before issue 19's last part.
    case anon
    /// A MAP_SHARED mapping of a regular file (page cache, writeback):
    /// `HostMMDetail.sharedFile`.
    case file
}

/// Whether reclaim honours young bits (`--reclaim-young`).
public enum ReclaimYoung: String, CaseIterable, Codable, Sendable {
    /// Reclaim unmaps the page it picks, young or not (the model before;
    /// as if page_referenced() found nothing and TTU_IGNORE_ACCESS were set).
    case ignore
    /// v4.11's page_referenced() and try_to_unmap_one() checks
    /// (`HostMMDetail.reclaimChecksYoung`).
    case check
}
