// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A scenario with one of its variants and a configuration: everything a world
/// is built from, what a run, a trace file and a regression case name. Made
/// from names only by `AnyScenario.selection(variant:mode:)` (which rejects an
/// unknown variant) and by decoding a trace file.
public struct ScenarioSelection: Sendable {
    var box: any SelectionBox
    public let scenario: AnyScenario

    init(_ box: any SelectionBox, scenario: AnyScenario) {
        self.box = box
        self.scenario = scenario
    }

    /// A typed selection (tests, benchmarks, a scenario built on another's world).
    public init<S: Scenario>(_ scenario: S, variant: S.Variant, config: S.Config) {
        self.init(TypedSelection(scenario: scenario, variant: variant, config: config), scenario: AnyScenario(scenario))
    }

    public var scenarioName: String { scenario.name }
    public var variant: String { box.variantName }
    public var sizes: WorldSizes {
        get { box.sizes }
        set { box.sizes = newValue }
    }

    /// Sets a knob of the scenario's options by flag name from its command-line
    /// text; a knob the scenario does not have, or a value it does not take, is
    /// bad input.
    public mutating func set(knob flag: String, to value: String) throws(InputError) { try box.set(knob: flag, to: value) }
    /// Sets an integer knob.
    public mutating func set(knob flag: String, to value: Int) throws(InputError) { try box.set(knob: flag, to: String(value)) }

    /// Checks the sizes, the options and the scenario's own limits.
    public func validate() throws(InputError) { try box.validate() }
    public var actorNames: [String] { box.actorNames }
    public var coverageMarks: [CoverageMark] { box.coverageMarks }
    public func makeWorld(engine: SimEngine, seed: UInt64) -> any ScenarioWorld { box.makeWorld(engine: engine, seed: seed) }

    /// The configuration as the flat JSON object of traces and reports.
    public var config: EncodedConfig { EncodedConfig(box: box) }

    /// Same scenario, variant and configuration.
    public func sameRun(as other: ScenarioSelection) -> Bool {
        scenarioName == other.scenarioName && variant == other.variant && box.configEquals(other.box)
    }
}

/// A selection's configuration, encodable as its flat JSON object.
public struct EncodedConfig: Encodable, Sendable {
    let box: any SelectionBox
    public func encode(to encoder: Encoder) throws { try box.encodeConfig(to: encoder) }
}

protocol SelectionBox: Sendable {
    var variantName: String { get }
    var sizes: WorldSizes { get set }
    mutating func set(knob flag: String, to value: String) throws(InputError)
    func validate() throws(InputError)
    var actorNames: [String] { get }
    var coverageMarks: [CoverageMark] { get }
    func makeWorld(engine: SimEngine, seed: UInt64) -> any ScenarioWorld
    func encodeConfig(to encoder: Encoder) throws
    func configEquals(_ other: any SelectionBox) -> Bool
}

struct TypedSelection<S: Scenario>: SelectionBox {
    let scenario: S
    let variant: S.Variant
    var config: S.Config

    var variantName: String { variant.rawValue }
    var sizes: WorldSizes {
        get { config.sizes }
        set { config.sizes = newValue }
    }

    mutating func set(knob flag: String, to value: String) throws(InputError) {
        guard let knob = S.Options.knobs.first(where: { $0.flag == flag }) else {
            throw InputError("--\(flag) does not apply to \(scenario.name)")
        }
        try knob.apply(&config.options, value)
    }

    func validate() throws(InputError) {
        try config.validate()
        try scenario.validate(config)
    }

    var actorNames: [String] { scenario.actorNames(config) }
    var coverageMarks: [CoverageMark] { scenario.coverageMarks(variant: variant) }

    func makeWorld(engine: SimEngine, seed: UInt64) -> any ScenarioWorld {
        scenario.makeWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    func encodeConfig(to encoder: Encoder) throws { try config.encode(to: encoder) }

    func configEquals(_ other: any SelectionBox) -> Bool {
        guard let o = other as? TypedSelection<S> else { return false }
        return o.variant == variant && o.config == config
    }
}
