// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import PPC

/// Seed 002 scenarios: a Book3S HV guest managing its HPT with H_ENTER, H_REMOVE,
/// H_PROTECT and H_BULK_REMOVE (some with H_LOCAL) on a POWER7-style host whose
/// cores share one TLB among their threads, while the host pages guest memory
/// out through the MMU notifiers.
///
/// Actors: `host0...` (host mm event sources: zap, swap, KSM, COW, mprotect,
/// aging), `vcore0...` (each runs one vcore: picks a free core, does the primary
/// thread's entry, waits for its vcpus to exit; vcores move between cores),
/// `vcpu0...` (each vcpu's thread: the per-thread entry, then guest loads,
/// stores and hcalls).
public struct PPCTLBScenario: Scenario {
    public let name: String
    public let summary: String
    let small: Bool

    public static let local = PPCTLBScenario(
        name: "ppc-tlb-local",
        summary: "2 cores, an SMP guest of 2 vcores that uses H_LOCAL while the host pages out: the stale-TLB race (seed 002)",
        small: true)
    public static let stress = PPCTLBScenario(
        name: "ppc-tlb-stress",
        summary: "many vcores moving between cores, mixed HPT hcalls with and without H_LOCAL, host page-out, KSM, aging (seed 002)",
        small: false)

    public var variants: [String] { TLBInvalidationVariant.allCases.map(\.rawValue) }
    public var oracles: [String] { ["stale-tlb", "use-after-free", "wp-write", "deadlock", "livelock"] }
    public var docs: String { "docs/mechanisms/ppc-tlb.md" }
    /// pre-fix flushes on last_cpu/last_vcpu and goes local on H_LOCAL; patched
    /// flushes on need_tlb_flush and, with several vcores, never goes local.
    public func coverageMarks(variant: String) -> [CoverageMark] {
        let common = [Book3SHV.markTLBIE, Book3SHV.markFault, Book3SHV.markUnmap, Book3SHV.markEnterRetry, Book3SHV.markFaultRetry]
        return variant == TLBInvalidationVariant.preFix.rawValue
            ? common + [Book3SHV.markTLBIEL, Book3SHV.markLastCPUFlush]
            : common + [Book3SHV.markNeedFlushConsumed]
    }

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig {
        if small {
            return ScenarioConfig(cpus: 8, vcpus: 2, pages: 2, opsPerVCPU: 10, hostEventsPerSource: 4, hostEventSources: 1,
                                  tableBits: 1, tlbSize: 8, threadsPerCore: 4, vcpusPerVcore: 1, hLocalPercent: 100)
        }
        return mode == .deterministic
            ? ScenarioConfig(cpus: 16, vcpus: 6, pages: 4, opsPerVCPU: 12, hostEventsPerSource: 6, hostEventSources: 2,
                             tableBits: 1, tlbSize: 16, threadsPerCore: 4, vcpusPerVcore: 2, hLocalPercent: 50)
            : ScenarioConfig(cpus: 16, vcpus: 6, pages: 32, opsPerVCPU: 12, hostEventsPerSource: 6, hostEventSources: 2,
                             tableBits: 1, tlbSize: 32, threadsPerCore: 4, vcpusPerVcore: 2, hLocalPercent: 25)
    }

    static func vcores(_ c: ScenarioConfig) -> Int { (c.vcpus + c.vcpusPerVcore - 1) / c.vcpusPerVcore }

    public func actorNames(_ c: ScenarioConfig) -> [String] {
        (0..<c.hostEventSources).map { "host\($0)" } + (0..<Self.vcores(c)).map { "vcore\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
    }

    public func validate(_ c: ScenarioConfig) throws(InputError) {
        guard c.cpus % c.threadsPerCore == 0 else {
            throw InputError("--cpus (\(c.cpus)) must be a multiple of --threads-per-core (\(c.threadsPerCore)) for \(name)")
        }
        guard c.vcpus <= 64 else { throw InputError("\(name) supports at most 64 vcpus (got \(c.vcpus))") }
        // The rmap chains are bitmaps over the HPT, and aging walks every page with
        // a scheduling point per rmap lock: keep guests small.
        guard c.pages <= 4096 else { throw InputError("\(name) supports at most 4096 pages (got \(c.pages))") }
    }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        PPCTLBWorld(engine: engine, variant: TLBInvalidationVariant(rawValue: variant)!, config: config, seed: seed, local: small)
    }
}

