// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
@testable import KVMCore

/// The VMM's VMAs over hugetlbfs-backed guest RAM: mmap(MAP_FIXED) of a block
/// with 4K anonymous memory and back (`HostMM.remap`).
@Suite struct HostMMRemapTests {
    func makeMM() -> (SimEngine, HostMM) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let mm = HostMM(engine: engine, pages: HostPages(capacity: 32, hugePages: 4, blockPages: 2), base: 1000, count: 4, hugeBlock: 2)
        mm.vmasChange = true
        return (engine, mm)
    }

    /// A remap unmaps the block's huge page (its one reference) inside an
    /// invalidation and flips the VMA: the next fault there gets a 4K page,
    /// and the VMA lookup reports the page size the fault path maps with.
    @Test func remapTurnsAHugetlbBlockIntoSmallPagesAndBack() {
        let (engine, mm) = makeMM()
        defer { engine.shutdown() }
        mm.hostWrite(1000)
        let huge = mm.pte(1000).pfn
        #expect(mm.isHugetlb(1000) && mm.pte(1001).pfn == huge + 1 && mm.pages.refs(huge) == 1)
        mm.remap(1001)
        #expect(!mm.isHugetlb(1000) && !mm.pte(1000).isPresent && !mm.pte(1001).isPresent)
        #expect(!mm.pages.isInUse(huge), "the huge page's only reference went with the unmap")
        mm.mmapLock.readLock()
        #expect(mm.vmaPageSize(1000) == 1)
        mm.mmapLock.readUnlock()
        mm.hostWrite(1000)
        #expect(mm.pte(1000).pfn < mm.pages.hugeBase && !mm.pte(1001).isPresent, "a 4K page, alone")
        #expect(mm.isHugetlb(1002), "the other block keeps its VMA")
        mm.remap(1000)
        mm.mmapLock.readLock()
        #expect(mm.vmaPageSize(1000) == 2)
        mm.mmapLock.readUnlock()
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// A zap of part of a hugetlb block takes the whole huge page, and one
    /// that starts in a 4K block takes just its pages.
    @Test func aZapRoundsToTheVMAsPageSize() {
        let (engine, mm) = makeMM()
        defer { engine.shutdown() }
        mm.remap(1000)                                        // block 0: 4K pages
        mm.hostWrite(1000); mm.hostWrite(1001); mm.hostWrite(1002)
        mm.zap(1001..<1003)
        #expect(mm.pte(1000).isPresent && !mm.pte(1001).isPresent)
        #expect(!mm.pte(1002).isPresent && !mm.pte(1003).isPresent, "the hugetlb block goes whole")
    }
}
