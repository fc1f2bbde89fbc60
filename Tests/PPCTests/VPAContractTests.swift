// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import PPC
@testable import Catalog
import Harness
import TestSupport

// Issue 20, classes 4 and 5 for seed 003: each oracle sees the bug of its class
// planted (in a copy of the kernel function here, or in the world's
// configuration; the model's own code stays as it is), and the fixed variants
// stay clean.

/// Planted bugs: copies of the model's kvmppc_update_vpa() / kvmppc_update_vpas()
/// (`pins-snapshot` form, with the oracle calls the model makes) with one line
/// moved.
extension VPARegistration {
    /// kvmppc_update_vpa() with `vpap->update_pending = 0;` moved above the loop:
    /// cleared before the pointer it guards is switched, while the lock is
    /// dropped to pin. `whileUnlocked` runs in that window (another vcpu's
    /// hcall, as the scheduler could place it).
    func plantedUpdateVPAClearingTheFlagEarly(_ t: VPAVCPU, _ k: VPAKind, whileUnlocked: () -> Void = {}) {
        let a = t.area(k)
        var va: KernelVA? = nil
        var nb = 0
        var gpa = 0
        t.words.store(a.updatePending, 0)                         // PLANTED: cleared early
        while true {
            gpa = t.load(a.nextGPA)
            oracle.registrationPublished(t)
            t.vpaUpdateLock.unlock()
            va = nil; nb = 0
            if gpa != 0, let p = pinning.pin(gpa) { (va, nb) = (p.va, p.nb) }
            whileUnlocked()
            t.vpaUpdateLock.lock()
            if gpa == t.load(a.nextGPA) { break }
            if let v = va { pinning.unpin(v) }
        }
        if let v = va, nb < t.load(a.len) { pinning.unpin(v); va = nil }
        if let v = va { oracle.installing(t, k, va: v) }
        let old = t.load(a.pinnedAddr)
        if old != 0 { unpinInstalled(t, k, old) }
        setPointer(t, a.pinnedAddr, va ?? 0, by: t.id)
        if let v = va {
            setPointer(t, a.pinnedEnd, v + t.load(a.len), by: t.id)
            let area = v..<(v + t.load(a.len))
            withoutAccessPoints { oracle.installed(owner: t.id, k, area, registeredGPA: t.load(a.nextGPA), len: area.count) }
        }
    }

    /// kvmppc_update_vpas() calling the planted kvmppc_update_vpa().
    func plantedUpdateVPAs(_ t: VPAVCPU, whileUnlocked: () -> Void = {}) {
        guard VPAKind.allCases.contains(where: { t.load(t.area($0).updatePending) != 0 }) else { return }
        t.vpaUpdateLock.lock()
        if t.load(t.area(.vpa).updatePending) != 0 {
            plantedUpdateVPAClearingTheFlagEarly(t, .vpa, whileUnlocked: whileUnlocked)
            let p = t.load(t.area(.vpa).pinnedAddr)
            if p != 0 { initVPA(t, p, by: t.id) }
        }
        if t.load(t.area(.dtl).updatePending) != 0 {
            plantedUpdateVPAClearingTheFlagEarly(t, .dtl, whileUnlocked: whileUnlocked)
            setPointer(t, VPAVCPU.dtlPtr, t.load(t.area(.dtl).pinnedAddr), by: t.id)
            t.words.store(VPAVCPU.dtlIndex, 0)
            oracle.dtlReset(owner: t.id)
        }
        if t.load(t.area(.slbShadow).updatePending) != 0 { plantedUpdateVPAClearingTheFlagEarly(t, .slbShadow, whileUnlocked: whileUnlocked) }
        oracle.registrationPublished(t)
        t.vpaUpdateLock.unlock()
    }

    /// runGuest() with the planted update.
    func plantedRunGuest(_ t: VPAVCPU) {
        plantedUpdateVPAs(t)
        oracle.owner(t.id, inUse: true)
        kvmppcCreateDTLEntry(t)
        bumpYieldCount(t)
        engine.point("guest:run")
        bumpYieldCount(t)
        oracle.owner(t.id, inUse: false)
    }

    /// Writes `t`'s `struct kvmppc_vpa` words for area `k` (a state a buggy
    /// hcall could leave).
    func plantState(_ t: VPAVCPU, _ k: VPAKind, nextGPA: Int, len: Int, pending: Bool) {
        let a = t.area(k)
        t.words.store(a.nextGPA, UInt64(nextGPA))
        t.words.store(a.len, UInt64(len))
        t.words.store(a.updatePending, pending ? 1 : 0)
    }
}

