// SPDX-License-Identifier: GPL-2.0-only

/// A kernel rwlock_t as the queued rwlock implements it (kernel/locking/qrwlock.c,
/// include/asm-generic/qrwlock.h): fair, writer-preferring. x86's `kvm->mmu_lock`
/// is one (taken for read by parallel TDP MMU faults, for write by zaps).
///
/// The lock word (`cnts`) is the qrwlock's: the reader count above
/// `_QR_SHIFT`, `_QW_LOCKED` in the low byte while a writer holds it,
/// `_QW_WAITING` while a writer waits. A writer that finds the lock busy queues
/// on `wait_lock` and sets `_QW_WAITING`; from then on new readers also queue on
/// `wait_lock` (behind the writer), so a stream of readers cannot starve it.
///
/// Acquiring is a scheduling point in deterministic mode (`waitUntil`, as
/// `SpinLock`); on real threads the fast paths are the kernel's single atomics.
/// Holders are recorded for lockdep: the writer's tag in a word of its own,
/// readers per executor (`lockdep_assert_held_read/write()`).
public final class RWLock: @unchecked Sendable {
    /// The scheduling points of a read and a write acquire.
    public let readName: StaticString
    public let writeName: StaticString
    /// The lock as lockdep messages name it, e.g. "kvm->mmu_lock".
    public let lockName: String
    let engine: SimEngine
    /// cnts, then the writer's holder tag.
    @usableFromInline let words = AtomicWords(count: 2)
    /// Read holds per executor (index: executor id; the last slot for threads
    /// outside the simulator).
    @usableFromInline let readers: AtomicWords
    /// arch_spinlock_t wait_lock: the queue of slow-path lockers.
    let waitLock: SpinLock
    /// Releases (read or write unlocks) per executor, the last slot for threads
    /// outside the simulator: the model's record, for oracles that ask whether
    /// a holder dropped the lock since some event ("flush before unlock").
    let releases: AtomicWords

    public static let writerLocked: UInt64 = 0xff      // _QW_LOCKED
    public static let writerWaiting: UInt64 = 0x100    // _QW_WAITING
    public static let writerMask: UInt64 = 0x1ff       // _QW_WMASK
    public static let readerBias: UInt64 = 1 << 9      // _QR_BIAS

    public init(read readName: StaticString, write writeName: StaticString, lockName: String, waitLockPoint: StaticString,
                engine: SimEngine) {
        self.readName = readName
        self.writeName = writeName
        self.lockName = lockName
        self.engine = engine
        readers = AtomicWords(count: engine.executors.count + 1)
        releases = AtomicWords(count: engine.executors.count + 1)
        waitLock = SpinLock(waitLockPoint, lockName: "\(lockName).wait_lock", engine: engine)
    }

    deinit { words.free(); readers.free(); releases.free() }

    @usableFromInline var readerSlot: Int { SimExecutor.currentID ?? (readers.count - 1) }

    // MARK: - read side

    /// read_lock(): queued_read_lock(). The fast path's add; with a writer
    /// holding or waiting, the slow path queues on wait_lock (which makes the
    /// lock contended: `isContended`) until the writer is done.
    public func readLock() {
        // Deterministic mode: the acquire is a scheduling point, as a spinlock's.
        if engine.mode == .deterministic { engine.point(readName) }
        let cnts = words.add(0, RWLock.readerBias)
        if cnts & RWLock.writerMask != 0 { readLockSlowpath() }
        readers.add(readerSlot, 1)
    }

    /// queued_read_lock_slowpath() in process context: back out, queue behind
    /// any waiting writer on wait_lock, then wait for the writer to finish.
    func readLockSlowpath() {
        words.sub(0, RWLock.readerBias)
        waitLock.lock()
        words.add(0, RWLock.readerBias)
        engine.waitUntil(readName) { [words] in words.load(0) & RWLock.writerLocked == 0 }
        waitLock.unlock()
    }

    /// read_trylock().
    public func tryReadLock() -> Bool {
        let cnts = words.load(0)
        guard cnts & RWLock.writerMask == 0 else { return false }
        let now = words.add(0, RWLock.readerBias)
        if now & RWLock.writerMask == 0 { readers.add(readerSlot, 1); return true }
        words.sub(0, RWLock.readerBias)
        return false
    }

