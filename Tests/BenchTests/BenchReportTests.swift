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
