// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex guarding no Swift value: for atomicity the model's hardware
/// has and its kernel code does not spell out (a CPU's translation against
/// another CPU's TLB invalidation). The mutex lives in allocated memory, so
/// locking it is no Swift access to a stored property (ThreadSanitizer sees
/// only the pthread calls). As with `Locked`: never reach a scheduling point
/// while holding it; access-level points are closed inside.
public final class RawMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try withoutAccessPoints { try body() }
    }
}
