// SPDX-License-Identifier: GPL-2.0-only
import CURCU
import Synchronization
import SimExec

/// RCU over liburcu-memb (Debian liburcu-dev), for parallel mode.
///
/// Every `SimExecutor` thread registers with liburcu when it starts and unregisters
/// when it ends, so any actor can read. `synchronize()` blocks its thread on a futex:
/// call it only from an executor thread (never the cooperative pool), outside any
/// read section and without holding `mmu_lock`.
public final class LibURCU: RCUDomain, @unchecked Sendable {
    unowned(unsafe) let engine: SimEngine
    private let gracePeriods = Atomic<UInt64>(0)

    public init(engine: SimEngine) { self.engine = engine }

    @inline(__always) public func readLock() { accessPoint("rcu_read_lock"); kvmsim_urcu_read_lock() }
    @inline(__always) public func readUnlock() { kvmsim_urcu_read_unlock(); accessPoint("rcu_read_unlock") }

    public func synchronize() {
        precondition(kvmsim_urcu_read_ongoing() == 0, "synchronize_rcu() inside an RCU read section")
        kvmsim_urcu_synchronize()
        gracePeriods.add(1, ordering: .relaxed)
    }

    public func callRCU(_ callback: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(CallbackBox(callback)).toOpaque()
        kvmsim_urcu_call_rcu(box, libURCUCallbackTrampoline)
    }

    /// rcu_barrier(); a no-op while the engine defers barriers (episodes).
    public func barrier() { if !engine.deferRCUBarriers { kvmsim_urcu_barrier() } }

    public var completedGracePeriods: UInt64 { gracePeriods.load(ordering: .relaxed) }
    public var readOngoing: Bool { kvmsim_urcu_read_ongoing() != 0 }
}

final class CallbackBox: @unchecked Sendable {
    let callback: @Sendable () -> Void
    init(_ callback: @escaping @Sendable () -> Void) { self.callback = callback }
}

/// Runs on liburcu's call_rcu thread: a file-scope function, so it inherits no actor isolation.
private func libURCUCallbackTrampoline(_ ctx: UnsafeMutableRawPointer?) {
    let box = Unmanaged<CallbackBox>.fromOpaque(ctx!).takeRetainedValue()
    box.callback()
}
