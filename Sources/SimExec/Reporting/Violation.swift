// SPDX-License-Identifier: GPL-2.0-only

/// A violation of an invariant of the modelled system, reported by an oracle.
public struct Violation: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The oracle's name (`Oracle.name`), e.g. "I1", "lost-write", "rcu-use-after-free".
    public var oracle: String
    public var message: String
    /// Step of the schedule at which it was seen (deterministic mode), else -1.
    public var step: Int
    /// The actor that saw it.
    public var actor: String

    public init(oracle: String, message: String, step: Int, actor: String) {
        self.oracle = oracle; self.message = message; self.step = step; self.actor = actor
    }

    public var description: String { "[\(oracle)] step \(step) \(actor): \(message)" }
}

/// One line of the readable account of a schedule: who did what, in order.
public struct SimEvent: Sendable, Codable, Equatable {
    public var step: Int
    public var actor: String
    public var text: String
}
