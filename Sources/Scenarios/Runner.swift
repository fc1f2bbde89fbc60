// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Synchronization
import SimExec

/// Set by SIGINT / SIGTERM handlers: runs stop between schedules and report what ran.
public let interruptSignal = Atomic<Int32>(0)

/// What to run.
public struct RunOptions: Sendable {
    public var scenario: String
    public var variant: String
    public var mode: ExecutionMode = .deterministic
    public var seed: UInt64 = 1
    /// Deterministic: schedules to run. Parallel: work units (guest ops + host events).
    public var schedules: Int?
    public var seconds: Double?
    public var strategy: StrategyKind = .random
    public var depth: Int = 3
    public var config: ScenarioConfig
    /// Run every schedule even after a violation.
    public var keepGoing = false
    /// Run each deterministic schedule twice and compare the traces.
    public var checkDeterminism = false
    /// How deterministic mode passes the baton (same schedules either way).
    public var backend: SimEngine.DeterministicBackend = .preferred

    public init(scenario: String, variant: String, config: ScenarioConfig) {
        self.scenario = scenario; self.variant = variant; self.config = config
    }

    /// Options for `scenario` in its default configuration for `mode`.
    public init(scenario: String, variant: String, mode: ExecutionMode) throws(InputError) {
        self.init(scenario: scenario, variant: variant, config: try ScenarioRegistry.named(scenario).defaultConfig(mode: mode))
        self.mode = mode
    }
}

/// What a run found; `--json` prints it.
public struct RunReport: Codable, Sendable {
    public var scenario: String
    public var variant: String
    public var mode: ExecutionMode
    public var seed: UInt64
    public var strategy: StrategyKind
    public var schedules: Int
    public var violations: Int
    public var firstViolationSchedule: Int?
    public var firstViolation: Violation?
    public var elapsedSeconds: Double
    /// Hash of every step of every schedule (deterministic mode), hex; nil in parallel mode.
    public var traceHash: String?
    public var config: ScenarioConfig
    public var interrupted: Bool
    public var steps: Int
    /// Seconds from the start of the run to the first violation.
    public var secondsToFirstViolation: Double?
    /// With `--check-determinism`: the first difference between two runs of one
    /// schedule, or nil when every schedule ran the same twice.
    public var determinismMismatch: DeterminismMismatch?
    /// The scenario's protocol counters, summed over every schedule (or the run).
    public var counters: [String: Int] = [:]
    /// Violations per oracle, over every schedule (or the run).
    public var violationsByOracle: [String: Int] = [:]
    /// Coverage marks reached (the scenario's own marks always listed, zeros too).
    public var coverage: [String: Int] = [:]
    /// The scenario's marks this run never reached.
    public var unreachedMarks: [String] = []

    enum CodingKeys: String, CodingKey {
        case scenario, variant, mode, seed, strategy, schedules, violations, firstViolationSchedule, firstViolation
        case elapsedSeconds, traceHash, config, interrupted, steps, secondsToFirstViolation, determinismMismatch, counters, violationsByOracle, coverage, unreachedMarks
    }

    /// Like the synthesized encoder, but absent values are written as `null`, so
    /// every key is always there for scripts.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scenario, forKey: .scenario)
        try c.encode(variant, forKey: .variant)
        try c.encode(mode, forKey: .mode)
        try c.encode(seed, forKey: .seed)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(schedules, forKey: .schedules)
        try c.encode(violations, forKey: .violations)
        try c.encode(firstViolationSchedule, forKey: .firstViolationSchedule)
        try c.encode(firstViolation, forKey: .firstViolation)
        try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encode(traceHash, forKey: .traceHash)
        try c.encode(config, forKey: .config)
        try c.encode(interrupted, forKey: .interrupted)
        try c.encode(steps, forKey: .steps)
        try c.encode(secondsToFirstViolation, forKey: .secondsToFirstViolation)
        try c.encode(counters, forKey: .counters)
        try c.encode(violationsByOracle, forKey: .violationsByOracle)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(unreachedMarks, forKey: .unreachedMarks)
        if determinismMismatch != nil { try c.encode(determinismMismatch, forKey: .determinismMismatch) }
    }
}

/// Where two runs of the same schedule first went different ways.
public struct DeterminismMismatch: Codable, Sendable, Equatable, CustomStringConvertible {
    public var schedule: Int
    public var step: Int
    /// The actor chosen at `step` in each run (nil: that run had ended).
    public var first: String?
    public var second: String?
    public var description: String {
        "schedule \(schedule) differs at step \(step): first run chose \(first ?? "(end)"), second \(second ?? "(end)")"
    }
}

