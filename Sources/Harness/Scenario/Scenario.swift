// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A scenario: a small configuration of the model with a workload, watched by
/// its oracles, and the regression cases that pin what the model gives for each
/// of its variants. One file declares a scenario, its cases and its
/// registration record; the registry (`ScenarioRegistry`) finds it without a
/// central list:
///
/// ```swift
/// @used @section("kvmsim_scenarios")
/// private let registration: ScenarioRecord = { ScenarioRegistry.emit(MyScenario(), into: $0) }
/// ```
///
/// Names given by the user (a scenario, a variant, a knob) are parsed once, at
/// the edge, into a `ScenarioSelection`; everything below works on the typed
/// `Variant` and `Config`.
public protocol Scenario: Sendable {
    /// The forms of the kernel code it runs (an enum; `pre-fix`, `patched`, ...).
    associatedtype Variant: ModelVariant
    /// Its architecture's knobs beyond `WorldSizes`.
    associatedtype Options: ScenarioOptions = NoOptions
    typealias Config = ScenarioConfig<Options>
    typealias Case = RegressionCase<Self>

    var name: String { get }
    /// What it finds, one line.
    var summary: String { get }
    /// The mechanism's docs page.
    var docs: String { get }
    /// The oracles watching its worlds (its checkers' `oracles` lists; the
    /// engine's own, `Oracle.engineOracles`, are added for every scenario).
    var oracles: [Oracle] { get }
    func defaultConfig(mode: ExecutionMode) -> Config
    /// One executor per actor, in the order the world uses `engine.executors`.
    func actorNames(_ config: Config) -> [String]
    /// Scenario-specific limits on a configuration (bad input: exit 2).
    func validate(_ config: Config) throws(InputError)
    /// The protocol branches a good run of `variant` should reach; a run
    /// reports their counts (zeros too) and lists those never reached.
    func coverageMarks(variant: Variant) -> [CoverageMark]
    /// One world, for one schedule (deterministic) or one run (parallel).
    func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld
    /// Its regression cases: every variant has at least one, with the verdict
    /// the model really gives (a known race found, a fix holding, a finding).
    var cases: [Case] { get }
    /// Known violations of a variant that no regression case pins: seen on
    /// real threads only, or found deterministically by a search too long for
    /// the suite (vpa-cross-register/patched: 311,285 schedules). A campaign
    /// counts them as known, and `stress/mutate` runs no parallel stress of
    /// these variants (a kill there would be the known race).
    var parallelFindings: [(variant: Variant, note: String)] { get }
}

extension Scenario {
    public func validate(_ config: Config) throws(InputError) {}
    public func coverageMarks(variant: Variant) -> [CoverageMark] { [] }
    public var parallelFindings: [(variant: Variant, note: String)] { [] }

    /// Host CPUs first (`cpu0...`), then vcpus (`vcpu0...`): one executor each.
    public func actorNames(_ c: Config) -> [String] {
        (0..<c.cpus).map { "cpu\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
    }
}

/// One world built for one schedule (deterministic) or one run (parallel).
public protocol ScenarioWorld: AnyObject {
    /// Spawns every actor's work on the engine. `endless`: false runs each
    /// actor's deterministic quota; true loops until the engine is asked to stop.
    func start(endless: Bool)
    /// Work units done (guest operations plus host events).
    var completedWork: Int { get }
    /// Called after the run ends (e.g. to drain RCU callbacks).
    func finish()
    /// Protocol counters of this world (e.g. TLB flushes), summed by the runner.
    var counters: [(ProtocolCounter, Int)] { get }
    /// This world if it can be reset in place (`ResettableWorld`), else nil:
    /// a witness, so that the runner asks once a schedule without a dynamic
    /// cast (`as? any ResettableWorld` is a conformance lookup in the runtime).
    var resettable: (any ResettableWorld)? { get }
}

extension ScenarioWorld {
    public var counters: [(ProtocolCounter, Int)] { [] }
    public var resettable: (any ResettableWorld)? { nil }
}
