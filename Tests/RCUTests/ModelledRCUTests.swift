// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Synchronization
import SimExec
@testable import RCU

/// A reader and a writer actor on the deterministic engine.
actor Probe: SimActor {
    nonisolated let executor: SimExecutor
    init(_ e: SimExecutor) { executor = e }
    func run(_ body: @Sendable () -> Void) { body() }
}

final class Log: @unchecked Sendable {
    let lines = Mutex<[String]>([])
    func add(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite struct ModelledRCUTests {
    /// synchronize_rcu() returns only after a reader that was inside its section
    /// when the grace period began has left it, in every interleaving.
    @Test func gracePeriodWaitsForOvertakenReader() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["reader", "writer"])
        defer { engine.shutdown() }
        var sawReaderInsideAtStart = false
        for seed in 0..<300 {
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: UInt64(seed))
            let rcu = ModelledRCU(engine: engine)
            let log = Log()
            let r = Probe(engine.executors[0]), w = Probe(engine.executors[1])
            engine.spawn(on: r.executor) { await r.run {
                rcu.read {
                    log.add("reader-in")
                    engine.point("inside")
                    engine.point("inside")
                    log.add("reader-out")
                }
            } }
            engine.spawn(on: w.executor) { await w.run {
                engine.point("before")
                log.add(rcu.readOngoing ? "bad" : "gp-start")
                rcu.synchronize()
                log.add("gp-end")
            } }
            engine.runSchedule()
            let l = log.all
            let start = l.firstIndex(of: "gp-start")!, end = l.firstIndex(of: "gp-end")!
            if let rin = l.firstIndex(of: "reader-in"), rin < start, let rout = l.firstIndex(of: "reader-out"), rout > start {
                sawReaderInsideAtStart = true
                #expect(rout < end, "grace period ended before the reader left: \(l)")
            }
        }
        #expect(sawReaderInsideAtStart, "no schedule overtook the reader inside its section")
    }

    /// call_rcu callbacks run only after pre-existing readers finish, in order.
    @Test func callbacksWaitForReaders() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        let rcu = ModelledRCU(engine: engine)
        let log = Log()
        rcu.readLock()                       // foreign thread: the last slot
        rcu.callRCU { log.add("cb1") }
        rcu.callRCU { log.add("cb2") }
        #expect(log.all.isEmpty)
        rcu.readUnlock()
        #expect(log.all == ["cb1", "cb2"])
        rcu.callRCU { log.add("cb3") }       // no reader: runs at once
        #expect(log.all == ["cb1", "cb2", "cb3"])
        #expect(rcu.completedGracePeriods == 3)
    }

    @Test func synchronizeInsideReadSectionIsReported() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let rcu = ModelledRCU(engine: engine)
        rcu.read { rcu.synchronize() }
        #expect(engine.violations.map(\.oracle) == ["rcu-misuse"])
    }
}

@Suite struct LibURCUTests {
    /// Real liburcu on the engine's own (registered) threads: readers and a writer
    /// that publishes, waits a grace period and retires.
    @Test func readersAndGracePeriodsOnRealThreads() {
        let engine = SimEngine(mode: .parallel, actorNames: ["r0", "r1", "w"])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let reads = Atomic<Int>(0)
        let callbacks = Atomic<Int>(0)
        for i in 0..<2 {
            let p = Probe(engine.executors[i])
            engine.spawn(on: p.executor) { await p.run {
                for _ in 0..<10_000 { rcu.read { #expect(rcu.readOngoing) }; reads.add(1, ordering: .relaxed) }
            } }
        }
        let w = Probe(engine.executors[2])
        engine.spawn(on: w.executor) { await w.run {
            for _ in 0..<20 {
                rcu.synchronize()
                rcu.callRCU { callbacks.add(1, ordering: .relaxed) }
            }
            rcu.barrier()
        } }
        engine.waitForTasks()
        #expect(reads.load(ordering: .relaxed) == 20_000)
        #expect(rcu.completedGracePeriods == 20)
        #expect(callbacks.load(ordering: .relaxed) == 20)
    }
}