final class PPCTLBWorld: ScenarioWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig
    let seed: UInt64
    let kvm: KVM
    let hv: Book3SHV
    let guest: PPCGuestKernel
    let hostMM: HostMM
    let hostSources: [HostCPU]
    let runners: [HostCPU]
    let vcpuActors: [VCPU]
    /// Work done per actor (host sources, then vcpus).
    private let done: AtomicWords
    let hostBase = 0x7E00_0000

    /// ppc-tlb-local: page-out only, and loads, stores and unmaps only.
    let local: Bool

    init(engine: SimEngine, variant: TLBInvalidationVariant, config c: ScenarioConfig, seed: UInt64, local: Bool) {
        self.local = local
        self.engine = engine
        self.config = c
        self.seed = seed
        let pages = HostPages(capacity: 4 * c.pages + 64)
        hostMM = HostMM(engine: engine, pages: pages, base: hostBase, count: c.pages)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        kvm = KVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM, memslots: slots, hostCPUs: 1, tlbSize: 1)
        let host = PPCHost(cores: c.cpus / c.threadsPerCore, threadsPerCore: c.threadsPerCore, tlbSize: c.tlbSize)
        hv = Book3SHV(kvm: kvm, variant: variant, host: host, hptGroups: max(1, min(c.pages / 2, 256)))
        for _ in 0..<c.vcpus { hv.createVCPU(vcpusPerVcore: c.vcpusPerVcore) }
        hv.finishCreation()
        guest = PPCGuestKernel(hv: hv, vpns: c.pages, gfns: c.pages)
        let ex = engine.executors
        let nh = c.hostEventSources, nv = hv.vcores.count
        hostSources = (0..<nh).map { HostCPU(index: $0, executor: ex[$0]) }
        runners = (0..<nv).map { HostCPU(index: $0, executor: ex[nh + $0]) }
        let vm = kvm
        let generic = (0..<c.vcpus).map { _ in vm.createVCPU(cpu: 0) }
        vcpuActors = (0..<c.vcpus).map { VCPU(state: generic[$0], executor: ex[nh + nv + $0]) }
        done = AtomicWords(count: nh + c.vcpus)
    }

    /// `kvm.arch` is the Book3SHV, which holds the KVM: break that cycle (found by
    /// LeakSanitizer in stress/sanitize).
    deinit { kvm.arch = nil; done.free() }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    var counters: [String: Int] {
        Dictionary(uniqueKeysWithValues: PPCCounter.allCases.map { ($0.name, hv.counter($0)) })
    }

    func start(endless: Bool) {
        let c = config
        let nh = c.hostEventSources
        let events = hostEvents
        for (i, cpu) in hostSources.enumerated() {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng, from: events)
                done.store(i, UInt64(n + 1))
            }
        }
        for (i, runner) in runners.enumerated() {
            let vc = hv.vcores[i]
            let actorSeed = SplitMix64.derive(seed, UInt64(500 + i))
            engine.spawn(on: runner.executor) { [self] in
                await runner.run { [self] in
                    var rng = SplitMix64(seed: actorSeed)
                    while !engine.stopRequested && (endless || !hv.allDone(vc)) {
                        if !hv.runVcore(vc, preferring: rng.below(hv.host.cores)) { break }
                    }
                }
            }
        }
        for (i, actor) in vcpuActors.enumerated() {
            let vcpu = hv.vcpus[i]
            let actorSeed = SplitMix64.derive(seed, UInt64(1000 + i))
            engine.spawn(on: actor.executor) { [self] in
                await actor.run { [self] in
                    var rng = SplitMix64(seed: actorSeed)
                    var n = 0
                    var last: UInt64 = 0
                    while !engine.stopRequested && (endless || n < c.opsPerVCPU) {
                        guard let gen = hv.enterGuest(vcpu, after: last) else { break }
                        let slice = 1 + rng.below(3)
                        for _ in 0..<slice where endless || n < c.opsPerVCPU {
                            guestOp(vcpu, &rng)
                            n += 1
                            done.store(nh + i, UInt64(n))
                        }
                        hv.exitGuest(vcpu, generation: gen)
                        last = gen
                    }
                    hv.vcpuDone(vcpu)
                }
            }
        }
    }

    /// One guest operation: mostly loads and stores, then unmaps (some remapping
    /// the page elsewhere), write-protects and bulk unmaps, H_LOCAL at the
    /// configured rate.
    func guestOp(_ vcpu: PPCVCPU, _ rng: inout SplitMix64) {
        let vpn = rng.below(guest.vpns)
        let local = rng.below(100) < config.hLocalPercent
        // ppc-tlb-local: loads and stores, and unmaps (the commit's danger) only.
        let k = local ? rng.below(82) : rng.below(100)
        if k < 60 {
            guest.access(vcpu, vpn: vpn, write: rng.below(2) == 0)
        } else if k < 82 {
            guest.remove(vcpu, vpn: vpn, local: local, remapTo: rng.below(3) == 0 ? rng.below(guest.vpns) : nil)
        } else if k < 92 {
            guest.protect(vcpu, vpn: vpn, local: local)
        } else {
            guest.bulkRemove(vcpu, vpns: (0..<(2 + rng.below(3))).map { _ in rng.below(guest.vpns) })
        }
    }

    /// ppc-tlb-local pages out only (the commit's danger); the stress scenario
    /// draws from every host mm event.
    var hostEvents: [HostEvent] { local ? [.zap, .swapOut] : HostEvent.every }

    func finish() { kvm.rcu.barrier() }
}
