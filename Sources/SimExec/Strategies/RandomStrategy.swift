// SPDX-License-Identifier: GPL-2.0-only

/// Uniformly random among the runnable actors at every step (`StrategyKind.random`).
public final class RandomStrategy: SchedulingStrategy {
    @exclusivity(unchecked) private var rng = SplitMix64(seed: 0)
    public init() {}
    public func reset(scheduleSeed: UInt64, actorCount: Int) { rng = SplitMix64(seed: scheduleSeed) }
    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        runnable.count == 1 ? runnable[0] : runnable[rng.below(runnable.count)]
    }
}
