// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import X86
import Harness

/// The world of steal-time-flush: each vcpu actor is a vcpu thread that is
/// loaded (record_steal_time), runs guest loads and remaps of guest pages (each
/// remap flushes the other vcpus' TLBs: a KVM_VCPU_FLUSH_TLB flag for a
/// preempted vcpu, an IPI otherwise), and is preempted
/// (kvm_steal_time_set_preempted). The host CPUs of `hostEventSources` run
/// host mm events on the pages that hold the vcpus' steal-time areas: swap out
/// and in, host writes, and soft-dirty clearing (after which a write copies a
/// page someone else holds a reference to).
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes that owns words is kept as long as the world (the
/// host mm with its pages, the VM with its page-table locks, the vcpus'
/// generic state), so the words `memory` recorded stay allocated.
final class StealTimeWorld: ResettableWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig<NoOptions>
    private(set) var seed: UInt64
    let hostMM: HostMM
    let vm: StealTimeVM
    let hostCPUs: [HostCPU]
    let actors: [VCPU]
    private let done: AtomicWords
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory
    static let stealTimeBase = 0x7E00_0000
    /// The host mm events on steal-time pages (none destroys a page's content:
    /// MADV_DONTNEED on a page the guest uses would lose its data whatever KVM did).
    static let events: [HostEvent] = [.swapOut, .swapIn, .hostWrite, .clearSoftDirty]

    init(engine: SimEngine, variant: StealTimeVariant, config c: ScenarioConfig<NoOptions>, seed: UInt64) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        config = c
        self.seed = seed
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 8 * c.vcpus + 16), base: Self.stealTimeBase, count: c.vcpus)
        vm = StealTimeVM(engine: engine, variant: variant, vcpus: c.vcpus, vpns: c.pages, gfns: c.pages + 1, hostMM: hostMM,
                         stealTimeBase: Self.stealTimeBase)
        let ex = engine.executors
        hostCPUs = (0..<c.cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        actors = (0..<c.vcpus).map { VCPU(state: VCPUState(id: $0, cpu: 0), executor: ex[c.cpus + $0]) }
        done = AtomicWords(count: c.cpus + c.vcpus)
        memory.endRecording()
    }
    deinit { done.free() }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made (host pages and PTEs, the guest's `preempted` bytes in them, the
    /// VM's per-vcpu words and guest page table, locks), then what is not in
    /// words: the host page free lists and the vcpus' guest TLBs
    /// (`StealTimeVM.resetForReuse`). False (build fresh) if the build was not
    /// recorded.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded else { return false }
        memory.restore()
        hostMM.pages.resetFreeLists()
        vm.resetForReuse()
        self.seed = seed
        return true
    }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    func start(endless: Bool) {
        let c = config
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng, from: Self.events)
                done.store(i, UInt64(n + 1))
            }
        }
        for (i, actor) in actors.enumerated() {
            engine.spawnWork(on: actor, seed: seed, salt: UInt64(1000 + i)) { [self] rng in
                var n = 0
                while !engine.stopRequested && (endless || n < c.opsPerVCPU) {
                    vm.recordStealTime(i)                              // vcpu_load, KVM_REQ_STEAL_UPDATE
                    for _ in 0..<(1 + rng.below(3)) where endless || n < c.opsPerVCPU {
                        let vpn = rng.below(c.pages)
                        if rng.below(10) < 7 { vm.access(i, vpn: vpn) } else { vm.remap(i, vpn: vpn, to: rng.below(c.pages + 1)) }
                        n += 1
                        done.store(c.cpus + i, UInt64(n))
                    }
                    vm.setPreempted(i)                                 // vcpu_put: preempted
                    engine.point("vcpu:preempted")
                }
                vm.offline(i)
                vm.destroyVCPU(i)
            }
        }
    }

    func finish() {}
}
