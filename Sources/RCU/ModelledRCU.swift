// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A modelled RCU for deterministic mode, with the semantics of synchronize_rcu().
///
/// Each actor has a read-section counter `generation`: odd while inside a section.
/// `synchronize()` snapshots the actors that are inside a section and waits (a
/// deterministic `waitUntil`) until each of them has left that section; in the
/// meantime the scheduler may run anyone, including readers stopped half-way through
/// a page-table walk. `callRCU` callbacks carry the same snapshot and run, in
/// queue order, on whichever actor finishes the last reader they waited for (or at
/// `synchronize`/`barrier`), which is one deterministic choice of "the callback thread".
///
/// Locking: all state is touched only by the thread holding the scheduler's baton
/// (hence `@exclusivity(unchecked)`: no dynamic exclusivity checks on the read path).
public final class ModelledRCU: RCUDomain, @unchecked Sendable {
    unowned(unsafe) let engine: SimEngine
    @exclusivity(unchecked) private var depth: [Int]
    @exclusivity(unchecked) private var generation: [UInt64]
    @exclusivity(unchecked) private var gracePeriods: UInt64 = 0
    private struct Pending { var waitFor: [(actor: Int, generation: UInt64)]; var callback: @Sendable () -> Void }
    @exclusivity(unchecked) private var pending: [Pending] = []

    public init(engine: SimEngine) {
        self.engine = engine
        depth = Array(repeating: 0, count: engine.executors.count + 1)
        generation = Array(repeating: 0, count: engine.executors.count + 1)
    }

    /// A world reset in place between schedules: no reader, no grace period
    /// yet, no callback pending, as a new domain.
    public func reset() {
        for i in depth.indices { depth[i] = 0; generation[i] = 0 }
        gracePeriods = 0
        pending.removeAll(keepingCapacity: true)
    }

    /// Slot of the calling actor; the last slot is for foreign threads (tests).
    @inline(__always) private var me: Int { SimExecutor.currentID ?? (depth.count - 1) }

    public func readLock() {
        accessPoint("rcu_read_lock")
        let i = me
        if depth[i] == 0 { generation[i] &+= 1 }
        depth[i] += 1
    }

    public func readUnlock() {
        let i = me
        precondition(depth[i] > 0, "rcu_read_unlock() without rcu_read_lock()")
        depth[i] -= 1
        if depth[i] == 0 {
            generation[i] &+= 1
            if !pending.isEmpty { runReadyCallbacks() }
        }
        accessPoint("rcu_read_unlock")
    }

    private func snapshotReaders() -> [(actor: Int, generation: UInt64)] {
        var s: [(actor: Int, generation: UInt64)] = []
        for i in 0..<generation.count where generation[i] & 1 == 1 { s.append((i, generation[i])) }
        return s
    }

    private func hasEnded(_ waitFor: [(actor: Int, generation: UInt64)]) -> Bool {
        waitFor.allSatisfy { generation[$0.actor] != $0.generation }
    }

    public func synchronize() {
        if depth[me] > 0 {
            engine.report(.rcuMisuse, "synchronize_rcu() called inside an RCU read section (self-deadlock)")
            return
        }
        let waitFor = snapshotReaders()
        engine.event("synchronize_rcu: grace period \(gracePeriods + 1) waits for \(waitFor.count) reader(s)")
        engine.waitUntil("synchronize_rcu") { [unowned self] in hasEnded(waitFor) }
        gracePeriods += 1
        engine.event("synchronize_rcu: grace period \(gracePeriods) ended")
        runReadyCallbacks()
    }

    public func callRCU(_ callback: @escaping @Sendable () -> Void) {
        let waitFor = snapshotReaders()
        if waitFor.isEmpty && pending.isEmpty {
            gracePeriods += 1
            withoutAccessPoints(callback)
        } else {
            pending.append(Pending(waitFor: waitFor, callback: callback))
        }
    }

    private func runReadyCallbacks() {
        // Callbacks run in order: stop at the first one whose grace period is still open.
        while let first = pending.first, hasEnded(first.waitFor) {
            pending.removeFirst()
            gracePeriods += 1
            withoutAccessPoints(first.callback)             // "the callback thread": not interleaved
        }
    }

    public func barrier() {
        engine.waitUntil("rcu_barrier") { [unowned self] in pending.allSatisfy { hasEnded($0.waitFor) } }
        runReadyCallbacks()
    }

    public var completedGracePeriods: UInt64 { gracePeriods }
    public var readOngoing: Bool { depth[me] > 0 }
}
