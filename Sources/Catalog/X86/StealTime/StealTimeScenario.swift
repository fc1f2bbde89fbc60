// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import X86
import Harness

/// A historical race for the regression suite: x86 steal time and paravirtual
/// TLB flushes (CVE-2019-3016).
///
/// Oracle `stale-guest-tlb`: once a remap's TLB flush has returned, no vcpu
/// reads the page through a TLB entry of the old mapping.
public struct StealTimeScenario: Scenario {
    public typealias Variant = StealTimeVariant
    public typealias Options = NoOptions

    public init() {}
    public let name = "steal-time-flush"
    public let summary = "x86 PV TLB flush via steal_time.preempted vs. record_steal_time's copy (CVE-2019-3016)"
    public let docs = "docs/regression-suite.md"
    public var oracles: [Oracle] { StealTimeVM.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 2, vcpus: 2, pages: 2, opsPerVCPU: 6, hostEventsPerSource: 0, hostEventSources: 0))
    }

    public func actorNames(_ c: Config) -> [String] { (0..<c.vcpus).map { "vcpu\($0)" } }

    public func validate(_ c: Config) throws(InputError) {
        if c.vcpus < 2 { throw InputError("\(name) needs at least 2 vcpus (got \(c.vcpus))") }
    }

    public func coverageMarks(variant: Variant) -> [CoverageMark] {
        [StealTimeVM.markPVFlushQueued, StealTimeVM.markHostPVFlush, StealTimeVM.markIPI]
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        StealTimeWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    public var cases: [Case] {[
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "historical: CVE-2019-3016, record_steal_time() overwrites KVM_VCPU_FLUSH_TLB"),
        Case(.patched, expects: .clean, schedules: 20_000,
             note: "historical: xchg() on the guest's steal_time page"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(StealTimeScenario(), into: $0) }
