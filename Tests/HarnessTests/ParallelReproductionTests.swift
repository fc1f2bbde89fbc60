// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import Harness
import Catalog
import TestSupport

/// A failure real threads find becomes a deterministic trace: parallel mode with
/// recording runs episodes, and the first failing one is reproduced, shrunk, and
/// replays to the same oracle.
@Suite struct ParallelReproductionTests {
    /// At named points (the library default) and at access-level points (the
    /// CLI's default for recording), whose trace keeps its granularity.
    @Test(arguments: [("sync-mmu-race", PointGranularity.named), ("vpa-cross-register", .named), ("ppc-tlb-local", .named),
                      ("sync-mmu-race", .accesses)])
    func aRealThreadFailureBecomesAReplayableTrace(scenario: String, points: PointGranularity) throws {
        var o = try RunOptions(scenario: scenario, variant: "pre-fix", mode: .parallel)
        o.points = points
        // The run stops at its first failure (1-2 s on a quiet machine); the
        // bound is for a loaded one, where two threads seldom run at once
        // (ppc-tlb-local once found nothing in 20 s beside another test run).
        o.seconds = 60
        o.recordTrace = true
        o.reproductionSeconds = 60
        let runner = try Runner(o)
        let r = runner.run()
        let v = try #require(r.firstViolation)
        #expect(r.episodes ?? 0 > 0)
        #expect(r.reproduced == true, "\(scenario): not reproduced in \(r.reproductionSchedules ?? 0) schedules")
        let trace = try #require(runner.failingTrace)
        #expect(trace.points == points && trace.violation?.oracle == v.oracle)
        let replay = try Runner.replay(trace)
        #expect(replay.mismatchStep == nil)
        #expect(replay.violations.first?.oracle == v.oracle)
    }

    @Test func recordedPassesAreInTimestampOrder() {
        let engine = SimEngine(mode: .parallel, actorNames: ["a", "b"])
        defer { engine.shutdown() }
        engine.recordPasses = true
        for e in engine.executors {
            engine.spawn(on: e) { for _ in 0..<3 { engine.point("p") } }
        }
        engine.waitForTasks()
        let passes = engine.mergedPasses()
        // Each actor: its job starts and three points.
        #expect(passes.filter { $0.actor == 0 }.count == passes.filter { $0.actor == 1 }.count)
        #expect(passes.filter { "\($0.point)" == "p" }.count == 6)
        engine.clearPasses()
        #expect(engine.mergedPasses().isEmpty)
    }
}
