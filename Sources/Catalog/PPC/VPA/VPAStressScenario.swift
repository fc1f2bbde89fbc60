// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import PPC
import Harness

/// Seed 003 under register/deregister storms: 4 vcpus registering random VPA,
/// DTL and SLB-shadow areas of each other while all run, now and then with bad
/// input.
public struct VPAStressScenario: Scenario {
    public typealias Variant = VPAVariant
    public typealias Options = VPAOptions

    public init() {}
    public let name = "vpa-stress"
    public let summary = "every vcpu registers and deregisters random VPA/DTL/SLB-shadow areas of random vcpus while all run (seed 003)"
    public let docs = "docs/mechanisms/vpa.md"
    public var oracles: [Oracle] { VPAOracle.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 4, vcpus: 4, pages: 8, opsPerVCPU: 8, hostEventsPerSource: 4, hostEventSources: 1), VPAOptions())
    }

    public func actorNames(_ c: Config) -> [String] { VPAWorld.actorNames(c) }

    public func coverageMarks(variant: Variant) -> [CoverageMark] {
        variant.hasUpdateProtocol
            ? [VPARegistration.markUpdatePending, VPARegistration.markUpdateRetry, VPARegistration.markDTLWrap, VPARegistration.markResource]
            : [VPARegistration.markCallerUnpin, VPARegistration.markResource]
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        VPAWorld(engine: engine, variant: variant, config: config, seed: seed, crossOnly: false)
    }

    public var parallelFindings: [(variant: VPAVariant, note: String)] { [(.patched, VPACrossRegisterScenario.aToBToAFinding)] }

    public var cases: [Case] {[
        Case(.patched, expects: .clean, schedules: 2_000,
             note: "seed 003 under register/deregister storms of all three areas"),
        Case(.pinsSnapshot, expects: .clean, schedules: 2_000,
             note: "the same, kvmppc_update_vpa() pinning its snapshot of next_gpa (later kernels)"),
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "v3.4 under storms: unlocked pointer changes, and replacements unpinning the caller's area"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(VPAStressScenario(), into: $0) }
