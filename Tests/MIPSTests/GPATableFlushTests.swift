// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import MIPS

/// A GPA table on a deterministic engine, driven from the test thread.
func makeGPATable(bits: Int = 2, levels: Int = 3) -> (SimEngine, PageTable, MMUMemoryCache) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let rcu = ModelledRCU(engine: engine)
    let t = PageTable(name: "test", levels: levels, bitsPerLevel: bits, capacity: 64, engine: engine, rcu: rcu)
    return (engine, t, MMUMemoryCache(table: t))
}

/// Maps each page to pfn page + 1 (present), then returns the cache's spare tables.
func mapPages(_ pages: Range<Int>, in t: PageTable, cache: MMUMemoryCache) {
    for page in pages {
        _ = cache.topup(min: 2, max: 4)
        t.set(slot: t.walk(page, cache: cache)!, PTE(pfn: page + 1, flags: PTE.present))
    }
    cache.freeAll()
}

/// The range walks of arch/mips/kvm/mmu.c over the radix table.
@Suite struct GPATableFlushTests {
    /// `after-flush`: a table the flush unlinked stays allocated (and unpoisoned)
    /// until the owner's flush returned, then is freed.
    @Test func afterFlushFreesOnlyAtTheFlush() {
        let (engine, t, cache) = makeGPATable()
        defer { engine.shutdown() }
        t.freeAfterFlush = true
        mapPages(0..<8, in: t, cache: cache)
        let live = t.liveTables
        #expect(!t.flushRange(4, 7, clearCoveredLeaves: true))
        #expect(t.liveTables == live)              // unlinked, not freed
        t.freeFlushedTables()
        #expect(t.liveTables == live - 1)
        t.freeFlushedTables()                      // nothing left to free
        #expect(t.liveTables == live - 1)
    }

    /// `immediate` (the kernel's pte_free_kernel() after pmd_clear()): freed in the flush itself.
    @Test func immediateFreesInTheFlush() {
        let (engine, t, cache) = makeGPATable()
        defer { engine.shutdown() }
        t.freeWithoutGracePeriod = true
        mapPages(0..<8, in: t, cache: cache)
        let live = t.liveTables
        #expect(!t.flushRange(4, 7, clearCoveredLeaves: true))
        #expect(t.liveTables == live - 1)
    }

    /// kvm_mips_flush_gpa_pt frees exactly the tables the (inclusive) range covers.
    @Test func flushFreesFullyCoveredTables() {
        let (engine, t, cache) = makeGPATable()       // 4 entries per level: a pte table spans 4 pages, a pmd 16
        defer { engine.shutdown() }
        mapPages(0..<32, in: t, cache: cache)
        let live = t.liveTables                   // pgd + 2 pmd + 8 pte
        #expect(live == 11)
        // Pages 1...2: partial pte table, nothing freed.
        #expect(!t.flushRange(1, 2, clearCoveredLeaves: true))
        #expect(t.liveTables == live)
        #expect(t.lookup(1) == .none && t.lookup(3).pfn == 4)
        // Pages 4...7: exactly one pte table: freed (after a grace period: none running).
        #expect(!t.flushRange(4, 7, clearCoveredLeaves: true))
        #expect(t.liveTables == live - 1)
        // Pages 16...31: one whole pmd and its four pte tables.
        #expect(!t.flushRange(16, 31, clearCoveredLeaves: true))
        #expect(t.liveTables == live - 6)
        #expect(t.presentEntries().map(\.page) == [0, 3, 8, 9, 10, 11, 12, 13, 14, 15])
        // Everything: the pgd reports it could go too.
        #expect(t.flushRange(0, 63, clearCoveredLeaves: true))
        #expect(t.liveTables == 1)
    }

    @Test func rangeOpReportsChanges() {
        let (engine, t, cache) = makeGPATable()
        defer { engine.shutdown() }
        _ = cache.topup(min: 2, max: 4)
        t.set(slot: t.walk(2, cache: cache)!, PTE(pfn: 3, flags: PTE.present | PTE.young))
        #expect(t.rangeOp(0, 3) { $0.mkold() })
        #expect(!t.lookup(2).isYoung)
        #expect(!t.rangeOp(0, 3) { $0.mkold() })   // nothing young any more
    }
}
