// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import Harness
import Catalog
import TestSupport

/// Deterministic mode starts workloads as body jobs (`SimEngine.spawnBody`),
/// not Swift tasks: one job, so one step, a workload (trace version 2).
@Suite struct WorkloadBodyTests {
    /// A deterministic engine with two host CPUs, its schedule begun, and a
    /// word per CPU for the bodies to mark (the caller shuts the engine down
    /// and frees the words).
    static func twoCPUs(_ backend: SimEngine.DeterministicBackend, scheduleSeed: UInt64) -> (SimEngine, [HostCPU], AtomicWords) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "cpu1"], backend: backend)
        let cpus = engine.executors.enumerated().map { HostCPU(index: $0.offset, executor: $0.element) }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: scheduleSeed)
        return (engine, cpus, AtomicWords(count: 2))
    }

    /// `spawnWork` and `spawnLoop` start a workload in one step, on its
    /// actor's executor (the job calls the workload; it needs no isolation),
    /// on both backends.
    @Test(arguments: [SimEngine.DeterministicBackend.fibers, .threads])
    func aWorkloadStartsInOneStep(backend: SimEngine.DeterministicBackend) {
        let (engine, cpus, ran) = Self.twoCPUs(backend, scheduleSeed: 5)
        defer { engine.shutdown(); ran.free() }
        engine.spawnWork(on: cpus[0], seed: 1, salt: 0) { _ in
            engine.point("work")
            ran.store(0, SimExecutor.current === cpus[0].executor ? 1 : 2)
        }
        engine.spawnLoop(on: cpus[1], seed: 1, salt: 1, endless: false, quota: 2, { _, _ in
            engine.point("loop")
            ran.add(1, SimExecutor.current === cpus[1].executor ? 1 : 100)
        })
        engine.runSchedule()
        #expect(ran.load(0) == 1 && ran.load(1) == 2)
        #expect(engine.violations.isEmpty)
        #expect(engine.decisions.count == 5)                // two starts, three points
    }

    /// The thread backend runs body jobs on the executors' threads: the same
    /// schedules as the fibers (one scenario; `DeterminismTests` compares the
    /// backends for every scenario).
    @Test func theThreadBackendRunsBodyJobsAlike() throws {
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .deterministic)
        o.schedules = 30
        o.backend = .fibers
        let fibers = try Runner(o).run()
        o.backend = .threads
        let threads = try Runner(o).run()
        #expect(fibers.traceHash == threads.traceHash)
    }

    /// A body job runs isolated to nothing; the work takes its actor's
    /// isolation with `assumeIsolated`, which the executor grants on its own
    /// fiber (`SimExecutor.checkIsolated`).
    @Test(arguments: [SimEngine.DeterministicBackend.fibers, .threads])
    func aBodyJobTakesItsActorsIsolation(backend: SimEngine.DeterministicBackend) {
        let (engine, cpus, ran) = Self.twoCPUs(backend, scheduleSeed: 3)
        defer { engine.shutdown(); ran.free() }
        for cpu in cpus {
            engine.spawnBody(on: cpu.executor) {
                cpu.assumeIsolated { c in
                    c.run {
                        engine.point("body")
                        ran.store(cpu.index, SimExecutor.current === cpu.executor ? 1 : 2)
                    }
                }
            }
        }
        engine.runSchedule()
        #expect(ran.load(0) == 1 && ran.load(1) == 1)
        #expect(engine.violations.isEmpty)
        #expect(engine.decisions.count == 4)                // each body's job and its point
    }

    /// A body job that waits forever: the deadlock is reported with the
    /// unfinished job counted, on both backends, and the engine is wedged.
    @Test(arguments: [SimEngine.DeterministicBackend.fibers, .threads])
    func aStuckBodyJobIsADeadlock(backend: SimEngine.DeterministicBackend) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"], backend: backend)
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        engine.spawnBody(on: engine.executors[0]) { engine.waitUntil("never") { false } }
        engine.spawnBody(on: engine.executors[1]) { engine.point("done") }
        engine.runSchedule()
        #expect(engine.deadlocked)
        #expect(engine.wedged)
        #expect(engine.violations.first?.oracle == "deadlock")
        #expect(engine.violations.first?.message.contains("1 task(s) have not finished") == true)
    }
}
