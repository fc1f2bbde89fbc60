// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
@testable import KVMCore

/// An arch that records the hooks the generic notifier code calls, with a
/// one-entry-per-gfn secondary MMU the oracle can see.
final class RecordingArch: KVMArchMMU, SecondaryMMUView, @unchecked Sendable {
    var calls: [String] = []
    var entries: [Int: PTE] = [:]
    func unmapHvaRange(_ range: Range<Int>) -> Bool { calls.append("unmap \(range)"); return true }
    func setSpteHva(_ hva: Int, _ pte: PTE) { calls.append("set_spte \(hva)") }
    func ageHva(_ range: Range<Int>) -> Bool { calls.append("age \(range)"); return true }
    func testAgeHva(_ hva: Int) -> Bool { calls.append("test_age \(hva)"); return false }
    func mapping(ofGfn gfn: Int) -> PTE { entries[gfn] ?? .none }
}

func makeKVM() -> (SimEngine, KVM, RecordingArch) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let rcu = ModelledRCU(engine: engine)
    let pages = HostPages(capacity: 32)
    let mm = HostMM(engine: engine, pages: pages, base: 1000, count: 8)
    let kvm = KVM(engine: engine, rcu: rcu, hostMM: mm, memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: 8, userspaceAddr: 1000)]))
    let arch = RecordingArch()
    kvm.arch = arch
    kvm.attach(oracle: MMUOracle(engine: engine, hostMM: mm, memslots: kvm.memslots, notifier: kvm.notifier, view: arch))
    kvm.registerMMUNotifier()
    return (engine, kvm, arch)
}

@Suite struct NotifierProtocolTests {
    @Test func retryAcrossAnInvalidation() {
        let (engine, kvm, arch) = makeKVM()
        defer { engine.shutdown() }
        let snap = kvm.mmuNotifierSeq
        #expect(!kvm.mmuNotifierRetry(snap))
        kvm.invalidateRangeStart(1000..<1002)
        #expect(kvm.mmuNotifierCount == 1)
        #expect(kvm.mmuNotifierRetry(snap))           // count elevated
        kvm.invalidateRangeEnd(1000..<1002)
        #expect(kvm.mmuNotifierCount == 0)
        #expect(kvm.mmuNotifierRetry(snap))           // seq moved on
        #expect(!kvm.mmuNotifierRetry(kvm.mmuNotifierSeq))
        #expect(arch.calls == ["unmap 1000..<1002"])
    }

    @Test func changePTEBumpsSeqAndAgingFlushes() {
        let (engine, kvm, arch) = makeKVM()
        defer { engine.shutdown() }
        let seq = kvm.mmuNotifierSeq
        kvm.changePTE(hva: 1003, pte: .none)
        #expect(kvm.mmuNotifierSeq == seq + 1)
        let v = kvm.createVCPU(cpu: 0)
        #expect(kvm.clearFlushYoung(1000..<1008))
        #expect(v.checkRequest(VCPUState.reqTLBFlush))   // the flush asked the vcpu
        #expect(kvm.clearYoung(1000..<1001))
        #expect(!v.checkRequest(VCPUState.reqTLBFlush))  // no flush for clear_young
        #expect(!kvm.testYoung(hva: 1000))
        #expect(arch.calls == ["set_spte 1003", "age 1000..<1008", "age 1000..<1001", "test_age 1000"])
    }

    /// I4: an access through a TLB entry filled just before clear_flush_young aged
    /// its page is caught (the fill's stamp is below the aging's); one filled after
    /// the aging is not.
    @Test func agingOracleCatchesTheLastFillBeforeAnAging() throws {
        let (engine, kvm, arch) = makeKVM()
        defer { engine.shutdown() }
        let oracle = try #require(kvm.oracle)
        let gfn = 1, hva = 1001
        kvm.hostMM.touch(hva, write: false)
        let pfn = try #require(kvm.hostMM.currentPfn(hva))
        let young = PTE(pfn: pfn, flags: PTE.present | PTE.read | PTE.young)
        arch.entries[gfn] = young
        let before = oracle.agingClock                         // the TLB refill just before the aging
        let wasYoung = oracle.youngGfns(hva..<(hva + 1))
        #expect(wasYoung == [gfn])
        arch.entries[gfn] = young.mkold()                      // what the arch's aging does
        oracle.agedWithFlush(wasYoung)
        let after = oracle.agingClock
        oracle.guestAccess(vcpu: 0, gfn: gfn, pfn: pfn, write: nil, via: "TLB", tlbStamp: after)
        #expect(engine.violationTotal == 0)
        oracle.guestAccess(vcpu: 0, gfn: gfn, pfn: pfn, write: nil, via: "TLB", tlbStamp: before)
        #expect(engine.violations.map(\.oracle) == ["I4"])
    }

    /// The KVM clears the host mm's (unowned) observer when it goes away, as
    /// kvm_destroy_vm() unregisters its notifier.
    @Test func kvmTeardownClearsTheObserver() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        let mm = HostMM(engine: engine, pages: HostPages(capacity: 32), base: 1000, count: 8)
        let arch = RecordingArch()
        do {
            let kvm = KVM(engine: engine, rcu: ModelledRCU(engine: engine), hostMM: mm,
                          memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: 8, userspaceAddr: 1000)]))
            kvm.attach(oracle: MMUOracle(engine: engine, hostMM: mm, memslots: kvm.memslots, notifier: kvm.notifier, view: arch))
            #expect(mm.observer === kvm.oracle)
        }
        #expect(mm.observer == nil)
    }

    /// The host mm calls start, changes its PTE, then end; pages are released between.
    @Test func hostZapOrdersNotifierCalls() {
        let (engine, kvm, arch) = makeKVM()
        defer { engine.shutdown() }
        let mm = kvm.hostMM
        mm.touch(1001, write: true)
        let pfn = mm.currentPfn(1001)!
        mm.zap(1000..<1002)
        #expect(mm.currentPfn(1001) == nil)
        #expect(!mm.pages.isInUse(pfn))
        #expect(arch.calls == ["unmap 1000..<1002"])
        #expect(kvm.mmuNotifierCount == 0 && kvm.mmuNotifierSeq == 1)
    }

    /// A page with an extra reference stays in the swap cache and comes back as the same pfn.
    @Test func swapKeepsReferencedPageInSwapCache() {
        let (engine, kvm, _) = makeKVM()
        defer { engine.shutdown() }
        let mm = kvm.hostMM
        let got = mm.getUserPage(1004, write: true)!
        mm.swapOut(1004)
        #expect(mm.currentPfn(1004) == got.pfn)
        mm.pages.put(got.pfn)
        mm.swapIn(1004)
        #expect(mm.currentPfn(1004) == got.pfn)
        // Without the extra reference the content goes to swap and comes back in a new page.
        mm.pages.content.store(got.pfn, 42)
        mm.swapOut(1004)
        #expect(!mm.pages.isInUse(got.pfn))
        mm.swapIn(1004)
        #expect(mm.pages.content.load(mm.currentPfn(1004)!) == 42)
    }

    /// Dekker handshake of kvm_make_all_cpus_request: a vcpu that sees a request cancels entry.
    @Test func requestCancelsGuestEntry() {
        let v = VCPUState(id: 0, cpu: 0)
        #expect(v.enterGuestMode())
        v.exitGuestMode()
        v.makeRequest(VCPUState.reqTLBFlush)
        #expect(!v.enterGuestMode())
        #expect(v.mode == .outsideGuestMode)
        #expect(v.checkRequest(VCPUState.reqTLBFlush))
        #expect(v.enterGuestMode())
    }
}
