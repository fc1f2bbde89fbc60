// SPDX-License-Identifier: GPL-2.0-only
import CURCU

/// A fixed-size array of 64-bit words accessed only through C11 atomics.
///
/// The model's shared kernel memory (page-table entries, host PTEs, page
/// reference counts, TLB entries) lives in these, so that lock-free readers in
/// parallel mode are data-race free (ThreadSanitizer understands the builtins).
/// Reference semantics: copies share storage; `deallocate()` is never called,
/// the owner keeps the words for the life of the world.
public struct AtomicWords: @unchecked Sendable {
    public let base: UnsafeMutablePointer<UInt64>
    public let count: Int

    public init(count: Int, initial: UInt64 = 0) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: initial, count: max(count, 1))
    }

    public func free() { base.deallocate() }

    @inline(__always) public func load(_ i: Int) -> UInt64 { kvmsim_load_acquire(base + i) }
    @inline(__always) public func loadRelaxed(_ i: Int) -> UInt64 { kvmsim_load_relaxed(base + i) }
    @inline(__always) public func store(_ i: Int, _ v: UInt64) { kvmsim_store_release(base + i, v) }
    @inline(__always) public func storeRelaxed(_ i: Int, _ v: UInt64) { kvmsim_store_relaxed(base + i, v) }
    @inline(__always) @discardableResult public func add(_ i: Int, _ v: UInt64) -> UInt64 { kvmsim_fetch_add(base + i, v) &+ v }
    @inline(__always) @discardableResult public func sub(_ i: Int, _ v: UInt64) -> UInt64 { kvmsim_fetch_add(base + i, 0 &- v) &- v }
    @inline(__always) @discardableResult public func fetchOr(_ i: Int, _ v: UInt64) -> UInt64 { kvmsim_fetch_or(base + i, v) }
    /// xchg(): stores `v`, returns the old value.
    @inline(__always) @discardableResult public func exchange(_ i: Int, _ v: UInt64) -> UInt64 { kvmsim_exchange(base + i, v) }
    @inline(__always) public func cas(_ i: Int, _ expected: UInt64, _ desired: UInt64) -> Bool { kvmsim_cas(base + i, expected, desired) }
}

/// smp_mb() / smp_rmb() / smp_wmb().
@inline(__always) public func smp_mb() { kvmsim_smp_mb() }
@inline(__always) public func smp_rmb() { kvmsim_smp_mb() }
@inline(__always) public func smp_wmb() { kvmsim_smp_mb() }
