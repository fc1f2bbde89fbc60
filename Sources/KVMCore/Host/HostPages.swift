// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The host's physical pages: `struct page` reduced to what the protocols touch.
///
/// Each pfn has a reference count (`get_page` / `put_page`), a state (free or in
/// use) and one word of content standing for the page's data: guest writes store a
/// fresh version number there, so a write that lands in the wrong page shows up
/// as a lost write. A page whose count drops to zero is freed at once, its
/// content poisoned, and it goes to the tail of the free list to be reused.
///
/// Huge pages (hugetlbfs) are compound pages: `blockPages` contiguous pfns,
/// aligned to their size, from a region of their own above `capacity`; the head
/// pfn holds the reference count and the state of the whole page, each pfn its
/// own content (a 4K part's data).
///
/// The zero page (`ZERO_PAGE()`, `my_zero_pfn()`), when asked for: one
/// reserved pfn (the last small one), never handed out or freed, content 0;
/// `get_page()`/`put_page()` of it change nothing (the kernel's do count it,
/// but a reserved page is never freed, and KVM's kvm_release_pfn_clean() and
/// kvm_set_pfn_*() skip reserved pfns: `kvm_is_reserved_pfn()`).
///
/// Locking: counts, states and contents are atomics; the free lists have their
/// own mutex (no scheduling point inside).
public final class HostPages: @unchecked Sendable {
    public static let poison: UInt64 = 0xDEAD_BEEF_DEAD_BEEF
    public let capacity: Int
    /// The first pfn of the huge page region (== `total` when there is none).
    public let hugeBase: Int
    /// Pfns per huge page (0: no huge pages).
    public let blockPages: Int
    /// Every pfn, small and huge.
    public let total: Int
    private let refcount: FrameWords
    private let inUse: FrameWords
    public let content: FrameWords
    /// PG_dirty and PG_referenced (`PageDirty()`, `mark_page_accessed()`'s
    /// first step); used by the worlds with `HostMMDetail.pageDirty`.
    private let dirtyFlag: FrameWords
    private let referencedFlag: FrameWords
    private let freeList: Locked<(items: [Int], head: Int)>
    /// Free huge pages, by head pfn.
    private let hugeFree: Locked<[Int]>
    /// The zero page's pfn, if this memory has one.
    public let zeroPfn: Int?
    /// Whether the page flags (dirty, referenced) are kept: worlds with
    /// `HostMMDetail.pageDirty` (no other world touches them).
    public let pageFlags: Bool
    /// The free lists as built (for `resetFreeLists`; arrays are shared, not copied).
    private let initialFree: [Int]
    private let initialHugeFree: [Int]

    public init(capacity: Int, hugePages: Int = 0, blockPages: Int = 0, zeroPage: Bool = false, pageFlags: Bool = false) {
        self.pageFlags = pageFlags
        self.capacity = capacity
        self.blockPages = hugePages > 0 ? blockPages : 0
        hugeBase = hugePages > 0 ? (capacity + blockPages - 1) / blockPages * blockPages : capacity
        total = hugeBase + (hugePages > 0 ? hugePages * blockPages : 0)
        refcount = FrameWords(count: total, kernel: true)
        inUse = FrameWords(count: total, kernel: true)
        content = FrameWords(count: total, initial: HostPages.poison, kernel: true)
        dirtyFlag = FrameWords(count: total, kernel: true)
        referencedFlag = FrameWords(count: total, kernel: true)
        // pfn 0 is never handed out: a zero pfn in a PTE is always a bug.
        let z = zeroPage ? max(capacity, 2) - 1 : nil
        precondition(z == nil || z! > 1, "a zero page needs a capacity of 3 or more")
        zeroPfn = z
        initialFree = Array(1..<max(capacity, 2)).filter { $0 != z }
        freeList = Locked((initialFree, 0))
        let base = hugeBase, bp = blockPages
        initialHugeFree = hugePages > 0 ? (0..<hugePages).reversed().map { base + $0 * bp } : []
        hugeFree = Locked(initialHugeFree)
        if let z {
            refcount.store(z, 1)
            content.store(z, 0)
            inUse.store(z, 1)
        }
    }

