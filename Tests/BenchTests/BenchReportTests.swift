// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
@testable import Bench

/// `kvmsim bench --only`: each figure owns its keys of the report.
@Suite struct BenchReportTests {
    func keys(_ data: Data) throws -> Set<String> {
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return Set(object.keys)
    }

    @Test func figuresPartitionTheReportKeys() throws {
        let all = try keys(Bench.json(Bench.Report(), figures: Set(Bench.Figure.allCases)))
        let owned = Bench.Figure.allCases.flatMap(\.keys)
        #expect(Set(owned).count == owned.count, "a key belongs to two figures")
        #expect(Set(owned).union(["machine"]) == all, "a report key no figure owns, or a figure key the report lacks")
    }

    @Test(arguments: Bench.Figure.allCases)
    func onlyKeepsItsOwnKeys(figure: Bench.Figure) throws {
        let got = try keys(Bench.json(Bench.Report(), figures: [figure]))
        #expect(got == Set(figure.keys).union(["machine"]))
    }

    @Test func tableHasOnlyThePickedLines() {
        let t = Bench.table(Bench.Report(), figures: [.memory])
        #expect(t.hasPrefix("5. GPA table"))
        #expect(!t.contains("RCU"))
    }
}

/// Figure 9 (`--only instructions`): what it reads from valgrind, and the
/// loops it runs under it.
@Suite struct BenchInstructionsTests {
    /// callgrind's summary with `--cache-sim=yes --branch-sim=yes`, as valgrind 3.19 prints it.
    static let summary = """
        ==17052== Events    : Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim
        ==17052== Collected : 159535279 46091957 28315727 2041364 948815 224541 11388 77603 23285
        ==17052==
        ==17052== I   refs:      159,535,279
        ==17052== I1  misses:      2,041,364
        ==17052== LLi misses:         11,388
        ==17052== I1  miss rate:        1.28%
        ==17052== D   refs:       74,407,684  (46,091,957 rd + 28,315,727 wr)
        ==17052== D1  misses:      1,173,356  (   948,815 rd +    224,541 wr)
        ==17052== Mispredicts:     1,527,117  (   951,263 cond +    575,854 ind)
        ==17052== Mispred rate:          6.8% (       4.7%     +       26.8%   )
        """

    @Test func readsTheTotalsOfCallgrindsSummary() throws {
        let c = try #require(Bench.parseValgrind(Self.summary))
        #expect(c == Bench.ValgrindCounts(instructions: 159_535_279, i1Misses: 2_041_364, d1Misses: 1_173_356, mispredicts: 1_527_117))
    }

    @Test func noInstructionCountIsNoReading() {
        #expect(Bench.parseValgrind("==1== Valgrind: debuginfo reader: Possibly corrupted debuginfo file.\n") == nil)
        #expect(Bench.parseValgrind("") == nil)
    }

    @Test func theFigureIsMeasuredOnlyWhenAskedFor() {
        #expect(!Bench.Figure.byDefault.contains(.instructions))
        #expect(Bench.Figure.byDefault.count == Bench.Figure.allCases.count - 1)
        #expect(Bench.Options().figures == Bench.Figure.byDefault)
    }

    @Test(arguments: Bench.Loop.allCases)
    func eachLoopRuns(loop: Bench.Loop) throws {
        try Bench.runLoop(loop, count: 3)
    }

    @Test func aLoopOfNoSchedulesIsBadInput() {
        #expect(throws: (any Error).self) { try Bench.runLoop(.bare, count: 0) }
    }
}
