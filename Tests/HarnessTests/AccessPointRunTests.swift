// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
import SimExec
@testable import Harness
import Catalog
import TestSupport

/// Runs at access-level points (`--points accesses`) keep every promise named
/// points make: the same seed takes the same steps, both backends agree, a
/// failure's trace says its granularity and replays and shrinks under it (a
/// real-thread failure recorded at accesses: ParallelReproductionTests).
@Suite(.serialized) struct AccessPointRunTests {
    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func everyScheduleRunsTheSameTwiceAndOnBothBackends(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        var o = try RunOptions(scenario: scenario, variant: s.variants[0], mode: .deterministic)
        o.points = .accesses
        o.schedules = 100
        o.seed = 3
        o.keepGoing = true
        o.checkDeterminism = true
        let fibers = try Runner(o).run()
        #expect(fibers.determinismMismatch == nil, "\(scenario): \(fibers.determinismMismatch?.description ?? "")")
        o.checkDeterminism = false
        o.backend = .threads
        let threads = try Runner(o).run()
        #expect(fibers.traceHash == threads.traceHash && fibers.steps == threads.steps, "\(scenario)")
        // More places to switch than at named points.
        o.points = .named
        o.backend = .fibers
        let named = try Runner(o).run()
        #expect(fibers.steps > named.steps, "\(scenario): \(fibers.steps) access-level steps vs \(named.steps) named")
    }

    @Test func aFailureTraceAtAccessesReplaysAndShrinksAtAccesses() throws {
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "pre-fix", mode: .deterministic)
        o.points = .accesses
        o.schedules = 2000
        let runner = try Runner(o)
        let r = runner.run()
        let v = try #require(r.firstViolation)
        let trace = try #require(runner.failingTrace)
        #expect(trace.points == .accesses)
        let dir = try ScratchDirectory("access-trace")
        defer { dir.remove() }
        let path = dir.file("t.trace.json")
        try trace.write(to: path)
        let read = try TraceFile.load(from: path)
        #expect(read == trace)
        let replay = try Runner.replay(read)
        #expect(replay.mismatchStep == nil)
        #expect(replay.violations.first?.oracle == v.oracle)
        #expect(replay.steps.contains { $0.point.hasPrefix("access:") })
        let shrunk = try Shrinker.shrink(read, maxReplays: 500)
        #expect(shrunk.trace.points == .accesses)
        #expect(try Runner.replay(shrunk.trace).violations.first?.oracle == v.oracle)
    }

    @Test func aTraceWithoutPointsIsANamedTrace() throws {
        let selection = try ScenarioRegistry.named("sync-mmu-race").selection(variant: "pre-fix", mode: .deterministic)
        let t = TraceFile(selection: selection, seed: 1, schedule: 0, scheduleSeed: 1, strategy: .random, depth: 3,
                          actors: selection.actorNames, decisions: [0], violation: nil)
        let dir = try ScratchDirectory("named-trace")
        defer { dir.remove() }
        try t.write(to: dir.file("t.json"))
        let text = try String(contentsOfFile: dir.file("t.json"), encoding: .utf8)
        #expect(!text.contains("\"points\""))
        #expect(try TraceFile.load(from: dir.file("t.json")).points == .named)
    }
}
