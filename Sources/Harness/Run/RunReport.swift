// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// What a run found; `--json` prints it.
public struct RunReport: Encodable, Sendable {
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
    public var config: EncodedConfig
    /// The schedule (or episode) lengths used in turn, as multiples of the
    /// scenario's quotas, and the scheduling points switched (or recorded) at.
    public var lengths: [Int] = []
    public var points: PointGranularity = .named
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
    /// Parallel mode with recording: whether the first real-thread failure was
    /// reproduced as a deterministic trace, and what that took (nil otherwise).
    public var reproduced: Bool?
    public var reproductionSeconds: Double?
    public var reproductionSchedules: Int?
    /// Seconds spent shrinking the reproduced trace (after `reproductionSeconds`).
    public var shrinkSeconds: Double?
    /// Points the failing episode recorded, and how many of them its guided
    /// replay could not follow (0: the recording lined up with the replay).
    public var recordedSteps: Int?
    public var guidedReplayMisses: Int?
    /// Parallel mode with recording: the episodes (worlds) run.
    public var episodes: Int?

    enum CodingKeys: String, CodingKey {
        case scenario, variant, mode, seed, strategy, schedules, violations, firstViolationSchedule, firstViolation
        case elapsedSeconds, traceHash, config, lengths, points, interrupted, steps, secondsToFirstViolation, determinismMismatch, counters, violationsByOracle, coverage, unreachedMarks
        case reproduced, reproductionSeconds, reproductionSchedules, shrinkSeconds, recordedSteps, guidedReplayMisses, episodes
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
        try c.encode(lengths, forKey: .lengths)
        try c.encode(points, forKey: .points)
        try c.encode(interrupted, forKey: .interrupted)
        try c.encode(steps, forKey: .steps)
        try c.encode(secondsToFirstViolation, forKey: .secondsToFirstViolation)
        try c.encode(counters, forKey: .counters)
        try c.encode(violationsByOracle, forKey: .violationsByOracle)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(unreachedMarks, forKey: .unreachedMarks)
        if determinismMismatch != nil { try c.encode(determinismMismatch, forKey: .determinismMismatch) }
        if mode == .parallel {
            try c.encode(reproduced, forKey: .reproduced)
            try c.encode(reproductionSeconds, forKey: .reproductionSeconds)
            try c.encode(reproductionSchedules, forKey: .reproductionSchedules)
            try c.encode(shrinkSeconds, forKey: .shrinkSeconds)
            try c.encode(recordedSteps, forKey: .recordedSteps)
            try c.encode(guidedReplayMisses, forKey: .guidedReplayMisses)
            try c.encode(episodes, forKey: .episodes)
        }
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
