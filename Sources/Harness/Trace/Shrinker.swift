// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Reduces a failing schedule to a small one that fails the same oracle:
/// fewest steps first, then fewest preemptions (a switch away from an actor that
/// could have kept running). Deterministic: the same trace always shrinks to the
/// same result.
///
/// Candidates are replayed with `GuidedStrategy` (invalid decisions skipped,
/// no preemption past the end of the list), so every candidate is a real
/// schedule of the model; the result is the decision list the engine actually
/// took, cut at the violation, and replays exactly with `kvmsim replay`.
/// Passes, repeated until none helps: delete chunks of decisions (halving
/// sizes, as in delta debugging), then remove single context switches.
public enum Shrinker {
    public struct Result: Sendable {
        public var trace: TraceFile
        public var originalSteps: Int
        public var originalPreemptions: Int
        public var steps: Int { trace.decisions.count }
        public var preemptions: Int
        public var replays: Int
    }

    struct Outcome {
        var decisions: [UInt16]
        var preemptions: Int
        var violation: Violation
        var key: (Int, Int) { (decisions.count, preemptions) }
    }

    /// Shrinks `t`, which must record a violation. At most `maxReplays`
    /// candidate runs, and no new one after `seconds` (unbounded by default, so
    /// the result is the same on every machine).
    public static func shrink(_ t: TraceFile, maxReplays: Int = 4000, seconds: Double = .infinity) throws(InputError) -> Result {
        let deadline = SimEngine.monotonicSeconds() + seconds
        guard let target = t.violation?.oracle else { throw InputError("the trace records no violation: nothing to shrink") }
        var o = RunOptions(t.selection)
        o.seed = t.seed
        o.points = t.points
        let runner = try Runner(o)
        var engine = SimEngine(mode: .deterministic, actorNames: t.actors, points: t.points)
        defer { engine.shutdown() }
        var replays = 0
        var budgetLeft: Bool { replays < maxReplays && SimEngine.monotonicSeconds() < deadline }

        func attempt(_ decisions: [UInt16]) -> Outcome? {
            replays += 1
            let strategy = GuidedStrategy(decisions: decisions)
            let found = runner.runSchedule(engine: engine, strategy: strategy, scheduleSeed: t.scheduleSeed)
            let taken = engine.decisions
            if engine.wedged { engine.shutdown(); engine = SimEngine(mode: .deterministic, actorNames: t.actors, points: t.points) }
            // The target must be the first thing that breaks: a replay of the
            // result then ends at the violation the trace records.
            guard let v = found.first, v.oracle == target, v.step > 0, v.step <= taken.count else { return nil }
            let cut = Array(taken.prefix(v.step))
            return Outcome(decisions: cut, preemptions: strategy.preempted.prefix(v.step).filter { $0 }.count, violation: v)
        }

        guard var best = attempt(t.decisions) else {
            throw InputError("the trace no longer fails \(target): the model or the trace changed")
        }
        let original = best
        var improved = true
        while improved && budgetLeft {
            improved = false
            // Chunk deletion, largest chunks first.
            var size = max(1, best.decisions.count / 2)
            while size >= 1 && budgetLeft {
                var start = 0
                while start < best.decisions.count && budgetLeft {
                    var cand = best.decisions
                    cand.removeSubrange(start..<min(start + size, cand.count))
                    if let r = attempt(cand), r.key < best.key { best = r; improved = true } else { start += size }
                }
                size /= 2
            }
            // Context-switch removal: let the previous actor run one step longer.
            var i = 1
            while i < best.decisions.count && budgetLeft {
                if best.decisions[i] != best.decisions[i - 1] {
                    var cand = best.decisions
                    cand[i] = cand[i - 1]
                    if let r = attempt(cand), r.key < best.key { best = r; improved = true; continue }
                }
                i += 1
            }
        }
        var out = t
        out.decisions = best.decisions
        out.violation = best.violation
        return Result(trace: out, originalSteps: original.decisions.count, originalPreemptions: original.preemptions,
                      preemptions: best.preemptions, replays: replays)
    }
}
