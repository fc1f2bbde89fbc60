// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import MIPS
@testable import Catalog
import Harness
import TestSupport

/// kvm_mips_flush_gva_pt(): every flag combination against the boundary addresses,
/// and tables freed exactly when a flush covers them.
@Suite struct GVAFlushTests {
    static let boundaries: [UInt64] = [0x3FFF_FFFF, 0x4000_0000, 0x5FFF_FFFF, 0x6000_0000, 0x7FFF_FFFF]

    func table() -> (SimEngine, PageTable, MMUMemoryCache) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let t = GVAPageTables.makeTable(name: "gva", engine: engine, rcu: ModelledRCU(engine: engine))
        return (engine, t, MMUMemoryCache(table: t))
    }

    func map(_ t: PageTable, _ cache: MMUMemoryCache, _ gva: UInt64) {
        _ = cache.topup(min: 2, max: 4)
        let page = Int(gva >> 12)
        t.set(slot: t.walk(page, cache: cache)!, PTE(pfn: page + 1, flags: PTE.present | PTE.young))
    }

    func mapped(_ t: PageTable, _ gva: UInt64) -> Bool { t.lookup(Int(gva >> 12)).isPresent }

    /// Which boundary addresses each flag combination flushes (from the seed's ranges).
    static let cases: [(KVMMipsFlush, [Bool])] = [
        (.user, [true, false, false, false, false]),
        (.kern, [true, false, false, true, true]),
        (.gpa, [true, false, false, false, false]),
        (KVMMipsFlush([.gpa, .kern]), [true, true, true, true, true]),
    ]

    @Test(arguments: 0..<4)
    func flagRanges(caseIndex: Int) {
        let (flags, flushed) = Self.cases[caseIndex]
        let (engine, t, cache) = table()
        defer { engine.shutdown() }
        for a in Self.boundaries { map(t, cache, a) }
        GVAPageTables.kvmMipsFlushGvaPt(t, flags)
        for (a, f) in zip(Self.boundaries, flushed) {
            #expect(mapped(t, a) == !f, "\(flags): 0x\(String(a, radix: 16)) should \(f ? "" : "not ")be flushed")
        }
    }

    /// KMF_USER frees the useg tables it covers entirely and leaves kseg0's.
    @Test func tablesFreedExactlyWhenCovered() {
        let (engine, t, cache) = table()
        defer { engine.shutdown() }
        let before = t.liveTables
        map(t, cache, 0x0000_1000)          // useg: pmd + pte tables under pgd slot 0
        map(t, cache, 0x3FFF_F000)          // useg end: another pmd + pte
        map(t, cache, 0x4000_0000)          // kseg0: another pmd + pte
        cache.freeAll()
        #expect(t.liveTables == before + 6)
        GVAPageTables.kvmMipsFlushGvaPt(t, .user)
        #expect(t.liveTables == before + 2)  // only kseg0's tables remain
        #expect(mapped(t, 0x4000_0000))
        // A partial range clears entries but keeps the tables.
        map(t, cache, 0x6000_0000)
        map(t, cache, 0x6000_1000)
        cache.freeAll()
        let live = t.liveTables
        t.flushRange(0x60000, 0x60000, clearCoveredLeaves: false)
        #expect(t.liveTables == live)
        #expect(!mapped(t, 0x6000_0000) && mapped(t, 0x6000_1000))
        GVAPageTables.kvmMipsFlushGvaPt(t, .kern)
        #expect(t.liveTables == before + 2)
    }

    /// The GVA flavour leaves the entries of a fully covered PTE table alone: the
    /// parent frees the table (kvm_mips_flush_gva_pte returns early).
    @Test func coveredPTETableIsFreedNotCleared() {
        let (engine, t, cache) = table()
        defer { engine.shutdown() }
        map(t, cache, 0x0000_0000)
        let page = 0
        let slot = t.walk(page, cache: nil)!
        #expect(t.flushRange(0, 127, clearCoveredLeaves: false) == false)   // pgd itself not all covered
        #expect(t.walk(page, cache: nil) == nil)                            // table unlinked
        _ = slot
    }
}

/// Seed 001 in the scenario: verdicts pinned.
@Suite struct GVAFlushScenarioTests {
    @Test func preFixIsCaught() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, runner) = try run("gva-flush", "pre-fix", schedules: 2000, strategy: strategy)
            #expect(r.violations > 0)
            #expect(r.firstViolation?.oracle == "stale-asid")
            // The stale translation came from the GVA page table, not a surviving TLB entry.
            let replay = try Runner.replay(try #require(runner.failingTrace))
            #expect(replay.events.contains { $0.text.contains("TLB refill from GVA PT") && $0.text.contains("guest ASID 1") })
        }
    }

    @Test func patchedHolds() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("gva-flush", "patched", schedules: 3000, strategy: strategy)
            #expect(r.violations == 0, "\(strategy): \(r.firstViolation?.description ?? "")")
        }
        let (p, _) = try run("gva-flush", "patched", mode: .parallel, seconds: 2)
        #expect(p.violations == 0)
    }
}

/// kvm_trap_emul_check_requests(): KVM_REQ_TLB_FLUSH flushes both GVA tables
/// (KMF_GPA) and zeroes both mms' contexts, so the next entry takes new ASIDs.
@Suite struct TrapEmulRequestTests {
    @Test func tlbFlushRequestFlushesGVATablesAndContexts() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "cpu1", "vcpu0"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let asids = ASIDAllocator(bits: 3, cpus: 2)
        let tlbs = [MIPSTLB(cpu: 0), MIPSTLB(cpu: 1)]
        let state = VCPUState(id: 0, cpu: 0)
        let gva = VCPUGVATables(vcpu: 0, variant: .patched, engine: engine, rcu: ModelledRCU(engine: engine))
        let v = TrapEmulVCPU(id: 0, variant: .upstream411, asids: asids, tlbs: tlbs, engine: engine, state: state,
                             guestRAM: TrapEmulGuestRAM(gfns: 8), startASID: 1, pagesPerProcess: 2, gva: gva)
        v.kvmArchVCPULoad(0)
        var seen: [TLBOwner] = []
        v.guestUserAccess(vpn: 1) { _, e in seen.append(TLBOwner(raw: e.owner)) }
        #expect(seen == [.guestUser(vcpu: 0, guestASID: 1, gfn: 6)])   // slot 1 of 5 (pages 0, 1, 0x3ffff, kseg2/3 first and last) of process 1
        #expect(gva.user.lookup(1).isPresent)
        let asidBefore = v.hostUserASID
        state.makeRequest(VCPUState.reqTLBFlush)
        v.beforeGuestEntry()
        #expect(!gva.user.lookup(1).isPresent)
        #expect(v.hostUserASID != asidBefore)
        #expect(v.guestUserMM.cpuContext(1) == 0)
    }
}
