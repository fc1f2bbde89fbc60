// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import Harness
import Catalog
import TestSupport

/// A world reset in place between schedules (`ResettableWorld`) runs every
/// schedule as a freshly built one: for every scenario and variant, the same
/// run with and without resets gives the same trace hash (which covers every
/// step of every schedule), steps, violations per oracle and counters, with
/// random and PCT schedules, at named and at access-level points.
@Suite(.serialized) struct WorldResetTests {
    /// The scenarios whose worlds reset in place; every other one is built
    /// fresh for each schedule (docs/performance.md says why).
    static let resettable: Set<String> = ["sync-mmu-race", "sync-mmu-stress", "mmu-seq-wrap", "tdp-mmu-race", "tdp-mmu-stress",
                                          "stage2-race", "stage2-stress", "asid-lazy-regen", "gva-flush",
                                          "ppc-tlb-local", "ppc-tlb-stress", "vpa-cross-register", "vpa-stress", "steal-time-flush"]
    /// Fewer schedules for worlds many times the size of their race
    /// scenario's (the race scenario runs the same world code, every variant,
    /// with the full count): a debug run of tdp-mmu-stress or stage2-stress
    /// took 50 s at the full count.
    static let scheduleDivisor: [String: Int] = ["tdp-mmu-stress": 3, "stage2-stress": 3]

    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func aResetWorldRunsEveryScheduleAsAFreshOne(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        guard Self.resettable.contains(scenario) else {
            // Built fresh for every schedule: nothing to compare, only check
            // that no reset happens (the comparison would run the same path twice).
            var o = try RunOptions(scenario: scenario, variant: s.variants[0], mode: .deterministic)
            o.schedules = 5
            o.resetWorlds = true
            let runner = try Runner(o)
            _ = runner.run()
            #expect(runner.worldResets == 0)
            return
        }
        var resets = 0
        for variant in s.variants {
            for (strategy, points) in [(StrategyKind.random, PointGranularity.named), (.pct, .named), (.random, .accesses)] {
                var o = try RunOptions(scenario: scenario, variant: variant, mode: .deterministic)
                o.schedules = (strategy == .random && points == .named ? 150 : 60) / (Self.scheduleDivisor[scenario] ?? 1)
                o.seed = 23
                o.strategy = strategy
                o.points = points
                o.keepGoing = true
                resets += try Self.expectResetRunsAsFresh(o, "\(scenario) --variant \(variant) \(strategy) \(points)")
            }
        }
        // A variant whose every schedule fails (sync-mmu-stress no-retry)
        // never reuses a world: a world is kept only after a clean schedule.
        #expect(resets > 0, "\(scenario): no world was reset")
    }

    /// The same for every regression case of a resettable scenario whose
    /// configuration is not the default (the test above runs defaults only):
    /// options that reach state the defaults never touch (tdp-mmu-race's
    /// huge pages and NX list, SMM's second address space, dirty logging
    /// without PML) reset too. Each case's own seed, strategy, lengths and
    /// points, fewer schedules.
    @Test(arguments: ScenarioRegistry.all.map(\.name).filter { resettable.contains($0) })
    func aResetWorldRunsEveryCaseConfigurationAsAFreshOne(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        var resets = 0
        for c in s.cases where !c.overrides.isEmpty {
            var o = RegressionSuite.options(c, budget: nil)
            o.schedules = 40
            o.keepGoing = true
            let overrides = c.overrides.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            resets += try Self.expectResetRunsAsFresh(o, "\(scenario) --variant \(c.variant) \(overrides) \(c.strategy) \(c.points)")
        }
        #expect(resets > 0 || !s.cases.contains { !$0.overrides.isEmpty }, "\(scenario): no world was reset")
    }

    /// Runs `o` twice, worlds built fresh for every schedule and reset in
    /// place, expects the same trace hash, steps, violations (their counts,
    /// first schedule and report: its table and pfn numbers) and counters,
    /// and returns how many schedules ran on a reset world.
    static func expectResetRunsAsFresh(_ options: RunOptions, _ what: String) throws -> Int {
        var o = options
        o.resetWorlds = false
        let fresh = try Runner(o).run()
        o.resetWorlds = true
        let runner = try Runner(o)
        let reset = runner.run()
        #expect(reset.traceHash == fresh.traceHash, "\(what): trace hash")
        #expect(reset.steps == fresh.steps, "\(what): steps")
        #expect(reset.violationsByOracle == fresh.violationsByOracle, "\(what): violations")
        #expect(reset.firstViolationSchedule == fresh.firstViolationSchedule, "\(what): first violation")
        #expect(reset.firstViolation == fresh.firstViolation, "\(what): first violation's report")
        #expect(reset.counters == fresh.counters, "\(what): counters")
        return runner.worldResets
    }
}
