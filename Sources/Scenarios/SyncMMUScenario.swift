// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import MIPS

/// Seed 004 scenarios: MIPS guest faults against host mm events through the MMU
/// notifiers.
///
/// Actors: `cpu0...` (host CPUs; the first `hostEventSources` run a host event
/// source: zap, swap-out/in, KSM merge, COW break, mprotect, aging) and `vcpu0...`
/// (vcpu i loaded on cpu i % cpus; it owns, i.e. is the only writer of, gfns
/// g with g % vcpus == i, and reads any gfn).
public struct SyncMMUScenario: Scenario {
    public let name: String
    public let summary: String
    let race: Bool

    public static let race = SyncMMUScenario(
        name: "sync-mmu-race",
        summary: "2 host CPUs, 2 vcpus, a few pages, one host event source: the mmu_notifier_retry race (seed 004)",
        race: true)
    public static let stress = SyncMMUScenario(
        name: "sync-mmu-stress",
        summary: "vcpus fault, read and write random pages while every host CPU zaps, swaps, KSM-merges, COW-breaks, mprotects and ages (seed 004)",
        race: false)

    public var variants: [String] { SyncMMUVariant.allCases.map(\.rawValue) }
    public var oracles: [String] { ["I1", "I2", "I3", "I4", "lost-write", "wp-write", "spurious-retry", "rcu-use-after-free", "deadlock", "livelock"] }
    public var docs: String { "docs/mechanisms/sync-mmu.md" }
    public func coverageMarks(variant: String) -> [CoverageMark] {
        race ? [MIPSMMU.markFastPath, MIPSMMU.markRetry]
             : [MIPSMMU.markFastPath, MIPSMMU.markRetry, MIPSMMU.markSetSpte]
    }

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig {
        race
            ? ScenarioConfig(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 4, hostEventsPerSource: 2, hostEventSources: 1, tableBits: 1, tlbSize: 4)
            : ScenarioConfig(cpus: 2, vcpus: 4, pages: 64, opsPerVCPU: 24, hostEventsPerSource: 12, hostEventSources: 2, tableBits: 3, tlbSize: 16)
    }

    public func validate(_ c: ScenarioConfig) throws(InputError) { try c.checkPagesFit(tableBits: c.tableBits, scenario: name) }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        SyncMMUWorld(engine: engine, variant: SyncMMUVariant(rawValue: variant)!, config: config, seed: seed)
    }
}

/// A historical race for the regression suite (section 7 of the reference): a
/// fault handler that keeps its `mmu_notifier_seq` snapshot in a signed `int`
/// (x86, before the snapshot became `unsigned long`). Once the sequence count
/// passes 2^31 the sign-extended snapshot never equals it, `mmu_notifier_retry()`
/// always says retry, and every fault spins forever: a hang, not a corruption.
///
/// The world is sync-mmu-race's (SYNC_MMU code in its no-change-pte form, which
/// holds on real threads; one host event source), with `mmu_notifier_seq`
/// starting at 2^31 - 1 so the first invalidation crosses the line; the
/// snapshot type is the only difference between variants.
/// The fault path is MIPS's `kvm_mips_map_page()`, which has the same
/// snapshot/retry protocol as x86's `tdp_page_fault()` of the time.
public struct MMUSeqWrapScenario: Scenario {
    public let name = "mmu-seq-wrap"
    public let summary = "a signed int mmu_seq snapshot past 2^31: every fault retries forever (historical x86 hang)"
    public var variants: [String] { MMUSeqSnapshotType.allCases.map(\.rawValue) }
    public var oracles: [String] { ["spurious-retry", "I1", "I2", "livelock", "deadlock"] }
    public var docs: String { "docs/regression-suite.md" }
    public static let initialSeq: UInt64 = (1 << 31) - 1

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig { SyncMMUScenario.race.defaultConfig(mode: mode) }

    public func coverageMarks(variant: String) -> [CoverageMark] { [MIPSMMU.markRetry] }

    public func validate(_ c: ScenarioConfig) throws(InputError) { try c.checkPagesFit(tableBits: c.tableBits, scenario: name) }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        SyncMMUWorld(engine: engine, variant: .noChangePTE, config: config, seed: seed,
                     mmuSeqType: MMUSeqSnapshotType(rawValue: variant)!, initialMMUNotifierSeq: Self.initialSeq)
    }
}

