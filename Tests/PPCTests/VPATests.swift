// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import PPC
import Harness
import TestSupport

/// Two vcpus and 4 guest pages, built on the test thread.
func makeVPA(_ variant: VPAVariant) -> (SimEngine, VPARegistration) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let mm = HostMM(engine: engine, pages: HostPages(capacity: 32), base: 2000, count: 4)
    let reg = VPARegistration(engine: engine, variant: variant, vcpus: 2, hostMM: mm,
                              memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: 4, userspaceAddr: 2000)]))
    return (engine, reg)
}

extension VPARegistration {
    /// The guest writes `len` into the buffer at `gpa` and registers it.
    func call(_ sub: VPASubfunc, caller: Int = 0, target: Int = 1, gpa: Int = 0, len: Int = 0) -> HCallStatus {
        if sub.isRegister { guestSetLength(gpa: gpa, len) }
        return hRegisterVPA(caller: caller, subfunc: sub.rawValue, target: target, gpa: gpa)
    }
}

/// H_REGISTER_VPA's rules (seed 003's do_h_register_vpa()), one test each.
@Suite struct HRegisterVPARuleTests {
    let page = PAPR.pageSize

    @Test func unknownVcpuOrSubfunctionIsParameter() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.hRegisterVPA(caller: 0, subfunc: 1, target: 7, gpa: page) == .parameter)
        #expect(r.hRegisterVPA(caller: 0, subfunc: 0, target: 1, gpa: page) == .parameter)
        #expect(r.hRegisterVPA(caller: 0, subfunc: 4, target: 1, gpa: page) == .parameter)
    }

    @Test func misalignedOrZeroAddressIsParameter() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page + 64, len: 640) == .parameter)
        #expect(r.call(.regVPA, gpa: 0, len: 640) == .parameter)
    }

    @Test func lengthBeyondThePageOrBelowRegVPAIsParameter() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page + 3968, len: 640) == .parameter)   // 128 bytes left in the page
        #expect(r.call(.regSLB, gpa: page, len: 4) == .parameter)
    }

    @Test func shortVPAOrDTLIsParameter() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page, len: 639) == .parameter)
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        #expect(r.call(.regDTL, gpa: 2 * page, len: 47) == .parameter)
    }

    @Test func dtlLengthIsRoundedDownToWholeEntries() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        #expect(r.call(.regDTL, gpa: 2 * page, len: 100) == .success)
        #expect(r.vcpus[1].load(r.vcpus[1].area(.dtl).len) == 96)
    }

    @Test func dtlOrSLBWithoutAVPAIsResource() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .resource)
        #expect(r.call(.regSLB, gpa: 3 * page, len: 64) == .resource)
    }

    @Test func deregisteringTheVPAIsJudgedOnPendingState() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)           // pending: counts as registered
        #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .success)
        #expect(r.call(.deregVPA) == .resource)                             // a DTL is (pending) registered
        #expect(r.call(.deregDTL) == .success)                              // pending deregistration
        #expect(r.call(.deregVPA) == .success)
        r.kvmppcUpdateVPAs(r.vcpus[1])
        #expect(r.oracle.installedArea(owner: 1, .vpa) == nil)
    }

    @Test func preFixChecksTheInstalledPointers() {
        let (e, r) = makeVPA(.preFix); defer { e.shutdown() }
        #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .resource)
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        #expect(r.oracle.installedArea(owner: 1, .vpa) != nil)              // set at once, by the caller
        #expect(r.call(.regDTL, gpa: 2 * page, len: 96) == .success)
        #expect(r.call(.deregVPA) == .resource)
    }
}

/// v3.4 (pre-fix) as its text has it: no DTL writer, and a registration that
/// replaces another vcpu's area unpins the caller's (`vcpu`, not `tvcpu`).
@Suite struct VPAV34Tests {
    let page = PAPR.pageSize

