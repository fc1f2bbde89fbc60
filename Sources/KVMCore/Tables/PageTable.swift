// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU

/// A radix page table (pgd -> pmd -> pte, `levels` deep) indexed by page number,
/// for any architecture's secondary or guest page tables: writers walk and link
/// tables under their lock, lock-free readers walk inside an RCU read section,
/// and unlinked tables are freed after a grace period. The flush and range
/// walks of an architecture's table code extend it in that architecture's
/// module (MIPS: `PageTable+MIPSFlush.swift`).
///
/// Storage is a `TableArena` (table `t` owns words `t * entriesPerTable ..<
/// (t + 1) * entriesPerTable`; each table has a generation and a state: free,
/// live, or unlinked and waiting for a grace period). Table 0 is the pgd. A
/// directory entry is `generation << 32 | child << 1 | 1` (0 = none); a leaf entry
/// is a `PTE`. Memory is used up to the highest table ever allocated, as the
/// kernel's page allocator hands out pages only when a table is needed.
///
/// Locking rule: writers hold the owner's lock (`kvm->mmu_lock` for a GPA table);
/// lock-free readers walk inside an RCU read section (`lookupLockless`). A table
/// unlinked by a writer is freed only through `rcu.callRCU`, so a reader that
/// already followed the link finishes its walk on a table that still holds what it
/// held. A reader that meets a freed or reused table reports `rcu-use-after-free`.
public final class PageTable: @unchecked Sendable {
    /// The oracles a table's walkers check.
    public static let oracles: [Oracle] = [.rcuUseAfterFree, .rcuMisuse]

    public let name: String
    public let levels: Int
    public let bitsPerLevel: Int
    public let entriesPerTable: Int
    public let capacity: Int
    @usableFromInline let engine: SimEngine
    let rcu: any RCUDomain
    /// The tables' memory: entries, states and generations, the allocator.
    @usableFromInline let arena: TableArena
    @usableFromInline var words: AtomicWords { arena.words }
    @usableFromInline var state: AtomicWords { arena.state }
    /// Free unlinked tables at once, without waiting for a grace period: right for a
    /// table only its owner walks (a vcpu's own guest tables); for a table that
    /// lock-free readers walk, the kernel's choice to weigh against RCU.
    public var freeWithoutGracePeriod = false
    /// Keep unlinked tables until the owner has flushed every walker out
    /// (`freeFlushedTables`), as x86's kvm_mmu_commit_zap_page() and LoongArch's
    /// kvm_flush_range() do: right when lock-free walkers run with the flush's
    /// IPI masked, so the flush returns only after every walk in progress ended.
    public var freeAfterFlush = false
    /// Tables unlinked and not yet freed under `freeAfterFlush` (owner's lock held).
    private var awaitingFlush: [Int] = []
    /// Per leaf slot, who filled it (model only: an oracle's record, like
    /// an arch TLB entry's `owner`). Allocated only with `recordOwners`.
    private let owners: AtomicWords?


    public init(name: String, levels: Int = 3, bitsPerLevel: Int = 9, capacity: Int, engine: SimEngine, rcu: any RCUDomain,
                recordOwners: Bool = false) {
        precondition(levels >= 2 && bitsPerLevel >= 1 && capacity >= 2)
        self.name = name
        self.levels = levels
        self.bitsPerLevel = bitsPerLevel
        entriesPerTable = 1 << bitsPerLevel
        self.capacity = capacity
        self.engine = engine
        self.rcu = rcu
        // Table 0, the pgd, is live from the start (zeroed); the others are
        // zeroed as they are handed out.
        arena = TableArena(entriesPerTable: 1 << bitsPerLevel, capacity: capacity, kernel: true, stateIsKernel: true, firstTables: 1)
        owners = recordOwners ? AtomicWords(reservingZeroed: capacity * entriesPerTable) : nil
        // As the arena's words: `allocTable` clears a table's records.
        if let owners { WorldMemory.limitRecord(of: owners, to: arena.handedOutWords) }
    }

    deinit { arena.free(); owners?.free() }

    /// A world reset in place: the allocator as built (the pgd live, nothing
    /// awaiting a flush). Entries, states and owners are the world's
    /// `WorldMemory` to restore.
    public func resetAllocator() {
        arena.resetAllocator(firstTables: 1)
        awaitingFlush.removeAll(keepingCapacity: true)
    }

