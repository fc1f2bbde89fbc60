// SPDX-License-Identifier: GPL-2.0-only
import Synchronization

/// A request to stop long work (a run between schedules, the suite between
/// cases, a campaign between units), raised by the command line's SIGINT and
/// SIGTERM handlers and handed down to whatever it runs. Raising is an atomic
/// store: async-signal-safe.
public final class StopSignal: Sendable {
    private let raised = Atomic<Int32>(0)

    public init() {}

    /// A signal nobody raises (library callers and tests that do not stop).
    public static let never = StopSignal()

    /// Records that `signal` (SIGINT, SIGTERM) asked everything to stop.
    public func raise(_ signal: Int32) { raised.store(signal, ordering: .relaxed) }

    public var isRaised: Bool { raised.load(ordering: .relaxed) != 0 }
    /// The signal that was raised, 0 if none.
    public var signal: Int32 { raised.load(ordering: .relaxed) }
}
