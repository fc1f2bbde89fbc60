// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import PPC

/// Seed 003 scenarios: vcpus register and deregister each other's VPA, DTL and
/// SLB shadow (H_REGISTER_VPA) while each vcpu runs the guest, writing its DTL
/// entries and VPA yield count; the host pages guest memory out, so a page
/// nobody pins any more can be freed and reused.
///
/// Actors: `host0...` (zap, swap out/in of guest pages), `vcpu0...` (each: the
/// owner's update of its areas, a DTL entry, guest entry and exit; and hcalls).
/// In vpa-cross-register only vcpu0 makes hcalls, all on vcpu1's DTL.
public struct VPAScenario: Scenario {
    public let name: String
    public let summary: String
    let small: Bool

    public static let crossRegister = VPAScenario(
        name: "vpa-cross-register",
        summary: "2 vcpus: vcpu0 registers and deregisters vcpu1's DTL while vcpu1 writes DTL entries (seed 003)",
        small: true)
    public static let stress = VPAScenario(
        name: "vpa-stress",
        summary: "every vcpu registers and deregisters random VPA/DTL/SLB-shadow areas of random vcpus while all run (seed 003)",
        small: false)

    public var variants: [String] { VPAVariant.allCases.map(\.rawValue) }
    public var oracles: [String] { ["vpa-unpinned-write", "vpa-pointer-change", "dtl-publish-order", "vpa-pin-balance", "hcall-rc", "deadlock", "livelock"] }
    public var docs: String { "docs/mechanisms/vpa.md" }
    public func coverageMarks(variant: String) -> [CoverageMark] {
        small ? [VPARegistration.markUpdatePending, VPARegistration.markDTLWrap]
              : [VPARegistration.markUpdatePending, VPARegistration.markUpdateRetry, VPARegistration.markDTLWrap, VPARegistration.markResource]
    }

    public func defaultConfig(mode: ExecutionMode) -> ScenarioConfig {
        small
            ? ScenarioConfig(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 4, hostEventsPerSource: 2, hostEventSources: 1, tableBits: 1, tlbSize: 1)
            : ScenarioConfig(cpus: 4, vcpus: 4, pages: 8, opsPerVCPU: 8, hostEventsPerSource: 4, hostEventSources: 1, tableBits: 1, tlbSize: 1)
    }

    public func actorNames(_ c: ScenarioConfig) -> [String] {
        (0..<c.hostEventSources).map { "host\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
    }

    public func validate(_ c: ScenarioConfig) throws(InputError) {
        if small && c.vcpus < 2 { throw InputError("\(name) needs at least 2 vcpus (got \(c.vcpus))") }
    }

    public func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld {
        VPAWorld(engine: engine, variant: VPAVariant(rawValue: variant)!, config: config, seed: seed, crossOnly: small)
    }
}

final class VPAWorld: ScenarioWorld, @unchecked Sendable {
    let engine: SimEngine
    let config: ScenarioConfig
    let seed: UInt64
    let crossOnly: Bool
    let hostMM: HostMM
    let reg: VPARegistration
    let hostSources: [HostCPU]
    let vcpuActors: [VCPU]
    private let done: AtomicWords
    let hostBase = 0x7D00_0000

    init(engine: SimEngine, variant: VPAVariant, config c: ScenarioConfig, seed: UInt64, crossOnly: Bool) {
        self.engine = engine
        self.config = c
        self.seed = seed
        self.crossOnly = crossOnly
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 4 * c.pages + 64), base: hostBase, count: c.pages)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: c.pages, userspaceAddr: hostBase)])
        reg = VPARegistration(engine: engine, variant: variant, vcpus: c.vcpus, hostMM: hostMM, memslots: slots)
        let ex = engine.executors
        hostSources = (0..<c.hostEventSources).map { HostCPU(index: $0, executor: ex[$0]) }
        vcpuActors = (0..<c.vcpus).map { VCPU(state: VCPUState(id: $0, cpu: 0), executor: ex[c.hostEventSources + $0]) }
        done = AtomicWords(count: c.hostEventSources + c.vcpus)
        // Boot: every vcpu registers its own VPA, DTL and SLB shadow.
        var rng = SplitMix64(seed: SplitMix64.derive(seed, 77))
        for v in 0..<c.vcpus {
            for sub in [VPASubfunc.regVPA, .regDTL, .regSLB] { _ = register(caller: v, sub, target: v, &rng, valid: true) }
        }
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
            checkParameterRules(sub, gpa: gpa, len: written, rc)
            return rc
        }
        return reg.hRegisterVPA(caller: caller, subfunc: sub.rawValue, target: target, gpa: gpa)
    }

    /// Oracle `hcall-rc`: the H_PARAMETER rules every version of
    /// do_h_register_vpa() shares: a registration succeeds only for a
    /// cache-line-aligned area that fits in its page and is at least as long as
    /// its kind requires. (The H_RESOURCE rules depend on registration state and
    /// on the variant's notion of it: Tests/PPCTests/VPATests.swift checks them.)
    func checkParameterRules(_ sub: VPASubfunc, gpa: Int, len: Int, _ rc: HCallStatus) {
        guard rc == .success else { return }
        let minimum = [PAPR.lppacaSize, PAPR.dtlEntrySize, PAPR.regVPASize][sub.kind.rawValue]
        if gpa % PAPR.cacheLine != 0 || len > PAPR.pageSize - gpa % PAPR.pageSize || len < minimum {
            engine.report(oracle: "hcall-rc", "H_REGISTER_VPA \(sub) at \(hex(gpa)) with length \(len) succeeded; PAPR wants H_PARAMETER")
        }
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
                reg.runGuest(me)
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
        for v in reg.vcpus { reg.updateVPAs(v) }
        reg.oracle.checkBalance()
    }
}
