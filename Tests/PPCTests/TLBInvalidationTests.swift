// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import PPC

/// A Book3S HV VM built on the test thread (no actors: scheduling points return
/// at once), `vcpus` vcpus, `perVcore` per vcore, 2 cores of 4 threads.
func makeVM(_ variant: TLBInvalidationVariant, vcpus: Int, perVcore: Int, pages: Int = 4) -> (SimEngine, Book3SHV) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let mm = HostMM(engine: engine, pages: HostPages(capacity: 64), base: 1000, count: pages)
    let kvm = KVM(engine: engine, rcu: ModelledRCU(engine: engine), hostMM: mm,
                  memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: pages, userspaceAddr: 1000)]))
    let hv = Book3SHV(kvm: kvm, variant: variant, host: PPCHost(cores: 2, threadsPerCore: 4, tlbSize: 8), hptGroups: 2)
    for _ in 0..<vcpus { hv.createVCPU(vcpusPerVcore: perVcore) }
    hv.finishCreation()
    return (engine, hv)
}

extension Book3SHV {
    /// Places `vc` on `core` as its runner would and does the primary thread's entry.
    func enter(_ vc: Vcore, core: Int) {
        if let p = vc.pcpu { host.coreOwner.store(p / host.threadsPerCore, 0) }
        #expect(place(vc, preferring: core))
        primaryThreadEntry(vc)
        for v in vc.vcpus { threadEntry(v) }
    }
}

/// global_invalidates() and the pre-fix rule it replaced (seed 002).
@Suite struct GlobalInvalidatesTests {
    @Test func patchedOneVcoreIsLocalAndMarksEveryOtherCPU() {
        let (e, hv) = makeVM(.patched, vcpus: 4, perVcore: 4)
        defer { e.shutdown() }
        hv.enter(hv.vcores[0], core: 1)
        #expect(!hv.globalInvalidates([], hv.vcpus[2]))
        #expect(hv.needTLBFlushMask == 0xFF & ~(1 << 4))             // every CPU but thread 0 of core 1
    }

    @Test func patchedManyVcoresIsGlobalEvenWithHLocal() {
        let (e, hv) = makeVM(.patched, vcpus: 2, perVcore: 1)
        defer { e.shutdown() }
        hv.enter(hv.vcores[0], core: 0)
        let before = hv.needTLBFlushMask
        #expect(hv.globalInvalidates([.local], hv.vcpus[0]))
        #expect(hv.needTLBFlushMask == before)
    }

    @Test func preFixFollowsHLocalAndTheVcpuCount() {
        let (e, hv) = makeVM(.preFix, vcpus: 2, perVcore: 1)
        defer { e.shutdown() }
        #expect(!hv.globalInvalidates([.local], hv.vcpus[0]))       // H_LOCAL on an SMP guest: local
        #expect(hv.globalInvalidates([], hv.vcpus[0]))
        let (e1, one) = makeVM(.preFix, vcpus: 1, perVcore: 1)
        defer { e1.shutdown() }
        #expect(!one.globalInvalidates([], one.vcpus[0]))           // one vcpu: always local
        let (e4, vcore) = makeVM(.preFix, vcpus: 4, perVcore: 4)
        defer { e4.shutdown() }
        #expect(vcore.globalInvalidates([], vcore.vcpus[0]))        // one vcore of 4 vcpus: global
    }
}

/// The flush at guest entry: per core on need_tlb_flush (patched), per thread on
/// last_cpu / last_vcpu (pre-fix).
@Suite struct EntryFlushTests {
    @Test func patchedFlushesEachCoreOnceAfterVMStart() {
        let (e, hv) = makeVM(.patched, vcpus: 4, perVcore: 4)
        defer { e.shutdown() }
        #expect(hv.needTLBFlushMask == 0xFF)                        // all bits at VM start
        hv.enter(hv.vcores[0], core: 0)
        #expect(hv.counter(.entryFlushes) == 1)                     // one flush for four threads
        hv.enter(hv.vcores[0], core: 0)
        #expect(hv.counter(.entryFlushes) == 1)
        hv.enter(hv.vcores[0], core: 1)
        #expect(hv.counter(.entryFlushes) == 2)
        #expect(hv.needTLBFlushMask & (1 << 0 | 1 << 4) == 0)
    }

