// SPDX-License-Identifier: GPL-2.0-only
import CURCU

/// Recording a parallel run: with `recordPasses` on, every executor notes each
/// point it passes (the points where deterministic mode would pick the next
/// executor: named points, yields, waits, lock acquires, job starts) with a
/// timestamp, in a buffer of its own (no shared counter: threads do not contend
/// for it). Merged in timestamp order, the passes say in which order the actors
/// ran their segments, the decision list a deterministic replay of the same
/// world follows (`Harness/Run/Runner+Reproduction.swift`).
extension SimEngine {
    /// Notes that the calling executor passed `name` (parallel mode, recording).
    @usableFromInline
    func recordPass(_ name: StaticString) {
        SimExecutor.withCurrent { $0.passes.append((kvmsim_timestamp(), name)) }
    }

    /// A parallel fast path passed the point `name` without waiting (a lock taken
    /// at once): noted when recording, nothing otherwise.
    @inlinable @inline(__always)
    public func notePass(_ name: StaticString) {
        if recordPasses { recordPass(name) }
    }

    /// Clears every executor's recorded passes (between episodes).
    public func clearPasses() {
        for e in executors { e.passes.removeAll(keepingCapacity: true) }
    }

    /// Every recorded pass, in timestamp order (ties by executor id): the
    /// decision list of a replay. Call when no task runs.
    public func mergedPasses() -> [(actor: Int, point: StaticString)] {
        var all: [(stamp: UInt64, actor: Int, point: StaticString)] = []
        for e in executors { for p in e.passes { all.append((p.stamp, e.id, p.point)) } }
        all.sort { ($0.stamp, $0.actor) < ($1.stamp, $1.actor) }
        return all.map { ($0.actor, $0.point) }
    }

    /// Parallel mode: clears the stop flag and the violations before another
    /// episode on the same threads.
    public func beginEpisode() {
        precondition(mode == .parallel)
        stopFlag.store(false, ordering: .relaxed)
        violationLock.withLock { $0 = ([], [:]) }
        eventLock.withLock { $0.removeAll() }
        firstViolationTime = nil
        clearPasses()
    }
}
