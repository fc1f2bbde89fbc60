// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import Harness
import Catalog

/// A small KTAP version 1 checker (Documentation/dev-tools/ktap.rst): every
/// level starts with a version line and a plan, its results are numbered 1..N
/// with N the plan's count, a nested level is indented two spaces more than its
/// parent's result line, and a parent fails if a subtest failed.
struct KTAPChecker {
    struct Test { var number: Int; var name: String; var ok: Bool; var skip: Bool; var subtests: [Test] }
    struct Malformed: Error, CustomStringConvertible { var description: String }

    let lines: [Substring]
    var i = 0

    static func check(_ text: String) throws -> [Test] {
        var c = KTAPChecker(lines: text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0 })
        let tests = try c.level(indent: 0)
        while c.i < c.lines.count, c.lines[c.i].hasPrefix("#") { c.i += 1 }     // diagnostics may follow the last result
        guard c.i == c.lines.count else { throw Malformed(description: "line \(c.i + 1) after the last result: '\(c.lines[c.i])'") }
        return tests
    }

    mutating func level(indent: Int) throws -> [Test] {
        let pad = String(repeating: " ", count: indent)
        guard i < lines.count, lines[i] == pad + "KTAP version 1" else { throw Malformed(description: "line \(i + 1): no version line at indent \(indent)") }
        i += 1
        while i < lines.count, lines[i].hasPrefix(pad + "#") { i += 1 }
        guard i < lines.count, lines[i].hasPrefix(pad + "1.."), let planned = Int(lines[i].dropFirst(indent + 3)) else {
            throw Malformed(description: "line \(i + 1): no plan at indent \(indent)")
        }
        i += 1
        var tests: [Test] = []
        var pending: [Test] = []
        while i < lines.count {
            let line = lines[i]
            if line.hasPrefix(pad + "  KTAP version 1") { pending = try level(indent: indent + 2); continue }
            if line.hasPrefix(pad + "#") { i += 1; continue }
            guard line.hasPrefix(pad + "ok ") || line.hasPrefix(pad + "not ok ") else { break }
            if line.first == " " && indent == 0 { throw Malformed(description: "line \(i + 1): result indented at the top level") }
            let body = line.dropFirst(indent)
            let ok = body.hasPrefix("ok ")
            let rest = body.dropFirst(ok ? 3 : 7)
            let parts = rest.split(separator: " ", maxSplits: 1)
            guard let n = Int(parts[0]), n == tests.count + 1 else { throw Malformed(description: "line \(i + 1): result numbered out of order") }
            let text = parts.count > 1 ? String(parts[1]) : ""
            let name = text.split(separator: "#", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            let skip = text.contains("# SKIP")
            if pending.contains(where: { !$0.ok }) && ok { throw Malformed(description: "line \(i + 1): \(name) passes with a failing subtest") }
            tests.append(Test(number: n, name: name, ok: ok, skip: skip, subtests: pending))
            pending = []
            i += 1
            if tests.count == planned { break }
        }
        guard tests.count == planned else { throw Malformed(description: "plan 1..\(planned) at indent \(indent), \(tests.count) results") }
        return tests
    }
}

@Suite struct KTAPTests {
    /// Every case of the suite, half of them in the report (a shard), one of
    /// them failing: the output accounts for every case.
    @Test func everyCaseIsATestInItsScenario() throws {
        let suite = RegressionSuite.cases(shard: nil)
        var results: [CaseResult] = []
        for (k, c) in suite.enumerated() where k % 2 == 0 {
            let found: Verdict = k == 0 ? (c.expected == .clean ? .violation : .clean) : c.expected
            results.append(CaseResult(id: c.id, scenario: c.scenario, variant: c.variant, expected: c.expected, found: found,
                                      passed: found == c.expected, schedules: 10, schedulesToFirstViolation: found == .violation ? 3 : nil,
                                      oracle: found == .violation ? "I1" : nil, elapsedSeconds: 0, interrupted: false, note: c.note, commit: nil))
        }
        let report = RegressReport(cases: results, elapsedSeconds: 0, shard: "1/2", interrupted: false)
        let tests = try KTAPChecker.check(report.ktap(suite: suite))
        #expect(tests.map { $0.name } == scenariosInOrder(suite))
        let subtests = tests.flatMap { $0.subtests }
        #expect(subtests.count == suite.count)
        #expect(subtests.map { $0.name } == suite.map { $0.id })
        #expect(subtests.filter { $0.skip }.count == suite.count - results.count)
        #expect(tests.filter { !$0.ok }.map { $0.name } == [suite[0].scenario])
    }

    /// A real run of two scenarios' cases.
    @Test func aRealRunPassesTheChecker() throws {
        let scenarios: Set = ["steal-time-flush", "mmu-seq-wrap"]
        let report = try RegressionSuite.run(shard: nil, budget: 200, scenarios: scenarios)
        let tests = try KTAPChecker.check(report.ktap(suite: RegressionSuite.cases(shard: nil, scenarios: scenarios)))
        #expect(tests.count == 2)
        #expect(tests.allSatisfy { $0.ok })
        #expect(tests.flatMap { $0.subtests }.allSatisfy { $0.ok && !$0.skip })
    }

    @Test func theCheckerRejectsBrokenOutput() {
        #expect(throws: KTAPChecker.Malformed.self) { try KTAPChecker.check("KTAP version 1\n1..2\nok 1 a\n") }
        #expect(throws: KTAPChecker.Malformed.self) { try KTAPChecker.check("KTAP version 1\n1..2\nok 1 a\nok 3 b\n") }
        #expect(throws: KTAPChecker.Malformed.self) {
            try KTAPChecker.check("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  not ok 1 a\nok 1 s\n")
        }
        #expect(throws: KTAPChecker.Malformed.self) { try KTAPChecker.check("1..1\nok 1 a\n") }
    }
}

/// The scenarios of `suite` in their order, once each.
func scenariosInOrder(_ suite: [SuiteCase]) -> [String] {
    var seen = Set<String>(), out: [String] = []
    for c in suite where seen.insert(c.scenario).inserted { out.append(c.scenario) }
    return out
}
