// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import Harness

/// The world a generic (virt/kvm) mechanism starts from: host memory and a
/// memslot over it, a KVM with the minimal architecture (`MinimalArchMMU`), host
/// event sources on the first host CPUs, and vcpus doing guest reads and writes
/// through the minimal arch. A generic race is modelled in KVMCore (the
/// notifier callbacks, gfn_to_pfn_prot(), the request protocol) and exercised
/// here without borrowing a real architecture; docs/writing-a-scenario.md
/// builds a scenario on it.
///
/// Actors: `cpu0...` (the first `hostEventSources` run host mm events from
/// `events`) and `vcpu0...` (vcpu i on cpu i % cpus).
public final class BaseWorld: ScenarioWorld, @unchecked Sendable {
    public let engine: SimEngine
    public let sizes: WorldSizes
    public let seed: UInt64
    public let hostMM: HostMM
    public let kvm: KVM
    public let arch: MinimalArchMMU
    public let hostCPUs: [HostCPU]
    public let vcpus: [VCPU]
    public let events: [HostEvent]
    public static let hostBase = 0x7C00_0000
    /// Work done per actor (host CPUs, then vcpus).
    let done: AtomicWords

    public init(engine: SimEngine, sizes: WorldSizes, seed: UInt64, events: [HostEvent] = HostEvent.every) {
        self.engine = engine
        self.sizes = sizes
        self.seed = seed
        self.events = events
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 4 * sizes.pages + 64), base: Self.hostBase, count: sizes.pages)
        kvm = KVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM,
                  memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: sizes.pages, userspaceAddr: Self.hostBase)]))
        arch = MinimalArchMMU(kvm: kvm)
        let ex = engine.executors, vm = kvm, cpus = sizes.cpus
        hostCPUs = (0..<cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let states = (0..<sizes.vcpus).map { vm.createVCPU(cpu: $0 % cpus) }
        vcpus = states.map { VCPU(state: $0, executor: ex[cpus + $0.id]) }
        done = AtomicWords(count: sizes.cpus + sizes.vcpus)
    }

    /// The minimal arch is the KVM's `arch` and holds it unowned: no cycle to break.
    deinit { done.free() }

    /// At most this many guest pages (the minimal arch keeps an entry per gfn).
    public static let maxPages = 4096

    public var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    public func start(endless: Bool) {
        let s = sizes
        for (i, cpu) in hostCPUs.enumerated() where i < s.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: s.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng, from: events)
                done.store(i, UInt64(n + 1))
            }
        }
        for (i, vcpu) in vcpus.enumerated() {
            let state = vcpu.state
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: s.opsPerVCPU) { [self] rng, n in
                let gfn = rng.below(s.pages)
                let write = rng.below(2) == 0
                arch.guestAccess(state, gfn: gfn, write: write, value: UInt64(i + 1) << 40 | UInt64(n + 1))
                done.store(s.cpus + i, UInt64(n + 1))
            }
        }
    }

    public func finish() { kvm.rcu.barrier() }
}
