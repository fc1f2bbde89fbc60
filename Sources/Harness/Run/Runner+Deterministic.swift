// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// Deterministic mode: seeded schedules, a fresh world for each, the first
/// failing one kept as a trace.
extension Runner {
    func runDeterministic() -> RunReport {
        let o = options
        let names = o.selection.actorNames
        var engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend, points: o.points)
        let strategy = makeStrategy()
        let start = Date()
        let budget = o.schedules ?? (o.seconds == nil ? 1000 : Int.max)
        var hash = FNV1a64()
        var ran = 0, violations = 0, steps = 0
        var first: (schedule: Int, violation: Violation)?
        var firstAt: Double?
        var mismatch: DeterminismMismatch?
        let t0 = SimEngine.monotonicSeconds()
        var lastProgress = start
        let cache = o.resetWorlds ? WorldCache(slots: scaledSelections.count) : nil
        while ran < budget {
            if interrupted { break }
            if let s = o.seconds, Date().timeIntervalSince(start) >= s { break }
            let scheduleSeed = SplitMix64.derive(o.seed, UInt64(ran))
            let selection = selection(forSchedule: ran)
            let slot = ran % scaledSelections.count
            let found = runSchedule(engine: engine, strategy: strategy, scheduleSeed: scheduleSeed, selection: selection,
                                    cache: cache, slot: slot)
            if o.checkDeterminism && !engine.wedged {
                let (d1, h1) = (engine.decisions, engine.scheduleHash)
                _ = runSchedule(engine: engine, strategy: strategy, scheduleSeed: scheduleSeed, selection: selection,
                                cache: cache, slot: slot)
                if engine.decisions != d1 || engine.scheduleHash != h1 {
                    let d2 = engine.decisions
                    let at = (0..<min(d1.count, d2.count)).first { d1[$0] != d2[$0] } ?? min(d1.count, d2.count)
                    mismatch = DeterminismMismatch(schedule: ran, step: at,
                                                   first: at < d1.count ? names[Int(d1[at])] : nil,
                                                   second: at < d2.count ? names[Int(d2[at])] : nil)
                }
            }
            steps += engine.stepCount
            (strategy as? PCTStrategy)?.observe(scheduleLength: engine.stepCount)
            hash.combine(engine.scheduleHash)
            if !found.isEmpty {
                violations += engine.violationTotal
                if first == nil {
                    first = (ran, found[0])
                    firstAt = engine.firstViolationTime.map { $0 - t0 }
                }
                if failingTraces.count < failingTracesToKeep {
                    failingTraces.append(TraceFile(selection: selection, seed: o.seed, schedule: ran, scheduleSeed: scheduleSeed,
                                                   strategy: o.strategy, depth: o.depth, actors: names, decisions: engine.decisions,
                                                   violation: found[0], points: o.points))
                }
            }
            ran += 1
            if engine.wedged {
                cache?.clear()                              // its worlds hold the old engine's executors
                engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend, points: o.points)
            }
            if (first != nil && !o.keepGoing && failingTraces.count >= failingTracesToKeep) || mismatch != nil { break }
            if let progress, ran & 63 == 0 {
                let now = Date()
                if now.timeIntervalSince(lastProgress) > 0.2 { lastProgress = now; progress(ran, o.schedules, now.timeIntervalSince(start)) }
            }
        }
        cache?.clear()
        engine.shutdown()
        return report(schedules: ran, violations: violations, first: first, elapsed: Date().timeIntervalSince(start),
                      traceHash: String(format: "%016llx", hash.value), steps: steps, secondsToFirst: firstAt, mismatch: mismatch)
    }

    /// Runs one schedule on `engine` and returns its violations: the world of
    /// `selection` (the run's by default) built from `scheduleSeed`, the
    /// strategy reset from `strategySeed` (the same seed by default).
    /// With `cache`, the world of its slot is reset in place when it can be
    /// (`ResettableWorld`), and kept there after a schedule that finished
    /// cleanly; after one that failed, the slot's next world is built
    /// unrecorded (`WorldCache.lastFailed`).
    func runSchedule(engine: SimEngine, strategy: SchedulingStrategy, scheduleSeed: UInt64, selection: ScenarioSelection? = nil,
                     strategySeed: UInt64? = nil, cache: WorldCache? = nil, slot: Int = 0) -> [Violation] {
        engine.beginSchedule(strategy: strategy, scheduleSeed: strategySeed ?? scheduleSeed)
        let world: any ScenarioWorld
        if let reset = cache?.take(slot: slot, seed: scheduleSeed) {
            world = reset
            worldResets += 1
        } else if let cache, !cache.lastFailed[slot] {
            world = (selection ?? options.selection).makeWorld(engine: engine, seed: scheduleSeed)
        } else {
            // Never reset (no cache), or likely not (the slot's last schedule
            // failed, and a failing schedule's world is not kept): no
            // snapshot of its words (`WorldMemory`).
            world = WorldMemory.withoutRecording { (selection ?? options.selection).makeWorld(engine: engine, seed: scheduleSeed) }
        }
        world.start(endless: false)
        engine.runSchedule()
        if !engine.deadlocked { world.finish() }
        addCounters(of: world)
        if engine.hung {
            engine.report(.livelock, "the schedule ran \(engine.maxSteps) steps without finishing")
        }
        if let cache {
            let clean = engine.violations.isEmpty && !engine.deadlocked && !engine.hung && !engine.wedged && !engine.stopRequested
            if clean && world.resettable != nil { cache.worlds[slot] = world }
            cache.lastFailed[slot] = !clean
        }
        violationTotals.merge(engine.violationCounts, uniquingKeysWith: +)
        engine.takeCoverage(into: &coverageCounts)
        return engine.violations
    }
}
