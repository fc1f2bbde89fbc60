// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import MIPS

/// lockdep_assert_held() where the kernel states a lock rule: a MIPS notifier
/// hook called without `kvm->mmu_lock` is reported (oracle `lockdep`) in both
/// modes; with the lock held, nothing is.
@Suite struct LockdepTests {
    func makeMMU(_ mode: ExecutionMode) -> (SimEngine, KVM, MIPSMMU) {
        let engine = SimEngine(mode: mode, actorNames: mode == .deterministic ? ["a"] : [])
        if mode == .deterministic { engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1) }
        engine.stopOnViolation = false
        let mm = HostMM(engine: engine, pages: HostPages(capacity: 32), base: 1000, count: 8)
        let kvm = KVM(engine: engine, rcu: mode == .deterministic ? ModelledRCU(engine: engine) : LibURCU(engine: engine), hostMM: mm,
                      memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: 8, userspaceAddr: 1000)]))
        let mmu = MIPSMMU(kvm: kvm, variant: .patched, hostCPUs: 1, tlbSize: 4, tableBits: 1)
        return (engine, kvm, mmu)
    }

    @Test(arguments: [ExecutionMode.deterministic, .parallel])
    func notifierHookWithoutMMULockIsReported(mode: ExecutionMode) {
        let (engine, kvm, mmu) = makeMMU(mode)
        defer { engine.shutdown() }
        _ = mmu.ageHva(1000..<1002)                      // and kvm_mips_mkold_gpa_pt() under it
        #expect(engine.violations.map(\.oracle) == ["lockdep", "lockdep"])
        #expect(engine.violations.map { $0.message.contains("kvm->mmu_lock") } == [true, true])
        #expect(engine.violations[0].message.hasPrefix("kvm_age_hva()"))
        #expect(engine.violations[1].message.hasPrefix("kvm_mips_mkold_gpa_pt()"))
        kvm.mmuLock.withLock { _ = mmu.ageHva(1000..<1002) }
        _ = kvm.clearYoung(1000..<1002)                  // the generic callback takes the lock
        #expect(engine.violationTotal == 2)
    }

    @Test func unlockByAnotherHolderIsReported() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        engine.stopOnViolation = false
        let lock = SpinLock("spin_lock(&test->lock)", engine: engine)
        final class Box: @unchecked Sendable { var held = false }
        let box = Box()
        let a = LockActor(engine.executors[0]), b = LockActor(engine.executors[1])
        engine.spawn(on: a.executor) { await a.run { lock.lock(); box.held = true } }
        engine.spawn(on: b.executor) { await b.run {
            engine.waitUntil("wait") { box.held }
            lock.unlock()                                 // not b's lock
        } }
        engine.runSchedule()
        #expect(engine.violations.map(\.oracle) == ["lockdep"])
        #expect(engine.violations.first?.message.contains("test->lock released by b") == true)
    }
}

actor LockActor: SimActor {
    nonisolated let executor: SimExecutor
    init(_ e: SimExecutor) { executor = e }
    func run(_ body: @Sendable () -> Void) { body() }
}
