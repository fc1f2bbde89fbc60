// SPDX-License-Identifier: GPL-2.0-only
import CURCU
import CFiber

/// Kernel memory whose ordering a model studies: words like `AtomicWords`
/// made with `kernel: true` (each access an access-level point), except that
/// in the `pso` memory model a CPU's stores to them wait in its `StoreBuffer`
/// and become visible when the scheduler drains them (`StoreBuffer.swift`),
/// and the CPU's own loads see its pending stores. With no store buffer
/// (`sc`, parallel mode, a thread outside the simulator) they are plain
/// `AtomicWords`. A type of their own, so that every other word's accesses
/// pay nothing for the mode.
///
/// No read-modify-write: a model that needs one on these words makes it on
/// `words` after a `storeBufferFence()` (a value-returning atomic is fully
/// ordered) or adds an unordered one here.
public struct WeakWords: @unchecked Sendable {
    public let words: AtomicWords

    public init(count: Int) { words = AtomicWords(count: count, kernel: true) }

    public var count: Int { words.count }

    /// A load: the calling CPU's newest pending store to word `i`, else memory.
    @inlinable public func load(_ i: Int) -> UInt64 {
        words.point("access:load")
        if let v = currentStoreBuffer()?.forwarded(words.base + i) { return v }
        return kvmsim_load_acquire(words.base + i)
    }

    /// A store: into the calling CPU's store buffer if it has one, else to memory.
    @inlinable public func store(_ i: Int, _ v: UInt64) {
        words.point("access:store")
        if let sb = currentStoreBuffer() { sb.store(words.base + i, v); return }
        kvmsim_store_release(words.base + i, v)
    }

    /// What memory holds (no forwarding, never a scheduling point): an
    /// oracle's view.
    @inlinable public func peek(_ i: Int) -> UInt64 { words.peek(i) }

    public func free() { words.free() }
}
