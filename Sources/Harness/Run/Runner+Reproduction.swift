// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
import RCU

/// A failure real threads found, turned into a deterministic trace.
///
/// Parallel mode with `recordTrace` runs the work as episodes: worlds of the
/// deterministic schedules' size (and lengths), one after the other on the same
/// executor threads, each with its own seed. Every executor records the points
/// it passes with a timestamp (`SimEngine+Recording.swift`). When an episode
/// fails, the merged passes are the order in which the actors ran their
/// segments: the decision list of a deterministic replay of the same world.
/// Two actors can interleave inside a segment on real threads, where the
/// deterministic scheduler switches only at points, so the recorded order may
/// not fail as it did; then the search tries schedules around it (the recorded
/// order with a growing share of random switches, and plain random schedules of
/// the same world) until the same oracle fires, and the trace is shrunk.
extension Runner {
    /// A failing episode: its world, its seed, what the actors passed, what broke.
    struct ParallelFailure {
        var episode: Int
        var worldSeed: UInt64
        var selection: ScenarioSelection
        var actors: [String]
        var passes: [(actor: Int, point: StaticString)]
        var violation: Violation
    }

    struct Reproduction {
        var trace: TraceFile?
        var schedules: Int
        var seconds: Double
        var shrinkSeconds: Double?
        /// Points the failing episode's actors passed, and how many of them the
        /// first, guided replay could not follow (the actor named was blocked
        /// or done): how well the recording and the replay line up.
        var recordedSteps: Int
        var guidedMisses: Int
    }

    /// Parallel mode, recording: episodes until the time or work budget ends,
    /// then the first failure reproduced.
    func runParallelEpisodes() -> RunReport {
        let o = options
        let names = o.selection.actorNames
        let engine = SimEngine(mode: .parallel, actorNames: names, points: o.points)
        engine.stopOnViolation = true
        engine.recordPasses = true
        engine.deferRCUBarriers = true
        let start = Date()
        let t0 = SimEngine.monotonicSeconds()
        let seconds = o.seconds ?? (o.schedules == nil ? 10 : .infinity)
        var episode = 0, work = 0, violations = 0
        var failure: ParallelFailure?
        var firstAt: Double?
        while !interrupted && Date().timeIntervalSince(start) < seconds {
            if let s = o.schedules, work >= s { break }
            let selection = selection(forSchedule: episode)
            let worldSeed = SplitMix64.derive(o.seed, UInt64(episode))
            engine.beginEpisode()
            let world = WorldMemory.withoutRecording { selection.makeWorld(engine: engine, seed: worldSeed) }   // never reset
            world.start(endless: false)
            engine.waitForTasks()
            world.finish()
            work += world.completedWork
            addCounters(of: world)
            violationTotals.merge(engine.violationCounts, uniquingKeysWith: +)
            engine.takeCoverage(into: &coverageCounts)
            if let v = engine.violations.first {
                violations += engine.violationTotal
                if failure == nil {
                    failure = ParallelFailure(episode: episode, worldSeed: worldSeed, selection: selection, actors: names,
                                              passes: engine.mergedPasses(), violation: v)
                    firstAt = engine.firstViolationTime.map { $0 - t0 }
                }
                if !o.keepGoing { episode += 1; break }
            }
            episode += 1
            progress?(work, o.schedules, Date().timeIntervalSince(start))
        }
        engine.deferRCUBarriers = false
        makeRCU(for: engine).barrier()                       // the episodes' callbacks, all of them
        engine.shutdown()
        var reproduction: Reproduction?
        if let failure, !interrupted {
            reproduction = reproduce(failure)
            failingTraces = reproduction?.trace.map { [$0] } ?? []
        }
        var r = report(schedules: work, violations: violations, first: failure.map { ($0.episode, $0.violation) },
                       elapsed: Date().timeIntervalSince(start), traceHash: nil, steps: 0, secondsToFirst: firstAt)
        r.episodes = episode
        if let reproduction {
            r.reproduced = reproduction.trace != nil
            r.reproductionSeconds = reproduction.seconds
            r.reproductionSchedules = reproduction.schedules
            r.shrinkSeconds = reproduction.shrinkSeconds
            r.recordedSteps = reproduction.recordedSteps
            r.guidedReplayMisses = reproduction.guidedMisses
        }
        return r
    }

    /// Searches for a deterministic schedule of the failing episode's world that
    /// fails the same oracle: first the recorded order itself, then that order
    /// with random switches in a window before its end (the last 16, 64, 256,
    /// 1024 steps or all of it; a switch at 1/16, 1/4 or 1/2 of the window's
    /// steps), and now and then a plain random schedule, until
    /// `reproductionSeconds`. The trace found is the schedule the engine took,
    /// cut at the violation and shrunk (for at most `reproductionShrinkSeconds`).
    func reproduce(_ f: ParallelFailure) -> Reproduction {
        let start = SimEngine.monotonicSeconds()
        let recorded = f.passes.map { UInt16($0.actor) }
        let points = options.points
        var engine = SimEngine(mode: .deterministic, actorNames: f.actors, backend: options.backend, points: points)
        defer { engine.shutdown() }
        let windows = [16, 64, 256, 1024, recorded.count]
        let probabilities: [Double] = [0.0625, 0.25, 0.5]
        let random = RandomStrategy()
        var attempt = 0, guidedMisses = 0
        while SimEngine.monotonicSeconds() - start < options.reproductionSeconds && !interrupted {
            let strategy: SchedulingStrategy
            switch attempt {
            case 0: strategy = GuidedStrategy(decisions: recorded)
            case let n where n % 8 == 7: strategy = random
            default:
                let window = windows[attempt % windows.count], p = probabilities[(attempt / windows.count) % probabilities.count]
                strategy = PerturbedStrategy(decisions: recorded, probability: p, from: max(0, recorded.count - window))
            }
            attempt += 1
            let found = runSchedule(engine: engine, strategy: strategy, scheduleSeed: f.worldSeed, selection: f.selection,
                                    strategySeed: SplitMix64.derive(f.worldSeed, UInt64(attempt)))
            let taken = engine.decisions
            if attempt == 1, let g = strategy as? GuidedStrategy { guidedMisses = g.misses.count }
            if engine.wedged { engine = SimEngine(mode: .deterministic, actorNames: f.actors, backend: options.backend, points: points) }
            // The same oracle, and first: the trace replays to the violation it records.
            guard let v = found.first, v.oracle == f.violation.oracle, v.step > 0, v.step <= taken.count else { continue }
            var trace = TraceFile(selection: f.selection, seed: options.seed, schedule: f.episode, scheduleSeed: f.worldSeed,
                                  strategy: options.strategy, depth: options.depth, actors: f.actors,
                                  decisions: Array(taken.prefix(v.step)), violation: v, points: points)
            let reproducedAt = SimEngine.monotonicSeconds()
            if let minimal = try? Shrinker.shrink(trace, maxReplays: 2000, seconds: options.reproductionShrinkSeconds).trace {
                trace = minimal
            }
            return Reproduction(trace: trace, schedules: attempt, seconds: reproducedAt - start,
                                shrinkSeconds: SimEngine.monotonicSeconds() - reproducedAt,
                                recordedSteps: recorded.count, guidedMisses: guidedMisses)
        }
        return Reproduction(trace: nil, schedules: attempt, seconds: SimEngine.monotonicSeconds() - start,
                            recordedSteps: recorded.count, guidedMisses: guidedMisses)
    }
}
