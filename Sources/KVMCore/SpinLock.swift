// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A kernel spinlock (spinlock_t), e.g. `kvm->mmu_lock`.
///
/// Acquiring is a scheduling point: in deterministic mode a contended waiter is not
/// run until the lock is free; in parallel mode it spins. Holders may reach other
/// scheduling points (another CPU keeps running while one holds the lock), but must
/// never sleep: no `synchronize()` and no sleeping point while held.
public final class SpinLock: @unchecked Sendable {
    public let name: StaticString
    let engine: SimEngine
    private let word = AtomicWords(count: 1)

    public init(_ name: StaticString, engine: SimEngine) {
        self.name = name
        self.engine = engine
    }

    deinit { word.free() }

    /// spin_lock().
    public func lock() {
        // Parallel mode: try once before building the wait (its closure is a heap
        // allocation). Deterministic mode always passes the scheduling point.
        if engine.mode == .parallel && word.cas(0, 0, 1) { return }
        while true {
            engine.waitUntil(name) { [word] in word.loadRelaxed(0) == 0 }
            if word.cas(0, 0, 1) { return }
        }
    }

    /// spin_trylock().
    public func tryLock() -> Bool { word.cas(0, 0, 1) }

    /// spin_unlock().
    public func unlock() {
        precondition(word.loadRelaxed(0) == 1, "spin_unlock of an unlocked lock")
        word.store(0, 0)
    }

    /// spin_is_locked().
    public var isLocked: Bool { word.load(0) != 0 }

    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock(); defer { unlock() }
        return try body()
    }
}
