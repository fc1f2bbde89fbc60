// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// A run's verdict: some oracle fired, or none did.
public enum Verdict: String, Codable, Sendable {
    case violation, clean
}

/// One case of the race regression suite, declared by its scenario (in the
/// scenario's `cases`): a variant run deterministically from a seed for a
/// number of schedules, with the verdict the model really gives (a known race
/// found, a fix holding, or a finding in a fixed variant kept as it is).
public struct RegressionCase<S: Scenario>: Sendable {
    public var variant: S.Variant
    public var expected: Verdict
    public var seed: UInt64
    /// Schedules to run; a violation case stops at its first violation.
    public var schedules: Int
    public var strategy: StrategyKind
    /// PCT depth (with `strategy: .pct`).
    public var depth: Int
    /// Schedule lengths (`RunOptions.lengths`); the scenario's own length by default.
    public var lengths: [Int]
    /// Where actors may switch: named points, or also every kernel-memory
    /// access (closes windows the model has no named point in: issue 20 class 1).
    public var points: PointGranularity
    /// Changes to the scenario's deterministic default configuration.
    public var configure: (@Sendable (inout S.Config) -> Void)?
    /// The kernel commit the case reproduces; nil: the variant's own.
    public var commit: KernelCommit?
    /// Why the case exists, one line.
    public var note: String

    public init(_ variant: S.Variant, expects expected: Verdict, seed: UInt64 = 1, schedules: Int,
                strategy: StrategyKind = .random, depth: Int = 3, lengths: [Int] = [1], points: PointGranularity = .named,
                commit: KernelCommit? = nil, configure: (@Sendable (inout S.Config) -> Void)? = nil, note: String) {
        self.variant = variant; self.expected = expected; self.seed = seed; self.schedules = schedules
        self.strategy = strategy; self.depth = depth; self.lengths = lengths; self.points = points
        self.commit = commit; self.configure = configure; self.note = note
    }
}

/// A regression case of any scenario, as the suite runs it.
public struct SuiteCase: Sendable {
    public var scenario: String
    public var variant: String
    public var expected: Verdict
    public var seed: UInt64
    public var schedules: Int
    public var strategy: StrategyKind
    public var depth: Int
    public var lengths: [Int]
    public var points: PointGranularity = .named
    public var commit: KernelCommit?
    public var note: String
    /// Configuration keys changed from the scenario's default (kebab-case).
    public var overrides: [(key: String, value: String)]
    /// The `kvmsim run` flags that select this case's configuration, seed and
    /// strategy (nil when an override has no flag: run it with `regress`).
    public var runFlags: [String]?
    /// What to run.
    public var selection: ScenarioSelection

    /// Unique name: scenario/variant, plus the overrides and seed if any
    /// ("sync-mmu-stress/patched pages=2 vcpus=1 seed=3").
    public var id: String {
        var s = "\(scenario)/\(variant)"
        for (k, v) in overrides { s += " \(k)=\(v)" }
        if strategy != .random { s += " strategy=\(strategy.rawValue)" }
        if strategy == .pct && depth != 3 { s += " depth=\(depth)" }
        if lengths != [1] { s += " lengths=\(lengths.map(String.init).joined(separator: ","))" }
        if points != .named { s += " points=\(points.rawValue)" }
        if seed != 1 { s += " seed=\(seed)" }
        return s
    }

    /// The name of the case's minimal trace in Tests/Traces:
    /// `<scenario>--<variant>.trace.json`, plus the rest of the id when the case
    /// has overrides (`sync-mmu-stress--patched--pages=2_vcpus=1_seed=3.trace.json`).
    public var traceFileName: String {
        let rest = id.dropFirst("\(scenario)/\(variant)".count).trimmingCharacters(in: .whitespaces)
        return "\(scenario)--\(variant)" + (rest.isEmpty ? "" : "--" + rest.replacingOccurrences(of: " ", with: "_")) + ".trace.json"
    }
}
