// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Synchronization
@testable import SimExec

/// The `pso` memory model on the message-passing litmus test (MP,
/// Documentation/memory-barriers.txt): a writer stores data then a flag, a
/// reader loads the flag then the data. With no smp_wmb() between the stores
/// the reader can see the flag without the data; with it, or under sequential
/// consistency, never.
@Suite struct StoreBufferTests {
    /// Actors: 0 writer, 1 reader, 2 and 3 the writer's drainers.
    static let names = ["writer", "reader", "writer.sb", "writer.sb-overtake"]

    /// Runs MP for `schedules` seeds and returns the reader's outcomes (flag, data).
    func outcomes(pso: Bool, wmb: Bool, schedules: Int = 300) -> Set<[UInt64]> {
        let engine = SimEngine(mode: .deterministic, actorNames: Self.names)
        defer { engine.shutdown() }
        var seen = Set<[UInt64]>()
        for seed in 0..<UInt64(schedules) {
            let mem = WeakWords(count: 2)     // 0 data, 1 flag
            defer { mem.free() }
            let got = Mutex<[UInt64]>([])
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: seed)
            if pso { engine.enableStoreBuffer(owner: 0, drainers: (2, 3)) }
            let writer = Worker(executor: engine.executors[0]), reader = Worker(executor: engine.executors[1])
            engine.spawn(on: writer.executor) { await writer.perform {
                mem.store(0, 1)
                if wmb { smp_wmb() }
                mem.store(1, 1)
                #expect(mem.load(0) == 1 && mem.load(1) == 1)                   // a CPU sees its own stores
                engine.point("writer:after")
            } }
            engine.spawn(on: reader.executor) { await reader.perform {
                engine.point("reader:before")
                let flag = mem.load(1)
                engine.point("reader:between")
                smp_rmb()
                got.withLock { $0 = [flag, mem.load(0)] }
            } }
            engine.runSchedule()
            #expect(!engine.deadlocked)
            #expect(mem.peek(0) == 1 && mem.peek(1) == 1, "every store is visible when the schedule ends")
            seen.insert(got.withLock { $0 })
        }
        return seen
    }

    @Test func aMissingWriteBarrierShowsUnderPSO() {
        let seen = outcomes(pso: true, wmb: false)
        #expect(seen.contains([1, 0]), "flag seen without the data: \(seen)")
        #expect(seen.contains([1, 1]) && seen.contains([0, 0]))
    }

    @Test func theWriteBarrierOrdersTheStores() {
        let seen = outcomes(pso: true, wmb: true)
        #expect(!seen.contains([1, 0]), "\(seen)")
        #expect(seen.contains([1, 1]) && seen.contains([0, 0]) && seen.contains([0, 1]))
    }

    @Test func sequentialConsistencyNeverReorders() {
        let seen = outcomes(pso: false, wmb: false)
        #expect(!seen.contains([1, 0]), "\(seen)")
    }

    /// smp_mb(), a read-modify-write and a lock release drain the buffer: the
    /// reader, run after each, sees the store.
    @Test func fencesDrainTheBuffer() {
        let engine = SimEngine(mode: .deterministic, actorNames: Self.names)
        defer { engine.shutdown() }
        let lock = SpinLock("spin_lock(&test)", engine: engine)
        for fence in 0..<3 {
            let mem = WeakWords(count: 2)
            let other = AtomicWords(count: 1)
            defer { mem.free(); other.free() }
            let visible = Mutex<UInt64>(9)
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
            engine.enableStoreBuffer(owner: 0, drainers: (2, 3))
            let writer = Worker(executor: engine.executors[0])
            engine.spawn(on: writer.executor) { await writer.perform {
                if fence == 2 { lock.lock() }
                mem.store(0, 7)
                visible.withLock { $0 = mem.peek(0) }                             // still pending
                switch fence {
                case 0: smp_mb()
                case 1: other.add(0, 1)
                default: lock.unlock()
                }
                let after = mem.peek(0)
                visible.withLock { $0 = $0 * 10 + after }
            } }
            engine.runSchedule()
            #expect(visible.withLock { $0 } == 7, "fence \(fence): pending before (0), visible after (7)")
        }
    }
}

extension Worker {
    func perform(_ body: @Sendable () -> Void) { body() }
}
