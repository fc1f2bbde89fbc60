// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import RCU

/// Seed 000 scenario: lazy guest-user ASID regeneration on an SMP host.
///
/// Actors: `cpu0...` run host processes (each switch_mm() may take a new ASID
/// and so start new ASID cycles; the ASID width is tiny), `vcpu0...` run a guest
/// that reads user pages of its current process, switches process (a guest
/// kernel EntryHi write) and migrates between host CPUs.
///
/// Oracle `stale-asid`: a guest user access translates only through a host TLB
/// entry filled for this vcpu, the running guest process and the page it maps.
public struct ASIDScenario: Scenario {
    public let name: String
    public let summary: String
    /// Seed 001's scenario: the same world on the v4.11 ASID code, with GVA page
    /// tables filled on guest TLB misses and walked by the host TLB refill handler.
    let gvaPageTables: Bool

    public static let lazyRegen = ASIDScenario(
        name: "asid-lazy-regen",
        summary: "MIPS trap-and-emulate guest user ASIDs on an SMP host: process switches, vcpu migration, host ASID cycles (seed 000)",
        gvaPageTables: false)
    public static let gvaFlush = ASIDScenario(
        name: "gva-flush",
        summary: "MIPS trap-and-emulate GVA page tables across guest ASID changes (seed 001, on the v4.11 ASID code)",
        gvaPageTables: true)

    public var variants: [String] {
        gvaPageTables ? GVAFlushVariant.allCases.map(\.rawValue) : ASIDVariant.allCases.map(\.rawValue)
    }
    public var oracles: [String] { ["stale-asid", "rcu-use-after-free", "deadlock", "livelock"] }
    public var docs: String { gvaPageTables ? "docs/mechanisms/gva-page-tables.md" : "docs/mechanisms/asid.md" }
    /// The v4.11 code (upstream-4.11, and gva-flush) regenerates in
    /// kvm_trap_emul_vcpu_reenter(), not lazily in kvm_mips_check_asids().
    public func coverageMarks(variant: String) -> [CoverageMark] {
        if gvaPageTables { return [TrapEmulVCPU.markNewCycle, TrapEmulVCPU.markTLBFlushRequest] }
        return variant == ASIDVariant.upstream411.rawValue ? [TrapEmulVCPU.markNewCycle]
                                                          : [TrapEmulVCPU.markNewCycle, TrapEmulVCPU.markLazyRegen]
    }

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig {
        mode == .deterministic
            ? ScenarioConfig(cpus: 2, vcpus: 1, pages: 2, opsPerVCPU: 10, hostEventsPerSource: 3, hostEventSources: 2,
                             tableBits: 1, tlbSize: 8, asidBits: 2, guestProcesses: 2)
            : ScenarioConfig(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 10, hostEventsPerSource: 3, hostEventSources: 2,
                             tableBits: 1, tlbSize: 16, asidBits: 3, guestProcesses: 3)
    }

    /// gva-flush maps guest frames through a GPA table of 3 levels of 3 bits.
    public func validate(_ c: ScenarioConfig) throws(InputError) {
        if gvaPageTables { try c.checkPagesFit(tableBits: 3, scenario: name) }
    }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        gvaPageTables
            ? ASIDWorld(engine: engine, variant: .upstream411, gvaVariant: GVAFlushVariant(rawValue: variant)!, config: config, seed: seed)
            : ASIDWorld(engine: engine, variant: ASIDVariant(rawValue: variant)!, gvaVariant: nil, config: config, seed: seed)
    }
}

final class ASIDWorld: ScenarioWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig
    let seed: UInt64
    let asids: ASIDAllocator
    let tlbs: [HostTLB]
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
    private let work: AtomicWords

    init(engine: SimEngine, variant: ASIDVariant, gvaVariant: GVAFlushVariant?, config c: ScenarioConfig, seed: UInt64) {
        self.engine = engine
        self.config = c
        self.seed = seed
        asids = ASIDAllocator(bits: c.asidBits, cpus: c.cpus)
        cpuLocks = (0..<c.cpus).map { _ in SpinLock("run_on_cpu", engine: engine) }
        let ex = engine.executors
        hostCPUs = (0..<c.cpus).map { HostCPU(index: $0, executor: ex[$0]) }
        let rcu = makeRCU(for: engine)
        let gfns = (c.guestProcesses + 1) * c.pages
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
                        memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: gfns, userspaceAddr: hostBase)]),
                        hostCPUs: c.cpus, tlbSize: c.tlbSize, tableBits: 3, tableLevels: 3)
            gpaMMU = MIPSMMU(kvm: k, variant: .patched)
            kvm = k
            tlbs = k.tlbs
            states = (0..<c.vcpus).map { k.createVCPU(cpu: $0 % c.cpus) }
        } else {
            kvm = nil
            gpaMMU = nil
            tlbs = (0..<c.cpus).map { HostTLB(cpu: $0, size: c.tlbSize) }
            states = (0..<c.vcpus).map { VCPUState(id: $0, cpu: $0 % c.cpus) }
        }
        vcpus = states.map { VCPU(state: $0, executor: ex[c.cpus + $0.id]) }
        let (asids, tlbs, gpaMMU) = (asids, tlbs, gpaMMU)
        teVCPUs = states.map { s in
            TrapEmulVCPU(id: s.id, variant: variant, asids: asids, tlbs: tlbs, engine: engine,
                         state: s, guestRAM: ram, startASID: 1, pagesPerProcess: c.pages,
                         gva: gvaVariant.map { VCPUGVATables(vcpu: s.id, variant: $0, engine: engine, rcu: rcu) },
                         gpaMMU: gpaMMU)
        }
        hostProcesses = (0..<2).map { HostProcess(id: $0, cpus: c.cpus) }
        work = AtomicWords(count: 1)
    }

    deinit { work.free() }

    var completedWork: Int { Int(work.load(0)) }
    func finish() { kvm?.rcu.barrier() }

    /// The oracle: the entry must belong to this vcpu, its running guest process,
    /// and the page that process maps.
    func checkUserAccess(_ v: TrapEmulVCPU, _ e: HostTLB.Entry) {
        let g = v.entryHiASID
        let want = TLBOwner.guestUser(vcpu: v.id, guestASID: g, gfn: v.guestMapping(asid: g, vpn: e.vpn))
        let got = TLBOwner(raw: e.owner)
        if got != want {
            engine.report(oracle: "stale-asid",
                          "vcpu\(v.id) guest process ASID \(g) read user page \(e.vpn) on cpu\(v.cpu) through host ASID \(e.tag), an entry filled for \(got)")
        } else if case let .guestUser(_, _, gfn) = got, let kvm {
            kvm.oracle.guestAccess(vcpu: v.id, gfn: gfn, pfn: e.pfn, write: nil, via: "TLB")
        }
    }

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
        for (i, vcpu) in vcpus.enumerated() {
            let te = teVCPUs[i]
            engine.spawnLoop(on: vcpu, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU) { [self] rng, _ in
                let cpu = te.cpu
                cpuLocks[cpu].withLock {
                    te.kvmArchVCPULoad(cpu)                         // vcpu_load (sched in)
                    switch rng.below(3) {
                    case 0:
                        te.guestContextSwitch(to: 1 + rng.below(c.guestProcesses))
                    default:
                        te.guestUserAccess(vpn: rng.below(c.pages)) { checkUserAccess($0, $1) }
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
