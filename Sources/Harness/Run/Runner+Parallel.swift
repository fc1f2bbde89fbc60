// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
#if canImport(Glibc)
import Glibc
#endif

/// Parallel mode: one world, every actor on a real thread, bounded by seconds
/// or work units.
extension Runner {
    func runParallel() -> RunReport {
        if options.recordTrace { return runParallelEpisodes() }
        let o = options
        let engine = SimEngine(mode: .parallel, actorNames: o.selection.actorNames)
        engine.stopOnViolation = !o.keepGoing
        let start = Date()
        let t0 = SimEngine.monotonicSeconds()
        // One world for the whole run, never reset: its words in cache lines
        // of their own, and no record of them for a reset.
        let world = AtomicWords.withCacheLineLayout {
            WorldMemory.withoutRecording { o.selection.makeWorld(engine: engine, seed: o.seed) }
        }
        let seconds = o.seconds ?? (o.schedules == nil ? 10 : .infinity)
        world.start(endless: true)
        while true {
            usleep(20_000)
            let elapsed = Date().timeIntervalSince(start)
            let done = world.completedWork
            if engine.stopRequested || interrupted || elapsed >= seconds { break }
            if let s = o.schedules, done >= s { break }
            progress?(done, o.schedules, elapsed)
        }
        engine.requestStop()
        engine.waitForTasks()
        world.finish()
        let v = engine.violations
        addCounters(of: world)
        violationTotals = engine.violationCounts
        engine.takeCoverage(into: &coverageCounts)
        let r = report(schedules: world.completedWork, violations: engine.violationTotal, first: v.first.map { (0, $0) },
                       elapsed: Date().timeIntervalSince(start), traceHash: nil, steps: 0,
                       secondsToFirst: engine.firstViolationTime.map { $0 - t0 })
        engine.shutdown()
        return r
    }
}
