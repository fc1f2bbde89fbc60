// SPDX-License-Identifier: GPL-2.0-only

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
