// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import RCU
import Harness

/// The world of the trap-and-emulate ASID scenarios (seeds 000 and 001).
///
/// Actors: `cpu0...` run host processes (each switch_mm() may take a new ASID
/// and so start new ASID cycles; the ASID width is tiny), `vcpu0...` run a guest
/// that, in equal shares, switches process (a guest kernel EntryHi write), reads
/// a useg page of its current process in user mode, and reads a page in kernel
/// mode (a useg page, the first kseg0 page, or the first or last kseg2/3 page);
/// the useg pages include the last one (`TrapEmulGuestLayout`). Between
/// operations a vcpu may migrate to another host CPU. With GVA page tables
/// (gva-flush), guest RAM is backed by a host mm whose events run on cpu0, and
/// GVA fills go through kvm_mips_map_page().
///
/// Oracle `stale-asid` (`StaleASIDOracle`): a guest access translates only
/// through a host TLB entry filled for this vcpu, the guest mm of its mode, the
/// running guest process (mapped segments) and the page it maps.
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes that owns words is kept as long as the world (the
/// ASID allocator, TLBs, run locks, host processes, guest RAM, the vcpus with
/// their guest mms and GVA tables; gva-flush's KVM with its host mm and GPA
/// MMU), so the words `memory` recorded stay allocated.
final class ASIDWorld: ResettableWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig<TrapEmulOptions>
    private(set) var seed: UInt64
    let asids: ASIDAllocator
    let tlbs: [MIPSTLB]
    let cpuLocks: [SpinLock]
    let hostCPUs: [HostCPU]
    let vcpus: [VCPU]
    let teVCPUs: [TrapEmulVCPU]
    let hostProcesses: [HostProcess]
    let guestRAM: TrapEmulGuestRAM
    /// The SYNC_MMU stack behind the GVA fills (gva-flush only): host mm, KVM,
    /// kvm_mips_map_page(). Host mm events run on cpu0.
    let kvm: KVM?
    let gpaMMU: MIPSMMU?
    let oracle: StaleASIDOracle
    private let work: AtomicWords
    /// Every word the build made, for `reset`.
    private let memory: WorldMemory

    let layout: TrapEmulGuestLayout
    /// The guest TLB size of each vcpu: large enough that the deterministic default
    /// (2 processes of 5 mapped pages) never replaces an entry and the parallel one
    /// (3 processes of 7) does (KVM_MIPS_GUEST_TLB_SIZE is 64).
    static let guestTLBSize = 16

    /// `plantedBug`: test-only (Tests/MIPSTests/PlantedBugTests.swift), nil in every scenario.
    init(engine: SimEngine, variant: ASIDVariant, gvaVariant: GVAFlushVariant?, config c: ScenarioConfig<TrapEmulOptions>, seed: UInt64,
         plantedBug: TrapEmulPlantedBug? = nil) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        self.config = c
        self.seed = seed
        asids = ASIDAllocator(bits: c.asidBits, cpus: c.cpus)
        cpuLocks = (0..<c.cpus).map { _ in SpinLock("run_on_cpu", engine: engine) }
        let ex = engine.executors
        hostCPUs = (0..<c.cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let rcu = makeRCU(for: engine)
        layout = TrapEmulGuestLayout(lowUserPages: c.pages)
        let gfns = layout.gfns(guestProcesses: c.guestProcesses)
        let ram = TrapEmulGuestRAM(gfns: gfns)
        guestRAM = ram
        let states: [VCPUState]
        if gvaVariant != nil {
            // Guest RAM backed by the host mm, GPA faults through kvm_mips_map_page()
            // (seed 004 as written), flushes through KVM_REQ_TLB_FLUSH.
            let hostBase = 0x7F00_0000
            let pages = HostPages(capacity: 4 * gfns + 64)
            let mm = HostMM(engine: engine, pages: pages, base: hostBase, count: gfns)
            let k = KVM(engine: engine, rcu: rcu, hostMM: mm,
                        memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: gfns, userspaceAddr: hostBase)]))
            let gpa = MIPSMMU(kvm: k, variant: .patched, hostCPUs: c.cpus, tlbSize: c.tlbSize, tableBits: GVAFlushScenario.gpaTableBits, tableLevels: 3)
            gpaMMU = gpa
            kvm = k
            tlbs = gpa.tlbs
            states = (0..<c.vcpus).map { k.createVCPU(cpu: $0 % c.cpus) }
        } else {
            kvm = nil
            gpaMMU = nil
            tlbs = (0..<c.cpus).map { MIPSTLB(cpu: $0, size: c.tlbSize) }
            states = (0..<c.vcpus).map { VCPUState(id: $0, cpu: $0 % c.cpus) }
        }
        vcpus = states.map { VCPU(state: $0, executor: ex[c.cpus + $0.id]) }
        let (asids, tlbs, gpaMMU) = (asids, tlbs, gpaMMU)
        let runLocks = cpuLocks
        teVCPUs = states.map { s in
            let v = TrapEmulVCPU(id: s.id, variant: variant, asids: asids, tlbs: tlbs, engine: engine,
                                 state: s, guestRAM: ram, startASID: 1, pagesPerProcess: c.pages, guestTLBSize: Self.guestTLBSize,
                                 gva: gvaVariant.map { VCPUGVATables(vcpu: s.id, variant: $0, engine: engine, rcu: rcu) },
                                 gpaMMU: gpaMMU)
            v.runLocks = runLocks
            v.plant(plantedBug)
            return v
        }
        hostProcesses = (0..<2).map { HostProcess(id: $0, cpus: c.cpus) }
        oracle = StaleASIDOracle(engine: engine, memoryOracle: gpaMMU?.oracle)
        work = AtomicWords(count: 1)
        memory.endRecording()
    }

    /// Back to the state of a fresh build with `seed`: first each vcpu's state
    /// outside words (`TrapEmulVCPU.resetForReuse`: CPU, EntryHi,
    /// last_user_gasid, guest mode, guest TLB, and its memory caches emptied
    /// into their tables), then every word the build made (host ASID caches,
    /// the guest and host mms' contexts, the vcpus' ASID arrays, the host TLBs,
    /// run locks, guest RAM, GVA table entries and owners; gva-flush's host
    /// pages and PTEs, GPA table, notifier counters, MMU oracle and vcpu
    /// requests), then the allocators of the GVA tables and the GPA table, the
    /// host page free lists and the modelled RCU (gva-flush). False (build
    /// fresh) if the build was not recorded or gva-flush's RCU is not the
    /// modelled one.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded else { return false }
        var rcu: ModelledRCU?
        if let kvm {
            guard let r = kvm.rcu as? ModelledRCU else { return false }
            rcu = r
        }
        for te in teVCPUs { te.resetForReuse() }
        memory.restore()
        for te in teVCPUs {
            te.gva?.kernel.resetAllocator()
            te.gva?.user.resetAllocator()
        }
        gpaMMU?.table.resetAllocator()
        kvm?.hostMM.pages.resetFreeLists()
        rcu?.reset()
        self.seed = seed
        return true
    }

    deinit { work.free() }

    var completedWork: Int { Int(work.load(0)) }
    func finish() { kvm?.rcu.barrier() }

    func start(endless: Bool) {
        let c = config
        for (i, cpu) in hostCPUs.enumerated() where i < c.hostEventSources {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, _ in
                engine.point("host:schedule")
                defer { work.add(0, 1) }
                if i == 0, let kvm, rng.below(2) == 0 {
                    kvm.hostMM.randomEvent(&rng)                    // gva-flush: host mm events on cpu0
                    return
                }
                let p = hostProcesses[rng.below(hostProcesses.count)]
                cpuLocks[i].withLock {
                    p.run(cpu: i, asids: asids, tlb: tlbs[i], vpn: rng.below(c.pages), engine: engine)
                }
            }
        }
        let kernelSegments = [layout.userPages, layout.kseg0Pages, layout.kseg23Pages]
        let kernelAccesses = c.guestKernelAccesses != 0
        for (i, vcpu) in vcpus.enumerated() {
            let te = teVCPUs[i]
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU) { [self] rng, _ in
                let cpu = te.cpu
                cpuLocks[cpu].withLock {
                    te.kvmArchVCPULoad(cpu)                         // vcpu_load (sched in)
                    let op = rng.below(3)
                    if op == 0 {
                        te.kvmMipsEmulateCP0WriteEntryHi(1 + rng.below(c.guestProcesses))
                    } else if op == 1 || !kernelAccesses {
                        te.guestUserAccess(vpn: layout.userPages[rng.below(layout.userPages.count)]) { oracle.access($0, $1) }
                    } else {
                        // Guest kernel mode: user memory, kseg0 or kseg2/3, one segment in three each.
                        let pages = kernelSegments[rng.below(kernelSegments.count)]
                        te.guestKernelAccess(vpn: pages[rng.below(pages.count)]) { oracle.access($0, $1) }
                    }
                    te.kvmArchVCPUPut()                             // vcpu_put (sched out)
                }
                if c.cpus > 1 && rng.below(3) == 0 {
                    te.migrate(to: (cpu + 1 + rng.below(c.cpus - 1)) % c.cpus)
                }
                work.add(0, 1)
            }
        }
    }
}