    /// A world reset in place (Catalog's `ResettableWorld`): the free lists as
    /// built. The per-pfn words are the world's `WorldMemory` to restore.
    public func resetFreeLists() {
        freeList.withLock { $0 = (initialFree, 0) }
        hugeFree.withLock { $0 = initialHugeFree }
    }

    /// is_zero_pfn().
    @inline(__always) public func isZero(_ pfn: Int) -> Bool { pfn == zeroPfn }

    deinit { refcount.free(); inUse.free(); content.free(); dirtyFlag.free(); referencedFlag.free() }

    /// SetPageDirty() / set_page_dirty() of an anonymous page.
    public func setDirty(_ pfn: Int) { dirtyFlag.store(head(pfn), 1) }
    /// PageDirty().
    public func isDirty(_ pfn: Int) -> Bool { dirtyFlag.load(head(pfn)) != 0 }
    /// TestClearPageDirty() (clear_page_dirty_for_io() of an anonymous page).
    @discardableResult
    public func testClearDirty(_ pfn: Int) -> Bool { dirtyFlag.exchange(head(pfn), 0) != 0 }
    /// mark_page_accessed()'s first step on a page not yet referenced:
    /// SetPageReferenced(). (Reclaim in the model picks pages at random, so
    /// nothing reads it back.)
    public func markAccessed(_ pfn: Int) { referencedFlag.store(head(pfn), 1) }

    /// The page a pfn belongs to: itself, or the head of its huge page.
    @inline(__always) public func head(_ pfn: Int) -> Int {
        pfn < hugeBase ? pfn : hugeBase + (pfn - hugeBase) / blockPages * blockPages
    }

    /// alloc_pages() of a huge page: its head pfn, with one reference, zeroed;
    /// nil when none is free.
    public func allocHuge() -> Int? {
        guard let h = hugeFree.withLock({ $0.popLast() }) else { return nil }
        refcount.store(h, 1)
        for p in h..<(h + blockPages) { content.store(p, 0) }
        inUse.store(h, 1)
        return h
    }

    /// alloc_page(): a zeroed page with one reference, or nil when memory is exhausted.
    public func alloc() -> Int? {
        let pfn: Int? = freeList.withLock { fl in
            guard fl.head < fl.items.count else { return nil }
            let p = fl.items[fl.head]
            fl.head += 1
            if fl.head > 4096 && fl.head * 2 > fl.items.count {
                fl.items.removeFirst(fl.head); fl.head = 0
            }
            return p
        }
        guard let pfn else { return nil }
        refcount.store(pfn, 1)
        content.store(pfn, 0)
        if pageFlags {                   // a new page has no flags (free_pages_prepare() cleared them)
            dirtyFlag.store(pfn, 0)
            referencedFlag.store(pfn, 0)
        }
        inUse.store(pfn, 1)
        return pfn
    }

    /// get_page() (of the compound page, for a huge page's part).
    public func get(_ pfn: Int) {
        precondition(isInUse(pfn), "get_page on free pfn \(pfn)")
        if pfn == zeroPfn { return }
        refcount.add(head(pfn), 1)
    }

    /// put_page(): drops a reference; frees and poisons the page at zero.
    /// Returns true when the page was freed.
    @discardableResult
    public func put(_ pfn: Int) -> Bool {
        if pfn == zeroPfn { return false }
        let h = head(pfn)
        let left = refcount.sub(h, 1)
        precondition(left < UInt64(Int32.max), "put_page underflow on pfn \(pfn)")
        guard left == 0 else { return false }
        if h >= hugeBase {
            for p in h..<(h + blockPages) { content.store(p, HostPages.poison) }
            inUse.store(h, 0)
            hugeFree.withLock { $0.append(h) }
            return true
        }
        content.store(h, HostPages.poison)
        inUse.store(h, 0)
        freeList.withLock { $0.items.append(h) }
        return true
    }

    public func isInUse(_ pfn: Int) -> Bool { pfn > 0 && pfn < total && inUse.load(head(pfn)) == 1 }
    public func refs(_ pfn: Int) -> Int { Int(refcount.load(head(pfn))) }
}