/// Runs scenarios in either mode and records failing schedules as traces.
public final class Runner {
    public let options: RunOptions
    public let scenario: any Scenario
    /// Called now and then with (done, total or nil, elapsed seconds).
    public var progress: ((Int, Int?, Double) -> Void)?
    /// The trace of the first failing schedule (deterministic mode).
    public private(set) var failingTrace: TraceFile?
    /// Protocol counters and violations per oracle, summed over the schedules run so far.
    private var counterTotals: [String: Int] = [:]
    private var violationTotals: [String: Int] = [:]
    private var coverageTotals: [String: Int] = [:]

    /// Fills the coverage fields: the scenario's marks with zeros, plus any other mark reached.
    private func addCoverage(to report: inout RunReport) {
        var cov = coverageTotals
        let marks = scenario.coverageMarks(variant: options.variant)
        for m in marks where cov[m.name] == nil { cov[m.name] = 0 }
        report.coverage = cov
        report.unreachedMarks = marks.map(\.name).filter { cov[$0] == 0 }.sorted()
    }

    public init(_ options: RunOptions) throws(InputError) {
        scenario = try ScenarioRegistry.named(options.scenario)
        guard scenario.variants.contains(options.variant) else {
            throw InputError("scenario \(options.scenario) has no variant '\(options.variant)' (known: \(scenario.variants.joined(separator: ", ")))")
        }
        try options.config.validate()
        try scenario.validate(options.config)
        if let s = options.schedules, s < 1 { throw InputError("--schedules must be at least 1 (got \(s))") }
        if let s = options.seconds, !(s > 0 && s <= 7 * 24 * 3600) { throw InputError("--seconds must be greater than 0 and at most a week") }
        guard (1...64).contains(options.depth) else { throw InputError("--depth must be between 1 and 64 (got \(options.depth))") }
        if options.checkDeterminism && options.mode != .deterministic {
            throw InputError("--check-determinism needs --mode deterministic")
        }
        self.options = options
    }

    public func run() -> RunReport {
        options.mode == .deterministic ? runDeterministic() : runParallel()
    }

    private func makeStrategy() -> SchedulingStrategy {
        options.strategy == .pct ? PCTStrategy(depth: options.depth) : RandomStrategy()
    }

    // MARK: deterministic

