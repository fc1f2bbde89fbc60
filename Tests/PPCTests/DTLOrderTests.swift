// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import PPC
@testable import Catalog
import Harness
import TestSupport

// Issue 20, class 0 (a barrier dropped): kvmppc_create_dtl_entry()'s smp_wmb()
// between a DTL entry and `vpa->dtl_idx`, seen by a guest reading the log
// (--dtl-reader 1) under the `pso` memory model, and invisible under `sc`.

extension VPARegistration {
    /// kvmppc_create_dtl_entry() as the model writes it, without its smp_wmb().
    func plantedCreateDTLEntryWithoutWmb(_ t: VPAVCPU) {
        let dt = t.load(VPAVCPU.dtlPtr)
        let vpa = vpaAddr(t)
        if dt == 0 || vpa == 0 { return }
        engine.point("kvmppc_create_dtl_entry:write")
        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")
        let tag = t.dtlGeneration << 32
        if let log = t.guestLog {
            let index = t.words.loadRelaxed(VPAVCPU.dtlIndex)
            log.store(VPAVCPU.logEntry(index), tag | (index + 1))
        }
        var next = dt + PAPR.dtlEntrySize
        if next == t.load(t.area(.dtl).pinnedEnd) { next = t.load(t.area(.dtl).pinnedAddr) }
        setPointer(t, VPAVCPU.dtlPtr, next, by: t.id)
        let idx = t.words.addRelaxed(VPAVCPU.dtlIndex, 1)
        t.guestLog?.store(VPAVCPU.logIdx, tag | idx)
        oracle.dtlPublished(owner: t.id, index: idx)
    }

    /// runGuest() with the planted DTL writer.
    func plantedRunGuestWithoutWmb(_ t: VPAVCPU) {
        kvmppcUpdateVPAs(t)
        oracle.owner(t.id, inUse: true)
        plantedCreateDTLEntryWithoutWmb(t)
        bumpYieldCount(t)
        engine.point("guest:run")
        bumpYieldCount(t)
        oracle.owner(t.id, inUse: false)
    }
}

@Suite struct DTLOrderTests {
    static func reader(_ model: MemoryModel) -> (inout ScenarioConfig<VPAOptions>) -> Void {
        { $0.dtlReader = 1; $0.memoryModel = model }
    }

    @Test func theFixedWriterKeepsEntriesBeforeTheIndex() throws {
        for stress in [false, true] {
            let s = PlantedVPAScenario(stress: stress, planted: .init())
            let (r, _) = try run(s, .patched, schedules: 3000, configure: Self.reader(.pso))
            #expect(r.firstViolation == nil, "stress \(stress): \(r.firstViolation?.description ?? "")")
        }
    }

    @Test func aDroppedWriteBarrierIsSeenUnderPSO() throws {
        for stress in [false, true] {
            let s = PlantedVPAScenario(stress: stress, planted: .init(guestPass: { reg, t in reg.plantedRunGuestWithoutWmb(t) }))
            let (r, runner) = try run(s, .patched, schedules: 3000, configure: Self.reader(.pso))
            #expect(r.firstViolation?.oracle == "dtl-publish-order", "stress \(stress): \(r.firstViolation?.description ?? "none")")
            #expect(r.firstViolation?.message.contains("the index became visible before the entry it counts") == true)
            // The failing schedule replays: its drainer steps are decisions like any other.
            let trace = try #require(runner.failingTrace)
            #expect(trace.actors.contains("vcpu1.sb-overtake"))
            let replayed = try Runner.replay(trace)
            #expect(replayed.mismatchStep == nil && replayed.violations.first?.oracle == "dtl-publish-order")
        }
    }

    @Test func aDroppedWriteBarrierIsInvisibleUnderSC() throws {
        let s = PlantedVPAScenario(stress: false, planted: .init(guestPass: { reg, t in reg.plantedRunGuestWithoutWmb(t) }))
        let (r, _) = try run(s, .patched, schedules: 2000, configure: Self.reader(.sc))
        #expect(r.firstViolation == nil, "\(r.firstViolation?.description ?? "")")
    }

    @Test func psoWithoutAReaderIsBadInput() {
        var o = VPAOptions()
        o.memoryModel = .pso
        #expect(throws: InputError.self) { try o.validate() }
    }
}
