// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CURCU
import CFiber

/// A fixed-size array of 64-bit words accessed only through C11 atomics.
///
/// The model's shared kernel memory (page-table entries, host PTEs, page
/// reference counts, TLB entries) lives in these, so that lock-free readers in
/// parallel mode are data-race free (ThreadSanitizer understands the builtins).
/// Reference semantics: copies share storage; the owner calls `free()` once,
/// when no copy is used any more (e.g. in its deinit).
///
/// Words made with `kernel: true` are kernel memory the modelled CPUs share:
/// with access-level points (`PointGranularity.accesses`) every load, store and
/// read-modify-write of them is a scheduling point. Oracles' records, counters
/// and other bookkeeping are not (the default).
public struct AtomicWords: @unchecked Sendable {
    public let base: UnsafeMutablePointer<UInt64>
    public let count: Int
    /// Bytes mapped with `mmap` (`init(reservingZeroed:)`), 0 for a heap allocation.
    public let mappedBytes: Int
    /// Kernel memory: its accesses are access-level points.
    public let kernel: Bool

    public init(count: Int, initial: UInt64 = 0, kernel: Bool = false) {
        let base = AtomicWords.allocate(count)
        base.initialize(repeating: initial, count: max(count, 1))
        self.init(base: base, count: count, mappedBytes: 0, kernel: kernel)
    }

    private init(base: UnsafeMutablePointer<UInt64>, count: Int, mappedBytes: Int, kernel: Bool) {
        self.base = base; self.count = count; self.mappedBytes = mappedBytes; self.kernel = kernel
        WorldMemory.noteAllocation(base, count: count)
    }

    /// Zeroed words, reserved as address space: from `AtomicWords.reserveThreshold`
    /// bytes up the words come from an anonymous `MAP_NORESERVE` mapping, which
    /// the kernel backs with memory page by page on first touch (so an arena sized
    /// for the worst case costs only what is used); smaller ones from the heap.
    public init(reservingZeroed count: Int, kernel: Bool = false) {
        let bytes = max(count, 1) * 8
        guard bytes >= AtomicWords.reserveThreshold else { self.init(count: count, kernel: kernel); return }
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { fatalError("kvmsim: cannot reserve \(bytes >> 20) MiB of address space") }
        self.init(base: p.bindMemory(to: UInt64.self, capacity: max(count, 1)), count: count, mappedBytes: bytes, kernel: kernel)
    }

    /// Words whose contents are undefined until written (zero when mapped), for an
    /// arena whose owner writes every word before any read (`PageTable` zeroes a
    /// table as it hands it out): a world built per schedule does not zero memory
    /// it may never use. Same memory rules as `init(reservingZeroed:)`.
    public init(reserving count: Int, kernel: Bool = false) {
        let bytes = max(count, 1) * 8
        guard bytes >= AtomicWords.reserveThreshold else {
            self.init(base: AtomicWords.allocate(count), count: count, mappedBytes: 0, kernel: kernel)
            return
        }
        self.init(reservingZeroed: count, kernel: kernel)
    }