/// Memslots that translate gfn g to the host page of gfn g + 1 (the last gfn
/// to the first page): kvmppc_pin_guest_page() pinning the next page.
func nextPageSlots(_ slots: Memslots) -> Memslots {
    let s = slots.slots[0]
    return Memslots([Memslot(id: 0, baseGfn: s.baseGfn, npages: s.npages - 1, userspaceAddr: s.userspaceAddr + 1),
                     Memslot(id: 1, baseGfn: s.baseGfn + s.npages - 1, npages: 1, userspaceAddr: s.userspaceAddr)])
}

/// A seed-003 scenario whose world carries a planted bug.
struct PlantedVPAScenario: Scenario {
    typealias Variant = VPAVariant
    typealias Options = VPAOptions
    let stress: Bool
    let planted: VPAWorld.Planted
    var name: String { stress ? "vpa-stress" : "vpa-cross-register" }
    let summary = "seed 003 with a planted bug (tests)"
    let docs = "docs/mechanisms/vpa.md"
    var oracles: [Oracle] { VPAOracle.oracles }
    func defaultConfig(mode: ExecutionMode) -> Config {
        stress ? VPAStressScenario().defaultConfig(mode: mode) : VPACrossRegisterScenario().defaultConfig(mode: mode)
    }
    func actorNames(_ c: Config) -> [String] { VPAWorld.actorNames(c) }
    func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        VPAWorld(engine: engine, variant: variant, config: config, seed: seed, crossOnly: !stress, planted: planted)
    }
    var cases: [Case] { [] }
}

/// vpa-registration-contract (class 4).
@Suite struct VPARegistrationContractTests {
    let page = PAPR.pageSize

    @Test func theFixedHcallsAndUpdatesKeepTheContract() {
        for variant in [VPAVariant.patched, .pinsSnapshot] {
            let (e, r) = makeVPA(variant); defer { e.shutdown() }
            let t = r.vcpus[1]
            #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .resource)
            #expect(r.call(.regVPA, gpa: page, len: 640) == .success)            // pending: registered
            #expect(r.call(.regDTL, gpa: 2 * page, len: 100) == .success)
            #expect(r.call(.regSLB, gpa: 3 * page, len: 64) == .success)
            #expect(r.call(.deregVPA) == .resource)
            r.runGuest(t)
            #expect(r.call(.deregDTL) == .success)                              // pending deregistration
            #expect(r.call(.deregVPA) == .resource)                             // the SLB shadow still is
            #expect(r.call(.deregSLB) == .success)
            #expect(r.call(.deregVPA) == .success)                              // none registered now
            #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .resource)       // the VPA's deregistration is pending
            r.runGuest(t)
            r.oracle.checkBalance()
            #expect(e.violations.isEmpty, "\(variant): \(e.violations)")
        }
    }

