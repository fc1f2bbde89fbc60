// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import MIPS
import Harness

/// The world of the seed-004 scenarios: MIPS guest faults against host mm
/// events through the MMU notifiers.
///
/// Actors: `cpu0...` (host CPUs; the first `hostEventSources` run a host event
/// source: zap, swap-out/in, KSM merge, COW break, mprotect, aging) and `vcpu0...`
/// (vcpu i loaded on cpu i % cpus; it owns, i.e. is the only writer of, gfns
/// g with g % vcpus == i, and reads any gfn).
final class SyncMMUWorld: ResettableWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig<MIPSGPAOptions>
    private(set) var seed: UInt64
    let kvm: KVM
    let mmu: MIPSMMU
    let hostMM: HostMM
    let hostCPUs: [HostCPU]
    let vcpus: [VCPU]
    let contexts: [MIPSVCPUContext]
    /// `vcpu_load()`'s per-CPU locks, kept by the world (not only by the
    /// contexts that use them: a CPU with no vcpu would drop its lock, whose
    /// word `memory` recorded).
    let cpuLocks: [SpinLock]
    let hostBase = 0x7F00_0000   // host virtual page of guest RAM
    /// Host events done per host CPU (atomics: the runner reads them).
    private let hostEventsDone: AtomicWords
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory

    /// The seed-004 host mm: the zero page and KSM's change_pte
    /// (`HostMMDetail`); mmu-seq-wrap passes none and keeps the host mm it had.
    static let seed004HostDetail: HostMMDetail = [.zeroPage, .ksmChangePTE, .pageDirty]

    init(engine: SimEngine, variant: SyncMMUVariant, config c: ScenarioConfig<MIPSGPAOptions>, seed: UInt64,
         mmuSeqType: MMUSeqSnapshotType = .unsignedLong, initialMMUNotifierSeq: UInt64 = 0,
         hostDetail: HostMMDetail = SyncMMUWorld.seed004HostDetail) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        self.config = c
        self.seed = seed
        let rcu = makeRCU(for: engine)
        let detail = Self.hostDetail(hostDetail, c.options)
        let pages = HostPages(capacity: 4 * c.pages + 64, zeroPage: detail.contains(.zeroPage),
                              pageFlags: detail.contains(.pageDirty))
        hostMM = HostMM(engine: engine, pages: pages, base: hostBase, count: c.pages)
        hostMM.form = c.hostMM
        hostMM.detail = detail
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        kvm = KVM(engine: engine, rcu: rcu, hostMM: hostMM, memslots: slots)
        mmu = MIPSMMU(kvm: kvm, variant: variant, hostCPUs: c.cpus, tlbSize: c.tlbSize, tableBits: c.tableBits, tableLevels: 3,
                      tableFree: c.gpaTableFree)
        mmu.mmuSeqType = mmuSeqType
        mmu.accessedMarking = c.markAccessed
        kvm.setMMUNotifierSeq(initialMMUNotifierSeq)
        let ex = engine.executors
        hostCPUs = (0..<c.cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let cpuLocks = (0..<c.cpus).map { _ in SpinLock("vcpu_load(cpu)", engine: engine) }
        self.cpuLocks = cpuLocks
        var states: [VCPUState] = []
        for v in 0..<c.vcpus { states.append(kvm.createVCPU(cpu: v % c.cpus)) }
        vcpus = states.map { VCPU(state: $0, executor: ex[c.cpus + $0.id]) }
        let n = c.vcpus
        let mipsMMU = mmu
        contexts = states.map { s in MIPSVCPUContext(vcpu: s, mmu: mipsMMU, cpuLock: cpuLocks[s.cpu], ownsGfn: { $0 % n == s.id }) }
        hostEventsDone = AtomicWords(count: c.cpus)
        memory.endRecording()
    }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made (host pages and PTEs, GPA table, TLBs, oracle, locks, notifier
    /// counters, vcpu requests), the host page and table free lists, the
    /// modelled RCU and the vcpus' write counters. False (build fresh) if the
    /// build was not recorded, the RCU is not the modelled one or a vcpu's
    /// memory cache still holds tables.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded, let rcu = kvm.rcu as? ModelledRCU, contexts.allSatisfy({ $0.resetForReuse() }) else { return false }
        memory.restore()
        hostMM.pages.resetFreeLists()
        mmu.table.resetAllocator()
        rcu.reset()
        self.seed = seed
        return true
    }

    deinit { hostEventsDone.free() }

    /// The host mm a world of these options runs: `base` (the seed-004 detail,
    /// or none for mmu-seq-wrap) with `--guest-ram file` (a shared file
    /// mapping: the page state, no zero page, no KSM change_pte, which KSM
    /// never sends for VM_SHARED) and `--reclaim-young check`.
    static func hostDetail(_ base: HostMMDetail, _ o: MIPSGPAOptions) -> HostMMDetail {
        var d = o.guestRam == .file ? [.pageDirty, .sharedFile] : base
        if o.reclaimYoung == .check { d.insert(.reclaimChecksYoung) }
        return d
    }

    /// One random host mm event on file-backed guest RAM: the events of
    /// `HostEvent.every`, drawn the same way, with writeback of a page in
    /// place of a KSM merge (KSM never merges VM_SHARED mappings; writeback
    /// is what a shared file mapping has instead). Reclaim drops clean page
    /// cache pages; a host read faults a page in from the file.
    func fileBackedEvent(_ rng: inout SplitMix64) {
        let mm = hostMM
        let h = mm.base + rng.below(mm.count)
        let ev = rng.below(10)
        engine.point("host:event")
        switch ev {
        case 0:
            let len = 1 + rng.below(min(4, mm.count))
            let start = min(h, mm.base + mm.count - len)
            mm.zap(start..<(start + len))
        case 1: mm.swapOut(h)
        case 2: mm.swapIn(h)
        case 3: mm.writeback(h)
        case 4: mm.hostWrite(h)
        case 5: mm.mprotect(h..<(h + 1), writable: false)
        case 6: mm.mprotect(h..<(h + 1), writable: true)
        case 7: mm.clearYoung(mm.range, flush: true)
        case 8: mm.clearYoung(h..<(h + 1), flush: false)
        default: _ = mm.testYoung(h)
        }
    }

    var completedWork: Int { contexts.reduce(0) { $0 + $1.completedOps } + (0..<config.cpus).reduce(0) { $0 + Int(hostEventsDone.load($1)) } }

    func start(endless: Bool) {
        let c = config
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                if hostMM.detail.contains(.sharedFile) { fileBackedEvent(&rng) } else { hostMM.randomEvent(&rng) }
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
