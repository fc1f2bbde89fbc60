// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SimExec
@testable import Harness
import Catalog
import TestSupport

@Suite struct RegressionSuiteTests {
    @Test func theSuiteCoversEnoughRacesAndFixes() throws {
        let cases = RegressionSuite.cases
        #expect(cases.count >= 12)
        #expect(Set(cases.map(\.scenario)).count >= 7)
        #expect(Set(cases.map(\.id)).count == cases.count)
        for c in cases {
            let s = try ScenarioRegistry.named(c.scenario)
            #expect(s.variants.contains(c.variant), "\(c.id)")
        }
        // Every variant of every scenario declares its verdict (a campaign then
        // knows what is expected of every pair).
        for s in ScenarioRegistry.all {
            for v in s.variants {
                #expect(cases.contains { $0.scenario == s.name && $0.variant == v }, "\(s.name)/\(v) has no regression case")
            }
        }
        // Shards are disjoint and cover every case.
        let shards = (1...3).flatMap { RegressionSuite.cases(shard: ($0, 3)).map(\.id) }
        #expect(shards.sorted() == cases.map(\.id).sorted())
        #expect(throws: InputError.self) { try RegressionSuite.parseShard("4/3") }
        #expect(throws: InputError.self) { try RegressionSuite.parseShard("x") }
    }

    /// Every case can be selected with `kvmsim run` flags (scripts/test runs
    /// each that way): an override without a flag of the same name leaves the
    /// case to `regress` alone. The steal-time case of `host-event-sources=0`
    /// had none, and `regress --list --json` then left out its `runFlags`.
    @Test func everyCaseHasRunFlags() {
        for c in RegressionSuite.cases {
            #expect(c.runFlags != nil, "\(c.id): overrides \(c.overrides.map(\.key)) have no kvmsim run flag")
        }
    }

