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
/// Locking: counts, states and contents are atomics; the free list has its own
/// mutex (no scheduling point inside it).
public final class HostPages: @unchecked Sendable {
    public static let poison: UInt64 = 0xDEAD_BEEF_DEAD_BEEF
    public let capacity: Int
    private let refcount: AtomicWords
    private let inUse: AtomicWords
    public let content: AtomicWords
    private let freeList: Locked<(items: [Int], head: Int)>

    public init(capacity: Int) {
        self.capacity = capacity
        refcount = AtomicWords(count: capacity, kernel: true)
        inUse = AtomicWords(count: capacity, kernel: true)
        content = AtomicWords(count: capacity, initial: HostPages.poison, kernel: true)
        // pfn 0 is never handed out: a zero pfn in a PTE is always a bug.
        freeList = Locked((Array(1..<max(capacity, 2)), 0))
    }

    deinit { refcount.free(); inUse.free(); content.free() }

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
        inUse.store(pfn, 1)
        return pfn
    }

    /// get_page().
    public func get(_ pfn: Int) {
        precondition(isInUse(pfn), "get_page on free pfn \(pfn)")
        refcount.add(pfn, 1)
    }

    /// put_page(): drops a reference; frees and poisons the page at zero.
    /// Returns true when the page was freed.
    @discardableResult
    public func put(_ pfn: Int) -> Bool {
        let left = refcount.sub(pfn, 1)
        precondition(left < UInt64(Int32.max), "put_page underflow on pfn \(pfn)")
        guard left == 0 else { return false }
        content.store(pfn, HostPages.poison)
        inUse.store(pfn, 0)
        freeList.withLock { $0.items.append(pfn) }
        return true
    }

    public func isInUse(_ pfn: Int) -> Bool { pfn > 0 && pfn < capacity && inUse.load(pfn) == 1 }
    public func refs(_ pfn: Int) -> Int { Int(refcount.load(pfn)) }
}
