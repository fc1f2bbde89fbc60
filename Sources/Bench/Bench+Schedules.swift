// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
import RCU
import KVMCore
import Harness
import Catalog
import MIPS
import CURCU
import BenchC
#if canImport(Glibc)
import Glibc
#endif


/// Figures 3 and 4: deterministic schedules and parallel guest accesses.
extension Bench {
    // MARK: 3. schedules

    /// sync-mmu-race (patched) in deterministic mode, and a bare world with the
    /// same actors, each passing the same number of scheduling points per
    /// schedule and doing nothing else. Model and bare world take turns, three
    /// rounds of `count / 3` schedules each, and each figure is its best round:
    /// a schedule takes 10-30 us, so one short run is at the mercy of whatever
    /// else the machine does, and interference only ever slows a round down.
    /// Then what a world costs, built and torn down against reset in place:
    /// sync-mmu-race's and tdp-mmu-race's (`upstream`).
    static func schedules(_ r: inout Report, count: Int) throws(InputError) {
        let rounds = 3, perRound = max(1, count / rounds)
        let o = try modelRun(schedules: perRound)
        let names = o.selection.actorNames
        let engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend)
        defer { engine.shutdown() }
        r.deterministicBackend = engine.backend.rawValue
        let strategy = RandomStrategy()
        var model = 0.0, bare = 0.0, fresh = 0.0
        var freshOptions = o
        freshOptions.resetWorlds = false
        for _ in 0..<rounds {
            let rep = try Runner(o).run()
            model = max(model, Double(rep.schedules) / rep.elapsedSeconds)
            let freshRep = try Runner(freshOptions).run()
            fresh = max(fresh, Double(freshRep.schedules) / freshRep.elapsedSeconds)
            r.stepsPerSchedule = Double(rep.steps) / Double(max(1, rep.schedules))
            let perActor = max(1, Int(r.stepsPerSchedule.rounded()) / names.count)
            let start = now()
            bareSchedules(perRound, engine: engine, strategy: strategy, pointsPerActor: perActor)
            bare = max(bare, Double(perRound) / (now() - start))
        }
        r.schedulesPerSecond = model
        r.freshWorldSchedulesPerSecond = fresh
        (r.worldBuildMicroseconds, r.worldResetMicroseconds) = worldCosts(o.selection, engine: engine, count: max(100, perRound / 5))
        let tdp = try RunOptions(scenario: "tdp-mmu-race", variant: "upstream", mode: .deterministic).selection
        let tdpEngine = SimEngine(mode: .deterministic, actorNames: tdp.actorNames, backend: o.backend)
        defer { tdpEngine.shutdown() }
        (r.tdpWorldBuildMicroseconds, r.tdpWorldResetMicroseconds) = worldCosts(tdp, engine: tdpEngine, count: max(100, perRound / 5))
        r.bareSchedulesPerSecond = bare
        r.modelOverhead = model > 0 ? bare / model : 0
        var threads = o
        threads.backend = .threads
        threads.schedules = max(1, min(count / 10, 2000))
        let threadRep = try Runner(threads).run()
        r.threadBackendSchedulesPerSecond = Double(threadRep.schedules) / threadRep.elapsedSeconds
        var accesses = o
        accesses.points = .accesses
        accesses.schedules = max(1, count / 3)
        let accessRep = try Runner(accesses).run()
        r.accessPointSchedulesPerSecond = Double(accessRep.schedules) / accessRep.elapsedSeconds
        r.accessPointStepsPerSchedule = Double(accessRep.steps) / Double(max(1, accessRep.schedules))
    }

    /// The model's schedules of figure 3: sync-mmu-race `patched`, deterministic,
    /// `schedules` of the scenario's own length, all of them: `patched` (the
    /// fix as written, v4.11) has findings of its own (docs/mechanisms/sync-mmu.md),
    /// and a run that stopped at one would time a few hundred schedules.
    static func modelRun(schedules: Int) throws(InputError) -> RunOptions {
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .deterministic)
        o.schedules = schedules
        o.keepGoing = true
        o.lengths = [1]                                     // the scenario's own schedules, as the bare world's
        return o
    }

    /// The bare world of figure 3: `count` schedules of `engine`'s actors, each
    /// passing `pointsPerActor` scheduling points and doing nothing else. Its
    /// actors start as the model's workloads do (body jobs, `spawnBody`; Swift
    /// tasks before 2026-12-07), one job each.
    static func bareSchedules(_ count: Int, engine: SimEngine, strategy: RandomStrategy, pointsPerActor: Int) {
        for i in 0..<count {
            engine.beginSchedule(strategy: strategy, scheduleSeed: UInt64(i))
            for e in engine.executors {
                engine.spawnBody(on: e) { for _ in 0..<pointsPerActor { engine.point("bare") } }
            }
            engine.runSchedule()
        }
    }

    /// Microseconds to build and tear down one world of `selection` (as a run
    /// without resets builds it: unrecorded), and to reset one in place (0 if
    /// its world does not reset); best of 3 rounds.
    static func worldCosts(_ selection: ScenarioSelection, engine: SimEngine, count: Int) -> (build: Double, reset: Double) {
        var build = Double.infinity, reset = Double.infinity
        for _ in 0..<3 {
            var start = now()
            WorldMemory.withoutRecording {
                for i in 0..<count { _ = selection.makeWorld(engine: engine, seed: UInt64(i)) }
            }
            build = min(build, (now() - start) / Double(count) * 1e6)
            guard let w = selection.makeWorld(engine: engine, seed: 0).resettable else { return (build, 0) }
            start = now()
            for i in 0..<count { _ = w.reset(seed: UInt64(i)) }
            reset = min(reset, (now() - start) / Double(count) * 1e6)
        }
        return (build, reset)
    }

    // MARK: 4. accesses

    /// Guest accesses per second on real threads: sync-mmu-race's world (the
    /// no-change-pte form), no host event source, 2 vcpus on 2 CPUs vs. 1 on 1.
    static func accesses(_ r: inout Report, seconds: Double) throws(InputError) {
        func run(vcpus: Int) throws(InputError) -> Double {
            let scenario = SyncMMURaceScenario()
            var c = scenario.defaultConfig(mode: .parallel)
            c.cpus = vcpus; c.vcpus = vcpus; c.hostEventSources = 0; c.pages = 64; c.tableBits = 9
            var o = RunOptions(ScenarioSelection(scenario, variant: .noChangePTE, config: c), mode: .parallel)
            o.seconds = seconds
            let rep = try Runner(o).run()
            return Double(rep.schedules) / rep.elapsedSeconds
        }
        r.accessesPerSecond = try run(vcpus: 2)
        r.accessesPerSecondOneThread = try run(vcpus: 1)
        r.parallelScaling = r.accessesPerSecondOneThread > 0 ? r.accessesPerSecond / r.accessesPerSecondOneThread : 0
    }
}