/// Host mm events a host event source draws from.
enum HostEvent: CaseIterable {
    case zap, swapOut, swapIn, ksmMerge, hostWrite, mprotectReadOnly, mprotectReadWrite, clearFlushYoung, clearYoung, testYoung
    /// `allCases`, built once (`allCases` makes a new array at every use).
    static let every: [HostEvent] = allCases
}

final class SyncMMUWorld: ScenarioWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig
    let seed: UInt64
    let kvm: KVM
    let mmu: MIPSMMU
    let hostMM: HostMM
    let hostCPUs: [HostCPU]
    let vcpus: [VCPU]
    let contexts: [MIPSVCPUContext]
    let hostBase = 0x7F00_0000   // host virtual page of guest RAM
    /// Host events done per host CPU (atomics: the runner reads them).
    private let hostEventsDone: AtomicWords

    init(engine: SimEngine, variant: SyncMMUVariant, config c: ScenarioConfig, seed: UInt64,
         mmuSeqType: MMUSeqSnapshotType = .unsignedLong, initialMMUNotifierSeq: UInt64 = 0) {
        self.engine = engine
        self.config = c
        self.seed = seed
        let rcu = makeRCU(for: engine)
        let pages = HostPages(capacity: 4 * c.pages + 64)
        hostMM = HostMM(engine: engine, pages: pages, base: hostBase, count: c.pages)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        kvm = KVM(engine: engine, rcu: rcu, hostMM: hostMM, memslots: slots, hostCPUs: c.cpus,
                  tlbSize: c.tlbSize, tableBits: c.tableBits, tableLevels: 3)
        mmu = MIPSMMU(kvm: kvm, variant: variant)
        mmu.mmuSeqType = mmuSeqType
        kvm.setMMUNotifierSeq(initialMMUNotifierSeq)
        let ex = engine.executors
        hostCPUs = (0..<c.cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let cpuLocks = (0..<c.cpus).map { _ in SpinLock("vcpu_load(cpu)", engine: engine) }
        var states: [VCPUState] = []
        for v in 0..<c.vcpus { states.append(kvm.createVCPU(cpu: v % c.cpus)) }
        vcpus = states.map { VCPU(state: $0, executor: ex[c.cpus + $0.id]) }
        let n = c.vcpus
        let mipsMMU = mmu
        contexts = states.map { s in MIPSVCPUContext(vcpu: s, mmu: mipsMMU, cpuLock: cpuLocks[s.cpu], ownsGfn: { $0 % n == s.id }) }
        hostEventsDone = AtomicWords(count: c.cpus)
    }

    deinit { hostEventsDone.free() }

    var completedWork: Int { contexts.reduce(0) { $0 + $1.completedOps } + (0..<config.cpus).reduce(0) { $0 + Int(hostEventsDone.load($1)) } }

    func start(endless: Bool) {
        let c = config
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng)
                hostEventsDone.store(i, UInt64(n + 1))
            }
        }
        for (i, vcpu) in vcpus.enumerated() {
            let ctx = contexts[i]
            let id = vcpu.state.id
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU, { rng, _ in
                let gfn = rng.below(c.pages)
                let write = gfn % c.vcpus == id && rng.below(2) == 0
                ctx.runOp(GuestOp(gfn: gfn, write: write))
            }, done: { ctx.cache.freeAll() })
        }
    }

    func finish() { kvm.rcu.barrier() }
}

extension HostMM {
    /// One random host mm event on a random page (or pair, or range) of the
    /// region: the workload of a host event source.
    func randomEvent(_ rng: inout SplitMix64, from events: [HostEvent] = HostEvent.every) {
        let h = base + rng.below(count)
        let ev = events[rng.below(events.count)]
        engine.point("host:event")
        switch ev {
        case .zap:
            let len = 1 + rng.below(min(4, count))
            let start = min(h, base + count - len)
            zap(start..<(start + len))
        case .swapOut: swapOut(h)
        case .swapIn: swapIn(h)
        case .ksmMerge: ksmMerge(h, base + rng.below(count))
        case .hostWrite: hostWrite(h)
        case .mprotectReadOnly: mprotect(h..<(h + 1), writable: false)
        case .mprotectReadWrite: mprotect(h..<(h + 1), writable: true)
        case .clearFlushYoung: clearYoung(range, flush: true)
        case .clearYoung: clearYoung(h..<(h + 1), flush: false)
        case .testYoung: _ = testYoung(h)
        }
    }
}