    @Test func preFixFlushesPerThreadWhenAVcpuMoves() {
        let (e, hv) = makeVM(.preFix, vcpus: 4, perVcore: 4)
        defer { e.shutdown() }
        hv.enter(hv.vcores[0], core: 0)                             // last_cpu starts at -1 (v3.7): every thread flushes
        #expect(hv.counter(.entryFlushes) == 4)
        hv.enter(hv.vcores[0], core: 0)
        #expect(hv.counter(.entryFlushes) == 4)
        hv.enter(hv.vcores[0], core: 1)                             // every thread flushes the same core TLB
        #expect(hv.counter(.entryFlushes) == 8)
    }

    @Test func hptResetMakesEveryCoreFlushAndIsRefusedWhileRunning() {
        for variant in TLBInvalidationVariant.allCases {
            let (e, hv) = makeVM(variant, vcpus: 2, perVcore: 2)
            defer { e.shutdown() }
            hv.enter(hv.vcores[0], core: 0)
            let flushes = hv.counter(.entryFlushes)
            hv.vcpusRunning(1)
            #expect(!hv.kvmppcAllocResetHPT())                            // -EBUSY while a vcpu runs
            hv.vcpusRunning(-1)
            #expect(hv.kvmppcAllocResetHPT())
            hv.enter(hv.vcores[0], core: 0)
            #expect(hv.counter(.entryFlushes) > flushes, "\(variant)")
        }
    }
}

/// The HPT hcalls' return codes and effects (book3s_hv_rm_mmu.c).
@Suite struct HCallTests {
    @Test func enterRemoveProtectReturnCodes() {
        let (e, hv) = makeVM(.patched, vcpus: 2, perVcore: 1)
        defer { e.shutdown() }
        let v = hv.vcpus[0]
        hv.enter(v.vcore, core: 0)
        #expect(hv.kvmppcHRemove(v, flags: [], pteIndex: 999, avpn: 0) == .parameter)
        #expect(hv.kvmppcHRemove(v, flags: [], pteIndex: 3, avpn: 0) == .notFound)
        let (st, i) = hv.kvmppcDoHEnter(v, flags: [], pteIndex: 0, vpn: 5, gfn: 1, writable: true)
        #expect(st == .success && i == 0)
        #expect(hv.hpt.v(i) & HPT.absent != 0)                     // host page not present yet
        #expect(hv.kvmppcDoHEnter(v, flags: [.exact], pteIndex: 0, vpn: 6, gfn: 2, writable: true).0 == .ptegFull)
        #expect(hv.kvmppcDoHEnter(v, flags: [], pteIndex: 0, vpn: 6, gfn: 99, writable: true).0 == .parameter)
        #expect(hv.kvmppcHProtect(v, flags: [.avpn], pteIndex: i, avpn: 6) == .notFound)
        #expect(hv.kvmppcHProtect(v, flags: [.avpn], pteIndex: i, avpn: 5) == .success)
        #expect(!HPT.isWritable(hv.hpt.guestRpte(i)))
        #expect(hv.kvmppcHRemove(v, flags: [.avpn], pteIndex: i, avpn: 5) == .success)
        #expect(hv.hpt.v(i) == 0)
        #expect(hv.kvmppcHBulkRemove(v, [(pteIndex: i, avpn: 5), (pteIndex: 999, avpn: 0)]) == [.notFound, .parameter])
    }

    @Test func accessFaultsInAndHostUnmapInvalidatesEverywhere() {
        let (e, hv) = makeVM(.patched, vcpus: 2, perVcore: 1)
        defer { e.shutdown() }
        let (a, b) = (hv.vcpus[0], hv.vcpus[1])
        hv.enter(a.vcore, core: 0)
        hv.enter(b.vcore, core: 1)
        let (_, i) = hv.kvmppcDoHEnter(a, flags: [], pteIndex: hv.hpt.group(of: 5) * HPT.hpteGroupSize, vpn: 5, gfn: 1, writable: true)
        #expect(hv.guestAccess(a, vpn: 5, write: true))            // HPTE fault, then a fill on core 0
        #expect(hv.guestAccess(b, vpn: 5, write: false))           // fill on core 1
        #expect(hv.hpt.v(i) & HPT.valid != 0)
        #expect(hv.host.tlbs.allSatisfy { $0.entries.contains { $0.vpn == 5 } })
        hv.kvm.invalidateRangeStart(1001..<1002)                    // the host pages gfn 1 out
        #expect(hv.hpt.v(i) & HPT.absent != 0 && hv.hpt.v(i) & HPT.valid == 0)
        #expect(hv.host.tlbs.allSatisfy { $0.entries.isEmpty })    // tlbie reached every core
        hv.kvm.invalidateRangeEnd(1001..<1002)
        #expect(e.violations.isEmpty)
    }
}
