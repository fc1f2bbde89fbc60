// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import ARM64
import Harness

/// A machine of arm64 VMs on stage 2: `vms` VMs, each its own VMM process
/// (host mm, one memslot of guest RAM, hugetlbfs-backed with `--huge-pages 1`)
/// with a `ModernKVM`, its generic MMU notifier and its stage-2 MMU; physical
/// CPUs (TLBs tagged by VMID, broadcast TLBIs) and one VMID allocator shared
/// by all VMs.
///
/// Actors: `cpu0...` (the first `hostEventSources` run host mm events on a
/// random VM's process, which fire its MMU notifier; the next run background
/// KVM work) and `vcpu0...` (vcpu i belongs to VM i mod vms; each operation
/// is a scheduling on a physical CPU: kvm_arch_vcpu_load(), guest reads,
/// writes and fetches of random pages, kvm_arch_vcpu_put()).
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes is kept as long as the world (the CPUs and the
/// VMID allocator with its locks; each VM's host mm, `ModernKVM` with its RCU
/// domains, notifier and oracle, and stage-2 MMU with its page table, VMID
/// and vcpus), so the words `memory` recorded stay allocated.
final class Stage2World: ResettableWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig<Stage2Options>
    private(set) var seed: UInt64
    let domain: InnerShareableDomain
    let vmids: ARM64VMIDs
    let hostMMs: [HostMM]
    let kvms: [ModernKVM]
    let mmus: [Stage2MMU]
    let hostCPUs: [HostCPU]
    let vcpus: [VCPU]
    let arm: [ARM64VCPU]
    static let hostBase = 0x7F00_0000
    /// What the host does to hugetlbfs memory (no swap, KSM or COW), and the VMM's remaps.
    static let hugetlbEvents: [HostEvent] = [.zap, .hostWrite, .mprotectReadOnly, .mprotectReadWrite, .clearFlushYoung, .clearYoung,
                                             .testYoung, .remap]
    private let done: AtomicWords
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory

    init(engine: SimEngine, variant: Stage2Variant, config c: ScenarioConfig<Stage2Options>, seed: UInt64) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        config = c
        self.seed = seed
        let o = c.options
        let block = 1 << o.tableBits, huge = o.hugePages == 1
        domain = InnerShareableDomain(engine: engine, cpus: o.pcpus, vmids: 1 << o.vmidBits, pagesPerVMID: c.pages, blockPages: block)
        vmids = ARM64VMIDs(engine: engine, scheme: Stage2Code(variant).vmid, vmidBits: o.vmidBits, domain: domain)
        var hostMMs: [HostMM] = [], kvms: [ModernKVM] = [], mmus: [Stage2MMU] = []
        for vm in 0..<o.vms {
            let base = Self.hostBase + vm << 24
            let mm = HostMM(engine: engine, pages: HostPages(capacity: 4 * c.pages + 64, hugePages: huge ? 2 * c.pages / block + 4 : 0, blockPages: block),
                            base: base, count: c.pages, hugeBlock: huge ? block : 0)
            mm.vmasChange = huge                              // the VMM remaps blocks (`remap` events)
            let kvm = ModernKVM(engine: engine, rcu: makeRCU(for: engine), hostMM: mm,
                                memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: base)]))
            let mmu = Stage2MMU(kvm: kvm, variant: variant, vmIndex: vm, bitsPerLevel: o.tableBits, maxTables: 64 + 8 * (c.pages + 4),
                                freeUnlinked: o.tableFree, domain: domain, vmids: vmids)
            mmu.attachOracleAndRegisterNotifier()
            hostMMs.append(mm); kvms.append(kvm); mmus.append(mmu)
        }
        self.hostMMs = hostMMs; self.kvms = kvms; self.mmus = mmus
        let ex = engine.executors, cpus = c.cpus, vms = o.vms
        hostCPUs = (0..<cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let states = (0..<c.vcpus).map { i in kvms[i % vms].createVCPU(cpu: i % o.pcpus) }
        vcpus = states.enumerated().map { VCPU(state: $0.element, executor: ex[cpus + $0.offset]) }
        arm = states.enumerated().map { mmus[$0.offset % vms].createVCPU($0.element) }
        done = AtomicWords(count: c.cpus + c.vcpus)
        memory.endRecording()
    }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made (each VM's host pages and PTEs, stage-2 entries, table states and
    /// page counts, invalidation state, oracle records, locks and vcpu
    /// requests; the CPUs' TLBs and registers; the VMID allocator), then what
    /// is not in words: each VM's host page free lists, its page table's
    /// allocator and vcpus (`Stage2MMU.resetForReuse`), and its modelled
    /// kvm->rcu and kvm->srcu. False (build fresh) if the build was not
    /// recorded or an RCU domain is not the modelled one.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded else { return false }
        var domains: [ModelledRCU] = []
        for k in kvms {
            guard let rcu = k.rcu as? ModelledRCU, let srcu = k.srcu as? ModelledRCU else { return false }
            domains += [rcu, srcu]
        }
        memory.restore()
        for mm in hostMMs { mm.pages.resetFreeLists() }
        for mmu in mmus { mmu.resetForReuse() }
        domain.resetForReuse()
        for d in domains { d.reset() }
        self.seed = seed
        return true
    }

    /// Each MMU holds its VM and the VM's notifier holds the MMU: break the cycles.
    deinit { for k in kvms { k.notifier.arch = nil }; done.free() }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    var counters: [(ProtocolCounter, Int)] {
        Stage2Stat.allCases.map { s in (s.counter, mmus.reduce(0) { $0 + $1.counter(s) }) } + [(ARM64VMIDs.rolloverCounter, vmids.rollovers)]
    }

    func start(endless: Bool) {
        let c = config, o = c.options
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                let mm = hostMMs[rng.below(hostMMs.count)]
                mm.randomEvent(&rng, from: o.hugePages == 1 ? Self.hugetlbEvents : HostEvent.every)
                done.store(i, UInt64(n + 1))
            }
        }
        for workCPU in c.hostEventSources..<hostCPUs.count where o.kvmWork != .none {
            engine.spawnLoop(on: hostCPUs[workCPU], seed: seed, salt: UInt64(500 + workCPU), endless: endless,
                             quota: c.hostEventsPerSource) { [self] rng, n in
                let mmu = mmus[rng.below(mmus.count)], slot = mmu.memslots.slots[0]
                engine.point("kvm:work")
                mmu.setDirtyLogging(slot, !mmu.isLogging(slot))
                done.store(workCPU, UInt64(n + 1))
            }
        }
        for (i, vcpu) in vcpus.enumerated() {
            let v = arm[i]
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU) { [self] rng, n in
                // Scheduled on its home CPU, or migrated to another.
                let home = i % o.pcpus
                v.load(on: rng.below(4) == 0 ? rng.below(o.pcpus) : home)
                for k in 0..<(1 + rng.below(2)) {
                    let gfn = rng.below(c.pages)
                    let r = rng.below(10)
                    let kind: GuestAccessKind = r < 5 ? .read : (r < 9 ? .write(UInt64(i + 1) << 40 | UInt64(n + 1) << 4 | UInt64(k)) : .fetch)
                    v.guestAccess(gfn: gfn, kind)
                }
                v.put()
                done.store(c.cpus + i, UInt64(n + 1))
            }
        }
    }

    func finish() { for k in kvms { k.rcu.barrier() } }
}
