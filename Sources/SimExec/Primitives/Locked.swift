// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex.
///
/// Used instead of `Synchronization.Mutex` because on Linux that one waits on
/// raw futexes, which ThreadSanitizer does not see, so every access it protects
/// shows up as a race; pthread mutexes are intercepted. Never reach a scheduling
/// point while holding one (it is a real lock: a paused holder would block others
/// outside the scheduler's view). `value` is only reached under the lock, so it
/// skips the dynamic exclusivity checks. `withLock` is inlinable: the model's
/// allocators (`TableArena`, `HostPages`) take one at every table or page
/// they hand out, and the generic call from another module, its closure
/// context and metadata cost more than the mutex (about 2,000 instructions a
/// sync-mmu-race schedule).
public final class Locked<Value>: @unchecked Sendable {
    @exclusivity(unchecked) @usableFromInline var mutex = pthread_mutex_t()
    @exclusivity(unchecked) @usableFromInline var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Runs `body` with the lock held (and, a real lock held by a thread, with
    /// access-level points closed: nothing inside may pause).
    @inlinable @inline(__always)
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try withoutAccessPoints { try body(&value) }
    }
}