    /// Tables needed to map `pages` page numbers below `limit`, with slack for tables
    /// waiting for a grace period.
    public static func capacity(forPageLimit limit: Int, levels: Int, bitsPerLevel: Int) -> Int {
        var total = 1, n = max(limit, 1)
        for _ in 1..<levels { n = (n + (1 << bitsPerLevel) - 1) >> bitsPerLevel; total += n }
        return 2 * total + 16
    }

    /// Page numbers the table can index.
    public var span: Int { 1 << (bitsPerLevel * levels) }

    @inline(__always) public func index(_ page: Int, level: Int) -> Int {
        (page >> (bitsPerLevel * (levels - 1 - level))) & (entriesPerTable - 1)
    }
    /// Word index of entry `i` of table `t` (in range by construction: wrapping arithmetic).
    @inlinable @inline(__always) public func slot(_ table: Int, _ i: Int) -> Int { table &* entriesPerTable &+ i }
    /// The table a directory entry links to.
    @inlinable @inline(__always) public static func child(_ e: UInt64) -> Int { Int(truncatingIfNeeded: (e &>> 1) & 0x7FFF_FFFF) }
    @inlinable @inline(__always) static func generation(_ e: UInt64) -> UInt64 { e &>> 32 }

    // MARK: - table pages

    /// The arena's words and table states, read-only, for the C reference walk of
    /// `kvmsim bench` (same layout, same generation checks).
    public var arenaForBenchmarks: (words: UnsafePointer<UInt64>, state: UnsafePointer<UInt64>) {
        (UnsafePointer(words.base), UnsafePointer(state.base))
    }

    /// Bytes of memory the table holds: the arena's pages in use (up to the highest
    /// table ever allocated; all of it for a small, heap-allocated arena), the
    /// table states, and the owner records if kept.
    public var allocatedBytes: Int {
        arena.allocatedBytes + (owners?.residentBytes(highWater: arena.freeTables.withLock { $0.fresh } * entriesPerTable) ?? 0)
    }

    /// Live tables, including the pgd (for memory accounting).
    public var liveTables: Int { arena.liveTables }

    /// __get_free_page() for a table; nil when the arena is exhausted (-ENOMEM).
    /// A new table has no owner records (a reused one's are cleared).
    public func allocTable() -> Int? {
        guard let t = arena.alloc() else { return nil }
        if let owners { for i in 0..<entriesPerTable { owners.storeRelaxed(slot(t, i), 0) } }
        return t
    }

    /// Returns a never-linked table (an unused memory-cache object) to the pool.
    public func freeUnlinkedTable(_ t: Int) { reclaim(t) }

    /// pte_free_kernel() / pmd_free() for a table a writer just unlinked
    /// (`clearDirectoryEntry`): reclaimed after a grace period (or at once with
    /// `freeWithoutGracePeriod`, or at the owner's next `freeFlushedTables` with
    /// `freeAfterFlush`). Owner's lock held.
    public func retire(_ t: Int) {
        arena.markRetired(t)
        if freeWithoutGracePeriod {
            reclaim(t)
        } else if freeAfterFlush {
            awaitingFlush.append(t)
        } else {
            rcu.callRCU { [self] in reclaim(t) }
        }
    }

    /// Frees the tables unlinked since the last call (`freeAfterFlush`): the
    /// caller's flush of every walker has returned. Owner's lock held.
    public func freeFlushedTables() {
        guard !awaitingFlush.isEmpty else { return }
        let tables = awaitingFlush
        awaitingFlush.removeAll(keepingCapacity: true)
        for t in tables { reclaim(t) }
    }

    /// Free, same generation: a reader's link now mismatches the state.
    private func reclaim(_ t: Int) { arena.reclaim(t) }

    // MARK: - writers (owner's lock held)

    /// The leaf slot for `page`, allocating missing directory levels from `cache`
    /// (nil: no allocation; returns nil if a level is missing): the walk of every
    /// arch's table code (kvm_mips_walk_pgd(), ...); owner's lock held.
    public func walk(_ page: Int, cache: MMUMemoryCache?) -> Int? {
        precondition(page >= 0 && page < span)
        var table = 0
        for level in 0..<(levels - 1) {
            let s = slot(table, index(page, level: level))
            let e = words.load(s)
            if e == 0 {
                guard let cache, let t = cache.alloc() else { return nil }
                let gen = state.load(t) >> 2
                words.store(s, gen << 32 | UInt64(t) << 1 | 1)    // pmd_populate: rcu_assign_pointer
                table = t
            } else {
                table = PageTable.child(e)
            }
        }
        return slot(table, index(page, level: levels - 1))
    }

