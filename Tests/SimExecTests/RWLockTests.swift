// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Synchronization
@testable import SimExec

actor RWActor: SimActor {
    nonisolated let executor: SimExecutor
    init(_ e: SimExecutor) { executor = e }
    func run(_ body: @Sendable () -> Void) { body() }
}

/// The queued rwlock: readers share it, a writer excludes everyone, a waiting
/// writer keeps new readers out (writer preference), and lockdep knows who
/// holds it how.
@Suite struct RWLockTests {
    @Test func readersShareAndAWaitingWriterKeepsNewReadersOut() {
        // r0 holds the read lock; w asks for the write lock; r1 arrives later: in
        // every schedule r1 gets the lock only after w released it.
        for seed in 0..<200 {
            let engine = SimEngine(mode: .deterministic, actorNames: ["r0", "w", "r1"])
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: UInt64(seed))
            let lock = RWLock(read: "read_lock(&l)", write: "write_lock(&l)", lockName: "l", waitLockPoint: "spin_lock(&l.wait_lock)", engine: engine)
            let order = Mutex<[String]>([])
            let stage = Atomic<Int>(0)
            let writerDone = Atomic<Bool>(false)
            let r0 = RWActor(engine.executors[0]), w = RWActor(engine.executors[1]), r1 = RWActor(engine.executors[2])
            engine.spawn(on: r0.executor) { await r0.run {
                lock.readLock(); stage.store(1, ordering: .relaxed)
                engine.waitUntil("r0:hold") { lock.words.load(0) & RWLock.writerWaiting != 0 }
                engine.point("r0:holding")
                order.withLock { $0.append("r0 unlock") }
                lock.readUnlock()
            } }
            engine.spawn(on: w.executor) { await w.run {
                engine.waitUntil("w:after r0") { stage.load(ordering: .relaxed) == 1 }
                lock.writeLock()
                lock.assertHeldWrite("writer")
                order.withLock { $0.append("w locked") }
                lock.writeUnlock()
                writerDone.store(true, ordering: .relaxed)
            } }
            engine.spawn(on: r1.executor) { await r1.run {
                // Arrives while the writer waits or holds it (or after it is done).
                engine.waitUntil("r1:after w asks") {
                    lock.words.load(0) & RWLock.writerMask != 0 || writerDone.load(ordering: .relaxed)
                }
                lock.readLock()
                lock.assertHeld("reader")
                order.withLock { $0.append("r1 locked") }
                lock.readUnlock()
            } }
            engine.runSchedule()
            #expect(engine.violations.isEmpty, "seed \(seed): \(engine.violations)")
            #expect(order.withLock { $0 } == ["r0 unlock", "w locked", "r1 locked"], "seed \(seed)")
            engine.shutdown()
        }
    }

    @Test func lockdepKnowsReadFromWrite() {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        engine.stopOnViolation = false
        let lock = RWLock(read: "read_lock(&l)", write: "write_lock(&l)", lockName: "kvm->mmu_lock", waitLockPoint: "spin_lock(&l.wait_lock)", engine: engine)
        lock.readLock()
        lock.assertHeld("read or write")
        lock.assertHeldWrite("kvm_tdp_mmu_zap_leafs()")            // held for read only: reported
        lock.readUnlock()
        lock.writeLock()
        lock.assertHeldWrite("write")
        lock.assertHeld("read or write")
        lock.writeUnlock()
        lock.assertHeld("tdp_mmu_set_spte_atomic()")               // not held: reported
        #expect(engine.violations.map(\.message) == [
            "kvm_tdp_mmu_zap_leafs() runs in main without holding kvm->mmu_lock for write",
            "tdp_mmu_set_spte_atomic() runs in main without holding kvm->mmu_lock for read or write",
        ])
        #expect(lock.tryWriteLock())
        #expect(!lock.tryReadLock())
        lock.writeUnlock()
        #expect(lock.tryReadLock())
        #expect(!lock.tryWriteLock())
        lock.readUnlock()
    }

    @Test func realThreadsNeverOverlapAWriter() {
        let engine = SimEngine(mode: .parallel, actorNames: ["a", "b"])
        defer { engine.shutdown() }
        let lock = RWLock(read: "read_lock(&l)", write: "write_lock(&l)", lockName: "l", waitLockPoint: "spin_lock(&l.wait_lock)", engine: engine)
        let inside = Atomic<Int>(0), bad = Atomic<Int>(0)
        let a = RWActor(engine.executors[0]), b = RWActor(engine.executors[1])
        for (i, actor) in [a, b].enumerated() {
            engine.spawn(on: actor.executor) { await actor.run {
                for n in 0..<20_000 {
                    if (n + i) % 3 == 0 {
                        lock.writeLock()
                        if inside.add(1000, ordering: .relaxed).newValue != 1000 { bad.add(1, ordering: .relaxed) }
                        inside.subtract(1000, ordering: .relaxed)
                        lock.writeUnlock()
                    } else {
                        lock.readLock()
                        if inside.add(1, ordering: .relaxed).newValue >= 1000 { bad.add(1, ordering: .relaxed) }
                        inside.subtract(1, ordering: .relaxed)
                        lock.readUnlock()
                    }
                }
            } }
        }
        engine.waitForTasks()
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(engine.violations.isEmpty)
    }
}
