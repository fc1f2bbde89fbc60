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
