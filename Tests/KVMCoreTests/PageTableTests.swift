// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
@testable import KVMCore

/// A GPA table on a deterministic engine, driven from the test thread.
func makeTable(bits: Int = 2, levels: Int = 3) -> (SimEngine, PageTable, MMUMemoryCache) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let rcu = ModelledRCU(engine: engine)
    let t = PageTable(name: "test", levels: levels, bitsPerLevel: bits, capacity: 64, engine: engine, rcu: rcu)
    return (engine, t, MMUMemoryCache(table: t))
}

@Suite struct PageTableTests {
    @Test func walkAllocatesLevelsFromTheCache() {
        let (engine, t, cache) = makeTable()
        defer { engine.shutdown() }
        #expect(t.walk(5, cache: nil) == nil)
        #expect(cache.topup(min: 2, max: 4))
        let s = t.walk(5, cache: cache)!
        t.set(slot: s, PTE(pfn: 7, flags: PTE.present | PTE.young))
        #expect(t.lookup(5).pfn == 7)
        #expect(t.lookup(4) == .none)
        #expect(cache.objects.count == 2)          // two directory levels used
        #expect(t.lookupLockless(5, point: "walk").pfn == 7)
    }

    /// A large arena is only reserved: memory is counted (and touched) up to the
    /// highest table handed out, and freed tables are reused before new ones.
    @Test func largeArenaCostsOnlyTheTablesUsed() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let rcu = ModelledRCU(engine: engine)
        let cap = PageTable.capacity(forPageLimit: 1 << 27, levels: 3, bitsPerLevel: 9)   // 512 GiB of pages
        let t = PageTable(name: "big", levels: 3, bitsPerLevel: 9, capacity: cap, engine: engine, rcu: rcu)
        let tableBytes = t.entriesPerTable * 8
        #expect(cap * tableBytes > 1 << 30)                  // a GiB and more reserved
        #expect(t.allocatedBytes <= 2 * tableBytes)          // the pgd (and its state word)
        let cache = MMUMemoryCache(table: t)
        for page in stride(from: 0, to: 8 << 18, by: 1 << 18) {   // 8 pages, each under its own pmd
            _ = cache.topup(min: 2, max: 4)
            t.set(slot: t.walk(page, cache: cache)!, PTE(pfn: 1, flags: PTE.present))
        }
        cache.freeAll()
        #expect(t.liveTables == 1 + 8 + 8)
        let used = t.allocatedBytes
        #expect(used >= 17 * tableBytes && used <= 22 * tableBytes)   // the cache's spare tables were handed out too
        // One more table costs one more table; freed, it is the next one handed
        // out again, and memory does not grow.
        let a = t.allocTable()!
        #expect(t.allocatedBytes == used + tableBytes)
        t.freeUnlinkedTable(a)
        #expect(t.allocTable() == a)
        #expect(t.allocatedBytes == used + tableBytes)
    }

    /// A lock-free reader overtaken mid-walk by a writer that unlinks and frees the
    /// tables below it: with a grace period nothing is reported in any schedule;
    /// freeing at once is found as rcu-use-after-free.
    @Test(arguments: [false, true])
    func freeWithoutGracePeriodIsFound(mutated: Bool) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["reader", "writer"])
        defer { engine.shutdown() }
        var found = 0
        for seed in 0..<200 {
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: UInt64(seed))
            let rcu = ModelledRCU(engine: engine)
            let t = PageTable(name: "GPA", levels: 3, bitsPerLevel: 2, capacity: 32, engine: engine, rcu: rcu)
            t.freeWithoutGracePeriod = mutated
            let cache = MMUMemoryCache(table: t)
            _ = cache.topup(min: 2, max: 2)
            t.set(slot: t.walk(5, cache: cache)!, PTE(pfn: 9, flags: PTE.present))
            let r = TableActor(engine.executors[0]), w = TableActor(engine.executors[1])
            engine.spawn(on: r.executor) { await r.run { _ = rcu.read { t.lookupLockless(5, point: "walk") } } }
            engine.spawn(on: w.executor) { await w.run {
                engine.point("writer")
                unlinkSubtree(t, above: 5)                          // unlinks the pmd and pte tables
                let c2 = MMUMemoryCache(table: t)
                _ = c2.topup(min: 2, max: 2)                        // reuse freed tables at once
                t.set(slot: t.walk(5, cache: c2)!, PTE(pfn: 10, flags: PTE.present))
            } }
            engine.runSchedule()
            if engine.violations.contains(where: { $0.oracle == "rcu-use-after-free" }) { found += 1 }
        }
        if mutated { #expect(found > 0) } else { #expect(found == 0) }
    }

    /// A table handed out again has no owner records of its last use (a world
    /// reset in place restores only the tables handed out when the build
    /// ended, so a fresh table must not show what an earlier schedule wrote).
    @Test func aReusedTableHasNoOwnerRecords() throws {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let t = PageTable(name: "GVA", levels: 3, bitsPerLevel: 2, capacity: 8, engine: engine, rcu: ModelledRCU(engine: engine),
                          recordOwners: true)
        let first = try #require(t.allocTable())
        t.set(slot: t.slot(first, 1), PTE(pfn: 3, flags: PTE.present), owner: 42)
        #expect(t.owner(slot: t.slot(first, 1)) == 42)
        t.freeUnlinkedTable(first)
        let again = try #require(t.allocTable())
        #expect(again == first)
        #expect(t.owner(slot: t.slot(again, 1)) == 0)
    }

    /// A recorded build keeps only the tables handed out (the pgd) in its record.
    @Test func aRecordedTableRecordsOnlyItsHandedOutTables() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        let m = WorldMemory.beginRecording()
        let t = PageTable(name: "GVA", levels: 3, bitsPerLevel: 2, capacity: 8, engine: engine, rcu: ModelledRCU(engine: engine),
                          recordOwners: true)
        m.endRecording()
        // Entries and owners of the pgd (4 words each) and the 8 table states
        // (the whole arena would be 8 tables of 4 entries, twice).
        #expect(m.bytes == (4 + 4 + 8) * 8)
        withExtendedLifetime(t) {}
    }
}