    @Test func preFixWritesNoDTLEntry() {
        for variant in [VPAVariant.preFix, .patched] {
            let (e, r) = makeVPA(variant); defer { e.shutdown() }
            let t = r.vcpus[1]
            #expect(r.call(.regVPA, caller: 1, target: 1, gpa: page, len: 640) == .success)
            #expect(r.call(.regDTL, caller: 1, target: 1, gpa: 2 * page, len: 96) == .success)
            for _ in 0..<3 { r.runGuest(t) }
            #expect(r.oracle.installedArea(owner: 1, .dtl)?.count == 96, "\(variant)")
            // kvmppc_create_dtl_entry() (v3.6 on) advances dtl_index; v3.4 has neither.
            #expect(t.load(VPAVCPU.dtlIndex) == (variant == .preFix ? 0 : 3), "\(variant)")
            #expect((t.load(VPAVCPU.dtlPtr) == 0) == (variant == .preFix), "\(variant)")
            #expect(e.violations.isEmpty, "\(variant): \(e.violations)")
        }
    }

    @Test func preFixReplacingAnotherVcpusAreaUnpinsTheCallers() {
        let (e, r) = makeVPA(.preFix); defer { e.shutdown() }
        let mm = r.pinning.hostMM
        #expect(r.call(.regVPA, caller: 0, target: 0, gpa: page, len: 640) == .success)
        #expect(r.call(.regVPA, caller: 1, target: 1, gpa: 2 * page, len: 640) == .success)
        let callers = r.oracle.installedArea(owner: 0, .vpa)!.lowerBound / page
        let targetsOld = r.oracle.installedArea(owner: 1, .vpa)!.lowerBound / page
        #expect(r.call(.regVPA, caller: 0, target: 1, gpa: 3 * page, len: 640) == .success)
        #expect(e.violations.isEmpty, "\(e.violations)")
        // The host drops its mappings: the page v3.4 unpinned is vcpu0's, in use
        // (its pointer is still set), and is freed; vcpu1's old page stays pinned.
        mm.zap(2000..<2004)
        #expect(!mm.pages.isInUse(callers))
        #expect(mm.pages.isInUse(targetsOld))
        #expect(r.vcpus[0].load(VPAVCPU.preVPA) != 0)
        r.runGuest(r.vcpus[0])                                               // yield count into the freed page
        #expect(e.violations.first?.oracle == "vpa-unpinned-write")
    }

    @Test func preFixSelfRegistrationUnpinsTheOldArea() {
        let (e, r) = makeVPA(.preFix); defer { e.shutdown() }
        #expect(r.call(.regVPA, caller: 1, target: 1, gpa: page, len: 640) == .success)
        #expect(r.call(.regVPA, caller: 1, target: 1, gpa: 2 * page, len: 640) == .success)
        r.oracle.checkBalance()
        #expect(e.violations.isEmpty, "\(e.violations)")
    }

    @Test func preFixReplacementByACallerWithoutThatAreaPutsNull() {
        // vcpu0 has no DTL: kvmppc_unpin_guest_page(kvm, NULL).
        let (e, r) = makeVPA(.preFix); defer { e.shutdown() }
        #expect(r.call(.regVPA, caller: 1, target: 1, gpa: page, len: 640) == .success)
        #expect(r.call(.regDTL, caller: 1, target: 1, gpa: 2 * page, len: 96) == .success)
        #expect(r.call(.regDTL, caller: 0, target: 1, gpa: 3 * page, len: 96) == .success)
        #expect(e.violations.first?.oracle == "vpa-pin-balance")
    }

    @Test func preFixSLBShadowNeedsSixteenBytes() {
        let (e, r) = makeVPA(.preFix); defer { e.shutdown() }
        #expect(r.call(.regVPA, gpa: page, len: 640) == .success)
        #expect(r.call(.regSLB, gpa: 2 * page, len: 8) == .parameter)      // v3.4: if (len < 16)
        #expect(r.call(.regSLB, gpa: 2 * page, len: 16) == .success)
    }
}