    /// The issue's example: an update flag cleared early. vcpu1's VPA is
    /// installed; vcpu0 asks to deregister it; vcpu1's update clears
    /// `update_pending` before it switches `pinned_addr`, so while it has
    /// dropped the lock to pin, vpa_is_registered() answers from the old
    /// area: vcpu0 registers a DTL for vcpu1, which the update then leaves
    /// without a VPA. The hcall's return code looks right throughout.
    @Test func anUpdateFlagClearedEarlyIsCaught() {
        let (e, r) = makeVPA(.pinsSnapshot); defer { e.shutdown() }
        let t = r.vcpus[1]
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        r.runGuest(t)
        #expect(e.violations.isEmpty, "\(e.violations)")
        #expect(r.call(.deregVPA) == .success)
        var dtlRC: HCallStatus? = nil
        r.plantedUpdateVPAs(t) { dtlRC = dtlRC ?? r.call(.regDTL, gpa: 2 * page, len: 96) }
        #expect(dtlRC == .success)                                             // the stale answer
        let contract = e.violations.filter { $0.oracle == "vpa-registration-contract" }
        #expect(e.violations.first?.oracle == "vpa-registration-contract", "\(e.violations)")
        // At the lock drop: the flag is clear while the old area is still installed.
        #expect(contract.first?.message.contains("update_pending is clear and next_gpa 0, but an area is still installed") == true,
                "\(contract)")
        // After the update: a DTL registered, the VPA not.
        #expect(contract.contains { $0.message.contains("DTL is registered") && $0.message.contains("while its VPA is not") },
                "\(contract)")
    }

    /// The same bug planted in every vcpu's guest pass of the scenarios' worlds:
    /// the scheduler finds it.
    @Test func anUpdateFlagClearedEarlyIsFoundByTheScheduler() throws {
        for stress in [false, true] {
            let s = PlantedVPAScenario(stress: stress, planted: .init(guestPass: { reg, t in reg.plantedRunGuest(t) }))
            let (r, _) = try run(s, .pinsSnapshot, schedules: 2000)
            #expect(r.firstViolation?.oracle == "vpa-registration-contract",
                    "stress \(stress): \(r.firstViolation?.description ?? "no violation")")
        }
    }

    /// The rules, each on a state a buggy hcall or update could leave (the
    /// kernel's checks cannot produce any of them).
    @Test func eachRuleIsCheckedOnTheState() {
        func check(_ plant: (VPARegistration, VPAVCPU) -> Void, _ expected: String) {
            let (e, r) = makeVPA(.patched); defer { e.shutdown() }
            let t = r.vcpus[1]
            plant(r, t)
            t.vpaUpdateLock.lock()
            r.oracle.registrationPublished(t)
            t.vpaUpdateLock.unlock()
            #expect(e.violations.first?.oracle == "vpa-registration-contract", "\(expected): \(e.violations)")
            #expect(e.violations.first?.message.contains(expected) == true, "\(e.violations)")
        }
        // "The DTL needs a VPA" dropped: a DTL recorded for a vcpu without one.
        check({ r, t in r.plantState(t, .dtl, nextGPA: 2 * page, len: 96, pending: true) }, "DTL is registered")
        // Deregistration without the SLB-shadow check.
        check({ r, t in
            r.plantState(t, .slbShadow, nextGPA: 3 * page, len: 64, pending: true)
            r.plantState(t, .vpa, nextGPA: 0, len: 0, pending: true)
        }, "SLB shadow is registered")
        // A DTL length not rounded down to whole entries.
        check({ r, t in
            r.plantState(t, .vpa, nextGPA: page, len: 640, pending: true)
            r.plantState(t, .dtl, nextGPA: 2 * page, len: 100, pending: true)
        }, "malformed")
        // A deregistration that clears next_gpa but not len.
        check({ r, t in r.plantState(t, .vpa, nextGPA: 0, len: 640, pending: true) }, "set and cleared together")
        // update_pending cleared with nothing installed.
        check({ r, t in r.plantState(t, .vpa, nextGPA: page, len: 640, pending: false) }, "nothing is installed")
    }

    /// Rule 4: the return code is the one the state gives, and a success
    /// records exactly the request.
    @Test func eachHcallIsCheckedAgainstTheState() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        let t = r.vcpus[1]
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        // A REG_SLB refused although the VPA is registered (the check read the
        // wrong area): the state is fine, only the answer is wrong.
        t.vpaUpdateLock.lock()
        r.oracle.hcallRecorded(.regSLB, t, gpa: 3 * page, .resource)
        t.vpaUpdateLock.unlock()
        #expect(e.violations.first?.message.contains("returns resource, but the state gives success") == true, "\(e.violations)")
        // A DTL registration that records the wrong address.
        let (e2, r2) = makeVPA(.patched); defer { e2.shutdown() }
        let t2 = r2.vcpus[1]
        #expect(r2.call(.regVPA, gpa: page, len: 640) == .success)
        r2.guestSetLength(gpa: 2 * page, 96)
        t2.vpaUpdateLock.lock()
        r2.plantState(t2, .dtl, nextGPA: 3 * page, len: 96, pending: true)
        r2.oracle.hcallRecorded(.regDTL, t2, gpa: 2 * page, .success)
        t2.vpaUpdateLock.unlock()
        #expect(e2.violations.first?.message.contains("succeeds, but its DTL records") == true, "\(e2.violations)")
    }

    /// v3.4 tests the VPA before kvmppc_pin_guest_page() (which sleeps) and sets
    /// the DTL pointer after it, with no lock: a deregistration of the VPA in
    /// between leaves a DTL registered without a VPA (a finding, not one of the
    /// seed's: v3.4 writes no DTL entry, so nothing uses it).
    @Test func preFixCanRegisterADTLWithoutAVPA() throws {
        let (r, _) = try run("vpa-stress", "pre-fix", schedules: 3000, keepGoing: true)
        #expect((r.violationsByOracle["vpa-registration-contract"] ?? 0) > 0, "\(r.violationsByOracle)")
    }
}

