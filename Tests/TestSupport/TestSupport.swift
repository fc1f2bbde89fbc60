// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
import Harness

/// Runs a registered scenario by name: the variant in the scenario's default
/// configuration for `mode`, then `configure` on the selection (sizes, knobs).
/// Returns the report and the runner (for its failing trace). Tests pin
/// schedules of the scenario's own length (`lengths: [1]`) unless they ask
/// for the default search's (`RunOptions.searchLengths`).
public func run(_ scenario: String, _ variant: String, mode: ExecutionMode = .deterministic, seed: UInt64 = 1,
                schedules: Int? = nil, seconds: Double? = nil, strategy: StrategyKind = .random, depth: Int = 3,
                lengths: [Int] = [1], keepGoing: Bool = false,
                configure: (inout ScenarioSelection) throws -> Void = { _ in }) throws -> (RunReport, Runner) {
    var selection = try ScenarioRegistry.named(scenario).selection(variant: variant, mode: mode)
    try configure(&selection)
    return try run(selection, mode: mode, seed: seed, schedules: schedules, seconds: seconds, strategy: strategy, depth: depth,
                   lengths: lengths, keepGoing: keepGoing)
}

/// Runs a typed scenario (for options the command line cannot set).
public func run<S: Scenario>(_ scenario: S, _ variant: S.Variant, mode: ExecutionMode = .deterministic, seed: UInt64 = 1,
                             schedules: Int? = nil, seconds: Double? = nil, strategy: StrategyKind = .random, depth: Int = 3,
                             lengths: [Int] = [1], points: PointGranularity = .named,
                             keepGoing: Bool = false, configure: (inout S.Config) -> Void = { _ in }) throws -> (RunReport, Runner) {
    var config = scenario.defaultConfig(mode: mode)
    configure(&config)
    return try run(ScenarioSelection(scenario, variant: variant, config: config), mode: mode, seed: seed, schedules: schedules,
                   seconds: seconds, strategy: strategy, depth: depth, lengths: lengths, points: points, keepGoing: keepGoing)
}

/// Runs a selection.
public func run(_ selection: ScenarioSelection, mode: ExecutionMode = .deterministic, seed: UInt64 = 1, schedules: Int? = nil,
                seconds: Double? = nil, strategy: StrategyKind = .random, depth: Int = 3, lengths: [Int] = [1],
                points: PointGranularity = .named, keepGoing: Bool = false) throws -> (RunReport, Runner) {
    var o = RunOptions(selection, mode: mode)
    o.seed = seed; o.schedules = schedules; o.seconds = seconds; o.strategy = strategy; o.depth = depth; o.keepGoing = keepGoing
    o.lengths = lengths; o.points = points
    let r = try Runner(o)
    return (r.run(), r)
}

/// The checked-in minimal traces (Tests/Traces, written by
/// `kvmsim regress --write-traces Tests/Traces`): one per known race.
public enum CheckedInTraces {
    public static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Traces")
    }

    public static func all() throws -> [(name: String, trace: TraceFile)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".trace.json") }.sorted()
        return try files.map { ($0, try TraceFile.load(from: directory.appendingPathComponent($0).path)) }
    }
}

/// A scratch directory, removed by `remove()`.
public struct ScratchDirectory {
    public let path: String
    public init(_ name: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
