// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// A replayable record of one deterministic schedule (`run --trace-out`).
///
/// The decisions are the executor chosen at each step; together with the scenario,
/// variant, configuration and schedule seed they reproduce the schedule exactly.
public struct TraceFile: Codable, Sendable, Equatable {
    public static let formatName = "kvmsim-trace"
    public static let currentVersion = 1

    public var format: String = TraceFile.formatName
    public var version: Int = TraceFile.currentVersion
    public var scenario: String
    public var variant: String
    public var seed: UInt64
    /// Index of the schedule within the run, and its derived seed.
    public var schedule: Int
    public var scheduleSeed: UInt64
    public var strategy: StrategyKind
    public var depth: Int
    public var config: ScenarioConfig
    public var actors: [String]
    public var decisions: [UInt16]
    /// The first violation the schedule showed when it was recorded, if any.
    public var violation: Violation?

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
        catch { throw InputError("trace file '\(path)' is not a valid kvmsim trace: \(Self.describe(error))") }
        guard t.format == formatName else { throw InputError("trace file '\(path)': format is '\(t.format)', expected '\(formatName)'") }
        guard t.version == currentVersion else { throw InputError("trace file '\(path)': version \(t.version) is not supported (expected \(currentVersion))") }
        let scenario = try ScenarioRegistry.named(t.scenario)
        guard scenario.variants.contains(t.variant) else { throw InputError("trace file '\(path)': scenario \(t.scenario) has no variant '\(t.variant)'") }
        try t.config.validate()
        try scenario.validate(t.config)
        guard t.actors == scenario.actorNames(t.config) else { throw InputError("trace file '\(path)': actor list does not match the scenario's configuration") }
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
