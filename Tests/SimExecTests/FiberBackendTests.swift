import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import SimExec

/// The fiber backend of deterministic mode against the thread backend, and the
/// runtime state a fiber switch must carry (Sources/CFiber).
@Suite struct FiberBackendTests {
    @Test func fibersAreAvailableHere() {
        #expect(SimEngine.DeterministicBackend.fibersSupported)
        let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
        defer { engine.shutdown() }
        #expect(engine.backend == .fibers)
    }

    @Test func bothBackendsGiveTheSameSchedules() {
        let fibers = SimEngine(mode: .deterministic, actorNames: ["a", "b", "c"], backend: .fibers)
        let threads = SimEngine(mode: .deterministic, actorNames: ["a", "b", "c"], backend: .threads)
        defer { fibers.shutdown(); threads.shutdown() }
        #expect(fibers.backend == .fibers && threads.backend == .threads)
        for seed in UInt64(0)..<50 {
            let f = runOnce(seed: seed, engine: fibers)
            let t = runOnce(seed: seed, engine: threads)
            #expect(f.0 == t.0 && f.1 == t.1, "seed \(seed)")
        }
    }

    /// An engine's schedules may be run from different OS threads (Swift Testing
    /// moves tasks between pool threads): the runtime's thread-local blocks are
    /// found again on each.
    @Test func schedulesRunFromAnotherThread() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"], backend: .fibers)
        defer { engine.shutdown() }
        let here = runOnce(seed: 7, engine: engine)
        let there = Mutex<(String, UInt64)?>(nil)
        runOnNewThread { let r = runOnce(seed: 7, engine: engine); there.withLock { $0 = r } }
        #expect(there.withLock { $0 }.map { $0.0 == here.0 && $0.1 == here.1 } == true)
    }

    /// A waiter is never picked while its condition is false, on either backend.
    @Test(arguments: [SimEngine.DeterministicBackend.fibers, .threads])
    func waitUntilHandsOver(backend: SimEngine.DeterministicBackend) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["waiter", "setter"], backend: backend)
        defer { engine.shutdown() }
        for seed in UInt64(0)..<20 {
            let flag = Atomic<Int>(0)
            let order = Mutex<[String]>([])
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: seed)
            let w = Worker(executor: engine.executors[0]), s = Worker(executor: engine.executors[1])
            engine.spawn(on: w.executor) { await w.call { engine.waitUntil("wait") { flag.load(ordering: .relaxed) == 1 }; order.withLock { $0.append("woke") } } }
            engine.spawn(on: s.executor) { await s.call { engine.point("before"); order.withLock { $0.append("set") }; flag.store(1, ordering: .relaxed) } }
            engine.runSchedule()
            #expect(order.withLock { $0 } == ["set", "woke"])
            #expect(!engine.deadlocked)
        }
    }

    /// Nobody can run while a task still waits: the deadlock is reported and the
    /// engine is wedged (the waiting fiber is never resumed).
    @Test func deadlockIsReported() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"], backend: .fibers)
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let a = Worker(executor: engine.executors[0])
        engine.spawn(on: a.executor) { await a.call { engine.waitUntil("never") { false } } }
        engine.runSchedule()
        #expect(engine.deadlocked)
        #expect(engine.wedged)
        #expect(engine.violations.first?.oracle == "deadlock")
    }

    /// A point inside an exclusive access (a `modify` of a class property): the
    /// access belongs to the paused fiber's runtime state, so another actor that
    /// reads the same property meanwhile is not reported as a simultaneous access
    /// of its own (as with one thread per actor, where the checks are per thread).
    /// Fails (a runtime trap in a debug build) if a switch left the access set behind.
    @Test func exclusiveAccessesStayWithTheirFiber() {
        final class Shared: @unchecked Sendable { var value = 0 }
        let engine = SimEngine(mode: .deterministic, actorNames: ["writer", "reader"], backend: .fibers)
        defer { engine.shutdown() }
        let shared = Shared()
        @Sendable func bump(_ x: inout Int, _ engine: SimEngine) { engine.point("inside modify"); x += 1 }
        for seed in UInt64(0)..<20 {
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: seed)
            let w = Worker(executor: engine.executors[0]), r = Worker(executor: engine.executors[1])
            engine.spawn(on: w.executor) { await w.call { bump(&shared.value, engine) } }
            engine.spawn(on: r.executor) { await r.call { engine.point("before read"); _ = shared.value } }
            engine.runSchedule()
            #expect(!engine.deadlocked)
        }
        #expect(shared.value == 20)
    }
}

extension Worker {
    func call(_ body: () -> Void) { body() }
}

final class ThreadBody { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }

/// Runs `body` on a new pthread and waits for it.
func runOnNewThread(_ body: @escaping @Sendable () -> Void) {
    let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { p in
        Unmanaged<ThreadBody>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, arg)
    precondition(rc == 0)
    pthread_join(tid, nil)
}