    /// The raw word at slot `s`: a directory entry (0 = none; see `child`) or a leaf.
    @inline(__always) public func entry(slot s: Int) -> UInt64 { words.load(s) }
    /// pmd_clear() / pud_clear(): unlinks the table a directory entry points to
    /// (free it with `retire`); owner's lock held.
    @inline(__always) public func clearDirectoryEntry(slot s: Int) { words.store(s, 0) }
    /// *ptep (writers and lock-free readers that already hold a slot).
    @inline(__always) public func load(slot s: Int) -> PTE { PTE(raw: words.load(s)) }
    /// set_pte().
    @inline(__always) public func set(slot s: Int, _ p: PTE) { words.store(s, p.raw) }
    /// set_pte() with the oracle's record of who the entry is for.
    public func set(slot s: Int, _ p: PTE, owner: UInt64) { owners?.store(s, owner); words.store(s, p.raw) }
    /// The record stored with `set(slot:_:owner:)` (0 if none).
    public func owner(slot s: Int) -> UInt64 { owners?.load(s) ?? 0 }

    /// The leaf entry for `page` without allocating (writers; tests).
    public func lookup(_ page: Int) -> PTE {
        guard let s = walk(page, cache: nil) else { return .none }
        return load(slot: s)
    }

    /// Every present leaf (tests, oracles). Order: ascending page.
    public func presentEntries() -> [(page: Int, pte: PTE)] {
        var out: [(Int, PTE)] = []
        func visit(_ t: Int, _ level: Int, _ prefix: Int) {
            for i in 0..<entriesPerTable {
                let e = words.load(slot(t, i))
                if e == 0 { continue }
                let page = prefix << bitsPerLevel | i
                if level == levels - 1 { let p = PTE(raw: e); if p.isPresent { out.append((page, p)) } }
                else { visit(PageTable.child(e), level + 1, page) }
            }
        }
        visit(0, 0, 0)
        return out
    }

    // MARK: - lock-free readers

    /// A lock-free walk for `page`, to be called inside `rcu.read { }`. Between levels
    /// the walker reaches a scheduling point (`point`), where writers may unlink and
    /// (after a grace period) free the tables below. Each table is validated after it
    /// is read: a freed or reused table is reported as `rcu-use-after-free` and the
    /// walk returns `.none`.
    @inlinable
    public func lookupLockless(_ page: Int, point: StaticString) -> PTE {
        lookupLocklessSlot(page, point: point).pte
    }

    /// `lookupLockless`, also giving the leaf slot it read (nil when a level is missing).
    /// Inlinable, with wrapping arithmetic (indices are in range by construction),
    /// so that the read path costs what the C walk costs (see `kvmsim bench`).
    @inlinable @inline(__always)
    public func lookupLocklessSlot(_ page: Int, point: StaticString) -> (pte: PTE, slot: Int?) {
        let mask = entriesPerTable &- 1
        var shift = bitsPerLevel &* (levels &- 1)           // level 0 (pgd) indexes the top bits
        var table = 0
        var expectGen = state.load(0) &>> 2
        while true {
            let s = slot(table, (page &>> shift) & mask)
            let e = words.load(s)
            let st = state.load(table)                      // validate the table after reading it
            guard st & 3 != 0 && st &>> 2 == expectGen else {
                reportFreedTable(table, state: st, expected: expectGen, page: page, shift: shift)
                return (PTE(raw: 0), nil)
            }
            if shift == 0 { return (PTE(raw: e), s) }
            if e == 0 { return (PTE(raw: 0), nil) }
            table = PageTable.child(e)
            expectGen = PageTable.generation(e)
            shift &-= bitsPerLevel
            engine.point(point)
        }
    }

    /// The walker met a freed (or freed and reused) table: `rcu-use-after-free`.
    @usableFromInline @inline(never)
    func reportFreedTable(_ t: Int, state s: UInt64, expected gen: UInt64, page: Int, shift: Int) {
        let level = levels - 1 - shift / bitsPerLevel
        engine.report(.rcuUseAfterFree,
                      "\(name) walker for page \(page) read level-\(level) table \(t) after it was freed\(s >> 2 != gen ? " and reused" : "") (no grace period between unlink and free)")
    }
}

extension Oracle {
    /// No lock-free walker reads a table after it was freed (reported by the walker).
    public static let rcuUseAfterFree = Oracle("rcu-use-after-free", "a lock-free page-table walker never reads a table that was freed (no free before a grace period)")
}
