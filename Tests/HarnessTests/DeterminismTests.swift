// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import Harness
import Catalog
import TestSupport

/// The same seed gives the same run: every scenario, 1000 schedule seeds, each
/// schedule run twice and compared step by step (`--check-determinism`).
@Suite(.serialized) struct DeterminismSweepTests {
    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func everyScheduleRunsTheSameTwice(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        for strategy in [StrategyKind.random, .pct] {
            var o = try RunOptions(scenario: scenario, variant: s.variants[0], mode: .deterministic)
            o.schedules = strategy == .random ? 1000 : 200
            o.seed = 7
            o.strategy = strategy
            o.keepGoing = true
            o.checkDeterminism = true
            let r = try Runner(o).run()
            #expect(r.determinismMismatch == nil, "\(scenario) \(strategy): \(r.determinismMismatch?.description ?? "")")
            #expect(r.schedules == o.schedules)
        }
    }

    /// The fiber and thread backends pass the baton differently but must give
    /// the same schedules: the run's trace hash covers every step of every schedule.
    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func bothBackendsRunTheSameSchedules(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        for variant in s.variants {
            var o = try RunOptions(scenario: scenario, variant: variant, mode: .deterministic)
            o.schedules = 50
            o.seed = 11
            o.keepGoing = true
            o.backend = .fibers
            let fibers = try Runner(o).run()
            o.backend = .threads
            let threads = try Runner(o).run()
            #expect(fibers.traceHash == threads.traceHash, "\(scenario)/\(variant)")
            #expect(fibers.steps == threads.steps && fibers.violations == threads.violations, "\(scenario)/\(variant)")
        }
    }

    @Test func checkDeterminismNeedsDeterministicMode() throws {
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .parallel)
        o.checkDeterminism = true
        #expect(throws: InputError.self) { try Runner(o) }
    }
}
