// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import PPC
import Harness

/// The world of the seed-002 scenarios: a Book3S HV guest managing its HPT with
/// H_ENTER, H_REMOVE, H_PROTECT and H_BULK_REMOVE (some with H_LOCAL) on a
/// POWER7-style host whose cores share one TLB among their threads, while the
/// host pages guest memory out through the MMU notifiers.
///
/// Actors: `host0...` (host mm event sources: zap, swap, KSM, COW, mprotect,
/// aging), `vcore0...` (each runs one vcore: picks a free core, does the primary
/// thread's entry, waits for its vcpus to exit; vcores move between cores),
/// `vcpu0...` (each vcpu's thread: the per-thread entry, then guest loads,
/// stores and hcalls).
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes that owns words is kept as long as the world (the
/// KVM with its host mm, RCU and notifier counters; the Book3SHV with its
/// HPT, rmap, oracle, host cores, vcores and vcpus; the guest kernel with its
/// page locks; the vcpus' generic state), so the words `memory` recorded stay
/// allocated.
final class PPCTLBWorld: ResettableWorld, @unchecked Sendable {
    static func vcores(_ c: ScenarioConfig<PPCHVOptions>) -> Int { (c.vcpus + c.vcpusPerVcore - 1) / c.vcpusPerVcore }

    /// `host0...`, `vcore0...`, `vcpu0...`: one executor each.
    static func actorNames(_ c: ScenarioConfig<PPCHVOptions>) -> [String] {
        (0..<c.hostEventSources).map { "host\($0)" } + (0..<vcores(c)).map { "vcore\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
    }

    static func validate(_ c: ScenarioConfig<PPCHVOptions>, scenario name: String) throws(InputError) {
        guard c.cpus % c.threadsPerCore == 0 else {
            throw InputError("--cpus (\(c.cpus)) must be a multiple of --threads-per-core (\(c.threadsPerCore)) for \(name)")
        }
        guard c.vcpus <= 64 else { throw InputError("\(name) supports at most 64 vcpus (got \(c.vcpus))") }
        // The rmap chains are bitmaps over the HPT, and aging walks every page with
        // a scheduling point per rmap lock: keep guests small.
        guard c.pages <= 4096 else { throw InputError("\(name) supports at most 4096 pages (got \(c.pages))") }
    }

    /// pre-fix flushes on last_cpu/last_vcpu and goes local on H_LOCAL; patched
    /// flushes on need_tlb_flush and, with several vcores, never goes local.
    static func coverageMarks(_ variant: TLBInvalidationVariant) -> [CoverageMark] {
        let common = [Book3SHV.markTLBIE, Book3SHV.markFault, Book3SHV.markUnmap, Book3SHV.markEnterRetry, Book3SHV.markFaultRetry]
        return variant == .preFix
            ? common + [Book3SHV.markTLBIEL, Book3SHV.markLastCPUFlush]
            : common + [Book3SHV.markNeedFlushConsumed]
    }

    let engine: SimEngine
    let config: ScenarioConfig<PPCHVOptions>
    private(set) var seed: UInt64
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
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory

    /// ppc-tlb-local: page-out only, and loads, stores and unmaps only.
    let local: Bool

    init(engine: SimEngine, variant: TLBInvalidationVariant, config c: ScenarioConfig<PPCHVOptions>, seed: UInt64, local: Bool) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.local = local
        self.engine = engine
        self.config = c
        self.seed = seed
        let pages = HostPages(capacity: 4 * c.pages + 64)
        hostMM = HostMM(engine: engine, pages: pages, base: hostBase, count: c.pages)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        kvm = KVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM, memslots: slots)
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
        memory.endRecording()
    }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made (host pages and PTEs, notifier counters, the HPT and its rmap,
    /// need_tlb_flush and last_vcpu[], vcore placement and acks, the oracle's
    /// per-slot records, the guest kernel's page records, locks, counters),
    /// then what is not in words: the host page free lists, the cores' TLBs,
    /// the vcpus' last_cpu and the oracle's exempt invalidations
    /// (`Book3SHV.resetForReuse`), and the modelled RCU. False (build fresh)
    /// if the build was not recorded or the RCU is not the modelled one.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded, let rcu = kvm.rcu as? ModelledRCU else { return false }
        memory.restore()
        hostMM.pages.resetFreeLists()
        hv.resetForReuse()
        rcu.reset()
        self.seed = seed
        return true
    }

    /// `kvm.arch` is the Book3SHV, which holds the KVM: break that cycle (found by
    /// LeakSanitizer in stress/sanitize).
    deinit { kvm.arch = nil; done.free() }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    var counters: [(ProtocolCounter, Int)] { hv.counterValues }

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
            engine.spawnWork(on: runner, seed: seed, salt: UInt64(500 + i)) { [self] rng in
                while !engine.stopRequested && (endless || !hv.allDone(vc)) {
                    if !hv.kvmppcRunCore(vc, preferring: rng.below(hv.host.cores)) { break }
                }
            }
        }
        for (i, actor) in vcpuActors.enumerated() {
            let vcpu = hv.vcpus[i]
            engine.spawnWork(on: actor, seed: seed, salt: UInt64(1000 + i)) { [self] rng in
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

    /// One guest operation: mostly loads and stores, then unmaps (some remapping
    /// the page elsewhere), write-protects and bulk unmaps (ppc-tlb-local:
    /// loads, stores and unmaps only); H_LOCAL at the configured rate, on every
    /// kind of invalidating hcall that takes it.
    func guestOp(_ vcpu: PPCVCPU, _ rng: inout SplitMix64) {
        let vpn = rng.below(guest.vpns)
        let hLocal = rng.below(100) < config.hLocalPercent
        // ppc-tlb-local: loads and stores, and unmaps (the commit's danger) only.
        let k = local ? rng.below(82) : rng.below(100)
        if k < 60 {
            guest.access(vcpu, vpn: vpn, write: rng.below(2) == 0)
        } else if k < 82 {
            guest.remove(vcpu, vpn: vpn, local: hLocal, remapTo: rng.below(3) == 0 ? rng.below(guest.vpns) : nil)
        } else if k < 92 {
            guest.protect(vcpu, vpn: vpn, local: hLocal)
        } else {
            guest.bulkRemove(vcpu, vpns: (0..<(2 + rng.below(3))).map { _ in rng.below(guest.vpns) })
        }
    }

    /// ppc-tlb-local pages out only (the commit's danger); the stress scenario
    /// draws from every host mm event.
    var hostEvents: [HostEvent] { local ? [.zap, .swapOut] : HostEvent.every }

    func finish() { kvm.rcu.barrier() }
}
