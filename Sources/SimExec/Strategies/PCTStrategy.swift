// SPDX-License-Identifier: GPL-2.0-only

/// Probabilistic Concurrency Testing (`StrategyKind.pct`).
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