/// Unlinks the pmd (level 1) table above `page` from the pgd and frees it and
/// the pte table below it: what an arch's range flush does for a covered range.
func unlinkSubtree(_ t: PageTable, above page: Int) {
    let pmdSlot = t.slot(0, t.index(page, level: 0))
    let pmd = PageTable.child(t.entry(slot: pmdSlot))
    let pte = PageTable.child(t.entry(slot: t.slot(pmd, t.index(page, level: 1))))
    t.clearDirectoryEntry(slot: pmdSlot)
    t.retire(pte)
    t.retire(pmd)
}

actor TableActor: SimActor {
    nonisolated let executor: SimExecutor
    init(_ e: SimExecutor) { executor = e }
    func run(_ body: @Sendable () -> Void) { body() }
}

@Suite struct HostPagesTests {
    @Test func refcountsFreeAndPoison() {
        let pages = HostPages(capacity: 4)
        let p = pages.alloc()!
        #expect(pages.content.load(p) == 0)
        pages.get(p)
        #expect(!pages.put(p))
        #expect(pages.put(p))
        #expect(!pages.isInUse(p))
        #expect(pages.content.load(p) == HostPages.poison)
        #expect(pages.alloc() != nil && pages.alloc() != nil && pages.alloc() != nil)
        #expect(pages.alloc() == nil)             // pfn 0 is never handed out
    }
}

@Suite struct MemslotTests {
    @Test func conversions() {
        let slots = Memslots([Memslot(id: 1, baseGfn: 100, npages: 10, userspaceAddr: 5000),
                              Memslot(id: 0, baseGfn: 0, npages: 50, userspaceAddr: 9000)])
        #expect(slots.slots.map(\.id) == [0, 1])
        #expect(slots.gfnToHva(105) == 5005)
        #expect(slots.gfnToHva(60) == nil)
        #expect(slots.hvaToGfn(9049) == 49)
        #expect(slots.hvaToGfn(9050) == nil)
        #expect(slots.maxGfn == 110)
    }
}