    /// A model change that hides a known race fails here.
    @Test func everyMinimalTraceReplaysToItsViolation() throws {
        let traces = try CheckedInTraces.all()
        let violationCases = RegressionSuite.cases.filter { $0.expected == .violation }
        for c in violationCases {
            #expect(traces.contains { $0.name == c.traceFileName }, "no minimal trace for \(c.id) (\(c.traceFileName))")
        }
        for (name, t) in traces {
            let r = try Runner.replay(t)
            #expect(r.mismatchStep == nil, "\(name): trace no longer matches the model")
            let first = r.violations.first
            #expect(first?.oracle == t.violation?.oracle && first?.step == t.violation?.step,
                    "\(name): replay gives \(first?.description ?? "no violation"), recorded \(t.violation?.description ?? "-")")
        }
    }

    @Test func shrinkingIsDeterministicAndKeepsTheOracle() throws {
        let (_, runner) = try run("ppc-tlb-local", "pre-fix", schedules: 100_000)
        let t = try #require(runner.failingTrace)
        let a = try Shrinker.shrink(t, maxReplays: 300)
        let b = try Shrinker.shrink(t, maxReplays: 300)
        #expect(a.trace == b.trace)
        #expect(a.steps <= t.decisions.count && a.preemptions <= a.originalPreemptions)
        #expect(a.trace.violation?.oracle == t.violation?.oracle)
        #expect(try Runner.replay(a.trace).violations.first?.oracle == t.violation?.oracle)
    }

    /// `regress --write-traces` shrinks a case's first `shrinkCandidates`
    /// failing schedules of the first one's oracle and writes the smallest;
    /// the case's report is its own run's.
    @Test func writeTracesKeepsTheSmallestOfSeveralShrunkSchedules() throws {
        let c = try #require(RegressionSuite.cases.first { $0.scenario == "sync-mmu-race" && $0.variant == "pre-fix" })
        let runner = try Runner(RegressionSuite.options(c, budget: nil))
        runner.failingTracesToKeep = RegressionSuite.shrinkCandidates
        let r = runner.run()
        let traces = runner.failingTraces
        #expect(traces.count == RegressionSuite.shrinkCandidates)
        #expect(runner.failingTrace == traces.first && r.firstViolationSchedule == traces.first?.schedule)
        #expect(zip(traces, traces.dropFirst()).allSatisfy { $0.schedule < $1.schedule })
        let first = try #require(traces.first)
        let sameRace = traces.filter { $0.violation?.oracle == first.violation?.oracle }
        let shrunk = try sameRace.map { try Shrinker.shrink($0).steps }
        let dir = NSTemporaryDirectory() + "kvmsim-write-traces-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try RegressionSuite.run(c, budget: nil, tracesDir: dir)
        let alone = try RegressionSuite.run(c, budget: nil)
        #expect(result.passed && result.schedules == alone.schedules, "the report is the case's own run")
        let written = try TraceFile.load(from: (dir as NSString).appendingPathComponent(c.traceFileName))
        #expect(written.violation?.oracle == first.violation?.oracle)
        #expect(written.decisions.count == shrunk.min())
        // This case's candidates differ: the first failure alone shrinks to more.
        #expect(shrunk[0] > written.decisions.count)
    }

    @Test func junitIsWellFormedWithOneTestcasePerCase() throws {
        let cases = [RegressionSuite.cases[0], RegressionSuite.cases[2]]
        var results = try cases.map { try RegressionSuite.run($0, budget: 50) }
        results[1].passed = false                                           // show a failure element
        results[1].note = "a <note> & \"quotes\" \u{1}"
        let report = RegressReport(cases: results, elapsedSeconds: 1, shard: nil, interrupted: false)
        let xml = report.junit
        final class Counter: NSObject, XMLParserDelegate {
            var testcases = 0, failures = 0, root = ""
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if root.isEmpty { root = e }
                if e == "testcase" { testcases += 1 }
                if e == "failure" { failures += 1 }
            }
        }
        let parser = XMLParser(data: Data(xml.utf8))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(counter.root == "testsuites" && counter.testcases == 2 && counter.failures == 1)
    }

    /// Issue 20, class 3: every fixed variant (a variant with a case expected
    /// clean) has a PCT case besides its random one, in its scenario or in the
    /// race scenario its stress scenario shares variants with: a race deeper
    /// than the random budget must not hide behind it.
    @Test func everyFixedVariantHasAPCTCase() {
        let raceOf = ["tdp-mmu-stress": "tdp-mmu-race", "stage2-stress": "stage2-race", "ppc-tlb-stress": "ppc-tlb-local",
                      "sync-mmu-stress": "sync-mmu-race", "vpa-stress": "vpa-cross-register"]
        // registry-example: the scenario RegistryTests declares to test registration.
        let clean = RegressionSuite.cases.filter { $0.expected == .clean && $0.scenario != "registry-example" }
        let pct = Set(clean.filter { $0.strategy == .pct }.map { "\($0.scenario)/\($0.variant)" })
        let missing = clean.filter { c in
            !pct.contains("\(c.scenario)/\(c.variant)") && !pct.contains("\(raceOf[c.scenario] ?? c.scenario)/\(c.variant)")
        }
        #expect(missing.isEmpty, "no PCT case: \(missing.map(\.id))")
    }

    /// Cases on several threads give the verdicts, schedule counts and first
    /// failing schedules of one thread, in declaration order.
    @Test func jobsDoNotChangeResultsOrOrder() throws {
        let scenarios: Set = ["ppc-tlb-local", "asid-lazy-regen", "mmu-seq-wrap"]
        let one = try RegressionSuite.run(shard: nil, budget: 300, scenarios: scenarios, jobs: 1)
        let three = try RegressionSuite.run(shard: nil, budget: 300, scenarios: scenarios, jobs: 3)
        #expect(one.cases.map(\.id) == RegressionSuite.cases(shard: nil, scenarios: scenarios).map(\.id))
        #expect(three.cases.map(\.id) == one.cases.map(\.id))
        for (a, b) in zip(one.cases, three.cases) {
            #expect(a.found == b.found && a.schedules == b.schedules && a.schedulesToFirstViolation == b.schedulesToFirstViolation
                    && a.oracle == b.oracle, "\(a.id)")
        }
    }

    @Test func mergeJoinsShardsAndRejectsOverlaps() throws {
        let a = RegressReport(cases: [try RegressionSuite.run(RegressionSuite.cases[0], budget: 10)], elapsedSeconds: 1, shard: "1/2", interrupted: false)
        let b = RegressReport(cases: [try RegressionSuite.run(RegressionSuite.cases[1], budget: 10)], elapsedSeconds: 2, shard: "2/2", interrupted: false)
        let m = try RegressReport.merge([b, a])
        #expect(m.cases.map(\.id) == [RegressionSuite.cases[0].id, RegressionSuite.cases[1].id])
        #expect(m.passed == 2 && m.shard == nil)
        #expect(throws: InputError.self) { try RegressReport.merge([a, a]) }
    }
}

