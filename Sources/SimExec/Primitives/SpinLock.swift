// SPDX-License-Identifier: GPL-2.0-only

/// A kernel spinlock (spinlock_t), e.g. `kvm->mmu_lock`.
///
/// Acquiring is a scheduling point: in deterministic mode a contended waiter is not
/// run until the lock is free; in parallel mode it spins. Holders may reach other
/// scheduling points (another CPU keeps running while one holds the lock), but must
/// never sleep: no `synchronize()` and no sleeping point while held.
///
/// The lock word holds its holder (`lockHolderTag()`, 0 when free), so lockdep
/// checks hold in both modes: `assertHeld` (lockdep_assert_held()) reports
/// `lockdep` when the caller does not hold the lock, and so does an unlock by
/// anyone but the holder.
public final class SpinLock: @unchecked Sendable {
    /// The scheduling point of an acquire, e.g. "spin_lock(&kvm->mmu_lock)".
    public let name: StaticString
    /// The name lockdep messages use, when it is not derived from `name`.
    let givenLockName: String?
    let engine: SimEngine
    @usableFromInline let word = AtomicWords(count: 1)

    public init(_ name: StaticString, lockName: String? = nil, engine: SimEngine) {
        self.name = name
        givenLockName = lockName
        self.engine = engine
    }

    /// The lock as lockdep messages name it, e.g. "kvm->mmu_lock" (built only
    /// for a report: worlds make their locks once per schedule).
    public var lockName: String { givenLockName ?? SpinLock.lockName(fromPoint: "\(name)") }

    deinit { word.free() }

    /// "spin_lock(&kvm->mmu_lock)" -> "kvm->mmu_lock".
    static func lockName(fromPoint p: String) -> String {
        guard let open = p.firstIndex(of: "("), p.hasSuffix(")") else { return p }
        var inner = p[p.index(after: open)..<p.index(before: p.endIndex)]
        if inner.hasPrefix("&") { inner = inner.dropFirst() }
        return String(inner)
    }

    /// spin_lock().
    public func lock() {
        let me = lockHolderTag()
        if engine.mode == .parallel {
            // Real threads: try, spin while held, try again; the acquire is the
            // one point a recording notes (as the deterministic waitUntil is one step).
            while !word.cas(0, 0, me) { engine.spinUntil { word.loadRelaxed(0) == 0 } }
            engine.notePass(name)
            return
        }
        // Deterministic mode always passes the scheduling point.
        while true {
            engine.waitUntil(name) { [word] in word.loadRelaxed(0) == 0 }
            if word.cas(0, 0, me) { return }
        }
    }

    /// spin_trylock().
    public func tryLock() -> Bool { accessPoint("spin_trylock"); return word.cas(0, 0, lockHolderTag()) }

    /// spin_unlock(). The release is an access-level point (the lock word is
    /// not kernel memory of the model, so the point is placed here).
    public func unlock() {
        accessPoint("spin_unlock")
        let holder = word.loadRelaxed(0)
        precondition(holder != 0, "spin_unlock of an unlocked lock")
        engine.lockdepAssert(holder == lockHolderTag(), "\(lockName) released by \(engine.currentActorName), which does not hold it")
        storeBufferFence()                       // a release: every earlier store first
        word.store(0, 0)
    }

    /// spin_is_locked().
    public var isLocked: Bool { word.load(0) != 0 }

    /// Whether the caller holds the lock (lockdep_is_held()).
    @inlinable public var isHeldByCaller: Bool { word.loadRelaxed(0) == lockHolderTag() }

    /// lockdep_assert_held(): `function` (its kernel name) requires this lock.
    @inlinable @inline(__always)
    public func assertHeld(_ function: StaticString) {
        if !isHeldByCaller { reportNotHeld(function) }
    }

    @usableFromInline @inline(never)
    func reportNotHeld(_ function: StaticString) {
        engine.report(.lockdep, "\(function) runs in \(engine.currentActorName) without holding \(lockName)")
    }

    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock(); defer { unlock() }
        return try body()
    }
}
