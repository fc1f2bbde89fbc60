// SPDX-License-Identifier: GPL-2.0-only

/// Follows a decision list as `GuidedStrategy` does, but from step `from` on,
/// at each step with probability `probability`, picks a runnable actor at
/// random instead (from a stream seeded by the schedule seed). Used to search
/// around a recorded real-thread order that does not reproduce exactly: the
/// interleaving that failed on real threads lies close to the recorded one,
/// and close to its end (the run stopped at the violation).
public final class PerturbedStrategy: SchedulingStrategy {
    public let decisions: [UInt16]
    public let probability: Double
    public let from: Int
    @exclusivity(unchecked) private var rng = SplitMix64(seed: 0)
    /// Deviations from the list are decided in units of 1/65536.
    private let threshold: Int

    public init(decisions: [UInt16], probability: Double, from: Int = 0) {
        self.decisions = decisions
        self.probability = probability
        self.from = from
        threshold = Int((probability * 65536).rounded())
    }

    public func reset(scheduleSeed: UInt64, actorCount: Int) { rng = SplitMix64(seed: scheduleSeed) }

    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        if step >= from && rng.below(65536) < threshold { return runnable[rng.below(runnable.count)] }
        if step < decisions.count, runnable.contains(Int(decisions[step])) { return Int(decisions[step]) }
        return runnable.contains(previous) ? previous : runnable[0]
    }
}
