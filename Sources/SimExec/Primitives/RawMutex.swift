// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CURCU

/// A pthread mutex guarding no Swift value: for atomicity the model's hardware
/// has and its kernel code does not spell out (a CPU's translation against
/// another CPU's TLB invalidation). The mutex lives in allocated memory, so
/// locking it is no Swift access to a stored property (ThreadSanitizer sees
/// only the pthread calls). As with `Locked`: never reach a scheduling point
/// while holding it; access-level points are closed inside.
///
/// It knows its holder (`lockHolderTag()`, an atomic word beside the mutex),
/// so code that needs it held can say so: `isHeldByCaller`, checked with
/// `SimEngine.lockdepAssert` as `SpinLock.assertHeld` is.
public final class RawMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The holder's tag, 0 when free; written by the holder only.
    private let holder: UnsafeMutablePointer<UInt64>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        holder = .allocate(capacity: 1)
        holder.initialize(to: 0)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        holder.deallocate()
    }

    /// Runs `body` with the mutex held.
    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        kvmsim_store_relaxed(holder, lockHolderTag())
        defer {
            kvmsim_store_relaxed(holder, 0)
            pthread_mutex_unlock(mutex)
        }
        return try withoutAccessPoints { try body() }
    }

    /// Whether the caller holds the mutex (lockdep_is_held()).
    @inline(__always)
    public var isHeldByCaller: Bool { kvmsim_load_relaxed(holder) == lockHolderTag() }
}
