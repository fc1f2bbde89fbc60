// SPDX-License-Identifier: GPL-2.0-only

/// An invariant of the modelled system and the name its violations carry.
///
/// Declare each oracle once, as a static constant beside the code that checks
/// it (as `CoverageMark`s are declared beside the branch they count), and
/// report through it: `engine.report(.lostWrite, "...")`. A checker type lists
/// the oracles it owns (`static let oracles`), and a scenario names the
/// checkers that watch its worlds, so every oracle a run can report is listed
/// by `kvmsim list` without a hand-kept list of names.
///
/// An oracle checks the modelled system (no use of a freed page, no stale
/// translation, no lost write), never what a variant is expected to do.
public struct Oracle: Sendable, Hashable, CustomStringConvertible {
    /// The short name reports and traces carry ("I1", "lost-write").
    public let name: String
    /// The invariant, one line.
    public let invariant: String

    public init(_ name: String, _ invariant: String) {
        self.name = name
        self.invariant = invariant
    }

    public var description: String { name }

    public static func == (a: Oracle, b: Oracle) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }
}

extension Oracle {
    /// The scheduler's own oracles, watching every world.
    public static let deadlock = Oracle("deadlock", "some actor can always run while work is unfinished")
    public static let livelock = Oracle("livelock", "a schedule finishes within the engine's step limit (no actor retries forever)")
    /// Every oracle the engine itself reports.
    public static let engineOracles: [Oracle] = [.deadlock, .livelock, .lockdep]
}