/// vpa-pinned-registered (class 5): the area the host writes is the one the
/// guest registered.
@Suite struct VPAWriteRegisteredTests {
    let page = PAPR.pageSize

    func makePlanted(_ variant: VPAVariant) -> (SimEngine, VPARegistration) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let mm = HostMM(engine: engine, pages: HostPages(capacity: 32), base: 2000, count: 4)
        let slots = Memslots([Memslot(id: 0, baseGfn: 0, npages: 4, userspaceAddr: 2000)])
        let reg = VPARegistration(engine: engine, variant: variant, vcpus: 2, hostMM: mm, memslots: slots,
                                  pinningMemslots: nextPageSlots(slots))
        return (engine, reg)
    }

    /// kvmppc_update_vpa() installs the page of gfn + 1: pinned, not free, and
    /// every write stays inside the area installed, so vpa-unpinned-write is
    /// content; the install is caught.
    @Test func aPinOfTheNextGfnIsCaughtWhenInstalled() {
        for variant in [VPAVariant.patched, .pinsSnapshot] {
            let (e, r) = makePlanted(variant); defer { e.shutdown() }
            #expect(r.call(.regVPA, gpa: page + 0x80, len: 640) == .success)
            r.runGuest(r.vcpus[1])
            #expect(e.violations.first?.oracle == "vpa-pinned-registered", "\(variant): \(e.violations)")
            #expect(!e.violations.contains { $0.oracle == "vpa-unpinned-write" }, "\(e.violations)")
        }
    }

    /// v3.4 installs without kvmppc_update_vpa(): the host's own writes
    /// (init_vpa(), the yield count) are the witness.
    @Test func aWriteIntoTheNextGfnIsCaught() {
        let (e, r) = makePlanted(.preFix); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page + 0x80, len: 640) == .success)
        let first = e.violations.first
        #expect(first?.oracle == "vpa-pinned-registered", "\(e.violations)")
        #expect(first?.message.hasPrefix("init_vpa of vcpu1") == true, "\(e.violations)")
        #expect(first?.message.contains("pinned for gfn 2") == true, "\(e.violations)")
    }

    /// A write outside the registered part of the right page (a DTL entry past
    /// the registered length, inside an area installed too long).
    @Test func aWritePastTheRegisteredLengthIsCaught() {
        let (e, r) = makeVPA(.pinsSnapshot); defer { e.shutdown() }
        let t = r.vcpus[1]
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .success)
        r.kvmppcUpdateVPAs(t)
        let dtl = try! #require(r.oracle.installedArea(owner: 1, .dtl))
        // The oracle is told of an area one entry longer than the registration.
        r.oracle.installed(owner: 1, .dtl, dtl.lowerBound..<(dtl.upperBound + PAPR.dtlEntrySize), registeredGPA: 2 * page, len: 96)
        r.oracle.hostWrite(owner: 1, .dtl, dtl.upperBound, PAPR.dtlEntrySize, by: 1, what: "DTL entry")
        #expect(e.violations.first?.oracle == "vpa-pinned-registered", "\(e.violations)")
    }

    /// The same pin planted in the scenarios' worlds.
    @Test func aPinOfTheNextGfnIsFoundByTheScheduler() throws {
        for stress in [false, true] {
            let s = PlantedVPAScenario(stress: stress, planted: .init(pinningMemslots: { nextPageSlots($0) }))
            let (r, _) = try run(s, .pinsSnapshot, schedules: 200)
            #expect(r.firstViolation?.oracle == "vpa-pinned-registered",
                    "stress \(stress): \(r.firstViolation?.description ?? "no violation")")
        }
    }
}

/// The fixed variants stay clean under the new oracles.
@Suite struct VPAContractCleanRunTests {
    @Test(arguments: ["patched", "pins-snapshot"])
    func fixedVariantsStayClean(_ variant: String) throws {
        for strategy in [StrategyKind.random, .pct] {
            let (c, _) = try run("vpa-cross-register", variant, seed: 7, schedules: 3000, strategy: strategy)
            #expect(c.violations == 0, "\(strategy): \(c.firstViolation?.description ?? "")")
            let (s, _) = try run("vpa-stress", variant, seed: 7, schedules: 1500, strategy: strategy, lengths: [1, 2, 4])
            #expect(s.violations == 0, "\(strategy): \(s.firstViolation?.description ?? "")")
        }
    }
}
