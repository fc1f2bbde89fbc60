// SPDX-License-Identifier: GPL-2.0-only

/// How the deterministic scheduler picks the next actor at a scheduling point.
public enum StrategyKind: String, Sendable, CaseIterable, Codable {
    /// Uniformly random among the runnable actors at every step.
    case random
    /// Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010): random
    /// distinct priorities, the highest-priority runnable actor runs, and at `depth - 1`
    /// random steps the running actor drops below all others. Finds a bug of depth
    /// `d` with probability at least 1 / (n * k^(d-1)).
    case pct
}

/// A per-schedule picking policy. `choose` gets the runnable executor ids in
/// ascending order (a view of the engine's scratch buffer, valid for the call)
/// and returns one of them.
///
/// Strategies are called only under the engine's mutex; their state is marked
/// `@exclusivity(unchecked)` (a strategy call is made at every step).
///
/// Invariant: given the same `reset` arguments and the same sequence of `choose`
/// calls, a strategy returns the same choices (no hidden randomness).
public protocol SchedulingStrategy: AnyObject {
    func reset(scheduleSeed: UInt64, actorCount: Int)
    func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int
    /// The actor reached a yield point (it is retrying or spinning and cannot make
    /// progress until someone else runs).
    func yielded(_ actor: Int)
}

extension SchedulingStrategy {
    public func yielded(_ actor: Int) {}
}

public final class RandomStrategy: SchedulingStrategy {
    @exclusivity(unchecked) private var rng = SplitMix64(seed: 0)
    public init() {}
    public func reset(scheduleSeed: UInt64, actorCount: Int) { rng = SplitMix64(seed: scheduleSeed) }
    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        runnable.count == 1 ? runnable[0] : runnable[rng.below(runnable.count)]
    }
}

public final class PCTStrategy: SchedulingStrategy {
    public let depth: Int
    /// Estimated length of a schedule in steps (k in the paper); grows to the
    /// longest schedule seen so far.
    @exclusivity(unchecked) public private(set) var estimatedSteps: Int
    @exclusivity(unchecked) private var priorities: [Int] = []
    @exclusivity(unchecked) private var changePoints: [Int: Int] = [:]
    @exclusivity(unchecked) private var lowest = 0
    private var rng = SplitMix64(seed: 0)

    public init(depth: Int, estimatedSteps: Int = 200) {
        self.depth = max(1, depth)
        self.estimatedSteps = max(1, estimatedSteps)
    }

    public func observe(scheduleLength: Int) { estimatedSteps = max(estimatedSteps, scheduleLength) }

    public func reset(scheduleSeed: UInt64, actorCount: Int) {
        rng = SplitMix64(seed: scheduleSeed)
        // Initial priorities depth ..< depth + n, shuffled (Fisher-Yates on our PRNG).
        priorities = Array(depth..<(depth + actorCount))
        if actorCount > 1 {
            for i in stride(from: actorCount - 1, to: 0, by: -1) {
                priorities.swapAt(i, rng.below(i + 1))
            }
        }
        changePoints = [:]
        lowest = 0
        var i = 1
        while i < depth {
            let s = 1 + rng.below(estimatedSteps)
            if changePoints[s] == nil { changePoints[s] = depth - i; i += 1 }
        }
    }

    /// A yielding actor drops below every other (so a retry loop cannot starve the
    /// actor it waits for, which plain PCT would allow forever).
    public func yielded(_ actor: Int) {
        guard actor >= 0 && actor < priorities.count else { return }
        lowest -= 1
        priorities[actor] = lowest
    }

    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        if let newPriority = changePoints[step], previous >= 0, previous < priorities.count {
            priorities[previous] = newPriority
        }
        var best = runnable[0]
        for id in runnable.dropFirst() where priorities[id] > priorities[best] { best = id }
        return best
    }
}

/// Replays a recorded decision list. A decision that names an actor that is not
/// runnable makes the trace inconsistent with the model (`mismatch` is set and the
/// smallest runnable id is used so that the run can finish).
public final class ReplayStrategy: SchedulingStrategy {
    public let decisions: [UInt16]
    @exclusivity(unchecked) public private(set) var mismatch: (step: Int, wanted: Int, runnable: [Int])?
    public init(decisions: [UInt16]) { self.decisions = decisions }
    public func reset(scheduleSeed: UInt64, actorCount: Int) { mismatch = nil }
    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        guard step < decisions.count else { return runnable[0] }
        let wanted = Int(decisions[step])
        if runnable.contains(wanted) { return wanted }
        if mismatch == nil { mismatch = (step, wanted, Array(runnable)) }
        return runnable[0]
    }
}

/// Follows a decision list leniently, for shrinking: a decision naming an actor
/// that cannot run is skipped over (the running actor continues if it can, else
/// the smallest runnable id), and past the end of the list the running actor
/// keeps running (no preemption) while it can. Records which steps preempted an
/// actor that could have continued.
public final class GuidedStrategy: SchedulingStrategy {
    public let decisions: [UInt16]
    /// Per step: whether the choice switched away from a runnable previous actor.
    @exclusivity(unchecked) public private(set) var preempted: [Bool] = []
    public init(decisions: [UInt16]) { self.decisions = decisions }
    public func reset(scheduleSeed: UInt64, actorCount: Int) { preempted = [] }
    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        let continuing = runnable.contains(previous) ? previous : runnable[0]
        var pick = continuing
        if step < decisions.count, runnable.contains(Int(decisions[step])) { pick = Int(decisions[step]) }
        preempted.append(pick != previous && runnable.contains(previous))
        return pick
    }
}
