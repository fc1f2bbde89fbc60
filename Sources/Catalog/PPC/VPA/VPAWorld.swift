// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import PPC
import Harness

/// The world of the seed-003 scenarios: vcpus register and deregister each
/// other's VPA, DTL and SLB shadow (H_REGISTER_VPA) while each vcpu runs the
/// guest, writing its DTL entries and VPA yield count; the host pages guest
/// memory out, so a page nobody pins any more can be freed and reused.
///
/// Actors: `host0...` (zap, swap out/in of guest pages), `vcpu0...` (each: the
/// owner's update of its areas, a DTL entry, guest entry and exit; and hcalls).
/// In vpa-cross-register only vcpu0 makes hcalls, all on vcpu1's DTL.
///
/// Resets in place between deterministic schedules (`ResettableWorld`): every
/// object the build makes that owns words is kept as long as the world (the
/// host mm with its pages; the registration with its vcpus, their locks and
/// guest logs, and its oracle; the vcpus' generic state), so the words
/// `memory` recorded stay allocated. The boot registrations depend on the
/// seed: `memory` is snapshotted before them and `reset` makes them again.
final class VPAWorld: ResettableWorld, @unchecked Sendable {
    /// A planted bug, for the tests of the oracles (issue 20): the pinning
    /// translates gfns through other memslots than the VM's (a pin of the wrong
    /// gpa), or each vcpu's guest pass is a test's own (e.g. a
    /// kvmppc_update_vpa() that clears `update_pending` early). The scenarios
    /// never plant one.
    struct Planted: Sendable {
        var pinningMemslots: (@Sendable (Memslots) -> Memslots)? = nil
        var guestPass: (@Sendable (VPARegistration, VPAVCPU) -> Void)? = nil
    }