    private func runDeterministic() -> RunReport {
        let o = options
        let names = scenario.actorNames(o.config)
        var engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend)
        let strategy = makeStrategy()
        let start = Date()
        let budget = o.schedules ?? (o.seconds == nil ? 1000 : Int.max)
        var hash = FNV1a64()
        var ran = 0, violations = 0, steps = 0
        var first: (Int, Violation)?
        var firstAt: Double?
        var mismatch: DeterminismMismatch?
        let t0 = SimEngine.monotonicSeconds()
        var lastProgress = start
        while ran < budget {
            if interruptSignal.load(ordering: .relaxed) != 0 { break }
            if let s = o.seconds, Date().timeIntervalSince(start) >= s { break }
            let scheduleSeed = SplitMix64.derive(o.seed, UInt64(ran))
            let found = runSchedule(engine: engine, strategy: strategy, scheduleSeed: scheduleSeed)
            if o.checkDeterminism && !engine.wedged {
                let (d1, h1) = (engine.decisions, engine.scheduleHash)
                _ = runSchedule(engine: engine, strategy: strategy, scheduleSeed: scheduleSeed)
                if engine.decisions != d1 || engine.scheduleHash != h1 {
                    let d2 = engine.decisions
                    let at = (0..<min(d1.count, d2.count)).first { d1[$0] != d2[$0] } ?? min(d1.count, d2.count)
                    mismatch = DeterminismMismatch(schedule: ran, step: at,
                                                   first: at < d1.count ? names[Int(d1[at])] : nil,
                                                   second: at < d2.count ? names[Int(d2[at])] : nil)
                }
            }
            steps += engine.decisions.count
            (strategy as? PCTStrategy)?.observe(scheduleLength: engine.decisions.count)
            hash.combine(engine.scheduleHash)
            if !found.isEmpty {
                violations += engine.violationTotal
                if first == nil {
                    first = (ran, found[0])
                    firstAt = engine.firstViolationTime.map { $0 - t0 }
                    failingTrace = TraceFile(scenario: o.scenario, variant: o.variant, seed: o.seed, schedule: ran,
                                             scheduleSeed: scheduleSeed, strategy: o.strategy, depth: o.depth, config: o.config,
                                             actors: names, decisions: engine.decisions, violation: found[0])
                }
            }
            ran += 1
            if engine.wedged {
                engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend)
            }
            if (first != nil && !o.keepGoing) || mismatch != nil { break }
            if let progress, ran & 63 == 0 {
                let now = Date()
                if now.timeIntervalSince(lastProgress) > 0.2 { lastProgress = now; progress(ran, o.schedules, now.timeIntervalSince(start)) }
            }
        }
        engine.shutdown()
        var report = RunReport(scenario: o.scenario, variant: o.variant, mode: .deterministic, seed: o.seed, strategy: o.strategy,
                               schedules: ran, violations: violations, firstViolationSchedule: first?.0, firstViolation: first?.1,
                               elapsedSeconds: Date().timeIntervalSince(start), traceHash: String(format: "%016llx", hash.value),
                               config: o.config, interrupted: interruptSignal.load(ordering: .relaxed) != 0, steps: steps,
                               secondsToFirstViolation: firstAt, determinismMismatch: mismatch)
        report.counters = counterTotals
        report.violationsByOracle = violationTotals
        addCoverage(to: &report)
        return report
    }

    /// Runs one schedule on `engine` and returns its violations.
    func runSchedule(engine: SimEngine, strategy: SchedulingStrategy, scheduleSeed: UInt64) -> [Violation] {
        engine.beginSchedule(strategy: strategy, scheduleSeed: scheduleSeed)
        let world = scenario.makeWorld(engine: engine, variant: options.variant, config: options.config, seed: scheduleSeed)
        world.start(endless: false)
        engine.runSchedule()
        if !engine.deadlocked { world.finish() }
        counterTotals.merge(world.counters, uniquingKeysWith: +)
        if engine.hung {
            engine.report(oracle: "livelock", "the schedule ran \(engine.maxSteps) steps without finishing")
        }
        violationTotals.merge(engine.violationCounts, uniquingKeysWith: +)
        coverageTotals.merge(engine.takeCoverage(), uniquingKeysWith: +)
        return engine.violations
    }

    // MARK: parallel

    private func runParallel() -> RunReport {
        let o = options
        let engine = SimEngine(mode: .parallel, actorNames: scenario.actorNames(o.config))
        engine.stopOnViolation = !o.keepGoing
        let start = Date()
        let t0 = SimEngine.monotonicSeconds()
        let world = scenario.makeWorld(engine: engine, variant: o.variant, config: o.config, seed: o.seed)
        let seconds = o.seconds ?? (o.schedules == nil ? 10 : .infinity)
        world.start(endless: true)
        while true {
            usleep(20_000)
            let elapsed = Date().timeIntervalSince(start)
            let done = world.completedWork
            if engine.stopRequested || interruptSignal.load(ordering: .relaxed) != 0 || elapsed >= seconds { break }
            if let s = o.schedules, done >= s { break }
            progress?(done, o.schedules, elapsed)
        }
        engine.requestStop()
        engine.waitForTasks()
        world.finish()
        let v = engine.violations
        var report = RunReport(scenario: o.scenario, variant: o.variant, mode: .parallel, seed: o.seed, strategy: o.strategy,
                               schedules: world.completedWork, violations: engine.violationTotal, firstViolationSchedule: v.isEmpty ? nil : 0,
                               firstViolation: v.first, elapsedSeconds: Date().timeIntervalSince(start), traceHash: nil,
                               config: o.config, interrupted: interruptSignal.load(ordering: .relaxed) != 0, steps: 0,
                               secondsToFirstViolation: engine.firstViolationTime.map { $0 - t0 })
        report.counters = world.counters
        report.violationsByOracle = engine.violationCounts
        coverageTotals.merge(engine.takeCoverage(), uniquingKeysWith: +)
        addCoverage(to: &report)
        engine.shutdown()
        return report
    }

    // MARK: replay

    /// The result of replaying a trace: its narration, steps and violations.
    public struct Replay: Sendable {
        public var events: [SimEvent]
        public var steps: [(actor: String, point: String)]
        public var violations: [Violation]
        /// Step at which the trace named an actor that could not run (model changed).
        public var mismatchStep: Int?
    }

    /// Replays a trace step by step with narration on.
    public static func replay(_ t: TraceFile) throws(InputError) -> Replay {
        var o = RunOptions(scenario: t.scenario, variant: t.variant, config: t.config)
        o.seed = t.seed
        let runner = try Runner(o)
        let engine = SimEngine(mode: .deterministic, actorNames: t.actors)
        engine.recordEvents = true
        engine.recordSteps = true
        let strategy = ReplayStrategy(decisions: t.decisions)
        let v = runner.runSchedule(engine: engine, strategy: strategy, scheduleSeed: t.scheduleSeed)
        let steps = engine.stepLog.map { (t.actors[$0.actor], $0.point.description) }
        let r = Replay(events: engine.events, steps: steps, violations: v, mismatchStep: strategy.mismatch?.step)
        engine.shutdown()
        return r
    }
}
