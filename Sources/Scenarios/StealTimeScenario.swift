// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import X86

/// A historical race for the regression suite: x86 steal time and paravirtual
/// TLB flushes (CVE-2019-3016). Each vcpu actor is a vcpu thread that is loaded
/// (record_steal_time), runs guest loads and remaps of guest pages (each remap
/// flushes the other vcpus' TLBs: a KVM_VCPU_FLUSH_TLB flag for a preempted
/// vcpu, an IPI otherwise), and is preempted (kvm_steal_time_set_preempted).
///
/// Oracle `stale-guest-tlb`: once a remap's TLB flush has returned, no vcpu
/// reads the page through a TLB entry of the old mapping.
public struct StealTimeScenario: Scenario {
    public let name = "steal-time-flush"
    public let summary = "x86 PV TLB flush via steal_time.preempted vs. record_steal_time's copy (CVE-2019-3016)"
    public var variants: [String] { StealTimeVariant.allCases.map(\.rawValue) }
    public var oracles: [String] { ["stale-guest-tlb", "deadlock", "livelock"] }
    public var docs: String { "docs/regression-suite.md" }

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig {
        ScenarioConfig(cpus: 2, vcpus: 2, pages: 2, opsPerVCPU: 6, hostEventsPerSource: 0, hostEventSources: 0, tableBits: 1, tlbSize: 1)
    }

    public func actorNames(_ c: ScenarioConfig) -> [String] { (0..<c.vcpus).map { "vcpu\($0)" } }

    public func validate(_ c: ScenarioConfig) throws(InputError) {
        if c.vcpus < 2 { throw InputError("\(name) needs at least 2 vcpus (got \(c.vcpus))") }
    }

    public func coverageMarks(variant: String) -> [CoverageMark] {
        [StealTimeVM.markPVFlushQueued, StealTimeVM.markHostPVFlush, StealTimeVM.markIPI]
    }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        StealTimeWorld(engine: engine, variant: StealTimeVariant(rawValue: variant)!, config: config, seed: seed)
    }
}

final class StealTimeWorld: ScenarioWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig
    let seed: UInt64
    let vm: StealTimeVM
    let actors: [VCPU]
    private let done: AtomicWords

    init(engine: SimEngine, variant: StealTimeVariant, config c: ScenarioConfig, seed: UInt64) {
        self.engine = engine
        config = c
        self.seed = seed
        vm = StealTimeVM(engine: engine, variant: variant, vcpus: c.vcpus, vpns: c.pages, gfns: c.pages + 1)
        actors = (0..<c.vcpus).map { VCPU(state: VCPUState(id: $0, cpu: 0), executor: engine.executors[$0]) }
        done = AtomicWords(count: c.vcpus)
    }
    deinit { done.free() }

    var completedWork: Int { (0..<config.vcpus).reduce(0) { $0 + Int(done.load($1)) } }

    func start(endless: Bool) {
        let c = config
        for (i, actor) in actors.enumerated() {
            let actorSeed = SplitMix64.derive(seed, UInt64(1000 + i))
            engine.spawn(on: actor.executor) { [self] in
                await actor.run { [self] in
                    var rng = SplitMix64(seed: actorSeed)
                    var n = 0
                    while !engine.stopRequested && (endless || n < c.opsPerVCPU) {
                        vm.recordStealTime(i)                              // vcpu_load, KVM_REQ_STEAL_UPDATE
                        for _ in 0..<(1 + rng.below(3)) where endless || n < c.opsPerVCPU {
                            let vpn = rng.below(c.pages)
                            if rng.below(10) < 7 { vm.access(i, vpn: vpn) } else { vm.remap(i, vpn: vpn, to: rng.below(c.pages + 1)) }
                            n += 1
                            done.store(i, UInt64(n))
                        }
                        vm.setPreempted(i)                                 // vcpu_put: preempted
                        engine.point("vcpu:preempted")
                    }
                    vm.offline(i)
                }
            }
        }
    }

    func finish() {}
}
