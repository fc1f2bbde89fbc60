// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// A scenario of any type, as the registry, the command line and the suite see
/// it: names in, typed selections out.
public struct AnyScenario: Sendable {
    let box: any ScenarioBox

    public init<S: Scenario>(_ scenario: S) { box = ConcreteScenarioBox(scenario: scenario) }

    public var name: String { box.name }
    public var summary: String { box.summary }
    public var docs: String { box.docs }
    /// Variant names, in declaration order.
    public var variants: [String] { box.variants }
    /// Every oracle watching its worlds, the engine's own included.
    public var oracles: [Oracle] { box.oracles + Oracle.engineOracles }
    /// The command-line knobs of its options (flag, help, and the names an
    /// enum knob takes; nil for an integer).
    public var knobs: [(flag: String, help: String, values: [String]?)] { box.knobs }
    /// The kernel commit a variant follows.
    public func commit(ofVariant v: String) -> KernelCommit? { box.commit(ofVariant: v) }
    /// Its regression cases.
    public var cases: [SuiteCase] { box.cases }
    /// Violations seen only on real threads (variant, why).
    public var parallelFindings: [(variant: String, note: String)] { box.parallelFindings }

    /// Parses a variant name: the scenario, that variant and its default
    /// configuration for `mode`.
    public func selection(variant: String, mode: ExecutionMode) throws(InputError) -> ScenarioSelection {
        try box.selection(variant: variant, mode: mode)
    }
}

protocol ScenarioBox: Sendable {
    var name: String { get }
    var summary: String { get }
    var docs: String { get }
    var variants: [String] { get }
    var oracles: [Oracle] { get }
    var knobs: [(flag: String, help: String, values: [String]?)] { get }
    func commit(ofVariant v: String) -> KernelCommit?
    var cases: [SuiteCase] { get }
    var parallelFindings: [(variant: String, note: String)] { get }
    func selection(variant: String, mode: ExecutionMode) throws(InputError) -> ScenarioSelection
    func decodeSelection(variant: String, config decoder: Decoder) throws -> ScenarioSelection
}

struct ConcreteScenarioBox<S: Scenario>: ScenarioBox {
    let scenario: S

    var name: String { scenario.name }
    var summary: String { scenario.summary }
    var docs: String { scenario.docs }
    var variants: [String] { S.Variant.allCases.map(\.rawValue) }
    var oracles: [Oracle] { scenario.oracles }
    var knobs: [(flag: String, help: String, values: [String]?)] { S.Options.knobs.map { ($0.flag, $0.help, $0.values) } }
    func commit(ofVariant v: String) -> KernelCommit? { S.Variant(rawValue: v)?.commit }
    var parallelFindings: [(variant: String, note: String)] { scenario.parallelFindings.map { ($0.variant.rawValue, $0.note) } }

    var cases: [SuiteCase] {
        let erased = AnyScenario(scenario)
        return scenario.cases.map { c in
            let base = scenario.defaultConfig(mode: .deterministic)
            var config = base
            c.configure?(&config)
            let selection = ScenarioSelection(TypedSelection(scenario: scenario, variant: c.variant, config: config), scenario: erased)
            let overrides = ConfigDiff.overrides(from: base, to: config)
            // The sizes `kvmsim run` has a flag of the same name for, and the scenario's knobs.
            let flagged = Set(["cpus", "vcpus", "pages", "host-event-sources", "host-events-per-source"] + S.Options.knobs.map(\.flag))
            var flags: [String]? = overrides.allSatisfy { flagged.contains($0.key) } ? overrides.flatMap { ["--\($0.key)", $0.value] } : nil
            flags? += ["--seed", "\(c.seed)", "--strategy", c.strategy.rawValue] + (c.strategy == .pct ? ["--depth", "\(c.depth)"] : [])
                + ["--lengths", c.lengths.map(String.init).joined(separator: ",")]
                + (c.points == .named ? [] : ["--points", c.points.rawValue])
            return SuiteCase(scenario: scenario.name, variant: c.variant.rawValue, expected: c.expected, seed: c.seed,
                             schedules: c.schedules, strategy: c.strategy, depth: c.depth, lengths: c.lengths, points: c.points,
                             commit: c.commit ?? c.variant.commit, note: c.note,
                             overrides: overrides, runFlags: flags, selection: selection)
        }
    }

    func variant(_ v: String) throws(InputError) -> S.Variant {
        guard let variant = S.Variant(rawValue: v) else {
            throw InputError("scenario \(name) has no variant '\(v)' (known: \(variants.joined(separator: ", ")))")
        }
        return variant
    }

    func selection(variant v: String, mode: ExecutionMode) throws(InputError) -> ScenarioSelection {
        ScenarioSelection(TypedSelection(scenario: scenario, variant: try variant(v), config: scenario.defaultConfig(mode: mode)),
                          scenario: AnyScenario(scenario))
    }

    func decodeSelection(variant v: String, config decoder: Decoder) throws -> ScenarioSelection {
        let config = try S.Config(from: decoder)
        return ScenarioSelection(TypedSelection(scenario: scenario, variant: try variant(v), config: config), scenario: AnyScenario(scenario))
    }
}

/// The configuration keys whose values a case changes from its scenario's
/// default, for the case's name ("pages=2 vcpus=1").
enum ConfigDiff {
    static func overrides<C: Encodable>(from base: C, to config: C) -> [(key: String, value: String)] {
        let a = flat(base), b = flat(config)
        return b.keys.sorted().compactMap { k in a[k] == b[k] ? nil : (kebab(k), b[k] ?? "") }
    }

    static func flat<C: Encodable>(_ c: C) -> [String: String] {
        guard let data = try? JSONEncoder().encode(c),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object.mapValues { "\($0)" }
    }

    /// "vcpusPerVcore" -> "vcpus-per-vcore".
    static func kebab(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
