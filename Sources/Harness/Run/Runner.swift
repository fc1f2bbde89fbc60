// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// Runs a scenario in either mode and records the first failing schedule as a
/// trace. Facets: `Runner+Deterministic.swift` (seeded schedules, one world
/// each), `Runner+Parallel.swift` (one world on real threads),
/// `Runner+Replay.swift` (a trace, step by step, with narration).
public final class Runner {
    public let options: RunOptions
    /// Called now and then with (done, total or nil, elapsed seconds).
    public var progress: ((Int, Int?, Double) -> Void)?
    /// The trace of the first failing schedule (deterministic mode), or the
    /// reproduced one (parallel mode): `failingTraces.first`.
    public var failingTrace: TraceFile? { failingTraces.first }
    /// Deterministic mode: the traces of the first `failingTracesToKeep`
    /// (at least 1) failing schedules, in order; a run without `keepGoing`
    /// goes on past its first failure until it has them (or its budget
    /// ends). Shrinking several and keeping the smallest gives a shorter
    /// minimal trace than shrinking the first alone (`regress
    /// --write-traces`). Parallel mode: the reproduced trace, if any.
    public var failingTracesToKeep = 1
    public internal(set) var failingTraces: [TraceFile] = []
    /// Protocol counters and violations per oracle, summed over the schedules run so far.
    var counterTotals: [String: Int] = [:]
    var violationTotals: [String: Int] = [:]
    /// Coverage counts by mark index (`SimEngine.takeCoverage(into:)`).
    var coverageCounts: [Int] = []
    /// Schedules that ran on a world reset in place (`ResettableWorld`).
    var worldResets = 0

    /// Checks the options (bad input: an `InputError`, exit 2).
    public init(_ options: RunOptions) throws(InputError) {
        try options.selection.validate()
        if let s = options.schedules, s < 1 { throw InputError("--schedules must be at least 1 (got \(s))") }
        if let s = options.seconds, !(s > 0 && s <= 7 * 24 * 3600) { throw InputError("--seconds must be greater than 0 and at most a week") }
        guard (1...64).contains(options.depth) else { throw InputError("--depth must be between 1 and 64 (got \(options.depth))") }
        if options.checkDeterminism && options.mode != .deterministic {
            throw InputError("--check-determinism needs --mode deterministic")
        }
        guard !options.lengths.isEmpty, options.lengths.allSatisfy({ (1...64).contains($0) }) else {
            throw InputError("--lengths must be factors between 1 and 64 (got \(options.lengths.map(String.init).joined(separator: ",")))")
        }
        self.options = options
        scaledSelections = try options.lengths.map { f throws(InputError) in
            var s = options.selection
            s.sizes.opsPerVCPU *= f
            s.sizes.hostEventsPerSource *= f
            try s.validate()
            return s
        }
    }

    /// The selection of each schedule length (`RunOptions.lengths`).
    let scaledSelections: [ScenarioSelection]

    /// The selection schedule `index` runs.
    func selection(forSchedule index: Int) -> ScenarioSelection { scaledSelections[index % scaledSelections.count] }

    public func run() -> RunReport {
        precondition(failingTracesToKeep >= 1, "failingTracesToKeep must be at least 1")
        failingTraces = []
        return options.mode == .deterministic ? runDeterministic() : runParallel()
    }

    var interrupted: Bool { options.stop.isRaised }

    func makeStrategy() -> SchedulingStrategy {
        options.strategy == .pct ? PCTStrategy(depth: options.depth) : RandomStrategy()
    }

    /// A report with the run's totals, coverage and configuration.
    func report(schedules: Int, violations: Int, first: (schedule: Int, violation: Violation)?, elapsed: Double,
                traceHash: String?, steps: Int, secondsToFirst: Double?, mismatch: DeterminismMismatch? = nil) -> RunReport {
        let o = options
        var r = RunReport(scenario: o.scenario, variant: o.variant, mode: o.mode, seed: o.seed, strategy: o.strategy,
                          schedules: schedules, violations: violations, firstViolationSchedule: first?.schedule,
                          firstViolation: first?.violation, elapsedSeconds: elapsed, traceHash: traceHash,
                          config: o.selection.config, interrupted: interrupted, steps: steps,
                          secondsToFirstViolation: secondsToFirst, determinismMismatch: mismatch)
        r.lengths = o.lengths
        r.points = o.points
        r.counters = counterTotals
        r.violationsByOracle = violationTotals
        var cov = CoverageMark.named(coverageCounts)
        let marks = o.selection.coverageMarks
        for m in marks where cov[m.name] == nil { cov[m.name] = 0 }
        r.coverage = cov
        r.unreachedMarks = marks.map(\.name).filter { cov[$0] == 0 }.sorted()
        return r
    }

    /// Adds a world's counters to the run's totals.
    func addCounters(of world: any ScenarioWorld) {
        for (c, n) in world.counters { counterTotals[c.name, default: 0] += n }
    }
}