/// The owner's side: updates land only in kvmppc_update_vpas(); DTL entries wrap
/// at pinned_end and dtl_idx follows the entry.
@Suite struct VPAUpdateTests {
    @Test func theTargetSwitchesAreasItself() {
        let (e, r) = makeVPA(.patched); defer { e.shutdown() }
        let t = r.vcpus[1]
        #expect(r.call(.regVPA, gpa: PAPR.pageSize, len: 640) == .success)
        #expect(r.call(.regDTL, gpa: 2 * PAPR.pageSize, len: 96) == .success)
        #expect(r.oracle.installedArea(owner: 1, .dtl) == nil)              // nothing pinned yet
        r.runGuest(t)                                                        // update, then one entry
        let dtl = try! #require(r.oracle.installedArea(owner: 1, .dtl))
        #expect(dtl.count == 96)
        r.runGuest(t)
        r.runGuest(t)                                                        // third entry wraps
        #expect(t.load(VPAVCPU.dtlPtr) == dtl.lowerBound + PAPR.dtlEntrySize)
        #expect(t.load(VPAVCPU.dtlIndex) == 3)
        #expect(r.call(.regDTL, gpa: 3 * PAPR.pageSize, len: 48) == .success)
        #expect(r.oracle.installedArea(owner: 1, .dtl) == dtl)              // still the old one
        r.kvmppcUpdateVPAs(t)
        #expect(r.oracle.installedArea(owner: 1, .dtl)?.count == 48)
        r.oracle.checkBalance()
        #expect(e.violations.isEmpty, "\(e.violations)")
    }
}

/// Seed 003's verdicts, pinned.
@Suite struct VPAScenarioTests {
    @Test func preFixIsCaughtAndReplays() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, runner) = try run("vpa-cross-register", "pre-fix", schedules: 2000, strategy: strategy)
            #expect(r.violations > 0, "\(strategy)")
            let trace = try #require(runner.failingTrace)
            #expect(try Runner.replay(trace).violations.first == trace.violation)
        }
    }

    @Test func preFixFreesTheCallersOwnVPA() throws {
        // Seed 2: vcpu0 replaces vcpu1's DTL twice; each time v3.4 unpins vcpu0's
        // own DTL, whose page also holds vcpu0's VPA. Once the host has zapped the
        // range the page is freed, and vcpu0's yield count goes into a free page.
        let (_, runner) = try run("vpa-cross-register", "pre-fix", seed: 2, schedules: 200)
        let trace = try #require(runner.failingTrace)
        #expect(trace.violation?.oracle == "vpa-unpinned-write")
        let replay = try Runner.replay(trace)
        #expect(replay.violations.first?.message.hasPrefix("yield_count of vcpu0") == true,
                "\(replay.violations.first?.description ?? "no violation")")
    }

    @Test func patchedHolds() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("vpa-cross-register", "patched", schedules: 3000, strategy: strategy)
            #expect(r.violations == 0, "\(strategy): \(r.firstViolation?.description ?? "")")
            let (s, _) = try run("vpa-stress", "patched", schedules: 500, strategy: strategy)
            #expect(s.violations == 0, "\(strategy): \(s.firstViolation?.description ?? "")")
        }
        let (p, _) = try run("vpa-stress", "patched", mode: .parallel, seconds: 2)
        #expect(p.violations == 0, "\(p.firstViolation?.description ?? "")")
    }

    @Test func preFixIsCaughtOnRealThreads() throws {
        let (p, _) = try run("vpa-stress", "pre-fix", mode: .parallel, seconds: 10)
        #expect(p.violations > 0)
    }
}

/// vpa-pinned-registered: the area kvmppc_update_vpa() installs must be a page
/// pinned for the registered gpa's frame, at its offset.
@Suite struct VPAPinnedRegisteredTests {
    @Test func anAreaPinnedForAnotherGpaIsReported() {
        let (engine, reg) = makeVPA(.patched)
        defer { engine.shutdown() }
        let t = reg.vcpus[0]
        let a = reg.pinning.pin(1 * PAPR.pageSize + 0x80)!           // the page of gfn 1
        let b = reg.pinning.pin(2 * PAPR.pageSize + 0x80)!           // and of gfn 2
        t.words.store(t.area(.vpa).nextGPA, UInt64(1 * PAPR.pageSize + 0x80))   // A registered
        reg.oracle.installing(t, .vpa, va: a.va)
        #expect(engine.violations.isEmpty)
        reg.oracle.installing(t, .vpa, va: b.va)                     // B installed
        #expect(engine.violations.first?.oracle == "vpa-pinned-registered")
    }
}
