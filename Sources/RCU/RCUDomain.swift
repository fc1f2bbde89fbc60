// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The RCU interface the model uses (include/linux/rcupdate.h in spirit).
///
/// Rules, as in the kernel and in liburcu:
/// - Read sections are synchronous closures (`read { ... }`): no `await` can be
///   written inside one, so a section never migrates between threads.
/// - `synchronize()` (synchronize_rcu) and waiting on `callRCU` callbacks must not
///   be called inside a read section, nor while holding a lock a reader waits for.
/// - Memory a reader reached inside a section (a page-table entry it loaded with
///   an acquire, the model's rcu_dereference()) stays valid until the section
///   ends, if the writer unlinked it first (a release store, the model's
///   rcu_assign_pointer()) and frees it only after a grace period
///   (`synchronize()` or `callRCU`).
///
/// Two implementations share this interface: `LibURCU` (liburcu-memb, parallel
/// mode) and `ModelledRCU` (deterministic mode), in which a reader can be overtaken
/// inside its section and a grace period really waits for it.
public protocol RCUDomain: AnyObject, Sendable {
    /// rcu_read_lock(). Prefer `read { }`.
    func readLock()
    /// rcu_read_unlock().
    func readUnlock()
    /// synchronize_rcu(): returns after every read section that was running when it
    /// was called has ended.
    func synchronize()
    /// call_rcu(): runs `callback` after a grace period, on some other context.
    func callRCU(_ callback: @escaping @Sendable () -> Void)
    /// rcu_barrier(): waits until every callback queued so far has run.
    func barrier()
    /// Completed grace periods (for narration and tests).
    var completedGracePeriods: UInt64 { get }
    /// Whether the calling thread is inside a read section.
    var readOngoing: Bool { get }
}

extension RCUDomain {
    /// A read-side critical section. `body` is synchronous: no `await` can be written in it.
    @inlinable @inline(__always)
    public func read<R>(_ body: () throws -> R) rethrows -> R {
        readLock()
        defer { readUnlock() }
        return try body()
    }
}

extension Oracle {
    /// RCU's own rules, checked by `ModelledRCU`.
    public static let rcuMisuse = Oracle("rcu-misuse", "synchronize_rcu() is never called inside an RCU read section")
}

/// Makes the right RCU for a run: modelled in deterministic mode, liburcu in parallel mode.
public func makeRCU(for engine: SimEngine) -> any RCUDomain {
    switch engine.mode {
    case .deterministic: return ModelledRCU(engine: engine)
    case .parallel: return LibURCU(engine: engine)
    }
}
