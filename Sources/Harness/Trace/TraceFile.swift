// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// A replayable record of one deterministic schedule (`run --trace-out`).
///
/// The decisions are the executor chosen at each step; together with the scenario,
/// variant, configuration and schedule seed they reproduce the schedule exactly.
/// On disk: one JSON object (`format`, `version`, `scenario`, `variant`, `seed`,
/// `schedule`, `scheduleSeed`, `strategy`, `depth`, `config` (the scenario's
/// sizes and options, flat), `actors`, `decisions`, `violation`).
public struct TraceFile: Codable, Sendable, Equatable {
    public static let formatName = "kvmsim-trace"
    /// 2: a workload starts in one step, its body job (before, in three: the
    /// jobs of a Swift task's start, hop onto its actor and return), so every
    /// version 1 schedule has other decisions. Version 1 files are refused.
    public static let currentVersion = 2

    public var format: String = TraceFile.formatName
    public var version: Int = TraceFile.currentVersion
    /// The scenario, variant and configuration the schedule ran.
    public var selection: ScenarioSelection
    public var seed: UInt64
    /// Index of the schedule within the run, and its derived seed.
    public var schedule: Int
    public var scheduleSeed: UInt64
    public var strategy: StrategyKind
    public var depth: Int
    public var actors: [String]
    public var decisions: [UInt16]
    /// The first violation the schedule showed when it was recorded, if any.
    public var violation: Violation?
    /// Where the schedule switched actors (`named` when the file says nothing:
    /// traces before access-level points).
    public var points: PointGranularity

    public init(selection: ScenarioSelection, seed: UInt64, schedule: Int, scheduleSeed: UInt64, strategy: StrategyKind,
                depth: Int, actors: [String], decisions: [UInt16], violation: Violation?, points: PointGranularity = .named) {
        self.selection = selection; self.seed = seed; self.schedule = schedule; self.scheduleSeed = scheduleSeed
        self.strategy = strategy; self.depth = depth; self.actors = actors; self.decisions = decisions; self.violation = violation
        self.points = points
    }

    public var scenario: String { selection.scenarioName }
    public var variant: String { selection.variant }

    enum CodingKeys: String, CodingKey {
        case format, version, scenario, variant, seed, schedule, scheduleSeed, strategy, depth, config, actors, decisions, violation, points
    }

    /// A trace naming a scenario or variant this binary does not have.
    struct UnknownRun: Error { let message: String }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        version = try c.decode(Int.self, forKey: .version)
        guard format == Self.formatName else { throw UnknownRun(message: "format is '\(format)', expected '\(Self.formatName)'") }
        guard version == Self.currentVersion else {
            let why = version == 1 ? "; version 1 schedules started each workload in three steps, not one: record it again with this kvmsim" : ""
            throw UnknownRun(message: "version \(version) is not supported (expected \(Self.currentVersion))\(why)")
        }
        let scenarioName = try c.decode(String.self, forKey: .scenario)
        let variantName = try c.decode(String.self, forKey: .variant)
        let scenario: AnyScenario
        do { scenario = try ScenarioRegistry.named(scenarioName) } catch { throw UnknownRun(message: error.message) }
        guard scenario.variants.contains(variantName) else { throw UnknownRun(message: "scenario \(scenarioName) has no variant '\(variantName)'") }
        selection = try scenario.box.decodeSelection(variant: variantName, config: try c.superDecoder(forKey: .config))
        seed = try c.decode(UInt64.self, forKey: .seed)
        schedule = try c.decode(Int.self, forKey: .schedule)
        scheduleSeed = try c.decode(UInt64.self, forKey: .scheduleSeed)
        strategy = try c.decode(StrategyKind.self, forKey: .strategy)
        depth = try c.decode(Int.self, forKey: .depth)
        actors = try c.decode([String].self, forKey: .actors)
        decisions = try c.decode([UInt16].self, forKey: .decisions)
        violation = try c.decodeIfPresent(Violation.self, forKey: .violation)
        points = try c.decodeIfPresent(PointGranularity.self, forKey: .points) ?? .named
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(version, forKey: .version)
        try c.encode(scenario, forKey: .scenario)
        try c.encode(variant, forKey: .variant)
        try c.encode(seed, forKey: .seed)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(scheduleSeed, forKey: .scheduleSeed)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(depth, forKey: .depth)
        try c.encode(selection.config, forKey: .config)
        try c.encode(actors, forKey: .actors)
        try c.encode(decisions, forKey: .decisions)
        try c.encodeIfPresent(violation, forKey: .violation)
        if points != .named { try c.encode(points, forKey: .points) }
    }

    public static func == (a: TraceFile, b: TraceFile) -> Bool {
        a.format == b.format && a.version == b.version && a.selection.sameRun(as: b.selection) && a.seed == b.seed
            && a.schedule == b.schedule && a.scheduleSeed == b.scheduleSeed && a.strategy == b.strategy && a.depth == b.depth
            && a.actors == b.actors && a.decisions == b.decisions && a.violation == b.violation && a.points == b.points
    }

    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: URL(fileURLWithPath: path))
    }

    /// Reads and validates a trace file; any problem is an `InputError`.
    public static func load(from path: String) throws(InputError) -> TraceFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) }
        catch { throw InputError("cannot read trace file '\(path)': \(error.localizedDescription)") }
        guard !data.isEmpty else { throw InputError("trace file '\(path)' is empty") }
        let t: TraceFile
        do { t = try JSONDecoder().decode(TraceFile.self, from: data) }
        catch let e as UnknownRun { throw InputError("trace file '\(path)': \(e.message)") }
        catch { throw InputError("trace file '\(path)' is not a valid kvmsim trace: \(Self.describe(error))") }
        do { try t.selection.validate() } catch { throw InputError("trace file '\(path)': \(error.message)") }
        guard t.actors == t.selection.actorNames else { throw InputError("trace file '\(path)': actor list does not match the scenario's configuration") }
        guard t.decisions.allSatisfy({ Int($0) < t.actors.count }) else { throw InputError("trace file '\(path)': a decision names an actor that does not exist") }
        return t
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.valueNotFound(_, let c): return "missing value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(error)"
        }
    }
}