    /// Heap words for `count` words (uninitialized). Inside
    /// `withCacheLineLayout` in whole cache lines of their own (64-byte
    /// aligned, the last line padded), so that words of different owners never
    /// share a line: on real threads one CPU's lock word, counter or TLB does
    /// not bounce with another's. Elsewhere packed: an aligned allocation
    /// costs a world built per schedule 5.6% more instructions (gva-flush).
    static func allocate(_ count: Int) -> UnsafeMutablePointer<UInt64> {
        guard cacheLineLayout else { return .allocate(capacity: max(count, 1)) }
        let bytes = (max(count, 1) * 8 + cacheLine - 1) / cacheLine * cacheLine
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: cacheLine).bindMemory(to: UInt64.self, capacity: bytes / 8)
    }
    public static let cacheLine = 64

    /// Whether the calling thread builds inside `withCacheLineLayout`.
    public static var cacheLineLayout: Bool { kvmsim_line_layout() != 0 }

    /// Runs `body` (the build of a world for a long run on real threads) with
    /// every `AtomicWords` it allocates in cache lines of its own.
    public static func withCacheLineLayout<R>(_ body: () throws -> R) rethrows -> R {
        let was = kvmsim_line_layout()
        kvmsim_set_line_layout(1)
        defer { kvmsim_set_line_layout(was) }
        return try body()
    }

    /// Below this many bytes `init(reservingZeroed:)` uses the heap: a small world
    /// built per schedule should not pay two system calls.
    public static let reserveThreshold = 1 << 20

    /// Bytes of memory these words occupy: for a mapping, the pages touched so far
    /// when only words `0..<highWater` have ever been written; else the allocation.
    public func residentBytes(highWater: Int) -> Int {
        guard mappedBytes > 0 else { return max(count, 1) * 8 }
        let page = 4096
        return min(mappedBytes, (highWater * 8 + page - 1) / page * page)
    }

    public func free() {
        WorldMemory.noteFree(base)
        if mappedBytes > 0 { munmap(base, mappedBytes) } else { UnsafeMutableRawPointer(base).deallocate() }
    }

    /// An access-level point before an access, if this is kernel memory and the
    /// running context's gate is open. One load and branch otherwise.
    @inlinable @inline(__always) func point(_ name: StaticString) {
        if kernel && kvmsim_access_gate() != 0 { kernelAccessPoint(name) }
    }

    @inlinable @inline(__always) public func load(_ i: Int) -> UInt64 { point("access:load"); return kvmsim_load_acquire(base + i) }
    @inlinable @inline(__always) public func loadRelaxed(_ i: Int) -> UInt64 { point("access:load"); return kvmsim_load_relaxed(base + i) }
    @inlinable @inline(__always) public func store(_ i: Int, _ v: UInt64) { point("access:store"); kvmsim_store_release(base + i, v) }
    @inlinable @inline(__always) public func storeRelaxed(_ i: Int, _ v: UInt64) { point("access:store"); kvmsim_store_relaxed(base + i, v) }
    // Read-modify-writes: a fence for weakly ordered stores first (`WeakWords`).
    @inlinable @inline(__always) @discardableResult public func add(_ i: Int, _ v: UInt64) -> UInt64 { point("access:rmw"); storeBufferFence(); return kvmsim_fetch_add(base + i, v) &+ v }
    /// An unordered read-modify-write: atomic_inc() and the other atomics that
    /// return nothing, or a plain `++` of a word only its owner writes. Not a
    /// fence for weakly ordered stores (value-returning atomics are).
    @inlinable @inline(__always) @discardableResult public func addRelaxed(_ i: Int, _ v: UInt64) -> UInt64 { point("access:rmw"); return kvmsim_fetch_add(base + i, v) &+ v }
    @inlinable @inline(__always) @discardableResult public func sub(_ i: Int, _ v: UInt64) -> UInt64 { point("access:rmw"); storeBufferFence(); return kvmsim_fetch_add(base + i, 0 &- v) &- v }
    @inlinable @inline(__always) @discardableResult public func fetchOr(_ i: Int, _ v: UInt64) -> UInt64 { point("access:rmw"); storeBufferFence(); return kvmsim_fetch_or(base + i, v) }
    /// xchg(): stores `v`, returns the old value.
    @inlinable @inline(__always) @discardableResult public func exchange(_ i: Int, _ v: UInt64) -> UInt64 { point("access:rmw"); storeBufferFence(); return kvmsim_exchange(base + i, v) }
    @inlinable @inline(__always) public func cas(_ i: Int, _ expected: UInt64, _ desired: UInt64) -> Bool { point("access:rmw"); storeBufferFence(); return kvmsim_cas(base + i, expected, desired) }

    /// A load that is never a scheduling point: an oracle's or the scheduler's
    /// view (wait conditions also run with the gate closed).
    @inlinable @inline(__always) public func peek(_ i: Int) -> UInt64 { kvmsim_load_acquire(base + i) }
}
