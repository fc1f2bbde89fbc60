// SPDX-License-Identifier: GPL-2.0-only

/// Follows a decision list leniently, for shrinking: a decision naming an actor
/// that cannot run is skipped over (the running actor continues if it can, else
/// the smallest runnable id), and past the end of the list the running actor
/// keeps running (no preemption) while it can. Records which steps preempted an
/// actor that could have continued.
public final class GuidedStrategy: SchedulingStrategy {
    public let decisions: [UInt16]
    /// Per step: whether the choice switched away from a runnable previous actor.
    @exclusivity(unchecked) public private(set) var preempted: [Bool] = []
    /// Steps at which the list named an actor that could not run.
    @exclusivity(unchecked) public private(set) var misses: [Int] = []
    public init(decisions: [UInt16]) { self.decisions = decisions }
    public func reset(scheduleSeed: UInt64, actorCount: Int) { preempted = []; misses = [] }
    public func choose(runnable: UnsafeBufferPointer<Int>, step: Int, previous: Int) -> Int {
        let continuing = runnable.contains(previous) ? previous : runnable[0]
        var pick = continuing
        if step < decisions.count {
            if runnable.contains(Int(decisions[step])) { pick = Int(decisions[step]) } else { misses.append(step) }
        }
        preempted.append(pick != previous && runnable.contains(previous))
        return pick
    }
}