    /// read_unlock().
    public func readUnlock() {
        accessPoint("read_unlock")
        let slot = readerSlot
        engine.lockdepAssert(readers.load(slot) > 0, "read_unlock of \(lockName) by \(engine.currentActorName), which holds no read lock")
        if readers.load(slot) > 0 { readers.sub(slot, 1) }
        releases.add(slot, 1)
        words.sub(0, RWLock.readerBias)
    }

    // MARK: - write side

    /// write_lock(): queued_write_lock().
    public func writeLock() {
        let me = lockHolderTag()
        if engine.mode == .deterministic {
            // Queue as the slow path does, so that readers arriving later wait.
            waitLock.lock()
            words.fetchOr(0, RWLock.writerWaiting)
            engine.waitUntil(writeName) { [words] in words.load(0) == RWLock.writerWaiting }
            _ = words.cas(0, RWLock.writerWaiting, RWLock.writerLocked)
            waitLock.unlock()
        } else if !words.cas(0, 0, RWLock.writerLocked) {
            writeLockSlowpath()
        }
        words.store(1, me)
    }

    /// queued_write_lock_slowpath().
    func writeLockSlowpath() {
        waitLock.lock()
        if words.load(0) == 0 && words.cas(0, 0, RWLock.writerLocked) { waitLock.unlock(); return }
        words.fetchOr(0, RWLock.writerWaiting)
        while true {
            engine.waitUntil(writeName) { [words] in words.load(0) == RWLock.writerWaiting }
            if words.cas(0, RWLock.writerWaiting, RWLock.writerLocked) { break }
        }
        waitLock.unlock()
    }

    /// write_trylock().
    public func tryWriteLock() -> Bool {
        guard words.cas(0, 0, RWLock.writerLocked) else { return false }
        words.store(1, lockHolderTag())
        return true
    }

    /// write_unlock().
    public func writeUnlock() {
        accessPoint("write_unlock")
        engine.lockdepAssert(words.load(1) == lockHolderTag(), "write_unlock of \(lockName) by \(engine.currentActorName), which does not hold it for write")
        releases.add(readerSlot, 1)
        words.store(1, 0)
        // smp_store_release(&lock->wlocked, 0): clear the writer byte only.
        while true {
            let cnts = words.load(0)
            if words.cas(0, cnts, cnts & ~RWLock.writerLocked) { return }
        }
    }

    /// rwlock_needbreak() (queued_rwlock_is_contended()): someone is queued on
    /// wait_lock: a writer waiting for readers or a writer to leave, or a
    /// reader waiting for a writer.
    public var isContended: Bool { withoutAccessPoints { waitLock.isLocked } }

    /// Whether anyone holds the lock (read or write): the model's view.
    public var isLocked: Bool { words.peek(0) & ~RWLock.writerWaiting != 0 }

    /// How many times the calling executor (or `executor`) released the lock.
    public func releaseCount(ofExecutor executor: Int? = nil) -> UInt64 { releases.peek(executor ?? readerSlot) }

    /// The executor slot of the caller (`SimExecutor.currentID`, or the slot
    /// for threads outside the simulator).
    public var callerSlot: Int { readerSlot }

    // MARK: - lockdep

    /// Whether the caller holds the lock for write.
    @inlinable public var isWriteHeldByCaller: Bool { words.load(1) == lockHolderTag() }
    /// Whether the caller holds the lock for read.
    @inlinable public var isReadHeldByCaller: Bool { readers.load(readerSlot) > 0 }

    /// lockdep_assert_held_write().
    @inlinable @inline(__always)
    public func assertHeldWrite(_ function: StaticString) {
        if !isWriteHeldByCaller { reportNotHeld(function, "for write") }
    }

    /// lockdep_assert_held(): held for read or for write.
    @inlinable @inline(__always)
    public func assertHeld(_ function: StaticString) {
        if !isWriteHeldByCaller && !isReadHeldByCaller { reportNotHeld(function, "for read or write") }
    }

    /// lockdep_assert_held_read().
    @inlinable @inline(__always)
    public func assertHeldRead(_ function: StaticString) {
        if !isReadHeldByCaller { reportNotHeld(function, "for read") }
    }

    @usableFromInline @inline(never)
    func reportNotHeld(_ function: StaticString, _ how: String) {
        engine.report(.lockdep, "\(function) runs in \(engine.currentActorName) without holding \(lockName) \(how)")
    }
}