/// `replay --perfetto` writes the Chrome trace-event format
/// (docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
@Suite struct PerfettoExportTests {
    @Test func aFailingTraceExportsValidTraceEvents() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-perfetto-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A trace written by a failing `run --trace-out`.
        let (_, runner) = try run("sync-mmu-race", "pre-fix", schedules: 1000)
        let path = dir.appendingPathComponent("t.trace.json").path
        try #require(runner.failingTrace).write(to: path)
        let t = try TraceFile.load(from: path)
        let data = PerfettoExport.make(t, try Runner.replay(t))
        try validateTraceEventFormat(data, actors: t.actors)
    }

    /// The format's rules: a JSON object with a `traceEvents` array; every event
    /// has a string `name`, a known `ph`, integer `pid` and `tid`; timed events a
    /// non-negative numeric `ts`; "X" a non-negative `dur`; "i" a scope `s` of
    /// g, p or t; "M" a known metadata name and an `args` object with the value
    /// ("name" for names, a number "sort_index" for sort indexes);
    /// `displayTimeUnit`, if present, "ms" or "ns".
    func validateTraceEventFormat(_ data: Data, actors: [String]) throws {
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        if let unit = root["displayTimeUnit"] { #expect(["ms", "ns"].contains(unit as? String ?? "")) }
        let events = try #require(root["traceEvents"] as? [[String: Any]])
        #expect(!events.isEmpty)
        var threadNames: [Int: String] = [:]
        var phases = Set<String>()
        for e in events {
            let ph = try #require(e["ph"] as? String)
            phases.insert(ph)
            #expect(["B", "E", "X", "i", "I", "C", "b", "n", "e", "s", "t", "f", "P", "O", "N", "D", "M", "R", "c"].contains(ph))
            #expect(e["name"] is String)
            let pid = try #require(e["pid"] as? Int), tid = try #require(e["tid"] as? Int)
            #expect(pid >= 0 && tid >= 0)
            switch ph {
            case "M":
                let name = e["name"] as? String ?? ""
                #expect(["process_name", "process_labels", "process_sort_index", "thread_name", "thread_sort_index"].contains(name))
                let args = try #require(e["args"] as? [String: Any])
                if name.hasSuffix("_name") { #expect(args["name"] is String); if name == "thread_name" { threadNames[tid] = args["name"] as? String } }
                if name.hasSuffix("sort_index") { #expect(args["sort_index"] is Int) }
            default:
                let ts = try #require(e["ts"] as? Double ?? (e["ts"] as? Int).map(Double.init))
                #expect(ts >= 0)
                if ph == "X" { #expect((e["dur"] as? Int ?? -1) >= 0) }
                if ph == "i" || ph == "I" { #expect(["g", "p", "t"].contains(e["s"] as? String ?? "t")) }
            }
        }
        #expect(Set(threadNames.values).isSuperset(of: actors), "a track per actor")
        #expect(phases.isSuperset(of: ["M", "X", "i"]))
        #expect(events.contains { ($0["cat"] as? String) == "violation" && ($0["s"] as? String) == "g" })
    }
}
