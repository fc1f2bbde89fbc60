// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import X86
import Harness

/// A VM on the x86 TDP MMU: host memory with one memslot per address space, or
/// two (`--memslots 2`: RAM split as below and above 4 GiB), the same RAM in
/// both address spaces (as QEMU maps it for SMM), a `ModernKVM` with its
/// generic MMU notifier, the TDP MMU, and its oracles.
///
/// Actors: `cpu0...` (the first `hostEventSources` run host mm events, which
/// fire the MMU notifier; the others run background KVM work, if any) and
/// `vcpu0...` (guest reads, writes and fetches of random gfns, entering and
/// leaving SMM with two address spaces).
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes is kept as long as the world (the VM keeps its
/// RCU domains, notifier, oracle and mmu_lock; the MMU its arena, records,
/// oracle, dirty log, shadow pages and vcpus), so the words `memory`
/// recorded stay allocated.
final class TDPMMUWorld: ResettableWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig<TDPMMUOptions>
    private(set) var seed: UInt64
    let hostMM: HostMM
    let kvm: ModernKVM
    let mmu: TDPMMU
    let hostCPUs: [HostCPU]
    let vcpus: [VCPU]
    let x86: [X86VCPU]
    /// kvm->slots_lock (a mutex), held by a fast zap's caller.
    let slotsLock: SpinLock
    /// The guest frames of the RAM, in hva order.
    let gfns: [Int]
    static let hostBase = 0x7F00_0000
    /// What the host does to hugetlbfs memory (no swap, no KSM, no COW).
    static let hugetlbEvents: [HostEvent] = [.zap, .hostWrite, .mprotectReadOnly, .mprotectReadWrite, .clearFlushYoung, .clearYoung, .testYoung]
    /// The host mm of `--page-dirty 1`: the page dirty state of anonymous
    /// memory, with v6.11's do_swap_page() (a read fault maps an exclusive
    /// swapped page writable and clean, in the swap cache). No KSM change_pte
    /// (v6.9 removed it: KSM's write_protect_page() moves the dirty bit to the
    /// page and sets the PTE with set_pte_at()), and no zero page (a first
    /// touch allocates a page, as these worlds always had it).
    static let pageDirtyHostDetail: HostMMDetail = [.pageDirty, .swapInMapsWritable]
    private let done: AtomicWords
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory

    init(engine: SimEngine, variant: TDPMMUVariant, config c: ScenarioConfig<TDPMMUOptions>, seed: UInt64) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        config = c
        self.seed = seed
        let o = c.options
        let huge = o.hugePages == 1, block = 1 << o.tableBits
        let pageDirty = o.pageDirty == 1
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 4 * c.pages + 64, hugePages: huge ? 2 * c.pages / block + 4 : 0, blockPages: block,
                                                         pageFlags: pageDirty),
                        base: Self.hostBase, count: c.pages, hugeBlock: huge ? block : 0)
        if pageDirty { hostMM.detail = Self.pageDirtyHostDetail }
        // Per address space, the RAM as one memslot or two over one contiguous
        // hva range (the second starting half way up the gfn space).
        gfns = o.gfns(pages: c.pages)
        let low = o.memslots == 2 ? (c.pages + 1) / 2 : c.pages
        let gfns = gfns
        let slots = (0..<o.addressSpaces).flatMap { space -> [Memslot] in
            var s = [Memslot(id: space * 2, baseGfn: 0, npages: low, userspaceAddr: Self.hostBase, asID: space)]
            if c.pages > low {
                s.append(Memslot(id: space * 2 + 1, baseGfn: gfns[low], npages: c.pages - low, userspaceAddr: Self.hostBase + low, asID: space))
            }
            return s
        }
        kvm = ModernKVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM, memslots: Memslots(slots))
        let tablesPerRoot = 4 * (c.pages + 2)
        mmu = TDPMMU(kvm: kvm, variant: variant, bitsPerLevel: o.tableBits, maxTables: 64 + 8 * tablesPerRoot * o.addressSpaces)
        o.plantedBug?.plant(in: &mmu.code)
        mmu.attachOracleAndRegisterNotifier()
        mmu.setNXHugePages(huge)
        mmu.eagerPageSplit = o.eagerPageSplit == 1
        mmu.pml = o.pml == 1
        slotsLock = SpinLock("mutex_lock(&kvm->slots_lock)", engine: engine)
        let ex = engine.executors, vm = kvm, cpus = c.cpus
        hostCPUs = (0..<cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let states = (0..<c.vcpus).map { vm.createVCPU(cpu: $0 % cpus) }
        vcpus = states.map { VCPU(state: $0, executor: ex[cpus + $0.id]) }
        x86 = states.map { [mmu] in mmu.createVCPU($0) }
        done = AtomicWords(count: c.cpus + c.vcpus)
        memory.endRecording()
    }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made (host pages and PTEs, SPTEs and page-table pages, the roots list,
    /// shadow pages, dirty bitmaps, TLBs and PML buffers, the oracles'
    /// records, locks, the invalidation state, vcpu requests, counters), then
    /// what is not in words: the host page free lists, the MMU's table
    /// allocator, NX list and vcpu roots (`TDPMMU.resetForReuse`), and the
    /// modelled kvm->rcu and kvm->srcu. False (build fresh) if the build was
    /// not recorded or an RCU domain is not the modelled one.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded, let rcu = kvm.rcu as? ModelledRCU, let srcu = kvm.srcu as? ModelledRCU else { return false }
        memory.restore()
        hostMM.pages.resetFreeLists()
        mmu.resetForReuse()
        rcu.reset()
        srcu.reset()
        self.seed = seed
        return true
    }

    /// The MMU holds the VM and the VM's notifier holds the MMU: break the cycle.
    deinit { kvm.notifier.arch = nil; done.free() }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    var counters: [(ProtocolCounter, Int)] {
        TDPStat.allCases.map { ($0.counter, mmu.counter($0)) }
    }

    func start(endless: Bool) {
        let c = config
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng, from: c.options.hugePages == 1 ? Self.hugetlbEvents : HostEvent.every)
                done.store(i, UInt64(n + 1))
            }
        }
        // Every host CPU after the event sources runs background KVM work.
        for workCPU in c.hostEventSources..<hostCPUs.count where c.options.kvmWork != .none {
            engine.spawnLoop(on: hostCPUs[workCPU], seed: seed, salt: UInt64(500 + workCPU), endless: endless,
                             quota: c.hostEventsPerSource) { [self] rng, n in
                kvmWork(&rng)
                done.store(workCPU, UInt64(n + 1))
            }
        }
        for (i, vcpu) in vcpus.enumerated() {
            let v = x86[i]
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU) { [self] rng, n in
                if c.options.addressSpaces > 1 && rng.below(8) == 0 { v.smmChanged(v.asID == 0) }   // an SMI, or RSM
                if rng.below(6) == 0 { mmu.nestedTDPFault(v) }                                     // L2 faults on its shadowed EPT
                let gfn = gfns[rng.below(gfns.count)]
                let r = rng.below(10)
                let kind: GuestAccessKind = r < 5 ? .read : (r < 9 ? .write(UInt64(i + 1) << 40 | UInt64(n + 1)) : .fetch)
                v.guestAccess(gfn: gfn, kind)
                done.store(c.cpus + i, UInt64(n + 1))
            }
        }
    }

    /// One piece of background KVM work.
    private func kvmWork(_ rng: inout SplitMix64) {
        let each = TDPKVMWork.each(hugePages: config.options.hugePages == 1)
        let w = config.options.kvmWork == .all ? each[rng.below(each.count)] : config.options.kvmWork
        engine.point("kvm:work")
        switch w {
        case .zapGFNRange:
            let start = gfns[rng.below(gfns.count)]
            mmu.kvmZapGFNRange(start..<(start + 1 + rng.below(2)))
        case .fastZap:
            slotsLock.lock()                                 // set_nx_huge_pages(): every VM's slots_lock
            mmu.kvmMMUZapAllFast()
            slotsLock.unlock()
        case .dirtyLog:
            let slot = kvm.memslots.slots[0]
            slotsLock.lock()                                 // kvm_vm_ioctl_get_dirty_log(), kvm_set_memory_region()
            if !mmu.dirtyLog.isLogging(slot) {
                mmu.kvmSetDirtyLogging(slot: slot, true)
            } else if rng.below(4) == 0 {
                mmu.kvmSetDirtyLogging(slot: slot, false)
            } else {
                mmu.kvmGetDirtyLogProtect(slot: slot)
            }
            slotsLock.unlock()
        case .nxRecovery:
            mmu.kvmRecoverNXHugePages(toZap: 1 + rng.below(2))
        case .all, .none:
            break
        }
    }

    func finish() { kvm.rcu.barrier() }
}