    /// `host0...`, then `vcpu0...`; in the `pso` memory model then each vcpu's
    /// two store-buffer drainers (`vcpuN.sb`: the oldest pending store;
    /// `vcpuN.sb-overtake`: a later store overtaking it).
    static func actorNames(_ c: ScenarioConfig<VPAOptions>) -> [String] {
        (0..<c.hostEventSources).map { "host\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
            + (c.memoryModel == .pso ? (0..<c.vcpus).flatMap { ["vcpu\($0).sb", "vcpu\($0).sb-overtake"] } : [])
    }

    let engine: SimEngine
    let config: ScenarioConfig<VPAOptions>
    private(set) var seed: UInt64
    let crossOnly: Bool
    let hostMM: HostMM
    let reg: VPARegistration
    let hostSources: [HostCPU]
    let vcpuActors: [VCPU]
    private let done: AtomicWords
    let hostBase = 0x7D00_0000
    /// Every word the build made, as it was before the boot registrations, for `reset`.
    private let memory: WorldMemory

    let guestPass: @Sendable (VPARegistration, VPAVCPU) -> Void

    init(engine: SimEngine, variant: VPAVariant, config c: ScenarioConfig<VPAOptions>, seed: UInt64, crossOnly: Bool,
         planted: Planted = Planted()) {
        let memory = WorldMemory.beginRecording()
        self.memory = memory
        self.engine = engine
        self.config = c
        self.seed = seed
        self.crossOnly = crossOnly
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 4 * c.pages + 64), base: hostBase, count: c.pages)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        reg = VPARegistration(engine: engine, variant: variant, vcpus: c.vcpus, hostMM: hostMM, memslots: slots,
                              pinningMemslots: planted.pinningMemslots.map { $0(slots) }, guestLogs: c.dtlReader != 0)
        guestPass = planted.guestPass ?? { reg, t in reg.runGuest(t) }
        let ex = engine.executors
        hostSources = (0..<c.hostEventSources).map { HostCPU(index: $0, executor: ex[$0]) }
        vcpuActors = (0..<c.vcpus).map { VCPU(state: VCPUState(id: $0, cpu: 0), executor: ex[c.hostEventSources + $0]) }
        done = AtomicWords(count: c.hostEventSources + c.vcpus)
        if c.memoryModel == .pso {
            let drainers = c.hostEventSources + c.vcpus
            for v in 0..<c.vcpus {
                engine.enableStoreBuffer(owner: c.hostEventSources + v, drainers: (drainers + 2 * v, drainers + 2 * v + 1))
            }
        }
        memory.endRecording()
        boot()
    }

    /// Boot: every vcpu registers its own VPA, DTL and SLB shadow (buffers
    /// drawn from the seed).
    private func boot() {
        var rng = SplitMix64(seed: SplitMix64.derive(seed, 77))
        for v in 0..<config.vcpus {
            for sub in [VPASubfunc.regVPA, .regDTL, .regSLB] { _ = register(caller: v, sub, target: v, &rng, valid: true) }
        }
    }

    /// Back to the state of a fresh build with `seed`: every word the build
    /// made, as it was before boot (host pages and PTEs, the vcpus'
    /// `kvmppc_vpa` words, DTL pointers, guest logs and locks, the oracle's
    /// per-vcpu words), then what is not in words: the host page free lists,
    /// the guest's length words, the vcpus' ghost log generations and the
    /// oracle's records (`VPARegistration.resetForReuse`); then the boot
    /// registrations of `seed`. The store buffers (`--memory-model pso`) are
    /// the engine's: `beginSchedule` empties them, and the drainers the build
    /// enabled stay. False (build fresh) if the build was not recorded.
    func reset(seed: UInt64) -> Bool {
        guard memory.isRecorded else { return false }
        memory.restore()
        hostMM.pages.resetFreeLists()
        reg.resetForReuse()
        self.seed = seed
        boot()
        return true
    }

    deinit { done.free() }

    var completedWork: Int { (0..<done.count).reduce(0) { $0 + Int(done.load($1)) } }

    /// The guest prepares a buffer (its length word) and calls H_REGISTER_VPA.
    @discardableResult
    func register(caller: Int, _ sub: VPASubfunc, target: Int, _ rng: inout SplitMix64, valid: Bool) -> HCallStatus {
        var gpa = 0
        if sub.isRegister {
            let len: Int
            switch sub.kind {
            case .vpa: len = rng.below(2) == 0 ? PAPR.lppacaSize : 1024
            case .dtl: len = PAPR.dtlEntrySize * (1 + rng.below(4)) + (rng.below(2) == 0 ? 0 : 16)
            case .slbShadow: len = 64
            }
            // Each vcpu prepares its buffers in its own cache lines (slot % vcpus ==
            // caller), so no two vcpus write one length word at once.
            let slots = (PAPR.pageSize - len) / PAPR.cacheLine + 1
            let mine = stride(from: caller % config.vcpus, to: slots, by: config.vcpus).map { $0 }
            let slot = mine.isEmpty ? rng.below(slots) : mine[rng.below(mine.count)]
            gpa = rng.below(config.pages) * PAPR.pageSize + slot * PAPR.cacheLine
            var written = len
            if !valid {
                switch rng.below(3) {
                case 0: gpa += 8                                     // not cache-line aligned
                case 1: written = PAPR.pageSize                      // longer than the rest of the page
                default: written = 4                                 // shorter than struct reg_vpa
                }
            }
            reg.guestSetLength(gpa: gpa, written)
            let rc = reg.hRegisterVPA(caller: caller, subfunc: sub.rawValue, target: target, gpa: gpa)
            reg.oracle.registrationReturned(sub, gpa: gpa, len: written, rc)
            return rc
        }
        return reg.hRegisterVPA(caller: caller, subfunc: sub.rawValue, target: target, gpa: gpa)
    }

    func start(endless: Bool) {
        let c = config
        let events: [HostEvent] = [.zap, .swapOut, .swapIn]
        for (i, cpu) in hostSources.enumerated() {
            engine.spawnLoop(on: cpu, seed: seed, salt: UInt64(i), endless: endless, quota: c.hostEventsPerSource) { [self] rng, n in
                hostMM.randomEvent(&rng, from: events)
                done.store(i, UInt64(n + 1))
            }
        }
        for (i, actor) in vcpuActors.enumerated() {
            let me = reg.vcpus[i]
            engine.spawnLoop(on: actor, seed: seed, salt: UInt64(1000 + i), endless: endless, quota: c.opsPerVCPU) { [self] rng, n in
                guestPass(reg, me)
                if c.dtlReader != 0 { reg.guestReadDTL(reader: i, of: reg.vcpus[(i + 1) % c.vcpus]) }
                hcall(from: i, &rng)
                done.store(c.hostEventSources + i, UInt64(n + 1))
            }
        }
    }

    /// vpa-cross-register: vcpu0 re-registers or deregisters vcpu1's DTL.
    /// vpa-stress: any vcpu, any subfunction, any target, now and then bad input.
    func hcall(from caller: Int, _ rng: inout SplitMix64) {
        if crossOnly {
            guard caller == 0 else { return }
            register(caller: 0, rng.below(3) == 0 ? .deregDTL : .regDTL, target: 1, &rng, valid: true)
            return
        }
        guard rng.below(2) == 0 else { return }
        let sub = VPASubfunc.allCases[rng.below(VPASubfunc.allCases.count)]
        let target = rng.below(config.vcpus)
        if rng.below(16) == 0 {
            // Bad input: an unknown subfunction or vcpu.
            _ = reg.hRegisterVPA(caller: caller, subfunc: rng.below(2) == 0 ? 0 : 4, target: target, gpa: 0)
            _ = reg.hRegisterVPA(caller: caller, subfunc: sub.rawValue, target: config.vcpus + 1, gpa: 0)
            return
        }
        register(caller: caller, sub, target: target, &rng, valid: rng.below(8) != 0)
    }

    func finish() {
        // Every vcpu updates its areas once more so pending updates land
        // (patched), then the pins must match the installed areas. Only when every
        // actor finished cleanly (a stopped schedule may hold locks).
        guard engine.violations.isEmpty && !engine.hung else { return }
        for v in reg.vcpus { reg.kvmppcUpdateVPAs(v) }
        reg.oracle.checkBalance()
    }
}
