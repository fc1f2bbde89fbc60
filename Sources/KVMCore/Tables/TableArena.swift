// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Page-table pages for tables that lock-free walkers read: the memory of
/// `__get_free_page()` / `free_page()` reduced to what RCU-freed tables need,
/// shared by every architecture's tables (`PageTable`, the x86 TDP MMU's
/// `struct kvm_mmu_page`s).
///
/// Storage is one arena of atomic 64-bit words: table `t` owns words
/// `t * entriesPerTable ..< (t + 1) * entriesPerTable`. Every table has a state
/// word `generation << 2 | state` (0 free, 1 live, 2 unlinked and waiting to be
/// freed); `alloc` bumps the generation, so a walker that kept a link to a table
/// (with the generation it saw) can tell, after reading an entry, whether the
/// table it read was freed, or freed and handed out again. Freed tables are
/// poisoned (`HostPages.poison`). The arena is sized for `capacity` tables but,
/// when large, only reserved as address space: tables are handed out from the
/// low end, so memory follows the tables in use.
///
/// Locking: the allocator has its own mutex (no scheduling point inside);
/// entries and states are atomics. Who may free a table when is the owner's
/// rule (after a grace period, for a table lock-free walkers reach).
public struct TableArena: @unchecked Sendable {
    public let entriesPerTable: Int
    public let capacity: Int
    /// The entries of every table.
    public let words: AtomicWords
    /// Per table: `generation << 2 | state`.
    public let state: AtomicWords
    /// Tables below `fresh` were handed out at least once; `reclaimed` holds the
    /// free ones among them (reused first).
    let freeTables: Locked<(fresh: Int, reclaimed: [Int])>

    public static let free: UInt64 = 0, live: UInt64 = 1, retired: UInt64 = 2

    /// An arena of `capacity` tables of `entriesPerTable` entries, whose entries
    /// are kernel memory (`kernel`: each access an access-level point). Table
    /// states are the model's record; `stateIsKernel` makes their accesses points
    /// too (`PageTable` keeps them so, which its traces depend on). `firstTables`
    /// tables are live from the start, their entries set to `fill` (a pgd that
    /// always exists).
    public init(entriesPerTable: Int, capacity: Int, kernel: Bool, stateIsKernel: Bool = false, firstTables: Int = 0,
                fill: UInt64 = 0) {
        precondition(entriesPerTable >= 2 && capacity >= max(firstTables, 1))
        self.entriesPerTable = entriesPerTable
        self.capacity = capacity
        // Not zeroed up front: `alloc` fills each table it hands out, and a walker
        // reaches only tables linked from a live one.
        words = AtomicWords(reserving: capacity * entriesPerTable, kernel: kernel)
        state = AtomicWords(reservingZeroed: capacity, kernel: stateIsKernel)
        for t in 0..<firstTables {
            for i in 0..<entriesPerTable { words.storeRelaxed(t * entriesPerTable + i, fill) }
            state.store(t, 1 << 2 | TableArena.live)
        }
        var reclaimed: [Int] = []
        reclaimed.reserveCapacity(min(capacity, 16))       // no regrowth in a small world
        freeTables = Locked((fresh: firstTables, reclaimed: reclaimed))
        // A world reset in place restores only the tables handed out when its
        // build ended: `alloc` fills every other table before it is linked.
        WorldMemory.limitRecord(of: words, to: handedOutWords)
    }

    /// Words of the tables handed out so far (below `fresh`).
    public var handedOutWords: () -> Int {
        { [freeTables, entriesPerTable] in freeTables.withLock { $0.fresh } * entriesPerTable }
    }

    /// A world reset in place: tables below `firstTables` handed out, none
    /// reclaimed, as built. Words and states are the world's `WorldMemory`
    /// to restore (the words only of the tables handed out when the build
    /// ended: `limitRecord`).
    public func resetAllocator(firstTables: Int) {
        freeTables.withLock { $0.fresh = firstTables; $0.reclaimed.removeAll(keepingCapacity: true) }
    }

    /// The owner calls this once, when no walker can run any more.
    public func free() { words.free(); state.free() }

    /// Word index of entry `i` of table `t` (in range by construction: wrapping arithmetic).
    @inlinable @inline(__always) public func slot(_ table: Int, _ i: Int) -> Int { table &* entriesPerTable &+ i }

    /// __get_free_page() for a table, its entries set to `fill`; nil when the
    /// arena is exhausted (-ENOMEM).
    public func alloc(fill: UInt64 = 0) -> Int? {
        let capacity = capacity
        let next: Int? = freeTables.withLock { f in
            if let t = f.reclaimed.popLast() { return t }
            guard f.fresh < capacity else { return nil }
            f.fresh += 1
            return f.fresh - 1
        }
        guard let t = next else { return nil }
        for i in 0..<entriesPerTable { words.storeRelaxed(slot(t, i), fill) }
        let gen = (state.load(t) >> 2) &+ 1
        state.store(t, gen << 2 | TableArena.live)
        return t
    }

    /// The generation of table `t` (a link to it records this).
    @inlinable @inline(__always) public func generation(_ t: Int) -> UInt64 { state.peek(t) &>> 2 }

    /// Whether table `t` is still the table of generation `gen` and not freed
    /// (live, or unlinked and waiting for its grace period).
    @inlinable @inline(__always) public func isValid(_ t: Int, generation gen: UInt64) -> Bool {
        let s = state.peek(t)
        return s & 3 != TableArena.free && s &>> 2 == gen
    }

    /// Marks table `t` unlinked (it is freed later, by `reclaim`).
    public func markRetired(_ t: Int) {
        let s = state.load(t)
        state.store(t, (s >> 2) << 2 | TableArena.retired)
    }

    /// free_page(): the table is free, same generation (a walker's link now
    /// mismatches its state), its entries poisoned, and it may be handed out again.
    public func reclaim(_ t: Int) {
        let s = state.load(t)
        state.store(t, (s >> 2) << 2)
        for i in 0..<entriesPerTable { words.storeRelaxed(slot(t, i), HostPages.poison) }
        freeTables.withLock { $0.reclaimed.append(t) }
    }

    /// Tables handed out and not free (for memory accounting).
    public var liveTables: Int { freeTables.withLock { $0.fresh - $0.reclaimed.count } }

    /// Bytes of memory the arena holds: its pages in use (up to the highest table
    /// ever allocated; all of it for a small, heap-allocated arena) and the table
    /// states.
    public var allocatedBytes: Int {
        let used = freeTables.withLock { $0.fresh }
        return words.residentBytes(highWater: used * entriesPerTable) + state.residentBytes(highWater: used)
    }
}
