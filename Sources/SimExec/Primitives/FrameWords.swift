// SPDX-License-Identifier: GPL-2.0-only

/// `AtomicWords` with one word per page frame or guest page (a host page's
/// reference count or contents, an oracle's per-gfn shadow), laid out for the
/// run: packed in deterministic worlds, and, when built inside
/// `AtomicWords.withCacheLineLayout` (a long run on real threads), one cache
/// line per frame, as the kernel's `struct page` is 64 bytes, so that two CPUs
/// working on neighbouring pages do not share a line (false sharing the
/// kernel does not have). Arrays above `maxSpreadFrames` stay packed (a
/// line per frame would cost 64 bytes a page).
///
/// The same calls as `AtomicWords`, indexed by frame.
public struct FrameWords: @unchecked Sendable {
    public let words: AtomicWords
    /// log2 of the words between two frames' words: 0 packed, 3 a line each.
    @usableFromInline let shift: Int
    /// Frames.
    public let count: Int

    public static let maxSpreadFrames = 1 << 16

    public init(count: Int, initial: UInt64 = 0, kernel: Bool = false) {
        self.count = count
        shift = AtomicWords.cacheLineLayout && count <= FrameWords.maxSpreadFrames ? 3 : 0
        words = AtomicWords(count: count << shift, initial: initial, kernel: kernel)
    }

    public func free() { words.free() }

    @inlinable @inline(__always) func at(_ i: Int) -> Int { i &<< shift }

    @inlinable @inline(__always) public func load(_ i: Int) -> UInt64 { words.load(at(i)) }
    @inlinable @inline(__always) public func loadRelaxed(_ i: Int) -> UInt64 { words.loadRelaxed(at(i)) }
    @inlinable @inline(__always) public func store(_ i: Int, _ v: UInt64) { words.store(at(i), v) }
    @inlinable @inline(__always) public func storeRelaxed(_ i: Int, _ v: UInt64) { words.storeRelaxed(at(i), v) }
    @inlinable @inline(__always) @discardableResult public func add(_ i: Int, _ v: UInt64) -> UInt64 { words.add(at(i), v) }
    @inlinable @inline(__always) @discardableResult public func sub(_ i: Int, _ v: UInt64) -> UInt64 { words.sub(at(i), v) }
    @inlinable @inline(__always) @discardableResult public func exchange(_ i: Int, _ v: UInt64) -> UInt64 { words.exchange(at(i), v) }
    @inlinable @inline(__always) public func cas(_ i: Int, _ expected: UInt64, _ desired: UInt64) -> Bool { words.cas(at(i), expected, desired) }
    @inlinable @inline(__always) public func peek(_ i: Int) -> UInt64 { words.peek(at(i)) }
}
